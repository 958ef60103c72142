//! The WebSocket API against the real server, with real WebSocket clients, on both backends.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{
    assert_timestamp, error_code, keys, Agent, Backend, Ended, Server, TestDb, WsClient,
};

on_both_backends!(
    the_handshake_needs_credentials_for_the_client_id,
    frames_flow_both_ways,
    rest_messages_reach_websockets,
    bad_frames_get_errors_and_the_socket_stays_open,
    customers_only_hear_their_own_conversations,
    reconnecting_with_since_replays_exactly_what_was_missed,
    sigterm_closes_websockets_with_1001,
    a_read_receipt_with_nothing_to_read_marks_nothing,
    a_replay_longer_than_a_page_is_complete,
    an_agent_hears_nothing_of_a_conversation_another_agent_holds,
);

async fn the_handshake_needs_credentials_for_the_client_id(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let token = server.session(&partner, "ann").await;
    let agent = server.agent("agent@example.com", false).await;

    // The guide's snippet, unchanged, has no credentials: refused without an upgrade.
    assert_eq!(
        WsClient::connect(&server, "clientId=ann", None).await.err(),
        Some(401)
    );
    let refused = [
        (format!("clientId=ann&token=fdc_{}", "0".repeat(64)), None),
        (format!("clientId=bob&token={token}"), None),
        (format!("clientId=agent-{}&token={token}", agent.id), None),
        (format!("clientId=ann&token={}", agent.token), None),
        (
            format!("clientId=agent-{}&token={}", agent.id + 1, agent.token),
            None,
        ),
        // API keys belong in the header, never in a URL.
        (format!("clientId=ann&token={}", partner.key), None),
        ("clientId=ann".to_owned(), Some("fdk_wrong")),
        (
            format!("clientId={}", agent.client_id()),
            Some(partner.key.as_str()),
        ),
    ];
    for (query, bearer) in &refused {
        assert_eq!(
            WsClient::connect(&server, query, *bearer).await.err(),
            Some(401),
            "{query} with {bearer:?}"
        );
    }
    assert_eq!(
        WsClient::connect(&server, &format!("token={token}"), None)
            .await
            .err(),
        Some(400),
        "clientId is required"
    );

    // Each kind of credential works for its own clientId.
    let mut customer = WsClient::customer(&server, "ann", &token).await;
    let mut proxied = WsClient::ready(&server, "clientId=ann", Some(&partner.key)).await;
    let mut staff = WsClient::agent(&server, &agent).await;
    let header_query = format!("clientId={}", agent.client_id());
    let mut staff_header = WsClient::ready(&server, &header_query, Some(&agent.token)).await;
    for client in [&mut customer, &mut proxied, &mut staff, &mut staff_header] {
        client.expect_quiet().await;
    }
    server.assert_no_panics();
}

