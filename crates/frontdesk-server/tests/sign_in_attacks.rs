//! Attacks on agent sign-in, each against the real binary from distinct loopback addresses
//! (the whole of 127.0.0.0/8 reaches a server on 127.0.0.1): a concurrent flood must be cut
//! off before hashing with flat memory, an attacker must not lock a real agent out, one address
//! must not guess across accounts, and instances on one database share the counts.

mod support;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{client_from, error_code, retry_after, Backend, Server, TestDb};

on_both_backends!(
    a_concurrent_flood_is_cut_off_before_hashing_and_memory_stays_flat,
    an_attacker_cannot_lock_an_agent_out,
    one_address_guessing_many_accounts_is_throttled,
    many_addresses_guessing_one_account_slow_it_but_never_lock_it,
    a_forwarded_address_counts_only_from_a_trusted_proxy,
);

const PASSWORD: &str = "a long enough password";

/// One sign-in attempt: status, `Retry-After` (if any) and the JSON body.
async fn sign_in(
    server: &Server,
    client: &reqwest::Client,
    email: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    sign_in_forwarded(server, client, None, email, password).await
}

/// `sign_in` with an `X-Forwarded-For` header.
async fn sign_in_forwarded(
    server: &Server,
    client: &reqwest::Client,
    forwarded_for: Option<&str>,
    email: &str,
    password: &str,
) -> (StatusCode, Option<u64>, Value) {
    let mut request = client
        .post(server.url("/api/agent/login"))
        .json(&json!({"email": email, "password": password}));
    if let Some(forwarded_for) = forwarded_for {
        request = request.header("x-forwarded-for", forwarded_for);
    }
    let response = request
        .send()
        .await
        .unwrap_or_else(|e| panic!("sign-in: {e}\nserver log:\n{}", server.log()));
    let status = response.status();
    let retry = retry_after(&response);
    let body = response.json().await.unwrap_or(Value::Null);
    (status, retry, body)
}

/// A refusal must say when to come back, in our error shape.
fn assert_refusal(status: StatusCode, retry: Option<u64>, body: &Value) {
    assert!(
        status == StatusCode::TOO_MANY_REQUESTS || status == StatusCode::SERVICE_UNAVAILABLE,
        "{status} {body}"
    );
    assert!(
        retry.is_some_and(|s| s > 0),
        "Retry-After on {status}: {retry:?}"
    );
    let code = error_code(body);
    assert!(code == "rate_limited" || code == "busy", "{code}");
}

/// Samples the server's RSS until `stop` is set; returns the highest in KiB.
fn sample_peak_rss(pid: u32, stop: Arc<AtomicU64>) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while stop.load(Ordering::Relaxed) == 0 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
            let rss = status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|rest| rest.split_whitespace().next())
                .and_then(|kib| kib.parse().ok())
                .unwrap_or(0);
            peak = peak.max(rss);
            std::thread::sleep(Duration::from_millis(5));
        }
        peak
    })
}

/// Finding 2: 100 wrong sign-ins at once from one address, then 100 from 100 addresses.
async fn a_concurrent_flood_is_cut_off_before_hashing_and_memory_stays_flat(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    server.agent("ann@example.com", false).await;
    let start_kib = server.rss_kib();
    let stop = Arc::new(AtomicU64::new(0));
    let sampler = sample_peak_rss(server.pid(), Arc::clone(&stop));

    // One address, one account, all at once: the attempts are counted before hashing, so no
    // more than the pair's limit can be checked.
    let attacker = client_from("127.0.0.2");
    let flood = (0..100).map(|_| sign_in(&server, &attacker, "ann@example.com", "wrong guess!"));
    let answers = futures_util::future::join_all(flood).await;
    let wrong = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::UNAUTHORIZED)
        .count();
    assert!(wrong <= 5, "{wrong} guesses were checked; at most 5 may be");
    for (status, retry, body) in answers
        .iter()
        .filter(|(s, ..)| *s != StatusCode::UNAUTHORIZED)
    {
        assert_refusal(*status, *retry, body);
    }

    // 100 addresses, 100 accounts, all at once: each passes the throttle, so only the bound on
    // concurrent hashes stands between the flood and ~19 MiB per hash.
    let server = &server;
    let flood = (1..=100).map(|n| async move {
        let client = client_from(&format!("127.0.1.{n}"));
        sign_in(
            server,
            &client,
            &format!("guess{n}@example.com"),
            "wrong guess!",
        )
        .await
    });
    let answers = futures_util::future::join_all(flood).await;
    let busy = answers
        .iter()
        .filter(|(status, ..)| *status == StatusCode::SERVICE_UNAVAILABLE)
        .count();
    for (status, retry, body) in answers
        .iter()
        .filter(|(s, ..)| *s != StatusCode::UNAUTHORIZED)
    {
        assert_refusal(*status, *retry, body);
    }
    stop.store(1, Ordering::Relaxed);
    let peak_kib = sampler
        .join()
        .unwrap_or_else(|_| panic!("sampler panicked"));
    let bound_kib = start_kib + 150 * 1024;
    assert!(
        peak_kib <= bound_kib,
        "RSS went from {start_kib} KiB to {peak_kib} KiB (bound {bound_kib}); {busy} got 503"
    );

    // The real agent, from elsewhere, still signs in.
    let (status, _, body) = sign_in(
        server,
        &client_from("127.0.0.3"),
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    server.assert_no_panics();
}

