//! Which site a browser request comes from. Browsers send `Origin` on cross-site requests,
//! WebSocket handshakes and same-site writes; servers and apps usually send none.

use actix_web::http::header;
use actix_web::HttpRequest;
use frontdesk_domain::origin::{origin_authority, origin_host};

use crate::client_ip::from_trusted_proxy;

/// The host of the page a request comes from when that page is on another site than this
/// server; empty when its `Origin` is `null` or malformed, which no rule accepts. `None`: no
/// `Origin` (a server, an app) or one of this server's own pages (the console, the demo).
pub(crate) fn foreign_page(
    request: &HttpRequest,
    trusted_proxies: &[std::net::IpAddr],
) -> Option<String> {
    let origin = request.headers().get(header::ORIGIN)?;
    let origin = origin.to_str().unwrap_or_default();
    let authority = origin_authority(origin).unwrap_or_default();
    let served_as = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|host| !authority.is_empty() && host.eq_ignore_ascii_case(authority))
    };
    // Behind a trusted proxy the public host is the one it forwarded.
    let own = served_as(header::HOST.as_str())
        || (from_trusted_proxy(request, trusted_proxies) && served_as("x-forwarded-host"));
    (!own).then(|| origin_host(origin).unwrap_or_default())
}