async fn frames_flow_both_ways(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let agent = server.agent("agent@example.com", false).await;
    let mut staff = WsClient::agent(&server, &agent).await;
    let conversation = server.conversation(&partner, "customer-12345").await;

    // A new conversation reaches the agents' queue.
    let queued = staff.expect("status").await;
    assert_eq!(
        queued["payload"],
        json!({"conversationId": conversation, "status": "waiting", "agentId": null})
    );
    assert!(queued["cursor"].is_i64());

    let token = server.session(&partner, "customer-12345").await;
    let mut customer = WsClient::customer(&server, "customer-12345", &token).await;

    // The guide's message frame: stored, acknowledged with its clientMessageId, fanned out.
    customer
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation,
            "content": "Hello, I need help",
            "senderId": "customer-12345",
            "isFromAgent": false,
            "metadata": {"commandType": "order_lookup", "value": "ORD-12345"},
            "clientMessageId": "c-1"
        }}))
        .await;
    let mut ack = None;
    let mut echoed = None;
    while ack.is_none() || echoed.is_none() {
        let frame = customer.next().await;
        match frame["type"].as_str() {
            Some("ack") => ack = Some(frame),
            Some("message") => echoed = Some(frame),
            _ => panic!("unexpected {frame}"),
        }
    }
    let ack = ack.unwrap_or_default();
    assert_eq!(ack["payload"]["clientMessageId"], "c-1");
    let message = ack["payload"]["message"].clone();
    assert_eq!(
        keys(&message),
        [
            "clientMessageId",
            "content",
            "conversationId",
            "id",
            "isFromAgent",
            "metadata",
            "readStatus",
            "senderId",
            "timestamp"
        ]
    );
    assert_timestamp(&message["timestamp"]);
    assert_eq!(
        echoed.unwrap_or_default()["payload"],
        message,
        "other tabs see it too"
    );
    let seen = staff.expect("message").await;
    assert_eq!(seen["payload"], message);
    assert_eq!(
        server.history(&partner, conversation).await,
        vec![message.clone()]
    );

    // The agent takes it: both sides hear the status change.
    server.assign(&agent, conversation).await;
    let expected = json!({"conversationId": conversation, "status": "active", "agentId": agent.id});
    assert_eq!(customer.expect("status").await["payload"], expected);
    assert_eq!(staff.expect("status").await["payload"], expected);

    // Typing goes to the other side only, never back to its sender.
    customer
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true, "isAgent": false}}))
        .await;
    assert_eq!(
        staff.expect("typing").await,
        json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true, "isAgent": false}})
    );
    staff
        .send(&json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}))
        .await;
    let typing = customer.expect("typing").await;
    assert_eq!(typing["payload"]["isAgent"], true);
    assert!(typing.get("cursor").is_none(), "typing is never logged");

    // The agent answers over its socket.
    staff
        .send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "How can I help?", "clientMessageId": "a-1"}}))
        .await;
    let reply = customer.expect("message").await["payload"].clone();
    assert_eq!(reply["senderId"], agent.client_id());
    assert_eq!(reply["isFromAgent"], true);
    assert_eq!(reply["readStatus"], false);
    assert_eq!(reply["clientMessageId"], "a-1", "echoed to every recipient");
    let mut acked = false;
    while !acked {
        let frame = staff.next().await;
        acked = frame["type"] == "ack" && frame["payload"]["clientMessageId"] == "a-1";
    }

    // The customer reads it: the agent gets the receipt and the message is read.
    customer
        .send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": reply["id"]}}))
        .await;
    let receipt = staff.until("read").await;
    assert_eq!(keys(&receipt), ["cursor", "payload", "type"]);
    assert_eq!(
        receipt["payload"],
        json!({"conversationId": conversation, "messageId": reply["id"], "isAgent": false})
    );
    let history = server.history(&partner, conversation).await;
    assert_eq!(history[1]["readStatus"], true);
    assert_eq!(
        history[0]["readStatus"], false,
        "only the other side's messages"
    );

    // A birthdate makes a Flashback profile, announced to the customer and to agents.
    server
        .patch_customer(
            &partner,
            "customer-12345",
            &json!({"birthdate": "1990-01-15"}),
        )
        .await;
    let flashback = customer.until("flashback").await;
    assert_eq!(flashback["payload"]["customerId"], "customer-12345");
    assert_eq!(
        flashback["payload"]["flashBack"]["firstEventDate"],
        json!({"month": "April", "year": 1999})
    );
    assert_eq!(
        staff.until("flashback").await["payload"],
        flashback["payload"]
    );

    customer.send(&json!({"type": "ping"})).await;
    assert_eq!(customer.until("pong").await["type"], "pong");
    server.assert_no_panics();
}

