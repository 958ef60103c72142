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

    // Tokens are stored hashed.
    let stored = db.query_text("SELECT token_hash FROM agent_sessions").await;
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
    let (status, _) = server.call(Method::GET, "/api/agent/me", None, None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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

    let (status, taken) = server
        .call(Method::POST, &path("assign"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(taken["status"], "active");
    assert_eq!(taken["agentId"], ann.id);
    let (status, _) = server
        .call(Method::POST, &path("assign"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "taking what you hold is fine");
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
    let (status, _) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&bob.token),
            Some(&json!({"content": "me too"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "bob does not hold it");

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
    let (status, closed) = server
        .call(Method::POST, &path("close"), Some(&ann.token), None)
        .await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(closed["status"], "closed");
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
    let (status, _) = server
        .call(
            Method::POST,
            &path("messages"),
            Some(&ann.token),
            Some(&json!({"content": "bye"})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    let (status, _) = server
        .call(Method::POST, &path("assign"), Some(&bob.token), None)
        .await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert_eq!(server.history(&partner, conversation).await.len(), 2);

    // Admins may close what others hold; unknown conversations are 404.
    let other = server.conversation(&partner, "customer-2").await;
    server.assign(&bob, other).await;
    let (status, _) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{other}/close"),
            Some(&admin.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
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
    let (status, _) = server
        .call(
            Method::GET,
            "/api/agent/conversations",
            Some(&partner.key),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
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
