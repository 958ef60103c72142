//! The Flashback profile an agent sees follows the customer's birthdate through every PATCH, as
//! docs/flashback.md promises: computed when a birthdate is set, kept when a PATCH leaves the
//! birthdate out, and removed, not left stale, when the birthdate is cleared or the customer is
//! too young for one. Black-box: the partner API writes, the agent API reads, on both backends.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use support::{start_with_conversation, Agent, Backend, Partner, Server};

on_both_backends!(the_profile_follows_the_birthdate);

/// The customer's `birthdate` and `flashback` as an agent's conversation view shows them.
async fn seen_by_agent(server: &Server, agent: &Agent, conversation: i64) -> (Value, Value) {
    let path = format!("/api/agent/conversations/{conversation}");
    let (status, detail) = server
        .call(Method::GET, &path, Some(&agent.token), None)
        .await;
    assert_eq!(status, StatusCode::OK, "{detail}");
    (
        detail["customer"]["birthdate"].clone(),
        detail["customer"]["flashback"].clone(),
    )
}

async fn patch(server: &Server, partner: &Partner, fields: Value) {
    let customer = server.patch_customer(partner, "cust", &fields).await;
    assert_eq!(customer["id"], "cust", "{customer}");
}

async fn the_profile_follows_the_birthdate(backend: Backend) {
    let (_db, server, partner, conversation) = start_with_conversation(backend, "cust").await;
    let agent = server.agent("ann@example.com", false).await;
    // docs/flashback.md's worked example.
    let guide = json!({"flashBack": {
        "firstEventDate": {"month": "April", "year": 1999},
        "firstEventTrait": "Playful",
        "secondEventDate": {"month": "December", "year": 2006},
        "secondEventTrait": "Principled"
    }});
    // Worked by hand: d=10 m=3 o=69 -> January 1995 (Curious), April 2006 (69 mod 12 = 9).
    let march_1985 = json!({"flashBack": {
        "firstEventDate": {"month": "January", "year": 1995},
        "firstEventTrait": "Curious",
        "secondEventDate": {"month": "April", "year": 2006},
        "secondEventTrait": "Easygoing"
    }});

    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (Value::Null, Value::Null),
        "no birthdate yet"
    );

    patch(&server, &partner, json!({"birthdate": "1990-01-15"})).await;
    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (json!("1990-01-15"), guide.clone())
    );

    // A PATCH without a birthdate leaves the profile as it is.
    patch(&server, &partner, json!({"name": "Carla"})).await;
    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (json!("1990-01-15"), guide.clone())
    );

    // Too young (second event in January 2043): the old profile goes, the birthdate stays.
    patch(&server, &partner, json!({"birthdate": "2020-06-01"})).await;
    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (json!("2020-06-01"), Value::Null),
        "a too-young birthdate must remove the earlier profile"
    );

    // A new birthdate replaces the profile.
    patch(&server, &partner, json!({"birthdate": "1990-01-15"})).await;
    patch(&server, &partner, json!({"birthdate": "1985-03-10"})).await;
    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (json!("1985-03-10"), march_1985)
    );

    // `"birthdate": null` removes both.
    patch(&server, &partner, json!({"birthdate": null})).await;
    assert_eq!(
        seen_by_agent(&server, &agent, conversation).await,
        (Value::Null, Value::Null),
        "clearing the birthdate must remove the profile"
    );
    server.assert_no_panics();
}
