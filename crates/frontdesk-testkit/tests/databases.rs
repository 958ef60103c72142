//! The kit's PostgreSQL databases: `TestDb::new` is a migrated copy of the template (every
//! migration applied, none run by the test), `TestDb::empty` has no tables, four made at
//! once all succeed, the template itself takes no connections, and `remove` or dropping a
//! `TestDb` drops its database.

use frontdesk_testkit::db::{pg_connect, postgres_admin_url};
use frontdesk_testkit::{Backend, TestDb};

/// The folders under migrations/postgres: one applied migration each.
fn migration_count() -> i64 {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../migrations/postgres");
    let count = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .count();
    i64::try_from(count).unwrap_or(i64::MAX)
}

async fn public_tables(db: &TestDb) -> i64 {
    db.count("pg_tables WHERE schemaname = 'public'").await
}

async fn exists(name: &str) -> bool {
    let admin = pg_connect(&postgres_admin_url())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    admin
        .query_opt("SELECT 1 FROM pg_database WHERE datname = $1", &[&name])
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .is_some()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_databases_come_migrated_from_the_template_or_empty() {
    if !Backend::Postgres.enabled() {
        return;
    }
    // Four at once: the first makes the template under the lock, the others wait for it.
    let made = futures_util::future::join_all((0..4).map(|_| TestDb::new(Backend::Postgres))).await;
    for db in &made {
        assert_eq!(
            db.count("__diesel_schema_migrations").await,
            migration_count(),
            "every migration is applied in a copy"
        );
        assert_eq!(public_tables(db).await, 11, "ten tables and diesel's own");
    }
    let names: Vec<String> = made
        .iter()
        .map(|db| db.postgres_name().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(
        names
            .iter()
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        4
    );

    let empty = TestDb::empty(Backend::Postgres).await;
    assert_eq!(
        public_tables(&empty).await,
        0,
        "an empty database has no tables"
    );

    // The template takes no connections, so copying it never meets a session.
    let admin = pg_connect(&postgres_admin_url())
        .await
        .unwrap_or_else(|e| panic!("{e:#}"));
    let rows = admin
        .query(
            "SELECT datistemplate, datallowconn FROM pg_database \
             WHERE datname LIKE 'frontdesk\\_template\\_%' AND datname NOT LIKE '%\\_building'",
            &[],
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!rows.is_empty(), "no template database");
    for row in rows {
        assert_eq!(
            (row.get::<_, bool>(0), row.get::<_, bool>(1)),
            (true, false)
        );
    }

    for db in made {
        db.remove().await;
    }
    for name in &names {
        assert!(!exists(name).await, "{name} outlived remove()");
    }
    let name = empty.postgres_name().unwrap_or_default().to_owned();
    drop(empty);
    assert!(!exists(&name).await, "{name} outlived its TestDb");
}
