//! Rate limits shared through Redis, and the fallback when Redis is gone.
//! Tests that need a Redis are `#[ignore]`d so that a plain `cargo test` on a
//! machine without one reports them as ignored, never as passed: the shared
//! budgets need `TEST_REDIS_URL`, the outage tests `redis-server` on the PATH.
//! `.ci/run` runs them (`cargo test -- --include-ignored`).

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

fn test_redis_url() -> String {
    std::env::var("TEST_REDIS_URL").ok().filter(|u| !u.is_empty()).expect("TEST_REDIS_URL=redis://… is set")
}

/// A `redis-server` of our own on a free port, killed on drop.
pub struct OwnRedis {
    port: u16,
    process: Option<std::process::Child>,
}

impl OwnRedis {
    pub fn port() -> u16 {
        TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
    }

    pub async fn start(port: u16) -> Self {
        let process = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is on the PATH");
        tokio::time::sleep(Duration::from_millis(300)).await;
        Self { port, process: Some(process) }
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    pub fn stop(&mut self) {
        if let Some(mut p) = self.process.take() {
            let _ = p.kill();
            let _ = p.wait();
        }
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

#[tokio::test]
#[ignore = "needs TEST_REDIS_URL"]
async fn two_instances_sharing_redis_share_one_login_budget() {
    let url = test_redis_url();
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
#[ignore = "needs redis-server on the PATH"]
async fn redis_dying_mid_run_keeps_the_service_up_and_limited() {
    let mut redis = OwnRedis::start(OwnRedis::port()).await;
    let app = spawn_app_with(with_redis(redis.url())).await;
    let ip = fresh_client_ip();
    for _ in 0..3 {
        assert_eq!(login_from(&app, &ip).await, StatusCode::UNAUTHORIZED);
    }
    redis.stop();
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

#[tokio::test]
#[ignore = "needs redis-server on the PATH"]
async fn an_instance_started_while_redis_was_down_moves_its_limits_to_redis_under_steady_traffic() {
    let port = OwnRedis::port();
    let url = format!("redis://127.0.0.1:{port}");
    let app = spawn_app_with(with_redis(url.clone())).await;
    // A request every 500 ms while Redis is down, and on after it starts.
    let traffic = {
        let app = app.another_browser();
        tokio::spawn(async move {
            loop {
                login_from(&app, &fresh_client_ip()).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };
    tokio::time::sleep(Duration::from_secs(3)).await;
    let _redis = OwnRedis::start(port).await;
    let client = redis::Client::open(url.as_str()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let started = std::time::Instant::now();
    let mut keys: Vec<String> = Vec::new();
    while keys.is_empty() && started.elapsed() < Duration::from_secs(5) {
        tokio::time::sleep(Duration::from_millis(100)).await;
        keys = redis::cmd("KEYS").arg("latchkey:rl:login:*").query_async(&mut conn).await.unwrap();
    }
    traffic.abort();
    assert!(!keys.is_empty(), "the limits never reached Redis");
    eprintln!("limits in Redis {:?} after it started", started.elapsed());
}

#[tokio::test]
#[ignore = "needs TEST_REDIS_URL"]
async fn concurrent_guesses_on_redis_cost_at_most_the_shared_budget() {
    let url = test_redis_url();
    let first = spawn_app_with(with_redis(url.clone())).await;
    let second = spawn_instance_sharing(&first, with_redis(url)).await;
    let (email, _) = first.signed_up().await;
    let attempts = (0..60).map(|i| {
        let app = if i % 2 == 0 { &first } else { &second };
        Client::new()
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", fresh_client_ip())
            .json(&json!({"email": email, "password": "Wrong1Password"}))
            .send()
    });
    let statuses: Vec<StatusCode> =
        futures::future::join_all(attempts).await.into_iter().map(|r| r.unwrap().status()).collect();
    let checked = statuses.iter().filter(|s| **s == StatusCode::UNAUTHORIZED).count();
    let refused = statuses.iter().filter(|s| **s == StatusCode::TOO_MANY_REQUESTS).count();
    assert_eq!((checked, refused), (10, 50), "{statuses:?}");
}
