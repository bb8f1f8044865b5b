//! Small HTTP middleware of our own.

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
        let declared = req
            .headers()
            .get(header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok());
        if declared.is_some_and(|len| len > self.1 as u64) {
            return Err(crate::error::ApiError::PayloadTooLarge.into());
        }
        self.0.call(req).await
    }
}
