//! Open registration and the admin token under attack, against the real binary from distinct
//! loopback addresses: a registration burst is cut off for its address alone, wrong admin
//! tokens are throttled per address (concurrently too), and the token can be passed without
//! showing in `ps`.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client_from, error_code, retry_after, Backend, Server, TestDb};

on_both_backends!(
    a_registration_burst_is_cut_off_for_its_address_alone,
    wrong_admin_tokens_are_throttled_per_address,
    the_admin_token_can_come_from_a_file,
    an_agents_session_is_not_counted_as_a_wrong_admin_token,
);

const ADMIN_TOKEN: &str = "the-admin-token-for-tests";

/// POSTs `body` to `path` with an optional bearer token: status, `Retry-After`, JSON body.
async fn post(
    server: &Server,
    client: &reqwest::Client,
    path: &str,
    token: Option<&str>,
    body: &Value,
) -> (StatusCode, Option<u64>, Value) {
    let mut request = client.post(server.url(path)).json(body);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}\nserver log:\n{}", server.log()));
    let status = response.status();
    let retry = retry_after(&response);
    let text = response.text().await.unwrap_or_default();
    let body = serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("{path} answered {status} with non-JSON {text:?}: {e}"));
    (status, retry, body)
}

fn assert_rate_limited(status: StatusCode, retry: Option<u64>, body: &Value) {
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(retry.is_some_and(|s| s > 0), "Retry-After: {retry:?}");
    assert_eq!(error_code(body), "rate_limited");
}

