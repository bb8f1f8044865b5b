//! Browser protections, all in one place: CORS for the `ALLOWED_ORIGINS`
//! allowlist, the rejection of unsafe cross-site requests (on top of
//! `SameSite=Strict`), the security headers on every response and
//! `Cache-Control: no-store` on the API. They are middleware in front of every
//! route, so no handler ever runs for a forged cross-site request and no
//! response, error or 404 included, goes out without its headers.

use std::sync::Arc;

use poem::{
    Endpoint, IntoResponse, Middleware, Request, Response, Result,
    http::{HeaderValue, Method, StatusCode, header},
    middleware::SetHeader,
};

use crate::error::ApiError;

/// The origins allowed to call the API with credentials, normalized
/// (`scheme://host[:port]`, no trailing slash, lowercase).
#[derive(Clone, Debug, Default)]
pub struct Origins(Arc<Vec<String>>);

impl Origins {
    pub fn new(list: &[String]) -> Self {
        Self(Arc::new(list.iter().map(|o| o.trim_end_matches('/').to_ascii_lowercase()).collect()))
    }

    pub fn allows(&self, origin: &str) -> bool {
        let origin = origin.trim_end_matches('/').to_ascii_lowercase();
        self.0.contains(&origin)
    }
}

fn header_str(req: &Request, name: impl header::AsHeaderName) -> Option<&str> {
    req.headers().get(name).and_then(|v| v.to_str().ok())
}

/// The request comes from a page on this server's own origin (`Origin`'s
/// host and port equal the `Host` header).
fn is_same_origin(origin: &str, host: Option<&str>) -> bool {
    let authority = origin.split_once("://").map(|(_, rest)| rest).unwrap_or("");
    host.is_some_and(|h| !authority.is_empty() && authority.eq_ignore_ascii_case(h))
}

/// Decides whether an unsafe request is a browser's cross-site request that
/// must be refused. Requests without `Origin` and `Sec-Fetch-Site` (curl,
/// server-to-server) pass: they carry no ambient browser cookies.
pub fn is_forged(req: &Request, origins: &Origins) -> bool {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return false;
    }
    let origin = header_str(req, header::ORIGIN);
    // HTTP/2 carries the authority in the URI, not in a Host header.
    let host = header_str(req, header::HOST).or_else(|| req.uri().authority().map(|a| a.as_str()));
    let origin_ok = origin.map(|o| is_same_origin(o, host) || origins.allows(o));
    let fetch_site = header_str(req, "sec-fetch-site");
    match origin_ok {
        Some(false) => true,
        // A cross-site fetch is fine only from an allowlisted origin.
        _ if fetch_site == Some("cross-site") => !origin.is_some_and(|o| origins.allows(o)),
        _ => false,
    }
}

pub struct RejectCrossSite(pub Origins);

impl<E: Endpoint> Middleware<E> for RejectCrossSite {
    type Output = RejectCrossSiteEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        RejectCrossSiteEndpoint(ep, self.0.clone())
    }
}

pub struct RejectCrossSiteEndpoint<E>(E, Origins);

impl<E: Endpoint> Endpoint for RejectCrossSiteEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        if is_forged(&req, &self.1) {
            tracing::info!(method = %req.method(), path = %req.uri().path(), "cross-site request rejected");
            return Err(ApiError::CsrfRejected.into());
        }
        self.0.call(req).await
    }
}

/// CORS for the allowlist only: the origin is echoed (never `*`) with
/// `Access-Control-Allow-Credentials: true`; other origins get no CORS headers.
pub struct Cors(pub Origins);

impl<E: Endpoint> Middleware<E> for Cors {
    type Output = CorsEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        CorsEndpoint(ep, self.0.clone())
    }
}

pub struct CorsEndpoint<E>(E, Origins);

const ALLOWED_METHODS: &str = "GET, POST, PUT, PATCH, DELETE";
const ALLOWED_HEADERS: &str = "Content-Type, Authorization";
const EXPOSED_HEADERS: &str = "X-Total-Count, Retry-After";

