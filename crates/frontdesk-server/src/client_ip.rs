//! Which client a request comes from, for per-address limits: the TCP peer, never a header a
//! client can write, unless the peer is a configured trusted proxy (then the nearest address in
//! `X-Forwarded-For` that is not itself a trusted proxy). IPv6 clients are keyed by their /64,
//! the block one subscriber usually holds, so hopping addresses inside it gains nothing.

use std::net::{IpAddr, Ipv6Addr};

use actix_web::HttpRequest;

/// The address per-address limits count against.
pub fn client_ip(request: &HttpRequest, trusted_proxies: &[IpAddr]) -> Option<IpAddr> {
    let peer = request.peer_addr()?.ip();
    let forwarded = request
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|value| value.to_str().ok())
        .collect::<Vec<_>>()
        .join(",");
    Some(limit_key(resolve(peer, &forwarded, trusted_proxies)))
}

/// Whether the request came through a configured trusted proxy, whose forwarding headers
/// are believed.
pub fn from_trusted_proxy(request: &HttpRequest, trusted_proxies: &[IpAddr]) -> bool {
    request
        .peer_addr()
        .is_some_and(|peer| trusted_proxies.contains(&canonical(peer.ip())))
}

/// The client behind `peer`, reading `forwarded` (an `X-Forwarded-For` list) only when `peer`
/// is trusted, from the right (the entries the proxies appended themselves).
fn resolve(peer: IpAddr, forwarded: &str, trusted_proxies: &[IpAddr]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted_proxies.contains(&canonical(*ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let mut client = peer;
    for entry in forwarded.rsplit(',') {
        match entry.trim().parse::<IpAddr>() {
            Ok(ip) => {
                client = ip;
                if !is_trusted(&ip) {
                    break;
                }
            }
            // A malformed entry was written by someone untrusted: stop at the last good one.
            Err(_) => break,
        }
    }
    client
}

/// IPv4 (also when mapped into IPv6) as it is; IPv6 reduced to its /64 prefix.
fn limit_key(ip: IpAddr) -> IpAddr {
    match canonical(ip) {
        IpAddr::V6(v6) => {
            let [a, b, c, d, ..] = v6.segments();
            IpAddr::V6(Ipv6Addr::new(a, b, c, d, 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxy = ip("10.0.0.1");
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &[proxy]),
            ip("203.0.113.9")
        );
        assert_eq!(
            resolve(ip("203.0.113.9"), "1.2.3.4", &[]),
            ip("203.0.113.9")
        );
        assert_eq!(resolve(proxy, "1.2.3.4", &[proxy]), ip("1.2.3.4"));
        // A client's own forged entries sit left of what the proxy appended.
        assert_eq!(resolve(proxy, "6.6.6.6, 1.2.3.4", &[proxy]), ip("1.2.3.4"));
        // Chained trusted proxies are skipped; garbage stops the walk.
        assert_eq!(
            resolve(proxy, "1.2.3.4, 10.0.0.2", &[proxy, ip("10.0.0.2")]),
            ip("1.2.3.4")
        );
        assert_eq!(resolve(proxy, "junk", &[proxy]), proxy);
        assert_eq!(resolve(proxy, "", &[proxy]), proxy);
    }

    #[test]
    fn ipv6_is_keyed_by_its_64() {
        assert_eq!(
            limit_key(ip("2001:db8:1:2:aaaa::1")),
            limit_key(ip("2001:db8:1:2:bbbb::2"))
        );
        assert_ne!(
            limit_key(ip("2001:db8:1:2::1")),
            limit_key(ip("2001:db8:1:3::1"))
        );
        assert_eq!(limit_key(ip("::ffff:127.0.0.2")), ip("127.0.0.2"));
    }
}
