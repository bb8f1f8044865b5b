//! Where a request comes from: [`ClientInfo`], a handler argument that the
//! rate limits, the session list and the audit trail use. `X-Forwarded-For` is
//! believed only when the peer is one of `TRUSTED_PROXIES`; otherwise any
//! client could pick its own rate-limit key.

use std::net::IpAddr;

use ipnet::IpNet;
use poem::{Request, http::header::USER_AGENT};

/// The longest user agent kept; the rest is cut off (it is shown, never parsed).
const MAX_USER_AGENT_CHARS: usize = 512;

/// Where a request comes from: its client IP (through trusted proxies) and
/// user agent. Take it as a handler argument (its extractor is in `api::extract`).
#[derive(Clone, Debug, Default)]
pub struct ClientInfo {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
}

impl ClientInfo {
    pub fn from_request(req: &Request, trusted_proxies: &[IpNet], forwarded_header: ForwardedHeader) -> Self {
        Self {
            ip: client_ip(req, trusted_proxies, forwarded_header),
            user_agent: req
                .headers()
                .get(USER_AGENT)
                .and_then(|v| v.to_str().ok())
                .map(|ua| truncate(ua.to_owned(), MAX_USER_AGENT_CHARS)),
        }
    }
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((idx, _)) = s.char_indices().nth(max_chars) {
        s.truncate(idx);
    }
    s
}

pub use crate::config::ForwardedHeader;

pub fn client_ip(req: &Request, trusted: &[IpNet], header: ForwardedHeader) -> Option<IpAddr> {
    let peer = req.remote_addr().as_socket_addr().map(|a| canonical(a.ip()))?;
    let name = match header {
        ForwardedHeader::XForwardedFor => "x-forwarded-for",
        ForwardedHeader::Forwarded => "forwarded",
    };
    let raw = req.headers().get_all(name).iter().filter_map(|v| v.to_str().ok()).collect::<Vec<_>>().join(",");
    let hops = match header {
        ForwardedHeader::XForwardedFor => raw.split(',').map(str::to_owned).collect(),
        ForwardedHeader::Forwarded => forwarded_for_values(&raw),
    };
    Some(resolve_hops(peer, &hops, trusted))
}

/// The `for=` value of each RFC 7239 element, in order. Separators inside
/// quoted strings do not count (a client can put `,for=…` into a quoted
/// `host=`), and an element without exactly one `for=` is an unknown hop,
/// which ends the walk.
pub fn forwarded_for_values(header: &str) -> Vec<String> {
    split_unquoted(header, ',')
        .into_iter()
        .map(|element| {
            let mut values = split_unquoted(element, ';')
                .into_iter()
                .filter_map(|pair| pair.split_once('='))
                .filter(|(key, _)| key.trim().eq_ignore_ascii_case("for"))
                .map(|(_, value)| value.trim());
            match (values.next(), values.next()) {
                (Some(value), None) => {
                    value.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(value).to_owned()
                }
                _ => "unknown".to_owned(),
            }
        })
        .collect()
}

/// Splits on `separator` outside double-quoted strings (with `\` escapes).
fn split_unquoted(s: &str, separator: char) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut start, mut quoted, mut escaped) = (0, false, false);
    for (i, c) in s.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if quoted => escaped = true,
            '"' => quoted = !quoted,
            c if c == separator && !quoted => {
                parts.push(&s[start..i]);
                start = i + c.len_utf8();
            }
            _ => {}
        }
    }
    parts.push(&s[start..]);
    parts
}