async fn rest_messages_reach_websockets(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let agent = server.agent("agent@example.com", false).await;
    let conversation = server.conversation(&partner, "ann").await;
    let token = server.session(&partner, "ann").await;
    let mut customer = WsClient::customer(&server, "ann", &token).await;
    let mut staff = WsClient::agent(&server, &agent).await;

    // A partner's REST message reaches the customer's sockets and the queue.
    let posted = server.say(&partner, conversation, "ann", "via REST").await;
    assert_eq!(customer.expect("message").await["payload"], posted);
    assert_eq!(staff.expect("message").await["payload"], posted);

    server.assign(&agent, conversation).await;
    customer.expect("status").await;
    staff.expect("status").await;

    // An agent's REST message reaches the customer.
    let sent = server
        .agent_reply(&agent, conversation, "Answer via REST")
        .await;
    assert_eq!(customer.expect("message").await["payload"], sent);
    assert_eq!(staff.expect("message").await["payload"], sent);

    // The agent reads over REST: the customer hears the receipt.
    server.mark_read(&agent, conversation, &posted["id"]).await;
    let receipt = customer.expect("read").await;
    assert_eq!(
        receipt["payload"],
        json!({"conversationId": conversation, "messageId": posted["id"], "isAgent": true})
    );

    // Closing is announced, and the customer can no longer write.
    server.close(&agent, conversation).await;
    let closed = json!({"conversationId": conversation, "status": "closed", "agentId": agent.id});
    assert_eq!(customer.until("status").await["payload"], closed);
    assert_eq!(staff.until("status").await["payload"], closed);
    customer
        .send(&json!({"type": "message", "payload": {"conversationId": conversation, "content": "hello?", "clientMessageId": "late"}}))
        .await;
    let error = customer.expect("error").await;
    assert_eq!(error["payload"]["code"], "conversation_closed");
    assert_eq!(error["payload"]["clientMessageId"], "late");
}

