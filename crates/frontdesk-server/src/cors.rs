//! CORS for the partner and customer API, so a partner's own pages can call it from the
//! browser: preflights from a registered partner's domain (or a loopback host under the
//! development flag) are answered for `/api/partner/…` and `/api/customers/…` only. The agent
//! and admin API send no CORS headers (same-origin only). Which partner a page may act for is
//! checked per request, once its credential is known (`app::identity::check_page`).

use std::sync::Arc;

use actix_cors::Cors;
use actix_web::http::{header, Method};
use frontdesk_domain::origin::origin_host;

use crate::origins::PartnerOrigins;

/// How long a browser may reuse a preflight answer.
const PREFLIGHT_MAX_AGE_SECS: usize = 600;

fn is_partner_api(path: &str) -> bool {
    path.starts_with("/api/partner/") || path.starts_with("/api/customers/")
}

pub(crate) fn cors(origins: Arc<PartnerOrigins>) -> Cors {
    Cors::default()
        .allowed_origin_fn(move |origin, head| {
            is_partner_api(head.uri.path())
                && origin
                    .to_str()
                    .ok()
                    .and_then(origin_host)
                    .is_some_and(|host| origins.any_allows(&host))
        })
        .allowed_methods([Method::GET, Method::POST, Method::PATCH])
        .allowed_headers([header::AUTHORIZATION, header::CONTENT_TYPE])
        // Bearer tokens only: no cookies, so no credentials mode.
        .max_age(PREFLIGHT_MAX_AGE_SECS)
}

#[cfg(test)]
mod tests {
    use super::is_partner_api;

    #[test]
    fn only_the_partner_and_customer_api_is_open_to_other_sites() {
        for path in [
            "/api/partner/messages",
            "/api/partner/conversations/ann",
            "/api/customers/ann",
        ] {
            assert!(is_partner_api(path), "{path}");
        }
        for path in [
            "/api/agent/login",
            "/api/admin/agents",
            "/ws",
            "/console/",
            "/api/partnerx",
        ] {
            assert!(!is_partner_api(path), "{path}");
        }
    }
}
