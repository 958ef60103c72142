//! Automated replies end to end (contract.md, "Automated replies"): the real server on both
//! backends, a fake OpenAI-compatible model over HTTP on loopback, real WebSocket clients.

mod support;

use std::time::Duration;

use frontdesk_testkit::fake_model::{
    completion, delta, last_user_text, stream_pieces, FakeModel, Step,
};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{Agent, Backend, Partner, Server, TestDb, WsClient};

on_both_backends!(
    a_customer_message_gets_one_streamed_reply_over_the_socket_and_in_the_history,
    the_model_is_shown_the_history_the_flashback_traits_and_the_metadata,
    a_burst_of_messages_gets_one_reply_that_saw_all_of_them,
    an_agent_taking_the_conversation_mid_stream_drops_the_half_made_reply,
    the_model_hands_off_with_its_tool_and_the_bot_never_speaks_again,
    a_customer_asking_for_a_person_is_handed_off_without_asking_the_model,
    the_reply_budget_hands_off,
    the_token_budget_hands_off,
    a_flood_of_messages_cannot_buy_model_calls_for_free,
    a_follow_up_sent_as_a_reply_lands_is_answered_at_once,
    every_model_failure_leaves_the_conversation_waiting_and_hands_off_when_repeated,
    a_dead_model_costs_nothing_per_message_once_the_breaker_opens,
    beyond_the_in_flight_limit_a_conversation_is_handed_off,
    the_offline_responder_greets_once_per_conversation,
    no_automated_reply_once_an_agent_holds_the_conversation,
);

/// How long a test waits for something that must happen.
const PATIENCE: Duration = Duration::from_secs(10);

/// The server with automated replies by the model at `model`, failing fast.
async fn start(db: &TestDb, model: &FakeModel, extra: &[(&str, &str)]) -> Server {
    let mut env = model.server_env();
    env.extend_from_slice(&[
        ("FRONTDESK_LLM_MODEL", "test-model"),
        ("FRONTDESK_LLM_API_KEY", "sk-test-secret"),
        ("FRONTDESK_LLM_FIRST_TOKEN_TIMEOUT_MS", "2000"),
        ("FRONTDESK_LLM_TOTAL_TIMEOUT_MS", "5000"),
    ]);
    env.extend_from_slice(extra);
    Server::start_with(db, &env).await
}

/// A partner, a conversation of `customer`'s, and that customer's socket.
async fn open(server: &Server, customer: &str) -> (Partner, i64, WsClient) {
    let partner = server.register("Acme Outfitters").await;
    let conversation = server.conversation(&partner, customer).await;
    let token = server.session(&partner, customer).await;
    let socket = WsClient::customer(server, customer, &token).await;
    (partner, conversation, socket)
}

