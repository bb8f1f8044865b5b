//! One span per request, and one log line when it finishes: method, route
//! template, status, latency, request id, and the user and session once the
//! access token has been checked (`CurrentUser` records them). Every line
//! logged while the request runs carries the span's fields.
//!
//! The request id is the `X-Request-Id` a trusted proxy sent (so one id
//! follows a request through the proxy's log and ours), or a new one; it is
//! echoed on the response either way. From anyone else the header is ignored:
//! a client could otherwise forge lines into another request's trail.

use std::{sync::Arc, time::Instant};

use ipnet::IpNet;
use poem::{Endpoint, IntoResponse, Middleware, PathPattern, Request, Response, http::HeaderValue};
use tracing::{Instrument, field::Empty};
use uuid::Uuid;

pub const REQUEST_ID_HEADER: &str = "x-request-id";
/// Longest request id kept from a proxy.
const MAX_ID_LEN: usize = 128;

pub struct RequestLog {
    trusted_proxies: Arc<[IpNet]>,
}

impl RequestLog {
    pub fn new(trusted_proxies: &[IpNet]) -> Self {
        Self { trusted_proxies: trusted_proxies.into() }
    }
}

impl<E: Endpoint> Middleware<E> for RequestLog {
    type Output = RequestLogEndpoint<E>;

    fn transform(&self, inner: E) -> Self::Output {
        RequestLogEndpoint { inner, trusted_proxies: self.trusted_proxies.clone() }
    }
}

pub struct RequestLogEndpoint<E> {
    inner: E,
    trusted_proxies: Arc<[IpNet]>,
}

/// The id of the request being served, for handlers that want it.
#[derive(Clone, Debug)]
pub struct RequestId(pub Arc<str>);

impl<E: Endpoint> Endpoint for RequestLogEndpoint<E> {
    type Output = Response;

    async fn call(&self, mut req: Request) -> poem::Result<Response> {
        let id: Arc<str> = match forwarded_id(&req, &self.trusted_proxies) {
            Some(id) => id.into(),
            None => Uuid::new_v4().to_string().into(),
        };
        // The path only: query strings carry tokens (email links).
        let span = tracing::info_span!(
            "request",
            request_id = %id,
            method = %req.method(),
            path = %req.uri().path(),
            route = Empty,
            status = Empty,
            latency_ms = Empty,
            user_id = Empty,
            session_id = Empty,
        );
        req.set_data(RequestId(id.clone()));
        let method = req.method().clone();
        let start = Instant::now();
        async move {
            let mut resp = match self.inner.call(req).await {
                Ok(resp) => resp.into_response(),
                Err(err) => err.into_response(),
            };
            let span = tracing::Span::current();
            let elapsed = start.elapsed();
            let route = resp.data::<PathPattern>().map(|p| &*p.0).filter(|p| !p.is_empty()).unwrap_or("unmatched");
            span.record("route", route);
            span.record("status", resp.status().as_u16());
            span.record("latency_ms", elapsed.as_secs_f64() * 1000.0);
            crate::prometheus::http_request(method.as_str(), route, resp.status().as_u16(), elapsed);
            tracing::info!("request finished");
            if let Ok(value) = HeaderValue::from_str(&id) {
                resp.headers_mut().insert(REQUEST_ID_HEADER, value);
            }
            Ok(resp)
        }
        .instrument(span)
        .await
    }
}

/// The proxy's request id, if the peer is a trusted proxy and the id is sane.
fn forwarded_id(req: &Request, trusted_proxies: &[IpNet]) -> Option<String> {
    let peer = req.remote_addr().as_socket_addr()?.ip();
    let peer = crate::client::canonical(peer);
    if !trusted_proxies.iter().any(|net| net.contains(&peer)) {
        return None;
    }
    let value = req.headers().get(REQUEST_ID_HEADER)?.to_str().ok()?.trim();
    let sane = !value.is_empty()
        && value.len() <= MAX_ID_LEN
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b));
    sane.then(|| value.to_owned())
}

/// Records the signed-in user and session on the current request's span.
pub fn record_session(user_id: Uuid, session_id: Uuid) {
    let span = tracing::Span::current();
    span.record("user_id", tracing::field::display(user_id));
    span.record("session_id", tracing::field::display(session_id));
}
