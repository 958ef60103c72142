//! The client against a fake OpenAI-compatible server over real HTTP on loopback: each test
//! scripts what the server answers, and reads back what the model was sent.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frontdesk_llm::{ChatMessage, LlmClient, LlmConfig, LlmError, Phase, Role};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Each request's JSON body and `Authorization` header, in arrival order.
type Seen = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// What the fake server does with one request.
#[derive(Clone)]
enum Step {
    /// A whole response: status, extra headers, body.
    Answer(u16, Vec<(&'static str, String)>, String),
    /// A streamed 200: each chunk after its pause, then the connection closes.
    Stream(Vec<(Duration, String)>),
    /// Waits, then does the next step.
    After(Duration, Box<Step>),
}

struct FakeModel {
    url: String,
    /// Each request's JSON body and `Authorization` header, in arrival order.
    requests: Seen,
}

impl FakeModel {
    async fn start(script: Vec<Step>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let seen = Arc::clone(&requests);
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let step = script.lock().map(|mut s| s.pop_front()).ok().flatten();
                tokio::spawn(serve(socket, step, Arc::clone(&seen)));
            }
        });
        Self {
            url: format!("http://{addr}/v1"),
            requests,
        }
    }

    fn requests(&self) -> Vec<(Value, Option<String>)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }
}

async fn serve(mut socket: TcpStream, step: Option<Step>, seen: Seen) {
    let mut buffer = Vec::new();
    let mut chunk = [0u8; 4096];
    // The head, then as much body as Content-Length says.
    let (head_end, length) = loop {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
        if let Some(end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .unwrap_or(0);
            break (end + 4, length);
        }
    };
    while buffer.len() < head_end + length {
        let Ok(n) = socket.read(&mut chunk).await else {
            return;
        };
        if n == 0 {
            return;
        }
        buffer.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buffer[..head_end]).to_string();
    let authorization = head
        .lines()
        .find_map(|l| {
            l.strip_prefix("authorization: ")
                .or(l.strip_prefix("Authorization: "))
        })
        .map(str::to_owned);
    let body = serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or(Value::Null);
    if let Ok(mut seen) = seen.lock() {
        seen.push((body, authorization));
    }
    let mut step = step.unwrap_or_else(|| Step::Answer(500, vec![], "no script".into()));
    loop {
        match step {
            Step::After(wait, next) => {
                tokio::time::sleep(wait).await;
                step = *next;
            }
            Step::Answer(status, headers, body) => {
                let mut response = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (name, value) in headers {
                    response.push_str(&format!("{name}: {value}\r\n"));
                }
                response.push_str("\r\n");
                response.push_str(&body);
                let _ = socket.write_all(response.as_bytes()).await;
                return;
            }
            Step::Stream(chunks) => {
                let head = "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\nconnection: close\r\n\r\n";
                if socket.write_all(head.as_bytes()).await.is_err() {
                    return;
                }
                for (wait, chunk) in chunks {
                    tokio::time::sleep(wait).await;
                    if socket.write_all(chunk.as_bytes()).await.is_err() {
                        return;
                    }
                }
                return;
            }
        }
    }
}

fn completion(text: &str) -> String {
    json!({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"total_tokens": 42}})
    .to_string()
}

fn delta(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"delta": {"content": content}, "finish_reason": null}]})
    )
}

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
