//! Two server processes on one PostgreSQL database deliver each other's events, and keep
//! doing so after the database drops every connection (as a restart does).

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{Backend, Partner, Server, TestDb, WsClient};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_one_database() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;
    let partner = a.register("Acme").await;
    let agent = b.agent("agent@example.com", false).await;
    let mut staff = WsClient::agent(&b, &agent).await;

    // A conversation opened on A reaches the queue on B.
    let conversation = a.conversation(&partner, "ann").await;
    assert_eq!(
        staff.expect("status").await["payload"]["conversationId"],
        conversation
    );
    let token = a.session(&partner, "ann").await;
    let mut ann = WsClient::customer(&a, "ann", &token).await;

    // Customer on A -> agent on B.
    ann.send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "from A", "clientMessageId": "a1"}}))
        .await;
    assert_eq!(
        staff.expect("message").await["payload"]["content"],
        "from A"
    );

    // Agent on B takes it and answers -> customer on A.
    b.assign(&agent, conversation).await;
    assert_eq!(ann.until("status").await["payload"]["status"], "active");
    staff.expect("status").await;
    staff
        .send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "from B"}}))
        .await;
    assert_eq!(ann.expect("message").await["payload"]["content"], "from B");

    // Typing crosses instances too, both ways.
    ann.send(
        &json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}),
    )
    .await;
    assert_eq!(staff.until("typing").await["payload"]["isAgent"], false);
    staff
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    assert_eq!(ann.until("typing").await["payload"]["isAgent"], true);

    // The database drops every connection, listeners included.
    db.execute(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
         WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .await;
    // Messages sent on A right away still reach B's agent, in order, each once.
    let mut sent = Vec::new();
    for n in 0..5 {
        sent.push(post_with_retry(&a, &partner, conversation, &format!("after restart {n}")).await);
    }
    let mut received = Vec::new();
    while received.len() < sent.len() {
        let frame = staff.until("message").await;
        received.push(frame["payload"].clone());
    }
    assert_eq!(received, sent);
    staff.expect_quiet().await;
    for server in [&a, &b] {
        assert!(
            server.log().contains("event listener disconnected"),
            "{}",
            server.log()
        );
        server.assert_no_panics();
    }
}

/// The first request after the drop may meet a connection the pool has not yet noticed is
/// dead (503/500); a client retries it with the same clientMessageId, so it is stored once.
async fn post_with_retry(
    server: &Server,
    partner: &Partner,
    conversation: i64,
    text: &str,
) -> Value {
    let body = json!({"conversationId": conversation, "senderId": "ann", "content": text, "clientMessageId": text});
    for _ in 0..50 {
        let (status, message) = server.send_message(&partner.key, &body).await;
        if status.is_success() {
            return message;
        }
        assert!(status.is_server_error(), "{status}: {message}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("{text} was never accepted")
}

/// A PostgreSQL role of the test's own, which can open at most `limit` connections at once
/// (cluster-wide, so the name is unique per run), owning the test's database so the server's
/// migrations may create tables. The role cannot be dropped while it owns a database, so its
/// drop drops the database first (the `TestDb`'s own drop then finds it gone).
struct LimitedRole {
    name: String,
    database: String,
}

impl LimitedRole {
    async fn create(db: &TestDb, limit: usize) -> Self {
        let name = format!("frontdesk_budget_{:016x}", rand::random::<u64>());
        let database = db
            .url
            .rsplit('/')
            .next()
            .expect("a database name")
            .to_owned();
        admin(&format!(
            "CREATE ROLE {name} LOGIN CONNECTION LIMIT {limit}; \
             ALTER DATABASE {database} OWNER TO {name}"
        ))
        .await;
        Self { name, database }
    }

    /// The test database's URL, signing in as this role.
    fn url(&self, db: &TestDb) -> String {
        let rest = db.url.split_once("://").map_or("", |(_, rest)| rest);
        let host_and_db = rest.split_once('@').map_or(rest, |(_, host)| host);
        format!("postgres://{}@{host_and_db}", self.name)
    }

    /// The role's sessions now (from the admin's own session, which the limit does not count).
    async fn sessions(&self) -> i64 {
        let client = admin_client().await;
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE usename = $1",
                &[&self.name],
            )
            .await
            .expect("count the role's sessions");
        row.get(0)
    }
}

impl Drop for LimitedRole {
    fn drop(&mut self) {
        // Two statements: DROP DATABASE cannot run inside a multi-statement batch.
        let statements = [
            format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.database),
            format!("DROP ROLE IF EXISTS {}", self.name),
        ];
        // Drop runs outside async: a small runtime on a thread of its own.
        let _ = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
            {
                runtime.block_on(async {
                    for sql in &statements {
                        admin(sql).await;
                    }
                });
            }
        })
        .join();
    }
}

