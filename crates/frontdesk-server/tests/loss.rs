//! 1,000 messages from 20 clients whose sockets drop and reopen at random: every message is
//! stored exactly once and every client ends with the full history of its conversation, in
//! order, without duplicates. On PostgreSQL each reconnect also picks one of two instances.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use support::{Backend, Server, TestDb, WsClient};

on_both_backends!(nothing_is_lost_across_random_reconnects);

const CUSTOMERS: usize = 10;
/// Two devices (tabs, phones) per customer.
const DEVICES: usize = 2;
const EACH: usize = 50;

async fn nothing_is_lost_across_random_reconnects(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut servers = vec![Server::start(&db).await];
    if backend == Backend::Postgres {
        servers.push(Server::start(&db).await);
    }
    let servers = Arc::new(servers);
    let partner = servers[0].register("Acme").await;
    let seed: u64 = rand::rng().random();
    println!("seed {seed}");

    let mut conversations = Vec::new();
    let mut tokens = Vec::new();
    for c in 0..CUSTOMERS {
        conversations.push(
            servers[0]
                .conversation(&partner, &format!("customer-{c}"))
                .await,
        );
        tokens.push(servers[0].session(&partner, &format!("customer-{c}")).await);
    }

    // A lost or duplicated message would leave a device waiting forever: bound the wait.
    let devices = (0..CUSTOMERS * DEVICES).map(|device| {
        let customer = device / DEVICES;
        let servers = Arc::clone(&servers);
        let query = format!("clientId=customer-{customer}&token={}", tokens[customer]);
        let conversation = conversations[customer];
        let mut rng = StdRng::seed_from_u64(seed.wrapping_add(device as u64));
        tokio::spawn(async move {
            let run = run_device(&servers, &query, conversation, device, &mut rng);
            tokio::time::timeout(Duration::from_secs(120), run)
                .await
                .unwrap_or_else(|_| panic!("device {device} never saw the whole history"))
        })
    });
    let results = futures_util::future::join_all(devices).await;

    // Stored exactly once each.
    let mut stored: BTreeMap<i64, Vec<(i64, String)>> = BTreeMap::new();
    for row in db
        .query_text("SELECT conversation_id, id, content FROM messages ORDER BY id")
        .await
    {
        let field = |i: usize| row[i].clone().unwrap_or_default();
        stored
            .entry(field(0).parse().unwrap_or_default())
            .or_default()
            .push((field(1).parse().unwrap_or_default(), field(2)));
    }
    let total: usize = stored.values().map(Vec::len).sum();
    assert_eq!(total, CUSTOMERS * DEVICES * EACH, "seed {seed}");
    for (customer, conversation) in conversations.iter().enumerate() {
        let contents: BTreeSet<String> = stored[conversation]
            .iter()
            .map(|(_, c)| c.clone())
            .collect();
        let expected: BTreeSet<String> = (0..DEVICES)
            .flat_map(|d| {
                (0..EACH).map(move |n| format!("device {} message {n}", customer * DEVICES + d))
            })
            .collect();
        assert_eq!(
            contents, expected,
            "seed {seed}: conversation {conversation}"
        );
    }

    // Every device saw its conversation's whole history, in id order, each message once.
    for (device, result) in results.into_iter().enumerate() {
        let (seen, reconnects) = result.unwrap_or_else(|e| panic!("device {device}: {e}"));
        let conversation = conversations[device / DEVICES];
        let ids: Vec<i64> = stored[&conversation].iter().map(|(id, _)| *id).collect();
        assert_eq!(
            seen, ids,
            "seed {seed}: device {device} after {reconnects} reconnects"
        );
        assert!(
            reconnects > 0,
            "device {device} never reconnected: the test proved nothing"
        );
    }
    for server in servers.iter() {
        server.assert_no_panics();
    }
}

/// Sends its messages while dropping its socket at random; resends whatever was not
/// acknowledged; resumes from its last cursor. Returns the message ids it saw, and how often
/// it reconnected.
async fn run_device(
    servers: &[Server],
    query: &str,
    conversation: i64,
    device: usize,
    rng: &mut StdRng,
) -> (Vec<i64>, usize) {
    let mut cursor = 0;
    let mut seen: Vec<i64> = Vec::new();
    let mut next = 0;
    let mut unacked: BTreeSet<usize> = BTreeSet::new();
    let mut reconnects = 0;
    let done = |seen: &Vec<i64>, next: usize, unacked: &BTreeSet<usize>| {
        next == EACH && unacked.is_empty() && seen.len() >= DEVICES * EACH
    };
    while !done(&seen, next, &unacked) {
        let server = &servers[rng.random_range(0..servers.len())];
        let mut client = WsClient::connect(server, &format!("{query}&since={cursor}"), None)
            .await
            .unwrap_or_else(|status| panic!("device {device}: refused {status}"));
        client.cursor = cursor;
        // A retry after a reconnect reuses the clientMessageId: stored once whatever happened.
        for n in unacked.clone() {
            send(&mut client, conversation, device, n).await;
        }
        let mut steps = 0;
        loop {
            steps += 1;
            if next < EACH && rng.random_bool(0.5) {
                send(&mut client, conversation, device, next).await;
                unacked.insert(next);
                next += 1;
            }
            match client.next_within(Duration::from_millis(20)).await {
                Some(frame) => match frame["type"].as_str() {
                    Some("message") => {
                        let id = frame["payload"]["id"].as_i64().unwrap_or_default();
                        assert!(!seen.contains(&id), "device {device}: message {id} twice");
                        seen.push(id);
                        cursor = client.cursor;
                    }
                    Some("ack") => {
                        let id = frame["payload"]["clientMessageId"]
                            .as_str()
                            .unwrap_or_default();
                        if let Some(n) = id.rsplit('-').next().and_then(|n| n.parse().ok()) {
                            unacked.remove(&n);
                        }
                    }
                    Some("error") => panic!("device {device}: {frame}"),
                    _ => cursor = client.cursor.max(cursor),
                },
                None if done(&seen, next, &unacked) => break,
                None => {}
            }
            // At random, and once for sure early on: a device that happened never to drop
            // (about 0.96^150 of them) would prove nothing.
            if rng.random_bool(0.04) || (reconnects == 0 && steps == 20) {
                break;
            }
        }
        if !done(&seen, next, &unacked) {
            // Gone without a goodbye, like a phone losing its network.
            drop(client);
            reconnects += 1;
        }
    }
    (seen, reconnects)
}

async fn send(client: &mut WsClient, conversation: i64, device: usize, n: usize) {
    client
        .send(&json!({"type": "message", "payload": {
            "conversationId": conversation,
            "content": format!("device {device} message {n}"),
            "clientMessageId": format!("d{device}-{n}")
        }}))
        .await;
}