/// An address as proxies write it: `1.2.3.4`, `1.2.3.4:5678`, `2001:db8::1`,
/// `[2001:db8::1]` or `[2001:db8::1]:443`. `unknown` and obfuscated names are not.
pub fn parse_hop(hop: &str) -> Option<IpAddr> {
    let hop = hop.trim().trim_matches('"');
    if let Some(rest) = hop.strip_prefix('[') {
        let (addr, tail) = rest.split_once(']')?;
        let port_ok = tail.is_empty() || tail.strip_prefix(':').is_some_and(|p| p.parse::<u16>().is_ok());
        return port_ok.then(|| addr.parse().ok()).flatten();
    }
    if let Ok(ip) = hop.parse::<IpAddr>() {
        return Some(ip);
    }
    let (addr, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    addr.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

/// [`resolve_hops`] over an `X-Forwarded-For` value.
pub fn resolve(peer: IpAddr, forwarded_for: &str, trusted: &[IpNet]) -> IpAddr {
    let hops: Vec<&str> = forwarded_for.split(',').collect();
    resolve_hops(peer, &hops, trusted)
}

/// Walks the chain from the nearest hop outwards and stops at the first address
/// that is not a trusted proxy: hops further out were written by the client.
pub fn resolve_hops(peer: IpAddr, hops: &[impl AsRef<str>], trusted: &[IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let mut client = peer;
    if !is_trusted(&peer) {
        return peer;
    }
    for hop in hops.iter().rev().map(|h| h.as_ref().trim()).filter(|h| !h.is_empty()) {
        let Some(ip) = parse_hop(hop).map(canonical) else {
            break;
        };
        client = ip;
        if !is_trusted(&ip) {
            break;
        }
    }
    client
}

pub fn canonical(ip: IpAddr) -> IpAddr {
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

    #[test]
    fn hops_with_a_port_are_addresses_too() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        assert_eq!(resolve(ip("10.0.0.1"), "1.2.3.4:5678", &trusted), ip("1.2.3.4"));
        assert_eq!(resolve(ip("10.0.0.1"), "[2001:db8::1]:443, 10.0.0.2:80", &trusted), ip("2001:db8::1"));
        assert_eq!(resolve(ip("10.0.0.1"), "[2001:db8::1]", &trusted), ip("2001:db8::1"));
        for bad in ["1.2.3.4:99999", "[2001:db8::1]:x", "2001:db8::1]:443", "unknown", "_hidden", "1.2.3.4:"] {
            assert_eq!(parse_hop(bad), None, "{bad}");
        }
    }

    #[test]
    fn rfc_7239_forwarded_elements_give_their_for_values() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        let header = r#"for=192.0.2.43;proto=https, For="[2001:db8:cafe::17]:4711";by=10.0.0.9, for=10.0.0.2"#;
        let hops = forwarded_for_values(header);
        assert_eq!(hops, ["192.0.2.43", "[2001:db8:cafe::17]:4711", "10.0.0.2"]);
        assert_eq!(resolve_hops(ip("10.0.0.1"), &hops, &trusted), ip("2001:db8:cafe::17"));
        // An element without `for=` (or `for=unknown`) ends the walk at the last known hop.
        assert_eq!(
            resolve_hops(ip("10.0.0.1"), &forwarded_for_values("for=1.2.3.4, proto=http"), &trusted),
            ip("10.0.0.1")
        );
        assert_eq!(resolve_hops(ip("10.0.0.1"), &forwarded_for_values("for=unknown"), &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn separators_inside_quotes_cannot_smuggle_a_hop() {
        let trusted = ["10.0.0.0/8".parse().unwrap()];
        // A proxy that copies the client's Host into a quoted host= parameter.
        let header = r#"for=203.0.113.5;host="x,for=1.2.3.4", for=10.0.0.2"#;
        assert_eq!(forwarded_for_values(header), ["203.0.113.5", "10.0.0.2"]);
        assert_eq!(resolve_hops(ip("10.0.0.1"), &forwarded_for_values(header), &trusted), ip("203.0.113.5"));
        let header = r#"host="a;for=1.2.3.4";for=203.0.113.5"#;
        assert_eq!(forwarded_for_values(header), ["203.0.113.5"]);
        // Two for= in one element is nobody's address.
        assert_eq!(forwarded_for_values("for=1.2.3.4;for=5.6.7.8"), ["unknown"]);
    }
}
