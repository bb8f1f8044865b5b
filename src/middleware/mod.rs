//! HTTP middleware of our own. The order they wrap the routes in is in
//! `app::protect`; none of them needs the app's state.

/// `Allow` on 405 responses.
pub mod allow;
/// Browser protections: CORS, cross-site rejection, security headers, no-store.
pub mod browser;
/// Body size, request time and in-flight caps.
pub mod limits;
/// The request span and log line, and `X-Request-Id`.
pub mod request_log;

pub use allow::AllowOn405;
pub use browser::{Cors, NoStore, Origins, RejectCrossSite, security_headers};
pub use limits::{Backpressure, BodyLimit};
pub use request_log::RequestLog;
