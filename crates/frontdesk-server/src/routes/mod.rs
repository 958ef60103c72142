//! Routes, grouped as the integration guide groups them.

pub mod conversations;
pub mod customers;
pub mod health;
pub mod messages;
pub mod partners;
pub mod sessions;

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
        );
}

/// A customer token speaks only for its own customer id.
pub(crate) fn ensure_speaks_for(
    caller: &frontdesk_domain::Viewer,
    customer: &frontdesk_domain::CustomerId,
) -> Result<(), crate::error::ApiError> {
    match caller {
        frontdesk_domain::Viewer::Customer(_, own) if own != customer => Err(
            crate::error::ApiError::forbidden("a customer token speaks only for its own customer"),
        ),
        _ => Ok(()),
    }
}