/// Waits until the history holds `count` automated messages, and returns them.
async fn await_bot_messages(
    server: &Server,
    partner: &Partner,
    conversation: i64,
    count: usize,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let found = server.bot_messages(partner, conversation).await;
        if found.len() >= count {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{count} automated message(s) expected, found {found:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Reads the socket until the bot's typing is switched off; returns every frame seen.
async fn until_typing_off(socket: &mut WsClient) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let frame = socket
            .next_within(PATIENCE)
            .await
            .unwrap_or_else(|| panic!("typing was never cleared; saw {seen:?}"));
        let off = frame["type"] == "typing"
            && frame["payload"]["isAgent"] == true
            && frame["payload"]["isTyping"] == false;
        seen.push(frame);
        if off {
            return seen;
        }
    }
}

/// The model call count must stay `count` for a while.
async fn model_calls_stay(model: &FakeModel, count: usize) {
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(
        model.bodies().len(),
        count,
        "model calls: {:?}",
        model.bodies()
    );
}

fn streamed(text: &'static str, pieces: usize) -> impl Fn(&Value) -> Step + Send + Sync {
    move |request: &Value| {
        Step::reply(
            request,
            text,
            Duration::ZERO,
            pieces,
            Duration::from_millis(30),
        )
    }
}

async fn a_customer_message_gets_one_streamed_reply_over_the_socket_and_in_the_history(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(streamed("Your order ships today.", 4)).await;
    let server = start(&db, &model, &[]).await;
    let (partner, conversation, mut socket) = open(&server, "ann").await;

    socket
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation, "senderId": "ann", "content": "Where is my order?"
        }}))
        .await;
    let frames = until_typing_off(&mut socket).await;
    let kinds: Vec<&str> = frames.iter().filter_map(|f| f["type"].as_str()).collect();
    let customer_message = frames
        .iter()
        .find(|f| f["type"] == "message" && f["payload"]["senderId"] == "ann")
        .unwrap_or_else(|| panic!("own message not echoed: {kinds:?}"));
    let trigger = customer_message["payload"]["id"].clone();

    // typing on, then the pieces in order, then the stored message, then typing off.
    let typing_on = kinds
        .iter()
        .position(|k| *k == "typing")
        .unwrap_or_else(|| panic!("no typing: {kinds:?}"));
    assert_eq!(frames[typing_on]["payload"]["isTyping"], true);
    assert_eq!(frames[typing_on]["payload"]["isAgent"], true);
    let deltas: Vec<&Value> = frames
        .iter()
        .filter(|f| f["type"] == "messageDelta")
        .collect();
    assert!(deltas.len() >= 2, "the reply was streamed: {kinds:?}");
    let mut text = String::new();
    for (seq, frame) in deltas.iter().enumerate() {
        let payload = &frame["payload"];
        assert_eq!(payload["conversationId"], conversation);
        assert_eq!(payload["replyTo"], trigger);
        assert_eq!(payload["seq"], seq, "pieces in order: {deltas:?}");
        assert!(frame.get("cursor").is_none(), "a delta is not stored");
        text.push_str(payload["text"].as_str().unwrap_or_default());
    }
    assert_eq!(text, "Your order ships today.");
    let reply_at = frames
        .iter()
        .position(|f| f["type"] == "message" && f["payload"]["senderId"] == "bot")
        .unwrap_or_else(|| panic!("no bot message over the socket: {kinds:?}"));
    let first_delta = kinds
        .iter()
        .position(|k| *k == "messageDelta")
        .unwrap_or(usize::MAX);
    assert!(
        typing_on < first_delta && first_delta < reply_at,
        "{kinds:?}"
    );
    let reply = &frames[reply_at];
    assert!(reply["cursor"].is_i64(), "the reply is a stored event");
    let payload = &reply["payload"];
    assert_eq!(payload["content"], "Your order ships today.");
    assert_eq!(payload["isFromAgent"], true);
    assert_eq!(payload["metadata"]["automated"], true);
    assert_eq!(payload["metadata"]["replyTo"], trigger);

    // Exactly once, over REST too, and nothing more comes.
    let stored = await_bot_messages(&server, &partner, conversation, 1).await;
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0]["id"], payload["id"]);
    model_calls_stay(&model, 1).await;
    assert_eq!(server.bot_messages(&partner, conversation).await.len(), 1);
    socket.expect_quiet().await;
    // The key reached the model and never the log.
    assert_eq!(
        model.requests()[0].1.as_deref(),
        Some("Bearer sk-test-secret")
    );
    assert!(!server.log().contains("sk-test-secret"));
    server.assert_no_panics();
}