async fn bad_frames_get_errors_and_the_socket_stays_open(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let mine = server.conversation(&partner, "ann").await;
    let theirs = server.conversation(&partner, "bob").await;
    let token = server.session(&partner, "ann").await;
    let mut ann = WsClient::customer(&server, "ann", &token).await;
    ann.expect_quiet().await;

    let bad: Vec<(String, &str)> = vec![
        ("not json".into(), "malformed_frame"),
        (r#"{"type":"shout","payload":{}}"#.into(), "malformed_frame"),
        (r#"{"type":"message","payload":{"content":"no conversation"}}"#.into(), "malformed_frame"),
        (json!({"type": "message", "payload": {"conversationId": mine, "content": ""}}).to_string(), "invalid_value"),
        (json!({"type": "message", "payload": {"conversationId": mine, "content": "x".repeat(10_001)}}).to_string(), "invalid_value"),
        (json!({"type": "message", "payload": {"conversationId": mine, "content": "hi", "senderId": "bob"}}).to_string(), "invalid_value"),
        (json!({"type": "message", "payload": {"conversationId": mine, "content": "hi", "isFromAgent": true}}).to_string(), "forbidden"),
        (json!({"type": "message", "payload": {"conversationId": theirs, "content": "hi"}}).to_string(), "conversation_not_found"),
        (json!({"type": "message", "payload": {"conversationId": 999_999, "content": "hi"}}).to_string(), "conversation_not_found"),
        (json!({"type": "typing", "payload": {"conversationId": theirs, "isTyping": true}}).to_string(), "conversation_not_found"),
        (json!({"type": "read", "payload": {"conversationId": theirs, "messageId": 1}}).to_string(), "conversation_not_found"),
    ];
    for (frame, code) in bad {
        ann.send_text(frame.clone()).await;
        let error = ann.expect("error").await;
        assert_eq!(error["payload"]["code"], code, "{frame}");
        assert!(error["payload"]["message"].is_string());
    }
    ann.expect_quiet().await;
    assert_eq!(db.count("messages").await, 0, "nothing was stored");

    // Larger than 64 KiB: refused, and this one does close the socket (1009).
    ann.send_text(json!({"type": "message", "payload": {"conversationId": mine, "content": "x".repeat(70_000)}}).to_string())
        .await;
    let refused = ann
        .frame_or_close(support::ws::PATIENCE)
        .await
        .unwrap_or_else(|close| panic!("closed without the error frame: {close:?}"));
    assert_eq!(refused["type"], "error", "{refused}");
    assert_eq!(
        error_code(&json!({"error": refused["payload"]})),
        "frame_too_large"
    );
    let close = ann.frame_or_close(support::ws::PATIENCE).await;
    assert_eq!(close, Err(Some((1009, "frame too large".to_owned()))));
    server.assert_no_panics();
}

async fn customers_only_hear_their_own_conversations(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let a = server.register("A").await;
    let b = server.register("B").await;
    let ann_conversation = server.conversation(&a, "ann").await;
    let other = server.conversation(&a, "bob").await;
    // Partner B has a customer with the same id.
    let b_conversation = server.conversation(&b, "ann").await;
    let mut ann = WsClient::ready(&server, "clientId=ann", Some(&a.key)).await;

    server.say(&a, other, "bob", "for bob").await;
    server.say(&b, b_conversation, "ann", "for B's ann").await;
    let mine = server.say(&a, ann_conversation, "ann", "for ann").await;
    let frame = ann.expect("message").await;
    assert_eq!(
        frame["payload"], mine,
        "the first thing ann hears is her own message"
    );
    ann.expect_quiet().await;
}

async fn reconnecting_with_since_replays_exactly_what_was_missed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let agent = server.agent("agent@example.com", false).await;
    let conversation = server.conversation(&partner, "ann").await;
    let token = server.session(&partner, "ann").await;
    let query = format!("clientId=ann&token={token}");

    let mut ann = WsClient::ready(&server, &query, None).await;
    let first = server.say(&partner, conversation, "ann", "seen live").await;
    assert_eq!(ann.expect("message").await["payload"], first);
    let cursor = ann.cursor;
    ann.close().await;

    // Missed while away: three messages, a status change, an agent reply, a read receipt.
    let mut missed = Vec::new();
    for n in 0..3 {
        missed.push(
            server
                .say(&partner, conversation, "ann", &format!("missed {n}"))
                .await,
        );
    }
    server.assign(&agent, conversation).await;
    let reply = server
        .agent_reply(&agent, conversation, "while you were away")
        .await;
    server
        .mark_read(&agent, conversation, &missed[2]["id"])
        .await;

    let mut ann = WsClient::connect(&server, &format!("{query}&since={cursor}"), None)
        .await
        .unwrap_or_else(|status| panic!("refused: {status}"));
    ann.cursor = cursor;
    let mut replayed: Vec<Value> = Vec::new();
    loop {
        let frame = ann.next().await;
        if frame["type"] == "ready" {
            assert_eq!(
                frame["cursor"].as_i64(),
                replayed.last().and_then(|f| f["cursor"].as_i64())
            );
            break;
        }
        replayed.push(frame);
    }
    let kinds: Vec<&str> = replayed.iter().filter_map(|f| f["type"].as_str()).collect();
    assert_eq!(
        kinds,
        ["message", "message", "message", "status", "message", "read"]
    );
    let payloads: Vec<&Value> = replayed.iter().map(|f| &f["payload"]).collect();
    assert_eq!(payloads[..3], [&missed[0], &missed[1], &missed[2]]);
    assert_eq!(
        payloads[3],
        &json!({"conversationId": conversation, "status": "active", "agentId": agent.id})
    );
    assert_eq!(payloads[4], &reply);
    assert_eq!(
        payloads[5],
        &json!({"conversationId": conversation, "messageId": missed[2]["id"], "isAgent": true})
    );
    let cursors: Vec<i64> = replayed
        .iter()
        .filter_map(|f| f["cursor"].as_i64())
        .collect();
    assert!(cursors.windows(2).all(|w| w[0] < w[1]));
    assert!(cursors[0] > cursor);

    // Then live events follow, with no duplicate of anything replayed.
    let live = server
        .say(&partner, conversation, "ann", "live again")
        .await;
    assert_eq!(ann.expect("message").await["payload"], live);
    ann.expect_quiet().await;

    // Reconnecting with the latest cursor replays nothing.
    let latest = ann.cursor;
    let mut again = WsClient::connect(&server, &format!("{query}&since={latest}"), None)
        .await
        .unwrap_or_else(|status| panic!("refused: {status}"));
    assert_eq!(again.expect("ready").await["cursor"], latest);
}

async fn sigterm_closes_websockets_with_1001(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let mut ann = WsClient::ready(&server, "clientId=ann", Some(&partner.key)).await;
    let waiter = tokio::spawn(async move { ann.ended().await });
    let status = server.terminate();
    assert!(status.success(), "{status}");
    let ended = waiter.await.unwrap_or(Ended::Dropped);
    assert_eq!(ended, Ended::Closed(Some(1001)));
}

/// An id beyond any message the test creates.
const FAR_AHEAD: i64 = 1_000_000;

/// The agent's queue entry for `conversation`.
async fn queue_entry(server: &Server, agent: &Agent, conversation: i64) -> Value {
    let (status, list) = server
        .call(
            Method::GET,
            "/api/agent/conversations",
            Some(&agent.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK, "{list}");
    list.as_array()
        .and_then(|all| all.iter().find(|c| c["id"] == conversation))
        .cloned()
        .unwrap_or_else(|| panic!("conversation {conversation} not listed: {list}"))
}

/// The agent's read receipt over REST, with its answer.
async fn agent_reads(server: &Server, agent: &Agent, conversation: i64, up_to: i64) -> Value {
    server.mark_read(agent, conversation, &json!(up_to)).await
}

/// A receipt sent before there is anything to read marks nothing, tells nobody, and does not
/// mark the messages that come after it: they stay unread until a receipt covers them.
async fn a_read_receipt_with_nothing_to_read_marks_nothing(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let agent = server.agent("agent@example.com", false).await;
    let conversation = server.conversation(&partner, "ann").await;
    let token = server.session(&partner, "ann").await;
    let mut ann = WsClient::customer(&server, "ann", &token).await;
    let mut staff = WsClient::agent(&server, &agent).await;

    // Both sides "read" an empty conversation, far ahead of any message.
    ann.send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": FAR_AHEAD}}))
        .await;
    assert_eq!(
        agent_reads(&server, &agent, conversation, FAR_AHEAD).await,
        json!({"conversationId": conversation, "messageId": FAR_AHEAD, "lastMarked": null})
    );
    ann.expect_quiet().await;
    staff.expect_quiet().await;

    // What comes after is unread, for the agents' queue and in the history.
    let hello = server.say(&partner, conversation, "ann", "hello").await;
    assert_eq!(hello["readStatus"], false);
    assert_eq!(ann.expect("message").await["payload"], hello);
    assert_eq!(staff.expect("message").await["payload"], hello);
    assert_eq!(
        queue_entry(&server, &agent, conversation).await["unreadCount"],
        1
    );
    let id = hello["id"]
        .as_i64()
        .unwrap_or_else(|| panic!("no id in {hello}"));

    // A receipt short of it marks nothing either; one that reaches it marks it, once.
    assert_eq!(
        agent_reads(&server, &agent, conversation, id - 1).await["lastMarked"],
        Value::Null
    );
    assert_eq!(
        server.history(&partner, conversation).await[0]["readStatus"],
        false
    );
    assert_eq!(
        agent_reads(&server, &agent, conversation, id).await["lastMarked"],
        id
    );
    let receipt = json!({"conversationId": conversation, "messageId": id, "isAgent": true});
    assert_eq!(ann.expect("read").await["payload"], receipt);
    assert_eq!(staff.expect("read").await["payload"], receipt);
    assert_eq!(
        queue_entry(&server, &agent, conversation).await["unreadCount"],
        0
    );
    assert_eq!(
        server.history(&partner, conversation).await[0]["readStatus"],
        true
    );

    // The customer's early receipt did not cover the agent's answer either.
    server.assign(&agent, conversation).await;
    ann.expect("status").await;
    staff.expect("status").await;
    let answer = server.agent_reply(&agent, conversation, "hi").await;
    ann.expect("message").await;
    staff.expect("message").await;
    assert_eq!(
        server.history(&partner, conversation).await[1]["readStatus"],
        false
    );
    ann.send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": answer["id"]}}))
        .await;
    let receipt =
        json!({"conversationId": conversation, "messageId": answer["id"], "isAgent": false});
    assert_eq!(staff.expect("read").await["payload"], receipt);
    assert_eq!(
        ann.expect("read").await["payload"],
        receipt,
        "the reader's other tabs"
    );
    assert_eq!(
        server.history(&partner, conversation).await[1]["readStatus"],
        true
    );
    ann.expect_quiet().await;
    staff.expect_quiet().await;
    server.assert_no_panics();
}

/// More than two replay pages (the server reads 500 events per query).
const LONG_ABSENCE: usize = 1_200;

async fn a_replay_longer_than_a_page_is_complete(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    let query = "clientId=ann";
    let ann = WsClient::ready(&server, query, Some(&partner.key)).await;
    let cursor = ann.cursor;
    ann.close().await;

    for batch in 0..LONG_ABSENCE / 50 {
        let posts = (0..50).map(|n| {
            let text = format!("missed {}", batch * 50 + n);
            let server = &server;
            let partner = &partner;
            async move { server.say(partner, conversation, "ann", &text).await }
        });
        futures_util::future::join_all(posts).await;
    }
    let history = server.history(&partner, conversation).await;
    assert_eq!(history.len(), LONG_ABSENCE);

    let mut ann = WsClient::connect(
        &server,
        &format!("{query}&since={cursor}"),
        Some(&partner.key),
    )
    .await
    .unwrap_or_else(|status| panic!("refused: {status}"));
    ann.cursor = cursor;
    let mut replayed: Vec<Value> = Vec::new();
    let ready = loop {
        // `next` asserts every cursor is above the one before it: in order, none twice.
        let frame = ann.next().await;
        if frame["type"] == "ready" {
            break frame;
        }
        assert_eq!(frame["type"], "message", "{frame}");
        replayed.push(frame);
    };
    assert_eq!(replayed.len(), LONG_ABSENCE, "every missed event, once");
    let payloads: Vec<&Value> = replayed.iter().map(|f| &f["payload"]).collect();
    let stored: Vec<&Value> = history.iter().collect();
    assert!(
        payloads == stored,
        "the replay is not the history, in order"
    );
    assert_eq!(ready["cursor"], replayed[LONG_ABSENCE - 1]["cursor"]);
    ann.expect_quiet().await;
}

/// The events a connection with `since=0` replays, up to `ready`.
async fn replay_from_start(server: &Server, agent: &Agent) -> Vec<Value> {
    let mut client = WsClient::connect(server, &format!("{}&since=0", agent.ws_query()), None)
        .await
        .unwrap_or_else(|status| panic!("refused: {status}"));
    let mut events = Vec::new();
    loop {
        let frame = client.next().await;
        if frame["type"] == "ready" {
            return events;
        }
        events.push(json!({"type": frame["type"], "payload": frame["payload"]}));
    }
}

/// The next frame `client` gets is `expected` (type and payload).
async fn hears(client: &mut WsClient, expected: &Value) {
    let frame = client.next().await;
    assert_eq!(
        json!({"type": frame["type"], "payload": frame["payload"]}),
        *expected
    );
}

/// `{"type": kind, "payload": payload}`: a frame without its cursor.
fn event(kind: &str, payload: Value) -> Value {
    json!({"type": kind, "payload": payload})
}

/// Who hears what, with two agents: while a conversation waits, every agent hears it; once
/// agent A takes it, agent B hears that moment and nothing after (no message, typing, read or
/// status), live or replayed from the start, while A hears all of it.
async fn an_agent_hears_nothing_of_a_conversation_another_agent_holds(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let a = server.agent("a@example.com", false).await;
    let b = server.agent("b@example.com", false).await;
    let mut on_a = WsClient::agent(&server, &a).await;
    let mut on_b = WsClient::agent(&server, &b).await;
    let token = server.session(&partner, "ann").await;
    let conversation = server.conversation(&partner, "ann").await;
    let mut ann = WsClient::customer(&server, "ann", &token).await;
    let mut heard: Vec<Value> = Vec::new();

    // Waiting: both agents hear the conversation, its message, its typing and a receipt. Each
    // step is heard before the next: typing does not travel with the log, so it has no order
    // relative to logged events.
    let typing = |is_typing: bool, is_agent: bool| {
        event(
            "typing",
            json!({"conversationId": conversation, "isTyping": is_typing, "isAgent": is_agent}),
        )
    };
    let read = |message: &Value, is_agent: bool| {
        event(
            "read",
            json!({"conversationId": conversation, "messageId": message["id"], "isAgent": is_agent}),
        )
    };
    let waiting = event(
        "status",
        json!({"conversationId": conversation, "status": "waiting", "agentId": null}),
    );
    let hello = server.say(&partner, conversation, "ann", "hello").await;
    for client in [&mut on_a, &mut on_b] {
        hears(client, &waiting).await;
        hears(client, &event("message", hello.clone())).await;
    }
    ann.send(
        &json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}),
    )
    .await;
    for client in [&mut on_a, &mut on_b] {
        hears(client, &typing(true, false)).await;
    }
    server.mark_read(&b, conversation, &hello["id"]).await;
    for client in [&mut on_a, &mut on_b] {
        hears(client, &read(&hello, true)).await;
    }
    heard.extend([
        waiting.clone(),
        event("message", hello.clone()),
        read(&hello, true),
    ]);

    // A takes it: B hears that moment, as the queue changes.
    server.assign(&a, conversation).await;
    let taken = event(
        "status",
        json!({"conversationId": conversation, "status": "active", "agentId": a.id}),
    );
    for client in [&mut on_a, &mut on_b] {
        hears(client, &taken).await;
    }
    heard.push(taken.clone());

    // Everything after goes to A (and the customer) only.
    let more = server
        .say(&partner, conversation, "ann", "still there?")
        .await;
    hears(&mut on_a, &event("message", more.clone())).await;
    ann.send(
        &json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": false}}),
    )
    .await;
    hears(&mut on_a, &typing(false, false)).await;
    on_a.send(
        &json!({"type": "typing", "payload": {"conversationId": conversation, "isTyping": true}}),
    )
    .await;
    assert_eq!(ann.until("typing").await["payload"]["isAgent"], true);
    let answer = server.agent_reply(&a, conversation, "yes").await;
    hears(&mut on_a, &event("message", answer.clone())).await;
    ann.until("message").await;
    ann.send(&json!({"type": "read", "payload": {"conversationId": conversation, "messageId": answer["id"]}}))
        .await;
    let customer_read = read(&answer, false);
    hears(&mut on_a, &customer_read).await;
    // B may not mark it read either: refused, and nothing is marked (A's receipt still is).
    let (status, body) = server
        .call(
            Method::POST,
            &format!("/api/agent/conversations/{conversation}/read"),
            Some(&b.token),
            Some(&json!({"messageId": more["id"]})),
        )
        .await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(error_code(&body), "assigned_elsewhere");
    assert_eq!(
        server.mark_read(&a, conversation, &more["id"]).await["lastMarked"],
        more["id"]
    );
    let agent_read = read(&more, true);
    assert_eq!(
        event("read", on_a.expect("read").await["payload"].clone()),
        agent_read
    );
    server.close(&a, conversation).await;
    let closed = event(
        "status",
        json!({"conversationId": conversation, "status": "closed", "agentId": a.id}),
    );
    assert_eq!(
        event("status", on_a.expect("status").await["payload"].clone()),
        closed
    );
    heard.extend([
        event("message", more.clone()),
        event("message", answer.clone()),
        customer_read,
        agent_read,
        closed,
    ]);

    // B is still connected and still hears the queue: a new conversation is the very next
    // thing it gets, and then nothing.
    let other = server.conversation(&partner, "bob").await;
    let queued = event(
        "status",
        json!({"conversationId": other, "status": "waiting", "agentId": null}),
    );
    for client in [&mut on_a, &mut on_b] {
        let frame = client.expect("status").await;
        assert_eq!(event("status", frame["payload"].clone()), queued);
        client.expect_quiet().await;
    }
    heard.push(queued.clone());

    // Replayed from the start: A gets every logged event, B the queue's only.
    assert_eq!(replay_from_start(&server, &a).await, heard);
    let queue_only = [
        waiting,
        event("message", hello.clone()),
        read(&hello, true),
        taken,
        queued,
    ];
    assert_eq!(replay_from_start(&server, &b).await, queue_only);
    server.assert_no_panics();
}
