//! Browser protections: CORS allowlist, cross-site request rejection, headers.

use reqwest::{Client, Method, StatusCode};
use serde_json::json;

use crate::helpers::*;

const APP_ORIGIN: &str = "https://app.example.com";

async fn app_with_allowlist() -> TestApp {
    spawn_app_with(|c| c.allowed_origins = vec![APP_ORIGIN.into()]).await
}

#[tokio::test]
async fn an_evil_origin_cannot_post_even_with_the_victims_cookies() {
    let app = app_with_allowlist().await;
    app.signed_up().await;
    let resp = app
        .client
        .post(app.url("/api/v1/tasks"))
        .header("Origin", "https://evil.example")
        .json(&json!({"title": "planted"}))
        .send()
        .await
        .unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
    assert_problem(resp, 403, "csrf_rejected").await;
    let resp = app
        .client
        .post(app.url("/api/v1/auth/logout-all"))
        .header("Sec-Fetch-Site", "cross-site")
        .send()
        .await
        .unwrap();
    assert_problem(resp, 403, "csrf_rejected").await;
    // Nothing happened: no task, and the session is alive.
    assert_eq!(app.get("/api/v1/tasks").await.headers()["x-total-count"], "0");
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn same_origin_allowlisted_and_headerless_requests_pass() {
    let app = app_with_allowlist().await;
    app.signed_up().await;
    let own_origin = app.base.clone();
    for headers in [
        vec![("Origin", own_origin.as_str()), ("Sec-Fetch-Site", "same-origin")],
        vec![("Origin", APP_ORIGIN), ("Sec-Fetch-Site", "cross-site")],
        vec![],
    ] {
        let mut req = app.client.post(app.url("/api/v1/tasks")).json(&json!({"title": "ok"}));
        for (k, v) in &headers {
            req = req.header(*k, *v);
        }
        assert_eq!(req.send().await.unwrap().status(), StatusCode::CREATED, "{headers:?}");
    }
}

#[tokio::test]
async fn cors_echoes_only_allowlisted_origins_with_credentials() {
    let app = app_with_allowlist().await;
    let preflight = Client::new()
        .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("Origin", APP_ORIGIN)
        .header("Access-Control-Request-Method", "POST")
        .header("Access-Control-Request-Headers", "content-type")
        .send()
        .await
        .unwrap();
    assert_eq!(preflight.status(), StatusCode::NO_CONTENT);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], APP_ORIGIN);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert!(h["access-control-allow-methods"].to_str().unwrap().contains("POST"));
    assert!(h["vary"].to_str().unwrap().contains("Origin"));

    let evil = Client::new()
        .request(Method::OPTIONS, app.url("/api/v1/auth/login"))
        .header("Origin", "https://evil.example")
        .header("Access-Control-Request-Method", "POST")
        .send()
        .await
        .unwrap();
    assert!(evil.headers().get("access-control-allow-origin").is_none());

    let actual = Client::new().get(app.url("/health")).header("Origin", APP_ORIGIN).send().await.unwrap();
    assert_eq!(actual.headers()["access-control-allow-origin"], APP_ORIGIN);
    assert!(actual.headers()["access-control-expose-headers"].to_str().unwrap().contains("X-Total-Count"));
    let other = Client::new().get(app.url("/health")).header("Origin", "https://evil.example").send().await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    assert!(other.headers().get("access-control-allow-credentials").is_none());
}

#[tokio::test]
async fn without_an_allowlist_no_origin_gets_cors_headers() {
    let app = spawn_app().await;
    let resp = Client::new().get(app.url("/health")).header("Origin", "http://localhost:5173").send().await.unwrap();
    assert!(resp.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn security_headers_are_on_every_response() {
    let app = spawn_app().await;
    for path in ["/health", "/api/v1/auth/me", "/nope", "/docs"] {
        let resp = app.get(path).await;
        for (header, value) in
            [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
        {
            assert_eq!(resp.headers().get(header).map(|v| v.to_str().unwrap()), Some(value), "{path} {header}");
        }
        assert!(resp.headers().get("strict-transport-security").is_none(), "no HSTS without Secure cookies");
    }
    let resp = app.get("/api/v1/auth/me").await;
    assert_eq!(resp.headers()["cache-control"], "no-store");
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_are_413_too() {
    let app = spawn_app_with(|c| c.max_body_bytes = 1024).await;
    let big = format!("{{\"email\":\"a@example.com\",\"password\":\"{}\"}}", "x".repeat(4096));
    let stream = futures::stream::iter(vec![Ok::<_, std::io::Error>(big.into_bytes())]);
    let resp = app
        .client
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body(reqwest::Body::wrap_stream(stream))
        .send()
        .await
        .unwrap();
    assert_problem(resp, 413, "payload_too_large").await;
}