/// Finding 6: 50 registrations at once from one address; 20 (the default) get through.
async fn a_registration_burst_is_cut_off_for_its_address_alone(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let attacker = client_from("127.0.0.2");
    let burst = (0..50).map(|n| {
        let body = json!({"name": format!("Spam {n}"), "domain": "spam.example.com"});
        let attacker = &attacker;
        let server = &server;
        async move { post(server, attacker, "/api/partner/register", None, &body).await }
    });
    let answers = futures_util::future::join_all(burst).await;
    let created = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::CREATED)
        .count();
    assert_eq!(created, 20, "the burst allowed per address");
    for (status, retry, body) in answers.iter().filter(|(s, ..)| *s != StatusCode::CREATED) {
        assert_rate_limited(*status, *retry, body);
    }
    assert_eq!(db.count("partners").await, 20);

    let body = json!({"name": "Honest", "domain": "honest.example.com"});
    let (status, _, body) = post(
        &server,
        &client_from("127.0.0.3"),
        "/api/partner/register",
        None,
        &body,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "another address still registers: {body}"
    );

    // The start-up log warns while registration is open.
    assert!(
        server.log().contains("partner registration is open"),
        "start-up warns while registration is open:\n{}",
        server.log()
    );

    // In admin mode there is nothing to warn about.
    let quiet = TestDb::new(backend).await;
    let admin_only = Server::start_with(
        &quiet,
        &[
            ("FRONTDESK_REGISTRATION", "admin"),
            ("FRONTDESK_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    assert!(!admin_only.log().contains("partner registration is open"));
}

/// Finding 12: wrong admin tokens, 30 at once from one address; at most 10 are compared.
async fn wrong_admin_tokens_are_throttled_per_address(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_ADMIN_TOKEN", ADMIN_TOKEN)]).await;
    let new_agent = |n: u32| json!({"email": format!("agent{n}@example.com"), "name": "New", "password": "another long password"});
    let attacker = client_from("127.0.0.2");
    let guesses = (0..30).map(|n| {
        let attacker = &attacker;
        let server = &server;
        let body = new_agent(n);
        async move {
            let guess = format!("guess-{n}");
            post(server, attacker, "/api/admin/agents", Some(&guess), &body).await
        }
    });
    let answers = futures_util::future::join_all(guesses).await;
    let compared = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::UNAUTHORIZED)
        .count();
    assert!(
        compared <= 10,
        "{compared} guesses were compared; at most 10 may be"
    );
    for (status, retry, body) in answers
        .iter()
        .filter(|(s, ..)| *s != StatusCode::UNAUTHORIZED)
    {
        assert_rate_limited(*status, *retry, body);
    }
    // Even the right token is refused from that address now, so a 429 tells nothing.
    let (status, retry, body) = post(
        &server,
        &attacker,
        "/api/admin/agents",
        Some(ADMIN_TOKEN),
        &new_agent(99),
    )
    .await;
    assert_rate_limited(status, retry, &body);
    // None of the guesses created anything.
    assert_eq!(db.count("agents").await, 0);

    let admin = client_from("127.0.0.3");
    let (status, _, body) = post(
        &server,
        &admin,
        "/api/admin/agents",
        Some(ADMIN_TOKEN),
        &new_agent(100),
    )
    .await;
    assert_eq!(
        status,
        StatusCode::CREATED,
        "the real admin, elsewhere: {body}"
    );
    // The right token is never counted: the admin can go on.
    for n in 101..113 {
        let (status, _, body) = post(
            &server,
            &admin,
            "/api/admin/agents",
            Some(ADMIN_TOKEN),
            &new_agent(n),
        )
        .await;
        assert_eq!(status, StatusCode::CREATED, "{body}");
    }
}

/// Finding 12: FRONTDESK_ADMIN_TOKEN_FILE passes the token without it showing in `ps`.
async fn the_admin_token_can_come_from_a_file(backend: Backend) {
    let db = TestDb::new(backend).await;
    let path = db.dir.path().join("admin-token");
    std::fs::write(&path, format!("{ADMIN_TOKEN}\n")).unwrap_or_else(|e| panic!("{e}"));
    let file = path.to_string_lossy().into_owned();
    let server = Server::start_with(&db, &[("FRONTDESK_ADMIN_TOKEN_FILE", &file)]).await;
    let body =
        json!({"email": "new@example.com", "name": "New", "password": "another long password"});
    let client = client_from("127.0.0.2");
    let (status, _, created) = post(
        &server,
        &client,
        "/api/admin/agents",
        Some(ADMIN_TOKEN),
        &body,
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert!(
        !server.log().contains("--admin-token"),
        "no warning: {}",
        server.log()
    );
}

/// Finding 12: a token given as a flag is warned about at start (it shows in `ps`); one given
/// in the environment is not.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_token_flag_is_warned_about() {
    let db = TestDb::new(Backend::Sqlite).await;
    let (url, dir) = (db.url.clone(), db.dir.path().to_owned());
    let start = move |flag: bool| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_frontdesk"));
        command
            .args(["--bind", "127.0.0.1:0", "--database-url", &url])
            .current_dir(&dir)
            .env("RUST_LOG", "info")
            .env_remove("FRONTDESK_ADMIN_TOKEN")
            .env_remove("FRONTDESK_ADMIN_TOKEN_FILE")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        if flag {
            command.args(["--admin-token", ADMIN_TOKEN]);
        } else {
            command.env("FRONTDESK_ADMIN_TOKEN", ADMIN_TOKEN);
        }
        let mut child = command.spawn().unwrap_or_else(|e| panic!("frontdesk: {e}"));
        let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
        let mut log = Vec::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let listening = line.contains("listening on");
            log.push(line);
            if listening {
                break;
            }
        }
        let _ = child.kill();
        let _ = child.wait();
        log.join("\n")
    };
    let log = tokio::task::spawn_blocking(move || (start(true), start(false)))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        log.0.contains("WARN") && log.0.contains("FRONTDESK_ADMIN_TOKEN"),
        "flag: {}",
        log.0
    );
    assert!(!log.1.contains("--admin-token"), "env: {}", log.1);
    assert!(
        !log.0.contains(ADMIN_TOKEN),
        "the token itself is never logged"
    );
}

/// An agent's session presented to an admin-only registration is refused, but it is no guess
/// at the admin token: however often, the admin token still works from the same address.
async fn an_agents_session_is_not_counted_as_a_wrong_admin_token(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_ADMIN_TOKEN", ADMIN_TOKEN),
            ("FRONTDESK_REGISTRATION", "admin"),
        ],
    )
    .await;
    let agent = server.agent("ann@example.com", true).await;
    let client = client_from("127.0.0.2");
    let shop = |n: u32| json!({"name": format!("Shop {n}"), "domain": "shop.example.com"});
    for n in 0..15 {
        let (status, _, body) = post(
            &server,
            &client,
            "/api/partner/register",
            Some(&agent.token),
            &shop(n),
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, _, body) = post(
        &server,
        &client,
        "/api/partner/register",
        Some(ADMIN_TOKEN),
        &shop(99),
    )
    .await;
    assert_eq!(status, StatusCode::CREATED, "{body}");
}