async fn the_model_is_shown_the_history_the_flashback_traits_and_the_metadata(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(streamed("Checking.", 2)).await;
    let server = start(&db, &model, &[("FRONTDESK_LLM_TOOLS", "true")]).await;
    let partner = server.register("Acme Outfitters").await;
    server
        .patch_customer(
            &partner,
            "carla",
            &json!({"name": "Carla", "birthdate": "1990-01-15"}),
        )
        .await;
    let conversation = server.conversation(&partner, "carla").await;
    server
        .post_message(
            &partner.key,
            &json!({"conversationId": conversation, "senderId": "carla", "content": "Where is it?",
                    "metadata": {"commandType": "order_lookup", "value": "ORD-12345"}}),
        )
        .await;
    await_bot_messages(&server, &partner, conversation, 1).await;

    let agent = server.agent("lead@example.com", false).await;
    let (_, detail) = server
        .call(
            Method::GET,
            &format!("/api/agent/conversations/{conversation}"),
            Some(&agent.token),
            None,
        )
        .await;
    let traits = &detail["customer"]["flashback"]["flashBack"];
    let bodies = model.bodies();
    assert_eq!(bodies.len(), 1);
    let request = &bodies[0];
    assert_eq!(request["model"], "test-model");
    assert_eq!(request["stream"], true, "streamed while tools are on");
    assert_eq!(request["tools"][0]["function"]["name"], "handoff_to_human");
    let messages = request["messages"].as_array().cloned().unwrap_or_default();
    assert_eq!(messages[0]["role"], "system");
    let system = messages[0]["content"].as_str().unwrap_or_default();
    assert!(system.contains("Acme Outfitters"), "{system}");
    for key in ["firstEventTrait", "secondEventTrait"] {
        let value = traits[key]
            .as_str()
            .unwrap_or_else(|| panic!("no {key} in {detail}"));
        assert!(system.contains(value), "{key} {value} not in {system}");
    }
    let user = last_user_text(request);
    assert!(user.contains("Where is it?"), "{user}");
    assert!(
        user.contains("order_lookup") && user.contains("ORD-12345"),
        "{user}"
    );
}

