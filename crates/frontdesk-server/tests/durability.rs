//! A message acknowledged with 2xx survives the server being killed.

mod support;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::{json, Value};
use support::{Backend, Server, TestDb};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

on_both_backends!(acknowledged_messages_survive_kill_9);

async fn acknowledged_messages_survive_kill_9(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let mut acknowledged = Vec::new();
    for n in 0..20 {
        acknowledged.push(
            server
                .say(&partner, conversation, "customer-1", &format!("m{n}"))
                .await,
        );
    }
    // SIGKILL right after the last acknowledgement: nothing gets to flush on the way out.
    server.kill();

    let server = Server::start(&db).await;
    assert_eq!(server.history(&partner, conversation).await, acknowledged);
    // And the restarted server keeps working with the same key and ids.
    let next = server
        .say(&partner, conversation, "customer-1", "after restart")
        .await;
    assert!(next["id"].as_i64() > acknowledged[19]["id"].as_i64());
}

/// What one post in a crowd ended with.
#[derive(Debug, Clone)]
struct Post {
    content: String,
    client_id: Option<String>,
    /// The stored message when the server answered 2xx; `None` when no answer came.
    acked: Option<Value>,
    /// Set when the server answered, but not 2xx.
    refused: Option<(u16, String)>,
}

const CROWD: usize = 50;

/// 50 senders posting in a loop until the server goes away, each post answered (or not) into
/// the returned list; `acks` counts 2xx answers so the test can signal mid-stream.
fn crowd(
    base: String,
    key: String,
    conversation: i64,
    acks: Arc<AtomicUsize>,
) -> tokio::task::JoinSet<Vec<Post>> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .expect("a client");
    let mut senders = tokio::task::JoinSet::new();
    for sender in 0..CROWD {
        let (client, base, key) = (client.clone(), base.clone(), key.clone());
        let acks = Arc::clone(&acks);
        senders.spawn(async move {
            let mut posts = Vec::new();
            for n in 0.. {
                let content = format!("sender {sender} message {n}");
                // Half the senders give a clientMessageId (retried after the restart), half do
                // not (the server's own append key is all that guards those).
                let client_id = (sender % 2 == 0).then(|| format!("c-{sender}-{n}"));
                let mut body = json!({"conversationId": conversation, "senderId": "customer-1",
                                      "content": content});
                if let Some(id) = &client_id {
                    body["clientMessageId"] = json!(id);
                }
                let answer = client
                    .post(format!("{base}/api/partner/messages"))
                    .bearer_auth(&key)
                    .json(&body)
                    .send()
                    .await;
                let mut post = Post {
                    content,
                    client_id,
                    acked: None,
                    refused: None,
                };
                let Ok(response) = answer else {
                    // No answer: the server is gone (or going); stop like a real client would.
                    posts.push(post);
                    return posts;
                };
                let status = response.status();
                let text = response.text().await;
                match text {
                    Ok(text) if status.is_success() => {
                        post.acked =
                            Some(serde_json::from_str(&text).unwrap_or_else(|e| {
                                panic!("{status} with non-JSON {text:?}: {e}")
                            }));
                        acks.fetch_add(1, Ordering::SeqCst);
                        posts.push(post);
                    }
                    Ok(text) => {
                        post.refused = Some((status.as_u16(), text));
                        posts.push(post);
                        return posts;
                    }
                    // The head came but the body did not: no answer.
                    Err(_) => {
                        posts.push(post);
                        return posts;
                    }
                }
            }
            posts
        });
    }
    senders
}

