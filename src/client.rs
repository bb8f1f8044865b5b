//! Where a request comes from: [`ClientInfo`], a handler argument that the
//! rate limits, the session list and the audit trail use. `X-Forwarded-For` is
//! believed only when the peer is one of `TRUSTED_PROXIES`; otherwise any
//! client could pick its own rate-limit key.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::{FromRequest, Request, RequestBody, http::header::USER_AGENT};

use crate::state::AppState;

/// The longest user agent kept; the rest is cut off (it is shown, never parsed).
const MAX_USER_AGENT_CHARS: usize = 512;

/// Where a request comes from: its client IP (through trusted proxies) and
/// user agent. Take it as a handler argument.
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn from_request(req: &Request, trusted_proxies: &[IpNet]) -> Self {
        Self {
            ip: client_ip(req, trusted_proxies),
            user_agent: req
                .headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| truncate(ua.to_owned(), MAX_USER_AGENT_CHARS)),
        }
    }
}

impl<'a> FromRequest<'a> for ClientInfo {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let state = req.data::<AppState>().expect("BUG: AppState is installed on the route");
        Ok(Self::from_request(req, &state.config.trusted_proxies))
    }
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max_chars) {
        s.truncate(idx);
    }
    s
}

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
