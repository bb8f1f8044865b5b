//! The session cookies: the one place that knows their names, paths and
//! attributes. Clearing a cookie uses the same builder as setting it, or the
//! browser would keep the original (a cookie is keyed by name, path and domain).

use cookie::{Cookie, SameSite};
use poem::Request;

use crate::config::Config;

pub const ACCESS_COOKIE: &str = "access_token";
pub const REFRESH_COOKIE: &str = "refresh_token";
pub const DEVICE_COOKIE: &str = "device_token";
pub const MFA_TICKET_COOKIE: &str = "mfa_ticket";
/// The login ticket is only ever sent to the second-factor endpoints.
pub const MFA_PATH: &str = "/api/v1/auth/mfa";
/// The device cookie is only ever sent to the login endpoint.
pub const DEVICE_PATH: &str = "/api/v1/auth/login";
/// The refresh token is only ever sent to the auth endpoints.
pub const REFRESH_PATH: &str = "/api/v1/auth";

#[derive(Clone, Copy)]
pub enum CookieKind {
    Access,
    Refresh,
    Device,
    MfaTicket,
}

impl CookieKind {
    fn name(self) -> &'static str {
        match self {
            CookieKind::Access => ACCESS_COOKIE,
            CookieKind::Refresh => REFRESH_COOKIE,
            CookieKind::Device => DEVICE_COOKIE,
            CookieKind::MfaTicket => MFA_TICKET_COOKIE,
        }
    }

    fn path(self) -> &'static str {
        match self {
            CookieKind::Access => "/",
            CookieKind::Refresh => REFRESH_PATH,
            CookieKind::Device => DEVICE_PATH,
            CookieKind::MfaTicket => MFA_PATH,
        }
    }
}

/// A `Set-Cookie` value that stores `token` for `max_age_secs`.
pub fn set(kind: CookieKind, token: &str, max_age_secs: i64, config: &Config) -> String {
    build(kind, token.to_owned(), max_age_secs.max(0), config)
}

/// A `Set-Cookie` value that deletes the cookie (empty, `Max-Age=0`, same path and domain).
pub fn cleared(kind: CookieKind, config: &Config) -> String {
    build(kind, String::new(), 0, config)
}

fn build(kind: CookieKind, value: String, max_age_secs: i64, config: &Config) -> String {
    let mut cookie = Cookie::build((kind.name(), value))
        .http_only(true)
        .same_site(SameSite::Strict)
        .path(kind.path())
        .max_age(time::Duration::seconds(max_age_secs))
        .secure(config.cookie_secure);
    if let Some(domain) = &config.cookie_domain {
        cookie = cookie.domain(domain.clone());
    }
    cookie.build().to_string()
}

/// The first cookie called `name` in the request's `Cookie` headers.
pub fn read(req: &Request, name: &str) -> Option<String> {
    req.headers()
        .get_all(poem::http::header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(Cookie::split_parse)
        .filter_map(Result::ok)
        .find(|c| c.name() == name)
        .map(|c| c.value().to_owned())
        .filter(|v| !v.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refresh_cookie_is_scoped_to_the_auth_path_with_every_attribute() {
        let c = set(CookieKind::Refresh, "t", 60, &Config::default());
        for part in ["refresh_token=t", "HttpOnly", "SameSite=Strict", "Path=/api/v1/auth", "Max-Age=60", "Secure"] {
            assert!(c.contains(part), "{part} missing from {c}");
        }
    }

    #[test]
    fn insecure_mode_and_domain_are_honoured() {
        let config = Config { cookie_secure: false, cookie_domain: Some("example.com".into()), ..Config::default() };
        let c = cleared(CookieKind::Access, &config);
        assert!(!c.contains("Secure"), "{c}");
        assert!(c.contains("Domain=example.com") && c.contains("Max-Age=0") && c.contains("Path=/"), "{c}");
    }
}
