//! Which address a request comes from, for rate limiting and the session list.
//! `X-Forwarded-For` is believed only when the peer is one of `TRUSTED_PROXIES`;
//! otherwise any client could pick its own rate-limit key.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::Request;

pub fn client_ip(req: &Request, trusted: &[IpNet]) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|a| canonical(a.ip()))?;
    let forwarded =
        req.headers().get_all("x-forwarded-for").iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    Some(resolve(peer, &forwarded, trusted))
}

/// Walks the chain from the nearest hop outwards and stops at the first address
/// that is not a trusted proxy: hops further out were written by the client.
pub fn resolve(peer: IpAddr, forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&peer) {
        return peer;
    }
    for hop in forwarded_for.rsplit(',').map(str::trim).filter(|h| !h.is_empty()) {
        let Ok(ip) = hop.parse::<IpAddr>().map(canonical) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
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

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn untrusted_peers_cannot_spoof_their_address() {
        assert_eq!(resolve(ip("203.0.113.9"), "1.2.3.4", &[]), ip("203.0.113.9"));
    }

    #[test]
    fn trusted_proxies_pass_on_the_nearest_untrusted_hop() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("10.0.0.1"), "1.2.3.4, 198.51.100.7, 10.0.0.2", &trusted), ip("198.51.100.7"));
        assert_eq!(resolve(ip("10.0.0.1"), "", &trusted), ip("10.0.0.1"));
        assert_eq!(resolve(ip("10.0.0.1"), "garbage, 10.0.0.3", &trusted), ip("10.0.0.3"));
        assert_eq!(resolve(ip("10.0.0.1"), "::ffff:198.51.100.7", &trusted), ip("198.51.100.7"));
    }
}
