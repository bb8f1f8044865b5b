//! Limits on what one request may cost: body size, time, and how many run at once.

use std::sync::Arc;

use poem::{Endpoint, Middleware, Request, Result, http::header};

use crate::error::ApiError;

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
            return Err(ApiError::Busy.into());
        };
        let result = match tokio::time::timeout(self.timeout, self.inner.call(req)).await {
            Ok(result) => result,
            Err(_) => {
                tracing::warn!(timeout = ?self.timeout, "request timed out");
                Err(ApiError::Busy.into())
            }
        };
        crate::memory::request_finished();
        result
    }
}
