//! A fake OpenAI-compatible chat-completions server over real HTTP on loopback, for the model
//! client's tests, the automated-reply tests and the bench. Each request takes the next step of
//! a script; once the script is spent, the `fallback` decides (by default: a 500). Every
//! request's JSON body and `Authorization` header is kept for the test to read back.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Each request's JSON body and `Authorization` header, in arrival order.
type Seen = Arc<Mutex<Vec<(Value, Option<String>)>>>;

/// Decides a request's step from its JSON body.
pub type Fallback = Arc<dyn Fn(&Value) -> Step + Send + Sync>;

/// What the fake server does with one request.
#[derive(Clone, Debug)]
pub enum Step {
    /// A whole response: status, extra headers, body.
    Answer(u16, Vec<(&'static str, String)>, String),
    /// A streamed 200: each chunk after its pause, then the connection closes.
    Stream(Vec<(Duration, String)>),
    /// Waits, then does the next step.
    After(Duration, Box<Step>),
}

impl Step {
    /// A whole completion of `text`, or (for a streaming request) `text` streamed in
    /// `pieces` with `pause` between them, each way after `latency`.
    pub fn reply(
        request: &Value,
        text: &str,
        latency: Duration,
        pieces: usize,
        pause: Duration,
    ) -> Step {
        let step = if request["stream"] == true {
            Step::Stream(stream_of(text, pieces, pause))
        } else {
            Step::Answer(200, vec![], completion(text))
        };
        Step::After(latency, Box::new(step))
    }

    /// A call of `handoff_to_human(reason)`, whole or streamed as the request asks.
    pub fn handoff(request: &Value, reason: &str) -> Step {
        if request["stream"] != true {
            return Step::Answer(200, vec![], handoff_completion(reason));
        }
        let arguments = json!({ "reason": reason }).to_string();
        let (head, tail) = arguments.split_at(arguments.len() / 2);
        let call = |name: Option<&str>, arguments: &str| {
            format!(
                "data: {}\n\n",
                json!({"choices": [{"delta": {"tool_calls": [{"index": 0,
                    "function": {"name": name, "arguments": arguments}}]}, "finish_reason": null}]})
            )
        };
        Step::Stream(vec![
            (Duration::ZERO, call(Some("handoff_to_human"), head)),
            (Duration::ZERO, call(None, tail)),
            (Duration::ZERO, stream_end()),
        ])
    }
}

/// `pieces` streamed, each after its pause, then the normal end.
pub fn stream_pieces(pieces: &[(Duration, &str)]) -> Step {
    let mut chunks: Vec<(Duration, String)> = pieces
        .iter()
        .map(|(pause, text)| (*pause, delta(text)))
        .collect();
    chunks.push((Duration::ZERO, stream_end()));
    Step::Stream(chunks)
}

pub struct FakeModel {
    /// The API base to configure (`…/v1`).
    pub url: String,
    requests: Seen,
    fallback: Arc<Mutex<Fallback>>,
    in_flight: Arc<AtomicUsize>,
}

impl FakeModel {
    pub async fn start(script: Vec<Step>) -> Self {
        Self::serve(
            script,
            Arc::new(|_: &Value| Step::Answer(500, vec![], "no script".into())),
        )
        .await
    }

    /// A model that answers every request with `fallback`'s step.
    pub async fn answering(fallback: impl Fn(&Value) -> Step + Send + Sync + 'static) -> Self {
        Self::serve(Vec::new(), Arc::new(fallback)).await
    }

    async fn serve(script: Vec<Step>, fallback: Fallback) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let addr = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let fallback = Arc::new(Mutex::new(fallback));
        let in_flight = Arc::new(AtomicUsize::new(0));
        let (seen, decide, busy) = (
            Arc::clone(&requests),
            Arc::clone(&fallback),
            Arc::clone(&in_flight),
        );
        tokio::spawn(async move {
            while let Ok((socket, _)) = listener.accept().await {
                let scripted = script.lock().map(|mut s| s.pop_front()).ok().flatten();
                let fallback = decide.lock().map(|f| Arc::clone(&f)).ok();
                tokio::spawn(serve(
                    socket,
                    scripted,
                    fallback,
                    Arc::clone(&seen),
                    Arc::clone(&busy),
                ));
            }
        });
        Self {
            url: format!("http://{addr}/v1"),
            requests,
            fallback,
            in_flight,
        }
    }

    /// A model that answers every request with `text` after `latency`, streamed in `pieces`
    /// when the request asks for a stream.
    pub async fn replying(text: &str, latency: Duration, pieces: usize) -> Self {
        let text = text.to_owned();
        Self::answering(move |request: &Value| {
            Step::reply(request, &text, latency, pieces, Duration::ZERO)
        })
        .await
    }

    /// The server environment that turns automated replies on with this model, failing fast
    /// (no retries): for `Server::start_with`, extended with a test's own settings.
    pub fn server_env(&self) -> Vec<(&'static str, &str)> {
        vec![
            ("FRONTDESK_AUTOMATED_REPLIES", "on"),
            ("FRONTDESK_LLM_URL", self.url.as_str()),
            ("FRONTDESK_LLM_MAX_RETRIES", "0"),
        ]
    }

    /// Changes what requests beyond the script get.
    pub fn set_fallback(&self, fallback: impl Fn(&Value) -> Step + Send + Sync + 'static) {
        if let Ok(mut current) = self.fallback.lock() {
            *current = Arc::new(fallback);
        }
    }

    pub fn requests(&self) -> Vec<(Value, Option<String>)> {
        self.requests.lock().map(|r| r.clone()).unwrap_or_default()
    }

    /// The JSON bodies only.
    pub fn bodies(&self) -> Vec<Value> {
        self.requests().into_iter().map(|(body, _)| body).collect()
    }

    /// Requests being answered right now.
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }
}

