//! The agent side's API (contract.md, "Agents") on both backends.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb};

on_both_backends!(
    sign_in_me_and_sign_out,
    expired_tokens_are_refused,
    failed_sign_ins_are_throttled,
    only_admins_create_agents,
    the_conversation_lifecycle,
    lists_show_what_the_queue_needs,
    ten_agents_race_for_one_conversation,
    lists_are_filtered_and_ordered_by_activity,
    the_conversation_list_is_capped_at_500,
    message_pages_are_capped_at_1000,
);

async fn sign_in_me_and_sign_out(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let agent = server.agent("Ann@Example.com", false).await;

    let (status, me) = server
        .call(Method::GET, "/api/agent/me", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        me,
        json!({"id": agent.id, "name": "Test Agent", "email": "ann@example.com", "isAdmin": false})
    );

    let (status, session) = server
        .call(
            Method::POST,
            "/api/agent/login",
            None,
            Some(&json!({"email": "ann@example.com", "password": "a long enough password"})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(session["agent"], me);
    support::assert_timestamp(&session["expiresAt"]);

    for (email, password) in [
        ("ann@example.com", "wrong password!"),
        ("nobody@example.com", "a long enough password"),
    ] {
        let (status, error) = server
            .call(
                Method::POST,
                "/api/agent/login",
                None,
                Some(&json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, StatusCode::UNAUTHORIZED, "{email}");
        assert_eq!(error_code(&error), "invalid_credentials");
    }

    // Tokens are stored hashed (both sessions' rows, so the check is not over nothing).
    let stored = db.query_text("SELECT token_hash FROM agent_sessions").await;
    assert_eq!(stored.len(), 2, "{stored:?}");
    assert!(stored
        .iter()
        .flatten()
        .flatten()
        .all(|hash| !hash.contains(&agent.token[4..])));

    let (status, _) = server
        .call(Method::POST, "/api/agent/logout", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::NO_CONTENT);
    let (status, error) = server
        .call(Method::GET, "/api/agent/me", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&error), "invalid_credentials");
    let (status, error) = server.call(Method::GET, "/api/agent/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&error), "missing_credentials");
}

async fn expired_tokens_are_refused(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let agent = server.agent("ann@example.com", false).await;
    let (status, _) = server
        .call(Method::GET, "/api/agent/me", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    db.execute("UPDATE agent_sessions SET expires_at = '2020-01-01 00:00:00'")
        .await;
    let (status, error) = server
        .call(Method::GET, "/api/agent/me", Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&error), "invalid_credentials");
}

async fn failed_sign_ins_are_throttled(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Several workers, and every attempt on a new connection so the attempts land on different
    // workers: the count must span them.
    let server = Server::start_with(&db, &[("FRONTDESK_WORKERS", "4")]).await;
    server.agent("ann@example.com", false).await;
    let fresh_connections = reqwest::Client::builder()
        .pool_max_idle_per_host(0)
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let wrong = json!({"email": "ann@example.com", "password": "not the password"});
    for _ in 0..5 {
        let status = fresh_connections
            .post(server.url("/api/agent/login"))
            .json(&wrong)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .status();
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
    let response = fresh_connections
        .post(server.url("/api/agent/login"))
        .json(&json!({"email": "ann@example.com", "password": "a long enough password"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        response.status(),
        StatusCode::TOO_MANY_REQUESTS,
        "even the right password waits"
    );
    let retry: u64 = response
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    assert!(retry > 0 && retry <= 15 * 60, "Retry-After {retry}");
    let body: Value = response.json().await.unwrap_or_default();
    assert_eq!(error_code(&body), "rate_limited");
}

async fn only_admins_create_agents(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_ADMIN_TOKEN", "the-admin-token")]).await;
    let admin = server.agent("boss@example.com", true).await;
    let plain = server.agent("ann@example.com", false).await;
    let body = json!({"email": "new@example.com", "name": "New", "password": "another long password", "isAdmin": false});

    let (status, error) = server
        .call(
            Method::POST,
            "/api/admin/agents",
            Some(&plain.token),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(error_code(&error), "forbidden");
    let (status, _) = server
        .call(Method::POST, "/api/admin/agents", None, Some(&body))
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(db.count("agents").await, 2);

    let (status, created) = server
        .call(
            Method::POST,
            "/api/admin/agents",
            Some(&admin.token),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED, "{created}");
    assert_eq!(created["email"], "new@example.com");
    assert!(created["id"].is_i64());
    assert!(created.get("password").is_none() && created.get("passwordHash").is_none());
    let (status, error) = server
        .call(
            Method::POST,
            "/api/admin/agents",
            Some("the-admin-token"),
            Some(&body),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "the email is taken");
    assert_eq!(error_code(&error), "already_exists");
    let short = json!({"email": "x@example.com", "name": "X", "password": "short"});
    let (status, error) = server
        .call(
            Method::POST,
            "/api/admin/agents",
            Some("the-admin-token"),
            Some(&short),
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(error["error"]["field"], "password");

    // The password hash is argon2id, never the password.
    let hashes = db
        .query_text("SELECT password_hash FROM agents WHERE email = 'new@example.com'")
        .await;
    let hash = hashes[0][0].clone().unwrap_or_default();
    assert!(hash.starts_with("$argon2id$") && !hash.contains("another long password"));
}

async fn the_conversation_lifecycle(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let ann = server.agent("ann@example.com", false).await;
    let bob = server.agent("bob@example.com", false).await;
    let admin = server.agent("boss@example.com", true).await;
    let conversation = server.conversation(&partner, "customer-1").await;
    let first = server
        .say(&partner, conversation, "customer-1", "help!")
        .await;
    let path = |action: &str| format!("/api/agent/conversations/{conversation}/{action}");

    // Agents reply only in conversations they hold.
    let (status, error) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&ann.token),
            Some(&json!({"content": "too early"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{error}");
    assert_eq!(error_code(&error), "invalid_transition", "assign first");

    let (status, taken) = server
        .call(Method::POST, &path("assign"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(taken["status"], "active");
    assert_eq!(taken["agentId"], ann.id);
    let (status, again) = server
        .call(Method::POST, &path("assign"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "taking what you hold is fine");
    assert_eq!(
        (&again["status"], &again["agentId"]),
        (&json!("active"), &json!(ann.id))
    );
    let (status, error) = server
        .call(Method::POST, &path("assign"), Some(&bob.token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&error), "assigned_elsewhere");

    let (status, reply) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&ann.token),
            Some(&json!({"content": "Hi, I'm Ann", "metadata": {"commandType": "order_lookup", "value": "ORD-1"}, "clientMessageId": "r1"})),
        )
        .await;
    assert_eq!(status, StatusCode::CREATED);
    assert_eq!(reply["senderId"], format!("agent-{}", ann.id));
    assert_eq!(reply["isFromAgent"], true);
    let (status, error) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&bob.token),
            Some(&json!({"content": "me too"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "bob does not hold it");
    assert_eq!(error_code(&error), "assigned_elsewhere");
    let (status, error) = server
        .call(
            Method::POST,
            &path("read"),
            Some(&bob.token),
            Some(&json!({"messageId": first["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "bob does not hold it");
    assert_eq!(error_code(&error), "assigned_elsewhere");

    let (status, messages) = server
        .call(
            Method::GET,
            &format!("{}?after={}", path("messages"), first["id"]),
            Some(&bob.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(messages, json!([reply]));

    let (status, read) = server
        .call(
            Method::POST,
            &path("read"),
            Some(&ann.token),
            Some(&json!({"messageId": reply["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        read["lastMarked"], first["id"],
        "the customer's message, not the agent's own"
    );
    let history = server.history(&partner, conversation).await;
    assert_eq!(
        (
            history[0]["readStatus"].clone(),
            history[1]["readStatus"].clone()
        ),
        (json!(true), json!(false))
    );

    let (status, error) = server
        .call(Method::POST, &path("close"), Some(&bob.token), None)
        .await;
    assert_eq!(
        status,
        StatusCode::CONFLICT,
        "only the holder closes: {error}"
    );
    assert_eq!(error_code(&error), "assigned_elsewhere");
    let (status, closed) = server
        .call(Method::POST, &path("close"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["status"], "closed");
    assert_eq!(closed["agentId"], ann.id, "closing keeps agentId");
    let (status, error) = server
        .call(Method::POST, &path("close"), Some(&admin.token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&error), "conversation_closed");

    // Closed means closed, for both sides.
    let (status, error) = server
        .call(
            Method::POST,
            "/api/partner/messages",
            Some(&partner.key),
            Some(&json!({"conversationId": conversation, "senderId": "customer-1", "content": "hello?"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&error), "conversation_closed");
    let (status, error) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&ann.token),
            Some(&json!({"content": "bye"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(error_code(&error), "conversation_closed");
    for agent in [&ann, &bob] {
        let (status, error) = server
            .call(Method::POST, &path("assign"), Some(&agent.token), None)
            .await;
        assert_eq!(status, StatusCode::CONFLICT);
        assert_eq!(error_code(&error), "conversation_closed");
    }
    assert_eq!(server.history(&partner, conversation).await.len(), 2);

    // Admins may close what others hold; unknown conversations are 404.
    let other = server.conversation(&partner, "customer-2").await;
    server.assign(&bob, other).await;
    let (status, error) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{other}/close"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "not an admin: {error}");
    assert_eq!(error_code(&error), "assigned_elsewhere");
    let (status, closed_by_admin) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{other}/close"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (&closed_by_admin["status"], &closed_by_admin["agentId"]),
        (&json!("closed"), &json!(bob.id))
    );
    let (status, error) = server
        .call(
            Method::POST,
            "/api/agent/conversations/999999/assign",
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(error_code(&error), "conversation_not_found");
}

async fn lists_show_what_the_queue_needs(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme Shop").await;
    let ann = server.agent("ann@example.com", false).await;
    server
        .patch_customer(
            &partner,
            "customer-1",
            &json!({"name": "Carla", "email": "carla@example.com", "birthdate": "1990-01-15"}),
        )
        .await;
    let waiting = server.conversation(&partner, "customer-1").await;
    let first = server
        .say(&partner, waiting, "customer-1", "first question")
        .await;
    let last = server
        .say(&partner, waiting, "customer-1", "second question")
        .await;
    let mine = server.conversation(&partner, "customer-2").await;
    server.assign(&ann, mine).await;

    let (status, queue) = server
        .call(
            Method::GET,
            "/api/agent/conversations?status=waiting",
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    let queue = queue.as_array().cloned().unwrap_or_default();
    assert_eq!(queue.len(), 1);
    let item = &queue[0];
    assert_eq!(item["id"], waiting);
    assert_eq!(item["status"], "waiting");
    assert_eq!(
        item["customer"],
        json!({"id": "customer-1", "name": "Carla", "email": "carla@example.com"})
    );
    assert_eq!(item["partner"]["name"], "Acme Shop");
    assert_eq!(item["partner"]["id"], partner.id);
    assert_eq!(item["firstMessage"], first);
    assert_eq!(item["lastMessage"], last);
    assert_eq!(item["unreadCount"], 2);

    let (_, held) = server
        .call(
            Method::GET,
            "/api/agent/conversations?status=active&mine=true",
            Some(&ann.token),
            None,
        )
        .await;
    let held_ids: Vec<i64> = held
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["id"].as_i64()).collect())
        .unwrap_or_default();
    assert_eq!(held_ids, [mine]);
    assert_eq!(held[0]["firstMessage"], Value::Null);
    let (status, error) = server
        .call(
            Method::GET,
            "/api/agent/conversations?status=lost",
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{error}");
    assert_eq!(error_code(&error), "invalid_value");
    assert_eq!(error["error"]["field"], "status");

    let (status, detail) = server
        .call(
            Method::GET,
            &format!("/api/agent/conversations/{waiting}"),
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(detail["customer"]["name"], "Carla");
    assert_eq!(detail["customer"]["birthdate"], "1990-01-15");
    assert_eq!(detail["customer"]["partner"]["name"], "Acme Shop");
    assert_eq!(
        detail["customer"]["flashback"]["flashBack"]["secondEventDate"],
        json!({"month": "December", "year": 2006})
    );
    // Partners cannot use agent routes.
    let (status, error) = server
        .call(
            Method::GET,
            "/api/agent/conversations",
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(error_code(&error), "invalid_credentials");
}

async fn ten_agents_race_for_one_conversation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let mut agents = Vec::new();
    for n in 0..10 {
        agents.push(server.agent(&format!("agent{n}@example.com"), false).await);
    }
    for round in 0..3 {
        let conversation = server
            .conversation(&partner, &format!("customer-{round}"))
            .await;
        let path = format!("/api/agent/conversations/{conversation}/assign");
        let attempts = agents
            .iter()
            .map(|agent| server.call(Method::POST, &path, Some(&agent.token), None));
        let results = futures_util::future::join_all(attempts).await;
        let winners: Vec<&Value> = results
            .iter()
            .filter(|(status, _)| *status == StatusCode::OK)
            .map(|(_, body)| body)
            .collect();
        assert_eq!(winners.len(), 1, "round {round}: {results:?}");
        assert!(results
            .iter()
            .all(|(status, body)| *status == StatusCode::OK
                || (*status == StatusCode::CONFLICT && error_code(body) == "assigned_elsewhere")));
        let stored = db
            .query_text(&format!(
                "SELECT agent_id FROM conversations WHERE id = {conversation}"
            ))
            .await;
        assert_eq!(
            stored[0][0].as_deref(),
            winners[0]["agentId"]
                .as_i64()
                .map(|id| id.to_string())
                .as_deref()
        );
        let events = db
            .query_text(&format!("SELECT COUNT(*) FROM events WHERE kind = 'status' AND conversation_id = {conversation}"))
            .await;
        assert_eq!(
            events[0][0].as_deref(),
            Some("2"),
            "one for waiting, one for the single winner"
        );
    }
}

/// The ids of a conversation list, in the order given.
fn ids(list: &Value) -> Vec<i64> {
    list.as_array()
        .unwrap_or_else(|| panic!("not an array: {list}"))
        .iter()
        .map(|c| c["id"].as_i64().unwrap_or_else(|| panic!("no id in {c}")))
        .collect()
}

/// Timestamps carry milliseconds: a pause between actions gives each its own `updatedAt`.
async fn tick() {
    tokio::time::sleep(std::time::Duration::from_millis(5)).await;
}

/// `GET /api/agent/conversations`: newest activity first, `status` and `mine` filter (closed
/// ones included), unknown parameters refused.
async fn lists_are_filtered_and_ordered_by_activity(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let ann = server.agent("ann@example.com", false).await;
    let bob = server.agent("bob@example.com", false).await;
    let mut created = Vec::new();
    for n in 1..=4 {
        created.push(
            server
                .conversation(&partner, &format!("customer-{n}"))
                .await,
        );
        tick().await;
    }
    let [c1, c2, c3, c4] = created[..] else {
        panic!("four conversations");
    };
    // Activity in an order that is neither creation order nor its reverse.
    server.assign(&ann, c2).await;
    tick().await;
    server.assign(&ann, c3).await;
    server.close(&ann, c3).await;
    tick().await;
    server.assign(&bob, c4).await;
    tick().await;
    server
        .say(&partner, c1, "customer-1", "still waiting")
        .await;

    let list = |query: &'static str, agent: &support::Agent| {
        let token = agent.token.clone();
        let server = &server;
        async move {
            let (status, body) = server
                .call(
                    Method::GET,
                    &format!("/api/agent/conversations{query}"),
                    Some(&token),
                    None,
                )
                .await;
            assert_eq!(status, StatusCode::OK, "{query}: {body}");
            body
        }
    };
    let all = list("", &ann).await;
    assert_eq!(ids(&all), [c1, c4, c3, c2], "newest activity first: {all}");
    let stamps: Vec<&str> = all
        .as_array()
        .map(|a| a.iter().filter_map(|c| c["updatedAt"].as_str()).collect())
        .unwrap_or_default();
    assert_eq!(stamps.len(), 4);
    assert!(
        stamps.windows(2).all(|w| w[0] > w[1]),
        "updatedAt strictly descending: {stamps:?}"
    );
    assert_eq!(ids(&list("?mine=false", &ann).await), [c1, c4, c3, c2]);

    let closed = list("?status=closed", &bob).await;
    assert_eq!(ids(&closed), [c3], "{closed}");
    assert_eq!(closed[0]["status"], "closed");
    assert_eq!(closed[0]["agentId"], ann.id);
    assert_eq!(ids(&list("?status=closed&mine=true", &ann).await), [c3]);
    assert_eq!(
        ids(&list("?status=closed&mine=true", &bob).await),
        Vec::<i64>::new()
    );
    assert_eq!(ids(&list("?status=active", &ann).await), [c4, c2]);
    assert_eq!(ids(&list("?status=waiting", &ann).await), [c1]);
    // mine=true without status: everything the caller holds or held, closed included.
    assert_eq!(ids(&list("?mine=true", &ann).await), [c3, c2]);
    assert_eq!(ids(&list("?mine=true", &bob).await), [c4]);

    let (status, error) = server
        .call(
            Method::GET,
            "/api/agent/conversations?state=closed",
            Some(&ann.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "{error}");
    assert_eq!(error_code(&error), "invalid_query");
}

/// At most 500 conversations, the 500 with the newest activity; equal `updatedAt`s (written
/// directly, all in the same millisecond) fall back to the newest id first.
async fn the_conversation_list_is_capped_at_500(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let ann = server.agent("ann@example.com", false).await;
    server
        .patch_customer(&partner, "customer-1", &json!({"name": "Carla"}))
        .await;
    // 503 conversations in one statement: through the API they would take a while.
    db.execute(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 503) \
         INSERT INTO conversations (partner_id, customer_id, status, created_at, updated_at) \
         SELECT 1, 'customer-1', 'waiting', '2026-01-01 00:00:00.000', \
         '2026-01-01 00:00:00.000' FROM n",
    )
    .await;
    let stored: Vec<i64> = db
        .query_text("SELECT id FROM conversations ORDER BY id")
        .await
        .iter()
        .filter_map(|row| row.first().cloned().flatten()?.parse().ok())
        .collect();
    assert_eq!(stored.len(), 503);
    let newest_first: Vec<i64> = stored.iter().rev().take(500).copied().collect();
    for query in ["", "?status=waiting"] {
        let (status, list) = server
            .call(
                Method::GET,
                &format!("/api/agent/conversations{query}"),
                Some(&ann.token),
                None,
            )
            .await;
        assert_eq!(status, StatusCode::OK, "{list}");
        assert_eq!(ids(&list), newest_first, "{query}");
    }
}

/// `GET /api/agent/conversations/:id/messages`: oldest first, `after` exclusive, `limit`
/// obeyed, at most 1,000 per page whatever `limit` says, bad parameters refused by name.
async fn message_pages_are_capped_at_1000(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let ann = server.agent("ann@example.com", false).await;
    let conversation = server.conversation(&partner, "customer-1").await;
    server.assign(&ann, conversation).await;
    // 1,001 messages written directly (through the API they would take a while), then one
    // through the API, which must come last.
    db.execute(&format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 1001) \
         INSERT INTO messages (conversation_id, sender_id, content, is_from_agent, created_at, \
         read_status) SELECT {conversation}, 'customer-1', 'bulk', FALSE, \
         '2026-01-01 00:00:00.000', FALSE FROM n"
    ))
    .await;
    let last = server.agent_reply(&ann, conversation, "the newest").await;
    let page = |query: String| {
        let token = ann.token.clone();
        let server = &server;
        async move {
            server
                .call(
                    Method::GET,
                    &format!("/api/agent/conversations/{conversation}/messages{query}"),
                    Some(&token),
                    None,
                )
                .await
        }
    };
    let message_ids = |body: &Value| -> Vec<i64> {
        body.as_array()
            .unwrap_or_else(|| panic!("not an array: {body}"))
            .iter()
            .filter_map(|m| m["id"].as_i64())
            .collect()
    };
    let (status, first) = page(String::new()).await;
    assert_eq!(status, StatusCode::OK);
    let first_ids = message_ids(&first);
    assert_eq!(first_ids.len(), 1_000);
    assert!(first_ids.windows(2).all(|w| w[0] < w[1]), "oldest first");
    let (status, capped) = page("?limit=5000".to_owned()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        message_ids(&capped),
        first_ids,
        "limit above 1,000 is capped"
    );
    let after = first_ids[999];
    let (_, rest) = page(format!("?after={after}")).await;
    let rest_ids = message_ids(&rest);
    assert_eq!(rest_ids.len(), 2, "{rest}");
    assert_eq!(rest[1], last);
    let (_, small) = page(format!("?after={}&limit=3", first_ids[10])).await;
    assert_eq!(message_ids(&small), first_ids[11..14]);

    for (query, expected, code, field) in [
        (
            "?limit=0",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("limit"),
        ),
        (
            "?after=-1",
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_value",
            Some("after"),
        ),
        ("?limit=ten", StatusCode::BAD_REQUEST, "invalid_query", None),
        ("?since=3", StatusCode::BAD_REQUEST, "invalid_query", None),
    ] {
        let (status, error) = page(query.to_owned()).await;
        assert_eq!(status, expected, "{query}: {error}");
        assert_eq!(error_code(&error), code, "{query}");
        if let Some(field) = field {
            assert_eq!(error["error"]["field"], field, "{query}");
        }
    }
}