async fn a_burst_of_messages_gets_one_reply_that_saw_all_of_them(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Slow enough that the burst arrives while the first call is still out.
    let model = FakeModel::replying("All three noted.", Duration::from_millis(700), 2).await;
    let server = start(&db, &model, &[]).await;
    let (partner, conversation, mut socket) = open(&server, "ann").await;
    let mut last = Value::Null;
    for text in ["Hi", "my order", "is late"] {
        last = server.say(&partner, conversation, "ann", text).await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let stored = await_bot_messages(&server, &partner, conversation, 1).await;
    model_calls_stay(&model, model.bodies().len()).await;
    let stored_now = server.bot_messages(&partner, conversation).await;
    assert_eq!(
        stored_now.len(),
        1,
        "one reply for the burst: {stored_now:?}"
    );
    assert_eq!(
        stored[0]["metadata"]["replyTo"], last["id"],
        "it answers the newest"
    );
    // The call whose reply was stored had seen all three.
    let answered = model.bodies().last().cloned().unwrap_or_default();
    let said: Vec<String> = answered["messages"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|m| m["role"] == "user")
        .filter_map(|m| m["content"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(said.len(), 3, "{said:?}");
    let frames = until_typing_off(&mut socket).await;
    assert!(frames
        .iter()
        .any(|f| f["type"] == "message" && f["payload"]["senderId"] == "bot"));
}

async fn an_agent_taking_the_conversation_mid_stream_drops_the_half_made_reply(backend: Backend) {
    let db = TestDb::new(backend).await;
    // One piece, then a long pause before the rest.
    let model = FakeModel::answering(|_: &Value| {
        stream_pieces(&[
            (Duration::ZERO, "Let me "),
            (Duration::from_secs(3), "check that for you."),
        ])
    })
    .await;
    let server = start(&db, &model, &[]).await;
    let (partner, conversation, mut socket) = open(&server, "ann").await;
    let agent = server.agent("agent@example.com", false).await;
    server.say(&partner, conversation, "ann", "Hello?").await;
    let first = socket.until("messageDelta").await;
    assert_eq!(first["payload"]["text"], "Let me ");

    server.assign(&agent, conversation).await;
    let frames = until_typing_off(&mut socket).await;
    assert!(
        !frames
            .iter()
            .any(|f| f["type"] == "message" && f["payload"]["senderId"] == "bot"),
        "{frames:?}"
    );
    // Well past the model's end: still nothing stored.
    tokio::time::sleep(Duration::from_secs(4)).await;
    assert!(server.bot_messages(&partner, conversation).await.is_empty());
    // And the next customer message, now that an agent holds it, gets no automated reply.
    server
        .say(&partner, conversation, "ann", "Are you there?")
        .await;
    model_calls_stay(&model, 1).await;
    assert!(server.bot_messages(&partner, conversation).await.is_empty());
}

/// The conversation as the agent list shows it.
async fn listed(server: &Server, agent: &Agent, conversation: i64) -> Value {
    let (status, list) = server
        .call(
            Method::GET,
            "/api/agent/conversations",
            Some(&agent.token),
            None,
        )
        .await;
    assert_eq!(status, StatusCode::OK);
    list.as_array()
        .into_iter()
        .flatten()
        .find(|c| c["id"] == conversation)
        .cloned()
        .unwrap_or_else(|| panic!("{conversation} not listed: {list}"))
}

async fn the_model_hands_off_with_its_tool_and_the_bot_never_speaks_again(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model =
        FakeModel::answering(|request: &Value| Step::handoff(request, "wants a refund")).await;
    let server = start(&db, &model, &[("FRONTDESK_LLM_TOOLS", "true")]).await;
    let agent = server.agent("agent@example.com", false).await;
    let mut agent_socket = WsClient::agent(&server, &agent).await;
    let (partner, conversation, mut socket) = open(&server, "ann").await;
    server
        .say(&partner, conversation, "ann", "I want my money back")
        .await;

    let notice = await_bot_messages(&server, &partner, conversation, 1).await;
    assert_eq!(notice[0]["metadata"]["handoff"], true);
    assert_eq!(notice[0]["metadata"]["automated"], true);
    assert!(notice[0]["content"]
        .as_str()
        .unwrap_or_default()
        .contains("person"));

    // Flagged for agents: the list, the detail, an event.
    let item = listed(&server, &agent, conversation).await;
    assert_eq!(item["handoff"]["reason"], "wants a refund");
    support::assert_timestamp(&item["handoff"]["at"]);
    let (_, detail) = server
        .call(
            Method::GET,
            &format!("/api/agent/conversations/{conversation}"),
            Some(&agent.token),
            None,
        )
        .await;
    assert_eq!(detail["handoff"]["reason"], "wants a refund");
    let event = agent_socket.until("handoff").await;
    assert_eq!(event["payload"]["conversationId"], conversation);
    assert_eq!(event["payload"]["reason"], "wants a refund");
    assert!(event["cursor"].is_i64());

    // The customer's side: the notice, never the flag. The partner's Conversation object keeps
    // exactly the guide's fields.
    let frames = until_typing_off(&mut socket).await;
    assert!(!frames.iter().any(|f| f["type"] == "handoff"), "{frames:?}");
    let (_, conversations) = server
        .call(
            Method::GET,
            "/api/partner/conversations/ann",
            Some(&partner.key),
            None,
        )
        .await;
    let mut keys: Vec<String> = conversations[0]
        .as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default();
    keys.sort();
    assert_eq!(
        keys,
        [
            "agentId",
            "createdAt",
            "customerId",
            "id",
            "status",
            "updatedAt"
        ]
    );
    // A replay from the start does not show it to the customer either.
    let token = server.session(&partner, "ann").await;
    let mut replay = WsClient::connect(
        &server,
        &format!("clientId=ann&token={token}&since=0"),
        None,
    )
    .await
    .unwrap_or_else(|status| panic!("replay refused: {status}"));
    let mut replayed = Vec::new();
    while let Some(frame) = replay.next_within(Duration::from_millis(500)).await {
        replayed.push(frame["type"].clone());
    }
    assert!(
        replayed.contains(&json!("message")),
        "the replay ran: {replayed:?}"
    );
    assert!(!replayed.contains(&json!("handoff")), "{replayed:?}");

    // For good: the next message reaches neither the model nor the bot.
    server
        .say(&partner, conversation, "ann", "Hello? Anyone?")
        .await;
    model_calls_stay(&model, 1).await;
    assert_eq!(server.bot_messages(&partner, conversation).await.len(), 1);
}

async fn a_customer_asking_for_a_person_is_handed_off_without_asking_the_model(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(streamed("unused", 1)).await;
    let server = start(&db, &model, &[]).await;
    let agent = server.agent("agent@example.com", false).await;
    let (partner, conversation, _socket) = open(&server, "ann").await;
    server
        .say(
            &partner,
            conversation,
            "ann",
            "Ich möchte mit einem Mitarbeiter sprechen",
        )
        .await;
    let notice = await_bot_messages(&server, &partner, conversation, 1).await;
    assert_eq!(notice[0]["metadata"]["handoff"], true);
    assert_eq!(
        listed(&server, &agent, conversation).await["handoff"]["reason"],
        "the customer asked for a person"
    );
    model_calls_stay(&model, 0).await;

    // "human" inside another word is not a request for one.
    let other = server.conversation(&partner, "bob").await;
    server
        .say(&partner, other, "bob", "Is this humane packaging?")
        .await;
    let reply = await_bot_messages(&server, &partner, other, 1).await;
    assert!(reply[0]["metadata"].get("handoff").is_none(), "{reply:?}");
}

async fn the_reply_budget_hands_off(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(streamed("Sure.", 1)).await;
    let server = start(&db, &model, &[("FRONTDESK_BOT_MAX_REPLIES", "1")]).await;
    let agent = server.agent("agent@example.com", false).await;
    let (partner, conversation, _socket) = open(&server, "ann").await;
    server
        .say(&partner, conversation, "ann", "First question")
        .await;
    await_bot_messages(&server, &partner, conversation, 1).await;
    server
        .say(&partner, conversation, "ann", "Second question")
        .await;
    let both = await_bot_messages(&server, &partner, conversation, 2).await;
    assert_eq!(both[1]["metadata"]["handoff"], true, "{both:?}");
    assert_eq!(
        listed(&server, &agent, conversation).await["handoff"]["reason"],
        "the automated replies' budget is used up"
    );
    model_calls_stay(&model, 1).await;
    // The budget is the offender's alone: another customer is still answered.
    let other = server.conversation(&partner, "bob").await;
    server.say(&partner, other, "bob", "Hello").await;
    let answered = await_bot_messages(&server, &partner, other, 1).await;
    assert_eq!(answered[0]["content"], "Sure.");
}

async fn the_token_budget_hands_off(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Each streamed reply reports 42 tokens: two fit in 50, not a third.
    let model = FakeModel::answering(streamed("Sure.", 1)).await;
    let server = start(&db, &model, &[("FRONTDESK_BOT_MAX_TOKENS", "50")]).await;
    let (partner, conversation, _socket) = open(&server, "ann").await;
    for (i, text) in ["one", "two", "three"].iter().enumerate() {
        server.say(&partner, conversation, "ann", text).await;
        await_bot_messages(&server, &partner, conversation, i + 1).await;
    }
    let said = server.bot_messages(&partner, conversation).await;
    let handoffs: Vec<bool> = said
        .iter()
        .map(|m| m["metadata"]["handoff"] == true)
        .collect();
    assert_eq!(handoffs, [false, false, true], "{said:?}");
    model_calls_stay(&model, 2).await;
}

async fn a_flood_of_messages_cannot_buy_model_calls_for_free(backend: Backend) {
    let db = TestDb::new(backend).await;
    // Slower than the flood: every message arrives while a call is out, and cancels it.
    let model = FakeModel::replying("Sure.", Duration::from_millis(800), 1).await;
    let server = start(&db, &model, &[("FRONTDESK_BOT_MAX_TOKENS", "10000")]).await;
    let agent = server.agent("agent@example.com", false).await;
    let (partner, conversation, _socket) = open(&server, "ann").await;
    for i in 0..12 {
        server
            .say(&partner, conversation, "ann", &format!("message {i}"))
            .await;
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    // Each cancelled call is charged the prompt's bound (3,000 tokens): four of them use the
    // budget, and the conversation goes to a person instead of a thirteenth call.
    let said = await_bot_messages(&server, &partner, conversation, 1).await;
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["metadata"]["handoff"], true, "{said:?}");
    assert_eq!(
        listed(&server, &agent, conversation).await["handoff"]["reason"],
        "the automated replies' budget is used up"
    );
    let calls = model.bodies().len();
    assert!(
        (1..=5).contains(&calls),
        "{calls} model calls for 12 messages"
    );
}

async fn a_follow_up_sent_as_a_reply_lands_is_answered_at_once(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(|request: &Value| {
        let text = format!("About {}", last_user_text(request));
        Step::reply(
            request,
            &text,
            Duration::from_millis(300),
            1,
            Duration::ZERO,
        )
    })
    .await;
    // A lease far longer than the patience: a follow-up left for the lease to run out fails.
    let server = start(&db, &model, &[("FRONTDESK_REPLY_LEASE_SECS", "120")]).await;
    let partner = server.register("Acme").await;
    let mut conversations = Vec::new();
    // The follow-up lands around the moment the first reply is stored, a little earlier or
    // later each time.
    for (i, offset) in [240u64, 270, 300, 320, 340, 360, 400].iter().enumerate() {
        let customer = format!("c{i}");
        let conversation = server.conversation(&partner, &customer).await;
        server.say(&partner, conversation, &customer, "first").await;
        tokio::time::sleep(Duration::from_millis(*offset)).await;
        let follow_up = server
            .say(&partner, conversation, &customer, "second")
            .await;
        conversations.push((conversation, follow_up["id"].clone()));
    }
    for (conversation, follow_up) in conversations {
        let deadline = tokio::time::Instant::now() + PATIENCE;
        loop {
            let said = server.bot_messages(&partner, conversation).await;
            if said.iter().any(|m| m["metadata"]["replyTo"] == follow_up) {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the follow-up {follow_up} in {conversation} was never answered: {said:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn every_model_failure_leaves_the_conversation_waiting_and_hands_off_when_repeated(
    backend: Backend,
) {
    let db = TestDb::new(backend).await;
    // The customer's words choose the failure.
    let model = FakeModel::answering(|request: &Value| match last_user_text(request).as_str() {
        "garbage" => Step::Answer(200, vec![], "<html>not json</html>".into()),
        "cut" => Step::Stream(vec![(Duration::ZERO, delta("Half a sen"))]),
        "slow" => Step::After(
            Duration::from_secs(5),
            Box::new(Step::Answer(200, vec![], completion("late"))),
        ),
        _ => Step::Answer(503, vec![], "{}".into()),
    })
    .await;
    let server = start(
        &db,
        &model,
        &[
            ("FRONTDESK_LLM_FIRST_TOKEN_TIMEOUT_MS", "300"),
            ("FRONTDESK_BOT_MAX_FAILURES", "2"),
            ("FRONTDESK_LLM_BREAKER_FAILURES", "100"),
        ],
    )
    .await;
    let agent = server.agent("agent@example.com", false).await;
    let partner = server.register("Acme").await;
    for (customer, words) in [
        ("ann", "garbage"),
        ("bob", "cut"),
        ("cy", "slow"),
        ("dee", "down"),
    ] {
        let conversation = server.conversation(&partner, customer).await;
        let token = server.session(&partner, customer).await;
        let mut socket = WsClient::customer(&server, customer, &token).await;
        let said = server.say(&partner, conversation, customer, words).await;
        until_typing_off(&mut socket).await;
        // The message is kept, nothing automated was said, and it waits for an agent.
        let history = server.history(&partner, conversation).await;
        assert_eq!(history.len(), 1, "{words}: {history:?}");
        assert_eq!(history[0]["id"], said["id"]);
        let item = listed(&server, &agent, conversation).await;
        assert_eq!(item["status"], "waiting");
        assert!(
            item["handoff"].is_null(),
            "{words}: one failure does not hand off"
        );
        assert!(
            server
                .log()
                .lines()
                .any(|l| l.contains("automated reply failed")
                    && l.contains(&format!("conversation={conversation}"))),
            "{words}: the failure is logged with the conversation"
        );

        // The second failure in a row hands off.
        server.say(&partner, conversation, customer, words).await;
        let notice = await_bot_messages(&server, &partner, conversation, 1).await;
        assert_eq!(notice[0]["metadata"]["handoff"], true, "{words}");
        assert_eq!(
            listed(&server, &agent, conversation).await["handoff"]["reason"],
            "the assistant is not answering"
        );
    }
    server.assert_no_panics();
}

async fn a_dead_model_costs_nothing_per_message_once_the_breaker_opens(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(|_: &Value| Step::Answer(500, vec![], "{}".into())).await;
    let server = start(
        &db,
        &model,
        &[
            ("FRONTDESK_LLM_BREAKER_FAILURES", "2"),
            ("FRONTDESK_LLM_BREAKER_SECS", "600"),
        ],
    )
    .await;
    let partner = server.register("Acme").await;
    for customer in ["a1", "a2", "a3", "a4", "a5"] {
        let conversation = server.conversation(&partner, customer).await;
        let token = server.session(&partner, customer).await;
        let mut socket = WsClient::customer(&server, customer, &token).await;
        server.say(&partner, conversation, customer, "hello").await;
        until_typing_off(&mut socket).await;
    }
    // Two calls opened the breaker; the other three never reached the model.
    assert_eq!(model.bodies().len(), 2);
    assert!(
        server.log().contains("calls are paused"),
        "the open breaker is logged"
    );
}

async fn beyond_the_in_flight_limit_a_conversation_is_handed_off(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::replying("Done.", Duration::from_millis(1500), 1).await;
    let server = start(&db, &model, &[("FRONTDESK_LLM_MAX_IN_FLIGHT", "1")]).await;
    let agent = server.agent("agent@example.com", false).await;
    let partner = server.register("Acme").await;
    let first = server.conversation(&partner, "ann").await;
    let second = server.conversation(&partner, "bob").await;
    server.say(&partner, first, "ann", "one").await;
    // The first call is out before the second message.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while model.in_flight() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the first call never started"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    server.say(&partner, second, "bob", "two").await;
    let notice = await_bot_messages(&server, &partner, second, 1).await;
    assert_eq!(notice[0]["metadata"]["handoff"], true);
    assert_eq!(
        listed(&server, &agent, second).await["handoff"]["reason"],
        "the assistant is busy"
    );
    let reply = await_bot_messages(&server, &partner, first, 1).await;
    assert_eq!(reply[0]["content"], "Done.");
    assert_eq!(model.bodies().len(), 1);
}

async fn the_offline_responder_greets_once_per_conversation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(
        &db,
        &[
            ("FRONTDESK_AUTOMATED_REPLIES", "on"),
            (
                "FRONTDESK_OFFLINE_GREETING",
                "Hello from Acme! A person will answer soon.",
            ),
        ],
    )
    .await;
    assert!(
        server.log().contains("offline responder"),
        "the start-up log says which"
    );
    let (partner, conversation, mut socket) = open(&server, "ann").await;
    server.say(&partner, conversation, "ann", "Hi").await;
    let frames = until_typing_off(&mut socket).await;
    let greeting = frames
        .iter()
        .find(|f| f["type"] == "message" && f["payload"]["senderId"] == "bot")
        .unwrap_or_else(|| panic!("no greeting: {frames:?}"));
    assert_eq!(
        greeting["payload"]["content"],
        "Hello from Acme! A person will answer soon."
    );
    assert_eq!(greeting["payload"]["metadata"]["automated"], true);

    server
        .say(&partner, conversation, "ann", "Still there?")
        .await;
    // Nothing more to say: no second greeting, and no typing flash either.
    let mut after = Vec::new();
    while let Some(frame) = socket.next_within(Duration::from_millis(800)).await {
        after.push(frame);
    }
    assert!(
        after
            .iter()
            .all(|f| f["type"] == "message" && f["payload"]["senderId"] == "ann"),
        "{after:?}"
    );
    assert_eq!(server.bot_messages(&partner, conversation).await.len(), 1);
    // Another conversation is greeted again.
    let other = server.conversation(&partner, "bob").await;
    server.say(&partner, other, "bob", "Hi").await;
    await_bot_messages(&server, &partner, other, 1).await;
}

async fn no_automated_reply_once_an_agent_holds_the_conversation(backend: Backend) {
    let db = TestDb::new(backend).await;
    let model = FakeModel::answering(streamed("Hello!", 1)).await;
    let server = start(&db, &model, &[]).await;
    let agent = server.agent("agent@example.com", false).await;
    let (partner, conversation, _socket) = open(&server, "ann").await;
    server.assign(&agent, conversation).await;
    server.say(&partner, conversation, "ann", "Hi").await;
    model_calls_stay(&model, 0).await;
    assert!(server.bot_messages(&partner, conversation).await.is_empty());
}