/// Finding 11: five failures from one address for an agent's email do not stop the agent.
async fn an_attacker_cannot_lock_an_agent_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    server.agent("ann@example.com", false).await;
    let attacker = client_from("127.0.0.2");
    for _ in 0..5 {
        let (status, _, body) =
            sign_in(&server, &attacker, "ann@example.com", "wrong guess!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    let (status, retry, body) = sign_in(&server, &attacker, "ann@example.com", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the attacker waits, even with the password"
    );
    assert_refusal(status, retry, &body);

    let victim = client_from("127.0.0.3");
    let (status, _, body) = sign_in(&server, &victim, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "the real agent signs in: {body}");
}

/// Finding 11: one address trying one password on many accounts is stopped, alone.
async fn one_address_guessing_many_accounts_is_throttled(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    server.agent("ann@example.com", false).await;
    let attacker = client_from("127.0.0.2");
    for n in 0..20 {
        let (status, _, body) = sign_in(
            &server,
            &attacker,
            &format!("user{n}@example.com"),
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "attempt {n}: {body}");
    }
    let (status, retry, body) = sign_in(&server, &attacker, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert_refusal(status, retry, &body);
    // More distinct emails add no rows: the address is refused before any pair or account is
    // counted. Rows: the attacker's address, 20 pairs, 20 accounts, one address for the
    // agent's own sign-in at creation.
    for n in 100..200 {
        let (status, _, _) = sign_in(
            &server,
            &attacker,
            &format!("user{n}@example.com"),
            PASSWORD,
        )
        .await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    }
    assert!(db.count("throttle_counters").await <= 42);

    let elsewhere = client_from("127.0.0.3");
    let (status, _, body) = sign_in(&server, &elsewhere, "user0@example.com", PASSWORD).await;
    assert_eq!(
        status,
        StatusCode::UNAUTHORIZED,
        "another address is not throttled: {body}"
    );
    let (status, _, body) = sign_in(&server, &elsewhere, "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

/// Finding 11: past the account's limit, attempts on it are delayed but the agent gets in.
async fn many_addresses_guessing_one_account_slow_it_but_never_lock_it(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_SIGN_IN_PER_ACCOUNT", "5"),
            ("FRONTDESK_SIGN_IN_MAX_DELAY_SECS", "0.3"),
        ],
    )
    .await;
    server.agent("ann@example.com", false).await;
    for n in 2..8 {
        let attacker = client_from(&format!("127.0.2.{n}"));
        for _ in 0..5 {
            let (status, _, body) =
                sign_in(&server, &attacker, "ann@example.com", "wrong guess!").await;
            assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
        }
    }
    let (status, _, body) = sign_in(
        &server,
        &client_from("127.0.0.3"),
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "30 failures from 6 addresses: {body}"
    );
}

/// `X-Forwarded-For` cannot be used to dodge the per-address counts: it is ignored unless the
/// peer is a configured trusted proxy, and then names the client.
async fn a_forwarded_address_counts_only_from_a_trusted_proxy(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    server.agent("ann@example.com", false).await;
    let attacker = client_from("127.0.0.2");
    for n in 0..5 {
        wrong_password_forwarded(&server, &attacker, &format!("198.51.100.{n}")).await;
    }
    let (status, _, body) = sign_in_forwarded(
        &server,
        &attacker,
        Some("198.51.100.99"),
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "a forged header changes nothing: {body}"
    );
    drop(server);

    let db = TestDb::new(backend).await;
    let proxied = Server::start_with(&db, &[("FRONTDESK_TRUSTED_PROXIES", "127.0.0.4")]).await;
    proxied.agent("ann@example.com", false).await;
    let proxy = client_from("127.0.0.4");
    for _ in 0..5 {
        wrong_password_forwarded(&proxied, &proxy, "6.6.6.6, 203.0.113.7").await;
    }
    let (status, _, body) = sign_in_forwarded(
        &proxied,
        &proxy,
        Some("203.0.113.7"),
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::TOO_MANY_REQUESTS,
        "the proxy's client is throttled: {body}"
    );
    let (status, _, body) = sign_in_forwarded(
        &proxied,
        &proxy,
        Some("203.0.113.8"),
        "ann@example.com",
        PASSWORD,
    )
    .await;
    assert_eq!(
        status,
        StatusCode::OK,
        "another client behind the same proxy: {body}"
    );
}

/// One wrong password for ann with `X-Forwarded-For: forwarded`, answered 401.
async fn wrong_password_forwarded(server: &Server, client: &reqwest::Client, forwarded: &str) {
    let (status, _, body) = sign_in_forwarded(
        server,
        client,
        Some(forwarded),
        "ann@example.com",
        "wrong!!",
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

/// Finding 11: two instances on one PostgreSQL database count the same failures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_instances_share_the_count() {
    if !Backend::Postgres.enabled() {
        return;
    }
    let db = TestDb::new(Backend::Postgres).await;
    let a = Server::start(&db).await;
    let b = Server::start(&db).await;
    a.agent("ann@example.com", false).await;
    let attacker = client_from("127.0.0.2");
    for n in 0..5 {
        let server = if n % 2 == 0 { &a } else { &b };
        let (status, _, body) = sign_in(server, &attacker, "ann@example.com", "wrong guess!").await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    }
    for server in [&a, &b] {
        let (status, retry, body) = sign_in(server, &attacker, "ann@example.com", PASSWORD).await;
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
        assert_refusal(status, retry, &body);
    }
    let (status, _, body) =
        sign_in(&b, &client_from("127.0.0.3"), "ann@example.com", PASSWORD).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}
