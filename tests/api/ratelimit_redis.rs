//! Rate limits shared through Redis, and the fallback when Redis is gone.
//! The shared-budget test needs a Redis server: set `TEST_REDIS_URL`
//! (`.ci/run` does). The fallback tests need none.

use std::{net::TcpListener, process::Command, time::Duration};

use reqwest::{Client, StatusCode};
use serde_json::json;

use crate::helpers::*;

fn with_redis(url: String) -> impl FnOnce(&mut latchkey::config::Config) {
    move |c| {
        c.rate_limit_redis_url = Some(url);
        c.login_rate_per_minute = 5;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    }
}

/// A failed login from `client_ip`, for an account no other test uses (the
/// per-account limit lives in the shared Redis too).
async fn login_from(app: &TestApp, client_ip: &str) -> StatusCode {
    Client::new()
        .post(app.url("/api/v1/auth/login"))
        .header("X-Forwarded-For", client_ip)
        .json(&json!({"email": unique_email(), "password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .status()
}

/// A client address no other test (or earlier run) uses, so shared Redis keys never collide.
fn fresh_client_ip() -> String {
    let b = *uuid::Uuid::new_v4().as_bytes();
    format!("2001:db8:{:x}:{:x}::1", u16::from_be_bytes([b[0], b[1]]), u16::from_be_bytes([b[2], b[3]]))
}

#[tokio::test]
async fn two_instances_sharing_redis_share_one_login_budget() {
    let Some(url) = std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()) else {
        eprintln!("skipped: TEST_REDIS_URL is not set");
        return;
    };
    let first = spawn_app_with(with_redis(url.clone())).await;
    let second = spawn_instance_sharing(&first, with_redis(url)).await;
    let ip = fresh_client_ip();
    for i in 0..5 {
        let app = if i % 2 == 0 { &first } else { &second };
        assert_eq!(login_from(app, &ip).await, StatusCode::UNAUTHORIZED, "attempt {i}");
    }
    assert_eq!(login_from(&first, &ip).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&second, &ip).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(login_from(&second, &fresh_client_ip()).await, StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn an_unreachable_redis_falls_back_to_the_in_process_limiter() {
    let app = spawn_app_with(with_redis("redis://127.0.0.1:1".into())).await;
    let ip = fresh_client_ip();
    for _ in 0..5 {
        assert_eq!(login_from(&app, &ip).await, StatusCode::UNAUTHORIZED);
    }
    assert_eq!(login_from(&app, &ip).await, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn redis_dying_mid_run_keeps_the_service_up_and_limited() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let Ok(mut redis) = Command::new("redis-server")
        .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
        .stdout(std::process::Stdio::null())
        .spawn()
    else {
        eprintln!("skipped: no redis-server on PATH");
        return;
    };
    tokio::time::sleep(Duration::from_millis(300)).await;
    let app = spawn_app_with(with_redis(format!("redis://127.0.0.1:{port}"))).await;
    let ip = fresh_client_ip();
    for _ in 0..3 {
        assert_eq!(login_from(&app, &ip).await, StatusCode::UNAUTHORIZED);
    }
    redis.kill().unwrap();
    redis.wait().unwrap();
    // Redis is gone: every answer is still a clean 401 or 429, and the local
    // limiter takes over (with its own budget of five).
    let mut statuses = Vec::new();
    for _ in 0..7 {
        statuses.push(login_from(&app, &ip).await);
    }
    assert!(
        statuses.iter().all(|s| *s == StatusCode::UNAUTHORIZED || *s == StatusCode::TOO_MANY_REQUESTS),
        "{statuses:?}"
    );
    assert_eq!(*statuses.last().unwrap(), StatusCode::TOO_MANY_REQUESTS, "{statuses:?}");
}
