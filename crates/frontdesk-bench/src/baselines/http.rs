//! Baseline (a): a bare actix-web server with the same routes, request and response JSON as
//! Frontdesk's message API (the domain crate's own request type and validation, the same
//! serialisation), but no authentication and no storage. Whatever Frontdesk costs beyond this
//! is its own work: auth, the database, the event log.

use std::process::ExitCode;
use std::sync::atomic::{AtomicI64, Ordering};

use actix_web::{web, App, HttpResponse, HttpServer};
use frontdesk_domain::message::PartnerMessageRequest;
use frontdesk_domain::{ConversationId, CustomerId, Message, MessageId, Sender, Timestamp};

use crate::config::BindArgs;

/// Messages in the canned history page (what the history scenario asks for).
pub const PAGE: usize = 50;

pub fn serve(args: &BindArgs) -> ExitCode {
    let system = actix_web::rt::System::new();
    match system.block_on(run(&args.bind)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("baseline-http: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(bind: &str) -> std::io::Result<()> {
    let ids = web::Data::new(AtomicI64::new(1));
    let page = web::Data::new(canned_page());
    // Same worker count as Frontdesk's default (one per core).
    let server = HttpServer::new(move || {
        App::new()
            .app_data(ids.clone())
            .app_data(page.clone())
            .route("/api/partner/messages", web::post().to(send))
            .route("/api/partner/messages/{id}", web::get().to(history))
            .route("/healthz", web::get().to(HttpResponse::Ok))
    })
    .bind(bind)?;
    for addr in server.addrs() {
        eprintln!("baseline-http listening on http://{addr}");
    }
    server.run().await
}

/// Parses and validates like `POST /api/partner/messages`, answers the message it would
/// have stored.
async fn send(body: web::Json<PartnerMessageRequest>, ids: web::Data<AtomicI64>) -> HttpResponse {
    match body.into_inner().into_draft() {
        Ok(draft) => HttpResponse::Created().json(Message {
            id: MessageId(ids.fetch_add(1, Ordering::Relaxed)),
            conversation_id: draft.conversation_id,
            sender: draft.sender,
            content: draft.content,
            is_from_agent: false,
            timestamp: Timestamp::new(time::OffsetDateTime::now_utc()),
            read_status: false,
            metadata: draft.metadata,
            client_message_id: draft.client_message_id,
        }),
        Err(error) => HttpResponse::UnprocessableEntity().body(error.to_string()),
    }
}

/// A page of `PAGE` messages, serialised per request as the real route does.
async fn history(page: web::Data<Vec<Message>>, _id: web::Path<i64>) -> HttpResponse {
    HttpResponse::Ok().json(page.as_slice())
}

fn canned_page() -> Vec<Message> {
    let at = Timestamp::new(time::OffsetDateTime::now_utc());
    (1..=PAGE as i64)
        .map(|id| Message {
            id: MessageId(id),
            conversation_id: ConversationId(1),
            sender: Sender::Customer(CustomerId::from_stored("hist-1".to_owned())),
            content: format!("seeded message {id}"),
            is_from_agent: false,
            timestamp: at,
            read_status: false,
            metadata: None,
            client_message_id: None,
        })
        .collect()
}
