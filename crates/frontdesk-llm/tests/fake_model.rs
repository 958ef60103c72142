//! The client against a fake OpenAI-compatible server over real HTTP on loopback: each test
//! scripts what the server answers, and reads back what the model was sent.

use std::sync::Arc;
use std::time::{Duration, Instant};

use frontdesk_llm::{ChatMessage, LlmClient, LlmConfig, LlmError, Phase, Role};
use frontdesk_testkit::fake_model::{completion, delta, FakeModel, Step};
use serde_json::json;
use tokio::net::TcpListener;

const NOW: Duration = Duration::ZERO;

fn config(url: &str) -> LlmConfig {
    let mut config = LlmConfig::new(url, "test-model");
    config.api_key = Some("sk-test".into());
    config.first_token_timeout = Duration::from_secs(2);
    config.total_timeout = Duration::from_secs(5);
    config.retry_base = Duration::from_millis(10);
    config
}

fn prompt() -> Vec<ChatMessage> {
    vec![
        ChatMessage::new(Role::System, "Be brief."),
        ChatMessage::new(Role::User, "Where is my order?"),
    ]
}

#[tokio::test]
async fn a_whole_reply_and_the_exact_request_the_model_received() {
    let model = FakeModel::start(vec![Step::Answer(
        200,
        vec![],
        completion(" It ships today. "),
    )])
    .await;
    let client = LlmClient::new(config(&model.url)).unwrap_or_else(|e| panic!("{e}"));
    let reply = client
        .complete(&prompt())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.text, "It ships today.");
    assert_eq!((reply.handoff, reply.tokens), (None, Some(42)));

    let requests = model.requests();
    assert_eq!(requests.len(), 1);
    let (body, authorization) = &requests[0];
    assert_eq!(authorization.as_deref(), Some("Bearer sk-test"));
    assert_eq!(body["model"], "test-model");
    assert_eq!(body["stream"], false);
    assert_eq!(
        body["messages"],
        json!([{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Where is my order?"}])
    );
    assert_eq!(body["tools"][0]["function"]["name"], "handoff_to_human");
}

#[tokio::test]
async fn a_streamed_reply_arrives_in_fragments_and_a_streamed_tool_call_hands_off() {
    let tool = |args: &str, name: Option<&str>| {
        let mut function = json!({"arguments": args});
        if let Some(name) = name {
            function["name"] = json!(name);
        }
        format!(
            "data: {}\n\n",
            json!({"choices": [{"delta": {"tool_calls": [{"index": 0, "function": function}]}}]})
        )
    };
    let model = FakeModel::start(vec![
        Step::Stream(vec![
            (NOW, delta("Hel")),
            (Duration::from_millis(20), delta("lo, ")),
            (Duration::from_millis(20), delta("Ann!")),
            (NOW, "data: [DONE]\n\n".into()),
        ]),
        Step::Stream(vec![
            (NOW, delta("One moment.")),
            (NOW, tool("{\"rea", Some("handoff_to_human"))),
            (NOW, tool("son\":\"asks for a refund\"}", None)),
            (NOW, "data: {\"choices\":[{\"delta\":{},\"finish_reason\":\"tool_calls\"}]}\n\ndata: [DONE]\n\n".into()),
        ]),
    ])
    .await;
    let client = LlmClient::new(config(&model.url)).unwrap_or_else(|e| panic!("{e}"));
    let mut fragments = Vec::new();
    let reply = client
        .stream(&prompt(), &mut |text: &str| fragments.push(text.to_owned()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(fragments, ["Hel", "lo, ", "Ann!"]);
    assert_eq!((reply.text.as_str(), reply.handoff), ("Hello, Ann!", None));
    assert_eq!(model.requests()[0].0["stream"], true);

    let reply = client
        .stream(&prompt(), &mut |_: &str| {})
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.text, "One moment.");
    assert_eq!(reply.handoff.as_deref(), Some("asks for a refund"));
}

#[tokio::test]
async fn a_429_is_retried_after_the_wait_the_server_asks_for() {
    let model = FakeModel::start(vec![
        Step::Answer(429, vec![("retry-after", "1".into())], "{}".into()),
        Step::Answer(503, vec![], "{}".into()),
        Step::Answer(200, vec![], completion("Done.")),
    ])
    .await;
    let client = LlmClient::new(config(&model.url)).unwrap_or_else(|e| panic!("{e}"));
    let started = Instant::now();
    let reply = client
        .complete(&prompt())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.text, "Done.");
    assert_eq!(model.requests().len(), 3, "two retries");
    // A lower bound, not a latency: the client did not come back before the server's 1 s.
    assert!(
        started.elapsed() >= Duration::from_secs(1),
        "{:?}",
        started.elapsed()
    );

    // Out of retries: the last status is the answer.
    let model = FakeModel::start(vec![Step::Answer(500, vec![], "{}".into()); 3]).await;
    let client = LlmClient::new(config(&model.url)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.complete(&prompt()).await, Err(LlmError::Status(500)));
    assert_eq!(
        model.requests().len(),
        3,
        "one attempt and max_retries (2) more"
    );
}

#[tokio::test]
async fn first_token_and_total_deadlines() {
    let slow_head = Step::After(
        Duration::from_secs(3),
        Box::new(Step::Answer(200, vec![], completion("late"))),
    );
    let endless = Step::Stream(
        (0..100)
            .map(|_| (Duration::from_millis(200), delta(".")))
            .collect(),
    );
    let silent_stream = Step::Stream(vec![(Duration::from_secs(3), delta("late"))]);
    let model = FakeModel::start(vec![slow_head, endless, silent_stream]).await;
    let mut settings = config(&model.url);
    settings.first_token_timeout = Duration::from_millis(500);
    settings.total_timeout = Duration::from_millis(1_500);
    let client = LlmClient::new(settings).unwrap_or_else(|e| panic!("{e}"));

    assert_eq!(
        client.complete(&prompt()).await,
        Err(LlmError::Timeout {
            phase: Phase::FirstToken,
            limit: Duration::from_millis(500)
        })
    );
    let mut heard = 0;
    assert_eq!(
        client.stream(&prompt(), &mut |_: &str| heard += 1).await,
        Err(LlmError::Timeout {
            phase: Phase::Total,
            limit: Duration::from_millis(1_500)
        })
    );
    assert!(
        heard > 0,
        "tokens kept coming, but the whole reply took too long"
    );
    assert_eq!(
        client.stream(&prompt(), &mut |_: &str| {}).await,
        Err(LlmError::Timeout {
            phase: Phase::FirstToken,
            limit: Duration::from_millis(500)
        })
    );
}

#[tokio::test]
async fn refused_connections_garbage_and_cut_streams_are_failures_of_their_own() {
    // A port nobody listens on.
    let closed = TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let url = format!(
        "http://{}/v1",
        closed.local_addr().unwrap_or_else(|e| panic!("{e}"))
    );
    drop(closed);
    let mut settings = config(&url);
    settings.max_retries = 0;
    let client = LlmClient::new(settings).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        client.complete(&prompt()).await,
        Err(LlmError::Connect(_))
    ));

    let model = FakeModel::start(vec![
        Step::Answer(200, vec![], "<html>surprise</html>".into()),
        Step::Stream(vec![(NOW, delta("Half a ")), (NOW, delta("repl"))]),
        Step::Stream(vec![(NOW, "data: {not json\n\n".into())]),
    ])
    .await;
    let client = LlmClient::new(config(&model.url)).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        client.complete(&prompt()).await,
        Err(LlmError::Garbage(_))
    ));
    let mut text = String::new();
    assert_eq!(
        client
            .stream(&prompt(), &mut |t: &str| text.push_str(t))
            .await,
        Err(LlmError::Truncated)
    );
    assert_eq!(
        text, "Half a repl",
        "what arrived was shown; the caller drops it"
    );
    assert!(matches!(
        client.stream(&prompt(), &mut |_: &str| {}).await,
        Err(LlmError::Garbage(_))
    ));
}

