//! Routes, grouped as the integration guide groups them.

pub mod agents;
pub mod console;
pub mod conversations;
pub mod customers;
pub mod health;
pub mod messages;
pub mod partner_keys;
pub mod partners;
pub mod sessions;
pub mod widget;

use actix_web::web;

/// Every route of the guide and contract.md that exists so far.
pub fn configure(config: &mut web::ServiceConfig) {
    config
        .route("/healthz", web::get().to(health::healthz))
        .route("/api/partner/register", web::post().to(partners::register))
        .route(
            "/api/partner/conversations",
            web::post().to(conversations::create),
        )
        .route(
            "/api/partner/conversations/{customerId}",
            web::get().to(conversations::list_for_customer),
        )
        .route("/api/partner/messages", web::post().to(messages::send))
        .route(
            "/api/partner/messages/{conversationId}",
            web::get().to(messages::history),
        )
        .route("/api/partner/sessions", web::post().to(sessions::create))
        .route(
            "/api/customers/{customerId}",
            web::patch().to(customers::update),
        )
        .route("/ws", web::get().to(crate::realtime::handshake::connect))
        .route("/api/agent/login", web::post().to(agents::login))
        .route("/api/agent/logout", web::post().to(agents::logout))
        .route("/api/agent/me", web::get().to(agents::me))
        .route("/api/agent/conversations", web::get().to(agents::list))
        .route(
            "/api/agent/conversations/{id}",
            web::get().to(agents::detail),
        )
        .route(
            "/api/agent/conversations/{id}/messages",
            web::get().to(agents::messages),
        )
        .route(
            "/api/agent/conversations/{id}/messages",
            web::post().to(agents::send),
        )
        .route(
            "/api/agent/conversations/{id}/assign",
            web::post().to(agents::assign),
        )
        .route(
            "/api/agent/conversations/{id}/read",
            web::post().to(agents::read),
        )
        .route(
            "/api/agent/conversations/{id}/close",
            web::post().to(agents::close),
        )
        .route("/api/admin/agents", web::post().to(agents::create_agent))
        .route(
            "/api/admin/partners/{partnerId}/rotate-key",
            web::post().to(partner_keys::rotate),
        )
        .configure(console::configure)
        .configure(widget::configure);
}
