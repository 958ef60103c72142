//! Each backend's migrations apply, revert completely, and apply again.

use diesel::{Connection, RunQueryDsl, SqliteConnection};
use diesel_async::async_connection_wrapper::AsyncConnectionWrapper;
use diesel_async::AsyncPgConnection;
use diesel_migrations::{embed_migrations, EmbeddedMigrations, MigrationHarness};
use frontdesk_testkit::{Backend, TestDb};

const SQLITE: EmbeddedMigrations = embed_migrations!("../../migrations/sqlite");
const POSTGRES: EmbeddedMigrations = embed_migrations!("../../migrations/postgres");

#[derive(diesel::QueryableByName)]
struct Name {
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
}

/// `migrations` is a constant's name, called for each pass (the set is not `Clone`).
fn round_trip<C>(conn: &mut C, migrations: impl Fn() -> EmbeddedMigrations, tables_sql: &str)
where
    C: MigrationHarness<C::Backend> + Connection,
    diesel::query_builder::SqlQuery: diesel::query_dsl::LoadQuery<'static, C, Name>,
{
    let tables = |conn: &mut C| -> Vec<String> {
        let mut names: Vec<String> = diesel::sql_query(tables_sql)
            .load::<Name>(conn)
            .unwrap_or_else(|e| panic!("listing tables: {e}"))
            .into_iter()
            .map(|n| n.name)
            .filter(|n| n != "__diesel_schema_migrations" && n != "sqlite_sequence")
            .collect();
        names.sort();
        names
    };
    let applied = conn
        .run_pending_migrations(migrations())
        .unwrap_or_else(|e| panic!("up: {e}"));
    assert!(!applied.is_empty());
    let after_up = tables(conn);
    assert_eq!(
        after_up,
        [
            "agent_sessions",
            "agents",
            "conversations",
            "customer_sessions",
            "customers",
            "events",
            "messages",
            "partners",
            "reply_jobs",
            "throttle_counters"
        ]
    );
    conn.revert_all_migrations(migrations())
        .unwrap_or_else(|e| panic!("down: {e}"));
    assert_eq!(
        tables(conn),
        Vec::<String>::new(),
        "down.sql left tables behind"
    );
    conn.run_pending_migrations(migrations())
        .unwrap_or_else(|e| panic!("up again: {e}"));
    assert_eq!(tables(conn), after_up);
}

#[test]
fn sqlite_migrations_reverse() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let path = dir.path().join("m.db");
    let mut conn =
        SqliteConnection::establish(&path.to_string_lossy()).unwrap_or_else(|e| panic!("{e}"));
    round_trip(
        &mut conn,
        || SQLITE,
        "SELECT name FROM sqlite_master WHERE type = 'table'",
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_migrations_reverse() {
    if !Backend::Postgres.enabled() {
        return;
    }
    // Empty: this test runs the migrations itself. The kit drops the database.
    let db = TestDb::empty(Backend::Postgres).await;
    let url = db.url.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut conn = <AsyncConnectionWrapper<AsyncPgConnection> as Connection>::establish(&url)
            .unwrap_or_else(|e| panic!("{e}"));
        round_trip(
            &mut conn,
            || POSTGRES,
            "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'",
        );
    })
    .await;
    db.remove().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic.into_panic());
    }
}
