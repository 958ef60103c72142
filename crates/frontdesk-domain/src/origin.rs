//! Which browser pages may call a partner's API: the `Origin` a browser sends, against the
//! partner's registered domain.

/// The host of an `Origin` header (`scheme://host[:port]`), lowercased; `None` for `null`
/// (sandboxed pages, files) and anything malformed.
pub fn origin_host(origin: &str) -> Option<String> {
    let (scheme, rest) = origin.split_once("://")?;
    if scheme.is_empty() || rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
        return None;
    }
    let host = match rest.strip_prefix('[') {
        // An IPv6 literal keeps its brackets: `[::1]`.
        Some(v6) => &rest[..v6.find(']')? + 2],
        None => rest.split(':').next()?,
    };
    (!host.is_empty()).then(|| host.to_ascii_lowercase())
}

/// The `host[:port]` of an `Origin` header, to compare with a request's own `Host`.
pub fn origin_authority(origin: &str) -> Option<&str> {
    origin.split_once("://").map(|(_, authority)| authority)
}

/// A page on `host` belongs to the partner registered with `domain` when its host is that
/// domain or a subdomain of it (`shop.example.com` for `example.com`); scheme and port are
/// free, since a partner's site may be served on either.
pub fn host_is_within(host: &str, domain: &str) -> bool {
    host == domain
        || host
            .strip_suffix(domain)
            .is_some_and(|sub| sub.len() > 1 && sub.ends_with('.'))
}

/// A developer's own machine.
pub fn is_loopback(host: &str) -> bool {
    matches!(host, "localhost" | "127.0.0.1" | "[::1]") || host.ends_with(".localhost")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_host_is_read_from_an_origin() {
        for (origin, host) in [
            ("https://shop.example.com", Some("shop.example.com")),
            ("http://Example.COM:8080", Some("example.com")),
            ("http://127.0.0.1:3000", Some("127.0.0.1")),
            ("http://[::1]:3000", Some("[::1]")),
            ("null", None),
            ("https://", None),
            ("https://a.com/path", None),
            ("https://user@a.com", None),
            ("://a.com", None),
        ] {
            assert_eq!(origin_host(origin).as_deref(), host, "{origin}");
        }
    }

    #[test]
    fn the_authority_is_compared_with_the_host_header() {
        assert_eq!(origin_authority("http://a.com:8080"), Some("a.com:8080"));
        assert_eq!(origin_authority("https://a.com"), Some("a.com"));
        assert_eq!(origin_authority("null"), None);
    }

    #[test]
    fn a_partners_pages_are_its_domain_and_its_subdomains() {
        assert!(host_is_within("example.com", "example.com"));
        assert!(host_is_within("shop.example.com", "example.com"));
        assert!(host_is_within("a.b.example.com", "example.com"));
        assert!(!host_is_within("badexample.com", "example.com"));
        assert!(!host_is_within("example.com.evil.net", "example.com"));
        assert!(!host_is_within(".example.com", "example.com"));
        assert!(!host_is_within("example.org", "example.com"));
    }

    #[test]
    fn loopback_hosts() {
        for host in ["localhost", "127.0.0.1", "[::1]", "app.localhost"] {
            assert!(is_loopback(host), "{host}");
        }
        for host in ["localhost.example.com", "127.0.0.2.example", "example.com"] {
            assert!(!is_loopback(host), "{host}");
        }
    }
}
