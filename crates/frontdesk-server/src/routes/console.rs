//! `GET /console/`: the agent console, three static files compiled into the binary so it needs
//! no files on disk, no CDN and no network at run time.

use actix_web::http::header;
use actix_web::middleware::Compress;
use actix_web::{web, HttpResponse};

const INDEX_HTML: &str = include_str!("../../assets/console/index.html");
const CONSOLE_JS: &str = include_str!("../../assets/console/console.js");
const CONSOLE_CSS: &str = include_str!("../../assets/console/console.css");

/// Only our own files may run or load; the WebSocket may use ws: or wss: on any host because
/// CSP 'self' does not cover ws: schemes in every browser. No framing (clickjacking), no
/// `<base>` tricks, forms post only to us.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; connect-src 'self' ws: wss:; \
     img-src 'self' data:; style-src 'self'; script-src 'self'; base-uri 'none'; \
     form-action 'self'; frame-ancestors 'none'";

/// Gzip when accepted (`Compress` on this scope only: the API and WebSockets are not wrapped).
pub fn configure(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/console")
            .wrap(Compress::default())
            .route("", web::get().to(redirect))
            .route("/", web::get().to(index))
            .route("/console.js", web::get().to(script))
            .route("/console.css", web::get().to(stylesheet)),
    );
}

/// Relative asset URLs in index.html resolve against `/console/`, so the slash matters.
async fn redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/console/"))
        .finish()
}

async fn index() -> HttpResponse {
    asset("text/html; charset=utf-8", INDEX_HTML)
}

async fn script() -> HttpResponse {
    asset("text/javascript; charset=utf-8", CONSOLE_JS)
}

async fn stylesheet() -> HttpResponse {
    asset("text/css; charset=utf-8", CONSOLE_CSS)
}

fn asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        // Revalidate every time: after an upgrade the browser must not mix old and new files.
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Tokens never travel in URLs we link to, but leak nothing to other sites regardless.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}
