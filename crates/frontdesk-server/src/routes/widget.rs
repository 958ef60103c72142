//! `GET /widget/chat-widget.js`, the embeddable chat widget (docs/widget.md), and `GET /demo/`,
//! a page that embeds it. Both are compiled into the binary, like the console.
//!
//! Only these scopes are wrapped in `Compress`: wrapping the whole app would also run the
//! WebSocket upgrade and every API response through it.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::sync::OnceLock;

use actix_web::http::header;
use actix_web::middleware::Compress;
use actix_web::{web, HttpRequest, HttpResponse};

const WIDGET_JS: &str = include_str!("../../../../widget/chat-widget.js");
const DEMO_HTML: &str = include_str!("../../assets/demo/index.html");
const DEMO_JS: &str = include_str!("../../assets/demo/demo.js");

/// The demo page runs only our own scripts. The widget's styles are constructable stylesheets,
/// which `style-src 'self'` does not block, so the page also shows the widget under a strict CSP.
const DEMO_CSP: &str = "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; base-uri 'none'; form-action 'self'; \
     frame-ancestors 'none'";

pub fn configure(config: &mut web::ServiceConfig) {
    config
        .service(
            web::scope("/widget")
                .wrap(Compress::default())
                .route("/chat-widget.js", web::get().to(widget)),
        )
        .service(
            web::scope("/demo")
                .wrap(Compress::default())
                .route("", web::get().to(demo_redirect))
                .route("/", web::get().to(demo_page))
                .route("/demo.js", web::get().to(demo_script)),
        );
}

/// Weak, because `Compress` may send the same file gzipped: the bytes differ, the meaning not.
/// Derived from the content, so a new widget gets a new tag.
fn etag(body: &'static str) -> String {
    let mut hasher = DefaultHasher::new();
    body.hash(&mut hasher);
    format!("W/\"{:016x}-{}\"", hasher.finish(), body.len())
}

fn widget_etag() -> &'static str {
    static TAG: OnceLock<String> = OnceLock::new();
    TAG.get_or_init(|| etag(WIDGET_JS))
}

/// `If-None-Match` matches when it lists our tag (weak comparison, RFC 9110 13.1.2) or is `*`.
fn not_modified(request: &HttpRequest, tag: &str) -> bool {
    let opaque = |t: &str| t.trim().trim_start_matches("W/").to_owned();
    let ours = opaque(tag);
    request
        .headers()
        .get_all(header::IF_NONE_MATCH)
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|candidate| candidate.trim() == "*" || opaque(candidate) == ours)
}

async fn widget(request: HttpRequest) -> HttpResponse {
    let tag = widget_etag();
    let unchanged = not_modified(&request, tag);
    let mut response = if unchanged {
        HttpResponse::NotModified()
    } else {
        HttpResponse::Ok()
    };
    response
        .insert_header((header::ETAG, tag))
        // Partners' pages load it on every view: a few minutes of cache, then a cheap 304.
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // Loaded by other sites by design, also those that set Cross-Origin-Embedder-Policy.
        .insert_header(("Cross-Origin-Resource-Policy", "cross-origin"));
    if unchanged {
        return response.finish();
    }
    response
        .insert_header((header::CONTENT_TYPE, "text/javascript; charset=utf-8"))
        .body(WIDGET_JS)
}

/// Relative URLs in the page resolve against `/demo/`, so the slash matters.
async fn demo_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header((header::LOCATION, "/demo/"))
        .finish()
}

async fn demo_page() -> HttpResponse {
    demo_asset("text/html; charset=utf-8", DEMO_HTML)
}

async fn demo_script() -> HttpResponse {
    demo_asset("text/javascript; charset=utf-8", DEMO_JS)
}

fn demo_asset(content_type: &'static str, body: &'static str) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CONTENT_TYPE, content_type))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header((header::CONTENT_SECURITY_POLICY, DEMO_CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        // The session token travels in the URL fragment, which is never sent; leak nothing else.
        .insert_header((header::REFERRER_POLICY, "no-referrer"))
        .body(body)
}
