//! Item of issue 12: `PATCH /api/customers/:customerId` takes partner API keys only. A valid
//! customer session token there (its own customer's or another's) is refused with 403, not a
//! misleading 401 "unknown or expired"; an unknown token is still 401.

mod support;

use reqwest::{Method, StatusCode};
use serde_json::json;
use support::{error_code, Backend, Server, TestDb};

async fn a_customer_token_on_patch_gets_403(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    server
        .patch_customer(&partner, "bob", &json!({"name": "Bob"}))
        .await;
    let ann = server.session(&partner, "ann").await;
    for customer in ["bob", "ann"] {
        let (status, body) = server
            .call(
                Method::PATCH,
                &format!("/api/customers/{customer}"),
                Some(&ann),
                Some(&json!({"name": "Mallory"})),
            )
            .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{customer}: {body}");
        assert_eq!(error_code(&body), "forbidden");
    }
    let (status, body) = server
        .call(
            Method::PATCH,
            "/api/customers/bob",
            Some("fdc_0000000000000000000000000000000000000000000000000000000000000000"),
            Some(&json!({"name": "Mallory"})),
        )
        .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    // Nothing changed.
    let bob = server.patch_customer(&partner, "bob", &json!({})).await;
    assert_eq!(bob["name"], "Bob");
}

on_both_backends!(a_customer_token_on_patch_gets_403);