impl<E: Endpoint> Endpoint for CorsEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let origin = header_str(&req, header::ORIGIN).map(str::to_owned);
        let allowed = origin.as_deref().filter(|o| self.1.allows(o)).map(str::to_owned);
        let is_preflight =
            req.method() == Method::OPTIONS && req.headers().contains_key(header::ACCESS_CONTROL_REQUEST_METHOD);

        let mut response = if is_preflight {
            match &allowed {
                Some(_) => Response::builder()
                    .status(StatusCode::NO_CONTENT)
                    .header(header::ACCESS_CONTROL_ALLOW_METHODS, ALLOWED_METHODS)
                    .header(header::ACCESS_CONTROL_ALLOW_HEADERS, ALLOWED_HEADERS)
                    .header(header::ACCESS_CONTROL_MAX_AGE, "600")
                    .finish(),
                None => ApiError::CsrfRejected.into_response(),
            }
        } else {
            self.0.call(req).await?.into_response()
        };
        let headers = response.headers_mut();
        headers.append(header::VARY, HeaderValue::from_static("Origin"));
        if let Some(origin) = allowed.and_then(|o| HeaderValue::from_str(&o).ok()) {
            headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
            headers.insert(header::ACCESS_CONTROL_ALLOW_CREDENTIALS, HeaderValue::from_static("true"));
            headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, HeaderValue::from_static(EXPOSED_HEADERS));
        }
        Ok(response)
    }
}

/// `X-Content-Type-Options`, `X-Frame-Options` and `Referrer-Policy` on every
/// response, and HSTS when cookies are `Secure` (the deployment is HTTPS).
pub fn security_headers(cookie_secure: bool) -> SetHeader {
    let headers = SetHeader::new()
        .overriding("X-Content-Type-Options", "nosniff")
        .overriding("X-Frame-Options", "DENY")
        .overriding("Referrer-Policy", "no-referrer");
    if cookie_secure {
        headers.overriding("Strict-Transport-Security", "max-age=31536000; includeSubDomains")
    } else {
        headers
    }
}

/// `Cache-Control: no-store` on every API response: they carry personal data
/// and `Set-Cookie`, which no shared or browser cache may keep.
pub struct NoStore;

impl<E: Endpoint> Middleware<E> for NoStore {
    type Output = NoStoreEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        NoStoreEndpoint(ep)
    }
}

pub struct NoStoreEndpoint<E>(E);

impl<E: Endpoint> Endpoint for NoStoreEndpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let is_api = req.uri().path().starts_with("/api/");
        let mut response = self.0.call(req).await?.into_response();
        if is_api {
            response.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        }
        Ok(response)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(method: Method, headers: &[(&str, &str)]) -> Request {
        let mut builder = Request::builder().method(method).uri(poem::http::Uri::from_static("/api/v1/tasks"));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        builder.finish()
    }

    #[test]
    fn unsafe_cross_site_requests_are_forged_unless_allowlisted() {
        let origins = Origins::new(&["https://app.example.com".into()]);
        let host = ("host", "api.example.com");
        assert!(is_forged(&req(Method::POST, &[host, ("origin", "https://evil.example")]), &origins));
        assert!(is_forged(&req(Method::DELETE, &[host, ("sec-fetch-site", "cross-site")]), &origins));
        assert!(is_forged(&req(Method::POST, &[host, ("origin", "null")]), &origins));
        assert!(!is_forged(
            &req(Method::POST, &[host, ("origin", "https://app.example.com"), ("sec-fetch-site", "cross-site")]),
            &origins
        ));
        assert!(!is_forged(
            &req(Method::POST, &[host, ("origin", "https://api.example.com"), ("sec-fetch-site", "same-origin")]),
            &origins
        ));
        assert!(!is_forged(&req(Method::POST, &[host]), &origins), "curl sends neither header");
        assert!(!is_forged(&req(Method::GET, &[host, ("origin", "https://evil.example")]), &origins));
    }
}
