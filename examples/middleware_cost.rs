//! Latency the middleware stack adds to a request: the same trivial endpoint
//! called in process, bare and wrapped in `app::protect` (body limit,
//! cross-site check, panic guard, error rendering, CORS, no-store, security
//! headers), with the headers a browser sends. No network, so only the stack
//! is measured.
//!
//!     cargo run --release --example middleware_cost

use std::time::Instant;

use latchkey::{app::protect, config::Config, db, state::AppState};
use poem::{Endpoint, EndpointExt, IntoResponse, Request, Route, get, handler, http::Method};

#[handler]
fn me() -> &'static str {
    r#"{"id":"0"}"#
}

fn request() -> Request {
    Request::builder()
        .method(Method::GET)
        .uri(poem::http::Uri::from_static("/api/v1/auth/me"))
        .header("host", "127.0.0.1:8000")
        .header("origin", "http://127.0.0.1:8000")
        .header("sec-fetch-site", "same-origin")
        .finish()
}

async fn measure(ep: &impl Endpoint, rounds: usize) -> (f64, f64) {
    let mut samples = Vec::with_capacity(rounds);
    for _ in 0..rounds {
        let start = Instant::now();
        let resp = ep.call(request()).await.map(IntoResponse::into_response);
        samples.push(start.elapsed().as_nanos() as f64 / 1000.0);
        assert!(resp.is_ok());
    }
    samples.sort_by(f64::total_cmp);
    (samples[rounds / 2], samples[rounds * 99 / 100])
}

#[tokio::main]
async fn main() {
    let mut config = Config { database_url: "sqlite::memory:".into(), ..Config::default() };
    config.allowed_origins = vec!["https://app.example.com".into()];
    config.validate().unwrap();
    let db = db::connect(&config).await.unwrap();
    let state = AppState::new(db.clone(), db, config).unwrap();
    let bare = Route::new().at("/api/v1/auth/me", get(me)).map_to_response();
    let wrapped = protect(Route::new().at("/api/v1/auth/me", get(me)), state);
    let rounds = 200_000;
    measure(&bare, 10_000).await; // warm-up
    measure(&wrapped, 10_000).await;
    let (bare_p50, bare_p99) = measure(&bare, rounds).await;
    let (wrapped_p50, wrapped_p99) = measure(&wrapped, rounds).await;
    println!("bare:       p50 {bare_p50:6.2} µs   p99 {bare_p99:6.2} µs");
    println!("middleware: p50 {wrapped_p50:6.2} µs   p99 {wrapped_p99:6.2} µs");
    println!("added:      p50 {:6.2} µs   p99 {:6.2} µs", wrapped_p50 - bare_p50, wrapped_p99 - bare_p99);
}