async fn admin_client() -> tokio_postgres::Client {
    let (client, connection) =
        tokio_postgres::connect(&support::db::postgres_admin_url(), tokio_postgres::NoTls)
            .await
            .expect("PostgreSQL at TEST_DATABASE_URL");
    tokio::spawn(connection);
    client
}

async fn admin(sql: &str) {
    admin_client()
        .await
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Pool 3 over 2 workers: 2 and 1, plus the LISTEN, writer and feed connections.
const POOL: &str = "3";
const WORKERS: &str = "2";
const BUDGET: usize = 6;

/// An instance needs no more PostgreSQL connections than docs/configuration.md budgets (pool
/// size + 3): run as a role whose `CONNECTION LIMIT` is exactly that, under load on both
/// workers, the writer and the feed, every request succeeds. PostgreSQL itself refuses a
/// connection beyond the limit, so a short-lived extra one cannot slip between samples.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_instance_stays_within_its_connection_budget() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let limit = BUDGET;
    // Empty, not copied from the migrated template: the server runs the migrations as the
    // role, so the role owns the tables it then uses.
    let mut db = TestDb::empty(Backend::Postgres).await;
    let role = LimitedRole::create(&db, limit).await;
    db.url = role.url(&db);
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_DB_POOL_SIZE", POOL),
            ("FRONTDESK_WORKERS", WORKERS),
        ],
    )
    .await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let token = server.session(&partner, "ann").await;
    // A WebSocket, so the LISTEN connection is open too.
    let mut ann = WsClient::customer(&server, "ann", &token).await;
    let history = format!("/api/partner/messages/{conversation}?after=0");

    // Reads and posts at once, each on a new connection so they reach both workers; the posts
    // keep the writer and the feed busy.
    let fresh_connections = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .expect("a client");
    let mut load = tokio::task::JoinSet::new();
    for task in 0..32 {
        let (client, base, key) = (
            fresh_connections.clone(),
            server.base.clone(),
            partner.key.clone(),
        );
        let history = history.clone();
        load.spawn(async move {
            let mut failures = Vec::new();
            for n in 0..20 {
                let request = if task % 4 == 0 {
                    client
                        .post(format!("{base}/api/partner/messages"))
                        .json(&json!({"conversationId": conversation, "senderId": "ann",
                                      "content": format!("{task}/{n}")}))
                } else {
                    client.get(format!("{base}{history}"))
                };
                match request.bearer_auth(&key).send().await {
                    Ok(response) if response.status().is_success() => {}
                    Ok(response) => failures.push(format!(
                        "{}: {}",
                        response.status(),
                        response.text().await.unwrap_or_default()
                    )),
                    Err(e) => failures.push(e.to_string()),
                }
            }
            failures
        });
    }
    let mut failures = Vec::new();
    while let Some(done) = load.join_next().await {
        failures.extend(done.expect("a load task"));
    }
    let log = server.log();
    assert_eq!(
        failures.len(),
        0,
        "requests failed within a CONNECTION LIMIT of {limit}, the first: {:?}\n{log}",
        failures.first()
    );
    assert!(
        !log.contains("too many connections"),
        "over the CONNECTION LIMIT of {limit}:\n{log}"
    );
    // Every message reached the customer's socket: the feed and LISTEN worked throughout.
    let mut received = 0;
    while received < 8 * 20 {
        ann.until("message").await;
        received += 1;
    }
    // The load really opened the connections budgeted (they stay pooled): otherwise a limit
    // one lower would pass too.
    let sessions = role.sessions().await;
    assert_eq!(
        sessions,
        i64::try_from(BUDGET).expect("small"),
        "sessions the instance holds after the load"
    );
    server.assert_no_panics();
}