#[tokio::test]
async fn the_circuit_opens_after_failures_and_a_probe_closes_it() {
    let model = FakeModel::start(vec![
        Step::Answer(500, vec![], "{}".into()),
        Step::Answer(500, vec![], "{}".into()),
        Step::Answer(200, vec![], completion("Back.")),
    ])
    .await;
    let mut settings = config(&model.url);
    settings.max_retries = 0;
    settings.breaker_failures = 2;
    settings.breaker_cool_down = Duration::from_millis(300);
    let client = LlmClient::new(settings).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(client.complete(&prompt()).await, Err(LlmError::Status(500)));
    assert_eq!(client.complete(&prompt()).await, Err(LlmError::Status(500)));
    assert_eq!(client.complete(&prompt()).await, Err(LlmError::CircuitOpen));
    assert_eq!(model.requests().len(), 2, "an open circuit sends nothing");
    assert!(client.is_paused());
    tokio::time::sleep(Duration::from_millis(350)).await;
    assert_eq!(
        client.complete(&prompt()).await.map(|r| r.text),
        Ok("Back.".to_owned())
    );
    assert!(!client.is_paused());
}

#[tokio::test]
async fn beyond_the_in_flight_limit_a_call_fails_at_once() {
    let model = FakeModel::start(vec![Step::After(
        Duration::from_millis(500),
        Box::new(Step::Answer(200, vec![], completion("Slow."))),
    )])
    .await;
    let mut settings = config(&model.url);
    settings.max_in_flight = 1;
    let client = Arc::new(LlmClient::new(settings).unwrap_or_else(|e| panic!("{e}")));
    let first = tokio::spawn({
        let client = Arc::clone(&client);
        async move { client.complete(&prompt()).await }
    });
    // Until the first call holds its slot.
    while model.requests().is_empty() {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(client.complete(&prompt()).await, Err(LlmError::Busy));
    assert_eq!(model.requests().len(), 1, "the refused call sent nothing");
    let first = first.await.unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(first.map(|r| r.text), Ok("Slow.".to_owned()));
    assert!(
        !client.is_paused(),
        "a full limit is no failure of the model"
    );
}

#[tokio::test]
async fn without_tools_the_model_is_asked_for_json_and_its_handoff_is_read_from_it() {
    let answer = r#"{"reply": "", "handoff": "wants a refund"}"#;
    let model = FakeModel::start(vec![
        Step::Answer(200, vec![], completion(answer)),
        // A server that ignores the schema still answers: its text is the reply.
        Step::Answer(200, vec![], completion("Plain words.")),
    ])
    .await;
    let mut settings = config(&model.url);
    settings.tools = false;
    let client = LlmClient::new(settings).unwrap_or_else(|e| panic!("{e}"));
    let reply = client
        .complete(&prompt())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(reply.handoff.as_deref(), Some("wants a refund"));
    let plain = client
        .complete(&prompt())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!((plain.text.as_str(), plain.handoff), ("Plain words.", None));

    let (body, _) = &model.requests()[0];
    assert!(body.get("tools").is_none(), "no tools offered: {body}");
    assert_eq!(body["response_format"]["type"], "json_schema");
    assert_eq!(
        body["response_format"]["json_schema"]["schema"]["required"],
        json!(["reply", "handoff"])
    );
}