async fn wait_for_acks(acks: &AtomicUsize, at_least: usize) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while acks.load(Ordering::SeqCst) < at_least {
        assert!(
            tokio::time::Instant::now() < deadline,
            "only {} posts acknowledged in 60 s",
            acks.load(Ordering::SeqCst)
        );
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

async fn collect(mut senders: tokio::task::JoinSet<Vec<Post>>) -> Vec<Post> {
    let mut all = Vec::new();
    while let Some(posts) = senders.join_next().await {
        all.extend(posts.expect("a sender task"));
    }
    all
}

/// Every acknowledged post is in `history` with its id and content, nothing is there twice,
/// nothing is there that was not posted, and an unanswered post is there at most once.
fn assert_acknowledged_stored(posts: &[Post], history: &[Value]) {
    let contents: Vec<&str> = history
        .iter()
        .map(|m| m["content"].as_str().expect("content"))
        .collect();
    let unique: HashSet<&str> = contents.iter().copied().collect();
    assert_eq!(unique.len(), contents.len(), "a message stored twice");
    let ids: Vec<i64> = history
        .iter()
        .map(|m| m["id"].as_i64().expect("id"))
        .collect();
    assert!(
        ids.windows(2).all(|w| w[0] < w[1]),
        "history out of id order"
    );
    let by_content: HashMap<&str, &Value> = contents.iter().copied().zip(history).collect();
    let posted: HashSet<&str> = posts.iter().map(|p| p.content.as_str()).collect();
    for content in &contents {
        assert!(
            posted.contains(content),
            "{content:?} stored but never posted"
        );
    }
    for post in posts {
        if let Some(acked) = &post.acked {
            let stored = by_content
                .get(post.content.as_str())
                .unwrap_or_else(|| panic!("acknowledged {acked} lost"));
            // The same message: id, content, sender, timestamp.
            assert_eq!(*stored, acked, "acknowledged message changed");
        }
    }
}

on_both_backends!(kill_9_amid_fifty_concurrent_posts);

/// SIGKILL while 50 senders post at once, mid-batch: what was acknowledged was committed.
async fn kill_9_amid_fifty_concurrent_posts(backend: Backend) {
    let (db, server, partner, conversation) =
        support::start_with_conversation(backend, "customer-1").await;
    let acks = Arc::new(AtomicUsize::new(0));
    let senders = crowd(
        server.base.clone(),
        partner.key.clone(),
        conversation,
        Arc::clone(&acks),
    );
    // Well into the stream, with every sender busy.
    wait_for_acks(&acks, 150).await;
    server.kill();
    let posts = collect(senders).await;
    let acked: Vec<&Post> = posts.iter().filter(|p| p.acked.is_some()).collect();
    let unanswered: Vec<&Post> = posts
        .iter()
        .filter(|p| p.acked.is_none() && p.refused.is_none())
        .collect();
    assert!(acked.len() >= 150, "{} acknowledged", acked.len());
    let refused: Vec<_> = posts.iter().filter_map(|p| p.refused.clone()).collect();
    assert_eq!(refused, [], "posts refused before the kill");
    // Every sender was cut off mid-post (none got to finish its loop).
    assert_eq!(unanswered.len(), CROWD, "{unanswered:?}");

    let server = Server::start(&db).await;
    let history = server.history(&partner, conversation).await;
    assert_acknowledged_stored(&posts, &history);

    // A client retries what got no answer, with the same clientMessageId: each is then stored
    // exactly once, whether or not the killed server had committed it.
    let mut retried = 0;
    for post in &unanswered {
        let Some(client_id) = &post.client_id else {
            continue;
        };
        let (status, message) = server
            .send_message(
                &partner.key,
                &json!({"conversationId": conversation, "senderId": "customer-1",
                        "content": post.content, "clientMessageId": client_id}),
            )
            .await;
        let was_stored = history
            .iter()
            .any(|m| m["content"] == post.content.as_str());
        // 200: found the message the killed server had committed; 201: stored now.
        let expected = if was_stored {
            StatusCode::OK
        } else {
            StatusCode::CREATED
        };
        assert_eq!(status, expected, "{}: {message}", post.content);
        retried += 1;
    }
    assert_eq!(retried, CROWD / 2);
    let after_retry = server.history(&partner, conversation).await;
    assert_acknowledged_stored(&posts, &after_retry);
    for post in unanswered.iter().filter(|p| p.client_id.is_some()) {
        let copies = after_retry
            .iter()
            .filter(|m| m["content"] == post.content.as_str())
            .count();
        assert_eq!(copies, 1, "{} after its retry", post.content);
    }
    server.assert_no_panics();
}

on_both_backends!(sigterm_with_requests_in_flight);

/// SIGTERM while 50 senders post, one of them half-way through sending its body: the server
/// finishes what it had accepted (the half-sent request included), stores every message it
/// acknowledged, logs `stopped` and exits 0 (docs/configuration.md, "Start and stop").
async fn sigterm_with_requests_in_flight(backend: Backend) {
    let db = TestDb::new(backend).await;
    // The half-sent body waits for 150 acknowledgements first: more than the default body
    // deadline on a slow machine.
    let server = Server::start_with(&db, &[("FRONTDESK_BODY_TIMEOUT_MS", "120000")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "customer-1").await;
    // A request the server has read the head and half the body of when the signal comes.
    let slow_body = json!({"conversationId": conversation, "senderId": "customer-1",
                           "content": "sent across the signal"})
    .to_string();
    let (first_half, second_half) = slow_body.split_at(slow_body.len() / 2);
    let mut slow = tokio::net::TcpStream::connect(server.addr())
        .await
        .expect("connect");
    let head = format!(
        "POST /api/partner/messages HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         Connection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{first_half}",
        partner.key,
        slow_body.len()
    );
    slow.write_all(head.as_bytes()).await.expect("write head");

    let acks = Arc::new(AtomicUsize::new(0));
    let senders = crowd(
        server.base.clone(),
        partner.key.clone(),
        conversation,
        Arc::clone(&acks),
    );
    wait_for_acks(&acks, 150).await;
    server.send_sigterm();
    // The half-sent request completes after the signal, and is answered.
    tokio::time::sleep(Duration::from_millis(300)).await;
    slow.write_all(second_half.as_bytes())
        .await
        .expect("write the rest of the body");
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), slow.read_to_end(&mut answer))
        .await
        .expect("an answer within 30 s")
        .expect("read the answer");
    let answer = String::from_utf8_lossy(&answer).into_owned();
    assert!(
        answer.starts_with("HTTP/1.1 201 "),
        "the request in flight at SIGTERM: {answer}\n{}",
        server.log()
    );
    let slow_message: Value = serde_json::from_str(
        answer
            .split_once("\r\n\r\n")
            .map(|(_, body)| body)
            .expect("a body"),
    )
    .unwrap_or_else(|e| panic!("{answer}: {e}"));

    let mut posts = collect(senders).await;
    posts.push(Post {
        content: "sent across the signal".into(),
        client_id: None,
        acked: Some(slow_message.clone()),
        refused: None,
    });
    let (exit, log) = tokio::task::spawn_blocking(move || server.wait_for_exit())
        .await
        .expect("wait for the server");
    assert_eq!(exit.code(), Some(0), "exit status {exit}\n{log}");
    support::assert_stopped_in_order(&log);
    let refused: Vec<_> = posts.iter().filter_map(|p| p.refused.clone()).collect();
    assert_eq!(refused, [], "posts refused during the shutdown");

    let server = Server::start(&db).await;
    let history = server.history(&partner, conversation).await;
    assert_acknowledged_stored(&posts, &history);
    assert_eq!(
        history
            .iter()
            .filter(|m| m["content"] == "sent across the signal")
            .collect::<Vec<_>>(),
        [&slow_message]
    );
}
