//! Generated requests against the real server (proptest; issue 17, a bounded profile of what
//! schemathesis will do at length): odd query strings on every route that reads one, and odd
//! JSON bodies for the partner's message route. No answer may be a 5xx or a non-JSON error,
//! and nothing may be stored from a body that was refused.

mod support;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{error_code, Backend, Server, TestDb};

/// Query values that break parsers: numbers at and past their bounds, signs, blanks,
/// repeated keys, escapes, and whatever else.
fn query_value() -> impl Strategy<Value = String> {
    prop_oneof![
        Just(String::new()),
        any::<i64>().prop_map(|n| n.to_string()),
        Just(u64::MAX.to_string()),
        Just("99999999999999999999999".to_owned()),
        Just("-0".to_owned()),
        Just("1e3".to_owned()),
        Just("%00".to_owned()),
        Just("%FF%FE".to_owned()),
        Just("true".to_owned()),
        Just("waiting".to_owned()),
        "[a-zA-Z0-9%+&=._-]{0,16}",
    ]
}

fn query() -> impl Strategy<Value = String> {
    let key = prop_oneof![
        Just("after"),
        Just("limit"),
        Just("since"),
        Just("status"),
        Just("mine"),
        Just("clientId"),
        Just("token"),
        Just("x"),
    ];
    prop::collection::vec((key, query_value()), 0..4).prop_map(|pairs| {
        pairs
            .into_iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("&")
    })
}

/// A body for `POST /api/partner/messages`: the real fields, each of any JSON kind, sometimes
/// left out, sometimes joined by one that does not exist.
fn message_body(conversation: i64) -> impl Strategy<Value = Value> {
    let any_json = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        "\\PC{0,20}".prop_map(Value::from),
        Just(json!({"commandType": 5})),
        Just(json!([1, 2])),
        Just(Value::from("\u{0}")),
    ];
    let field = |good: Value| {
        prop_oneof![
            2 => Just(Some(good)),
            1 => any_json.clone().prop_map(Some),
            1 => Just(None),
        ]
    };
    (
        field(Value::from(conversation)),
        field(Value::from("ann")),
        field(Value::from("Hello")),
        field(Value::from(false)),
        field(json!({"commandType": "order_lookup"})),
        prop_oneof![3 => Just(None), 1 => Just(Some(("extra", Value::from(1))))],
    )
        .prop_map(
            |(conversation, sender, content, from_agent, metadata, extra)| {
                let mut body = serde_json::Map::new();
                for (key, value) in [
                    ("conversationId", conversation),
                    ("senderId", sender),
                    ("content", content),
                    ("isFromAgent", from_agent),
                    ("metadata", metadata),
                ] {
                    if let Some(value) = value {
                        body.insert(key.to_owned(), value);
                    }
                }
                if let Some((key, value)) = extra {
                    body.insert(key.to_owned(), value);
                }
                Value::Object(body)
            },
        )
}

/// A 4xx must be the contract's JSON error; nothing may be a 5xx.
fn check_answer(what: &str, status: StatusCode, body: &Value) -> Result<(), TestCaseError> {
    prop_assert!(!status.is_server_error(), "{what}: {status} {body}");
    if status.is_client_error() {
        let code = error_code(body);
        prop_assert!(!code.is_empty(), "{what}: {body}");
    }
    Ok(())
}

on_both_backends!(generated_requests_get_4xx_json_errors_never_5xx);

async fn generated_requests_get_4xx_json_errors_never_5xx(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start_with(&db, &[("FRONTDESK_WS_MAX_PER_CUSTOMER", "1000")]).await;
    let partner = server.register("Acme").await;
    let conversation = server.conversation(&partner, "ann").await;
    server.say(&partner, conversation, "ann", "first").await;
    let agent = server.agent("agent@example.com", false).await;
    let routes: Vec<(String, String)> = vec![
        (
            format!("/api/partner/messages/{conversation}"),
            partner.key.clone(),
        ),
        ("/api/partner/conversations/ann".into(), partner.key.clone()),
        ("/api/agent/conversations".into(), agent.token.clone()),
        (
            format!("/api/agent/conversations/{conversation}/messages"),
            agent.token.clone(),
        ),
        ("/ws".into(), partner.key.clone()),
    ];
    // proptest drives a synchronous closure: each case blocks on the request on a runtime of
    // its own thread.
    let handle = tokio::runtime::Handle::current();
    let server = std::sync::Arc::new(server);
    let checked = {
        let server = std::sync::Arc::clone(&server);
        let partner = partner.clone();
        tokio::task::spawn_blocking(move || {
            let mut runner = TestRunner::new(Config::with_cases(64));
            let queries = runner.run(&(0..routes.len(), query()), |(route, query)| {
                let (path, token) = &routes[route];
                let path = format!("{path}?{query}");
                let (status, body) =
                    handle.block_on(server.call(Method::GET, &path, Some(token), None));
                check_answer(&path, status, &body)
            });
            let mut runner = TestRunner::new(Config::with_cases(128));
            let bodies = runner.run(&message_body(conversation), |body| {
                let before = handle
                    .block_on(server.history(&partner, conversation))
                    .len();
                let (status, answer) = handle.block_on(server.call(
                    Method::POST,
                    "/api/partner/messages",
                    Some(&partner.key),
                    Some(&body),
                ));
                check_answer(&body.to_string(), status, &answer)?;
                let after = handle
                    .block_on(server.history(&partner, conversation))
                    .len();
                if status == StatusCode::CREATED {
                    prop_assert_eq!(after, before + 1);
                    prop_assert_eq!(&answer["content"], &body["content"]);
                } else {
                    prop_assert_eq!(after, before, "refused but stored: {}", body);
                }
                Ok(())
            });
            (queries, bodies)
        })
        .await
        .unwrap_or_else(|e| panic!("runner: {e}"))
    };
    let (queries, bodies) = checked;
    if let Err(failure) = queries {
        panic!("query strings: {failure}\n{}", server.log());
    }
    if let Err(failure) = bodies {
        panic!("message bodies: {failure}\n{}", server.log());
    }
    server.assert_no_panics();
}
