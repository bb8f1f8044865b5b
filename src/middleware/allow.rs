//! `Allow` on 405 responses.

use std::sync::Arc;

use poem::{Endpoint, IntoResponse, Middleware, Request, Response, Result, http::header};

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
        if response.status() == poem::http::StatusCode::METHOD_NOT_ALLOWED
            && let Some(value) =
                AllowOn405::allowed(&self.1, &path).and_then(|m| header::HeaderValue::from_str(&m).ok())
        {
            response.headers_mut().insert(header::ALLOW, value);
        }
        Ok(response)
    }
}