/// Decrements the in-flight count however the answer ends.
struct Busy(Arc<AtomicUsize>);

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn serve(
    mut socket: TcpStream,
    scripted: Option<Step>,
    fallback: Option<Fallback>,
    seen: Seen,
    in_flight: Arc<AtomicUsize>,
) {
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
    let body: Value =
        serde_json::from_slice(&buffer[head_end..head_end + length]).unwrap_or(Value::Null);
    in_flight.fetch_add(1, Ordering::SeqCst);
    let _busy = Busy(in_flight);
    let mut step = match (scripted, fallback) {
        (Some(step), _) => step,
        (None, Some(fallback)) => fallback(&body),
        (None, None) => Step::Answer(500, vec![], "no script".into()),
    };
    if let Ok(mut seen) = seen.lock() {
        seen.push((body, authorization));
    }
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

/// A whole completion of `text`, costing 42 tokens.
pub fn completion(text: &str) -> String {
    json!({"choices": [{"message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
           "usage": {"total_tokens": 42}})
    .to_string()
}

/// A whole completion that calls `handoff_to_human(reason)`.
pub fn handoff_completion(reason: &str) -> String {
    json!({"choices": [{"message": {"role": "assistant", "content": null, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {
            "name": "handoff_to_human", "arguments": json!({"reason": reason}).to_string()}}
    ]}, "finish_reason": "tool_calls"}]})
    .to_string()
}

/// One SSE event carrying a text fragment.
pub fn delta(content: &str) -> String {
    format!(
        "data: {}\n\n",
        json!({"choices": [{"delta": {"content": content}, "finish_reason": null}]})
    )
}

/// The SSE events that end a stream normally.
pub fn stream_end() -> String {
    format!(
        "data: {}\n\ndata: [DONE]\n\n",
        json!({"choices": [{"delta": {}, "finish_reason": "stop"}], "usage": {"total_tokens": 42}})
    )
}

/// `text` streamed in `pieces` (split on characters) with `pause` before each, then the end.
pub fn stream_of(text: &str, pieces: usize, pause: Duration) -> Vec<(Duration, String)> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(pieces.max(1)).max(1);
    let mut chunks: Vec<(Duration, String)> = chars
        .chunks(size)
        .map(|piece| (pause, delta(&piece.iter().collect::<String>())))
        .collect();
    chunks.push((Duration::ZERO, stream_end()));
    chunks
}

/// The text of the newest user message of a request body.
pub fn last_user_text(request: &Value) -> String {
    request["messages"]
        .as_array()
        .and_then(|messages| messages.iter().rev().find(|m| m["role"] == "user"))
        .and_then(|m| m["content"].as_str())
        .unwrap_or_default()
        .to_owned()
}
