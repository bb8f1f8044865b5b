//! Small HTTP middleware of our own.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::header};

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
            response.headers_mut().insert(header::CACHE_CONTROL, header::HeaderValue::from_static("no-store"));
        }
        Ok(response)
    }
}

/// Refuses a body whose declared `Content-Length` exceeds the limit before
/// reading it (413). Bodies without a length (chunked) are capped where they
/// are read, in `JsonBody`.
pub struct BodyLimit(pub usize);

impl<E: Endpoint> Middleware<E> for BodyLimit {
    type Output = BodyLimitEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BodyLimitEndpoint(ep, self.0)
    }
}

pub struct BodyLimitEndpoint<E>(E, usize);

impl<E: Endpoint> Endpoint for BodyLimitEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let declared =
            req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.1 as u64) {
            return Err(crate::error::ApiError::PayloadTooLarge.into());
        }
        self.0.call(req).await
    }
}

/// Adds the `Allow` header RFC 9110 requires on 405 responses, from the
/// operations the OpenAPI spec lists for the path.
pub struct AllowOn405(Arc<Vec<(Vec<String>, String)>>);

impl AllowOn405 {
    /// `spec` is the service's OpenAPI document as JSON.
    pub fn from_spec(spec: &str) -> Self {
        let doc: serde_json::Value = serde_json::from_str(spec).unwrap_or_default();
        let mut routes = Vec::new();
        if let Some(paths) = doc["paths"].as_object() {
            for (template, operations) in paths {
                let mut methods: Vec<String> = operations
                    .as_object()
                    .map(|o| o.keys().map(|m| m.to_ascii_uppercase()).collect())
                    .unwrap_or_default();
                methods.sort();
                let segments = template.split('/').map(str::to_owned).collect();
                routes.push((segments, methods.join(", ")));
            }
        }
        Self(Arc::new(routes))
    }

    fn allowed(routes: &[(Vec<String>, String)], path: &str) -> Option<String> {
        let segments: Vec<&str> = path.split('/').collect();
        routes
            .iter()
            .find(|(template, _)| {
                template.len() == segments.len()
                    && template.iter().zip(&segments).all(|(t, s)| t == s || (t.starts_with('{') && !s.is_empty()))
            })
            .map(|(_, methods)| methods.clone())
    }
}

impl<E: Endpoint> Middleware<E> for AllowOn405 {
    type Output = AllowOn405Endpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        AllowOn405Endpoint(ep, self.0.clone())
    }
}

pub struct AllowOn405Endpoint<E>(E, Arc<Vec<(Vec<String>, String)>>);

impl<E: Endpoint> Endpoint for AllowOn405Endpoint<E> {
    type Output = Response;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let path = req.uri().path().to_owned();
        let mut response = self.0.call(req).await?.into_response();
        if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED {
            if let Some(value) =
                AllowOn405::allowed(&self.1, &path).and_then(|m| header::HeaderValue::from_str(&m).ok())
            {
                response.headers_mut().insert(header::ALLOW, value);
            }
        }
        Ok(response)
    }
}

/// Backstops for slow or stuck requests and floods: a request (including
/// reading its body) gets at most `timeout`, and at most `max_in_flight`
/// requests run at once; past either, the answer is 503 `server_busy` with
/// `Retry-After`, never an unbounded queue.
pub struct Backpressure {
    pub timeout: std::time::Duration,
    pub max_in_flight: usize,
}

impl<E: Endpoint> Middleware<E> for Backpressure {
    type Output = BackpressureEndpoint<E>;

    fn transform(&self, ep: E) -> Self::Output {
        BackpressureEndpoint {
            inner: ep,
            timeout: self.timeout,
            slots: Arc::new(tokio::sync::Semaphore::new(self.max_in_flight.max(1))),
        }
    }
}

pub struct BackpressureEndpoint<E> {
    inner: E,
    timeout: std::time::Duration,
    slots: Arc<tokio::sync::Semaphore>,
}

impl<E: Endpoint> Endpoint for BackpressureEndpoint<E> {
    type Output = E::Output;

    async fn call(&self, req: Request) -> Result<Self::Output> {
        let Ok(_slot) = self.slots.try_acquire() else {
            return Err(crate::error::ApiError::Busy.into());
        };
        match tokio::time::timeout(self.timeout, self.inner.call(req)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "request timed out");
                Err(crate::error::ApiError::Busy.into())
            }
        }
    }
}
