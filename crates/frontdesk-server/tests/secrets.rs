//! API keys and session tokens are stored only as digests.

mod support;

use support::{Backend, Server, TestDb};

on_both_backends!(keys_are_stored_hashed);

async fn keys_are_stored_hashed(backend: Backend) {
    let db = TestDb::new(backend).await;
    let server = Server::start(&db).await;
    let partner = server.register("Acme").await;
    let token = server.session(&partner, "customer-1").await;
    // The random part alone, so a stored copy with another prefix would still be found.
    let secrets = [&partner.key[4..], &token[4..]];

    let partners = db.query_text("SELECT * FROM partners").await;
    let sessions = db.query_text("SELECT * FROM customer_sessions").await;
    assert_eq!(partners.len(), 1);
    assert_eq!(sessions.len(), 1);
    for row in partners.iter().chain(&sessions) {
        for cell in row.iter().flatten() {
            for secret in secrets {
                assert!(
                    !cell.contains(secret),
                    "a secret is stored in the clear: {cell}"
                );
            }
        }
    }
    let stored_hash = partners[0][3].clone().unwrap_or_default();
    assert_eq!(
        stored_hash.len(),
        64,
        "expected a hex SHA-256 digest: {stored_hash}"
    );

    // Nowhere in the SQLite files either (tables, indexes, WAL).
    if let Some(path) = db.sqlite_path() {
        for suffix in ["", "-wal"] {
            let file = format!("{}{suffix}", path.display());
            let bytes = std::fs::read(&file).unwrap_or_default();
            let text = String::from_utf8_lossy(&bytes);
            for secret in secrets {
                assert!(!text.contains(secret), "{file} holds a secret in the clear");
            }
        }
    }
}
