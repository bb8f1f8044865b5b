//! Housekeeping and shutdown: dead rows are purged off the request path, and a
//! stopping server finishes what it started.

use std::time::Duration;

use chrono::Utc;
use latchkey::{
    auth::sessions::purge_dead,
    entity::{refresh_token, session},
};
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, sea_query::Expr};
use serde_json::Value;

use crate::helpers::*;

async fn session_ids(app: &TestApp) -> Vec<uuid::Uuid> {
    session::Entity::find().all(&app.state.db).await.unwrap().into_iter().map(|s| s.id).collect()
}

/// Moves a session's timestamps into the past, as if time had passed.
async fn age_session(app: &TestApp, id: uuid::Uuid, column: session::Column) {
    session::Entity::update_many()
        .col_expr(column, Expr::value(Utc::now() - chrono::Duration::hours(1)))
        .filter(session::Column::Id.eq(id))
        .exec(&app.state.writer)
        .await
        .unwrap();
}

#[tokio::test]
async fn purging_removes_dead_sessions_and_tokens_but_keeps_live_ones_working() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let (email, first) = app.signed_up().await; // session A, kept alive
    let revoked = app.another_browser();
    revoked.login(&email, PASSWORD).await;
    let idle = app.another_browser();
    idle.login(&email, PASSWORD).await;
    let all = session_ids(&app).await;
    assert_eq!(all.len(), 3);

    assert_eq!(app.refresh().await.status(), StatusCode::OK); // A's first token is now used
    let me: Value = revoked.get("/api/v1/auth/sessions").await.json().await.unwrap();
    let revoked_id: uuid::Uuid =
        me.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"].as_str().unwrap().parse().unwrap();
    revoked.logout().await;
    age_session(&app, revoked_id, session::Column::RevokedAt).await;
    let idle_sessions: Value = idle.get("/api/v1/auth/sessions").await.json().await.unwrap();
    let idle_id: uuid::Uuid = idle_sessions.as_array().unwrap().iter().find(|s| s["current"] == true).unwrap()["id"]
        .as_str()
        .unwrap()
        .parse()
        .unwrap();
    age_session(&app, idle_id, session::Column::ExpiresAt).await;

    let (sessions, _tokens) = purge_dead(&app.state.writer).await.unwrap();
    assert_eq!(sessions, 2);
    let left = session_ids(&app).await;
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&revoked_id) && !left.contains(&idle_id));
    let orphaned = refresh_token::Entity::find()
        .filter(refresh_token::Column::SessionId.is_in([revoked_id, idle_id]))
        .count(&app.state.db)
        .await
        .unwrap();
    assert_eq!(orphaned, 0);

    // The live session still refreshes, and its used token still trips reuse detection.
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    assert_problem(app.refresh_with(first.refresh.as_deref().unwrap()).await, 401, "refresh_token_reused").await;
    // The purged sessions' cookies stay dead.
    assert_eq!(idle.refresh().await.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn shutdown_finishes_an_in_flight_login_then_stops_accepting() {
    // Cost 12 makes the login take a few hundred milliseconds.
    let (app, stop, server) = spawn_stoppable_app(|c| c.bcrypt_cost = 12).await;
    let (email, _) = app.signed_up().await;
    let login = {
        let client = reqwest::Client::new();
        let url = app.url("/api/v1/auth/login");
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        tokio::spawn(async move { client.post(url).json(&body).send().await.map(|r| r.status()) })
    };
    // Stop once the login is in flight: its password is being hashed.
    let started = std::time::Instant::now();
    while app.state.passwords.queued() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the login never reached bcrypt");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    stop.send(()).unwrap();
    assert_eq!(login.await.unwrap().unwrap(), StatusCode::OK, "the in-flight login completes");
    let exit = tokio::time::timeout(Duration::from_secs(15), server).await.expect("server stops").unwrap();
    assert!(exit.is_ok(), "{exit:?}");
    assert!(reqwest::Client::new().get(app.url("/health")).send().await.is_err(), "no longer accepting");
}

/// The real binary, stopped with SIGTERM in the middle of a slow login.
#[cfg(unix)]
#[tokio::test]
async fn sigterm_lets_the_in_flight_login_finish_and_exits_zero() {
    use std::process::{Command, Stdio};
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let metrics_port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("sig.db").display()))
        .env("JWT_SECRET", SECRET)
        .env("COOKIE_SECURE", "false")
        .env("BCRYPT_COST", "12")
        .env("METRICS_ADDR", format!("127.0.0.1:{metrics_port}"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("the latchkey binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");
    let email = unique_email();
    let resp = client.post(format!("{base}/api/v1/auth/register")).json(&user_body(&email)).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);

    let login = {
        let (client, url) = (client.clone(), format!("{base}/api/v1/auth/login"));
        let body = serde_json::json!({"email": email, "password": PASSWORD});
        tokio::spawn(async move { client.post(url).json(&body).send().await.map(|r| r.status()) })
    };
    // Signal once the login is in flight: the metrics show its bcrypt job.
    let started = std::time::Instant::now();
    loop {
        let scrape = client.get(format!("http://127.0.0.1:{metrics_port}/metrics")).send().await.unwrap();
        if scrape.text().await.unwrap().lines().any(|l| l == "latchkey_bcrypt_queue_depth 1") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the login never reached bcrypt");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let killed = Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(killed.success());
    assert_eq!(login.await.unwrap().unwrap(), StatusCode::OK, "the in-flight login completes");
    let status = tokio::task::spawn_blocking(move || server.wait()).await.unwrap().unwrap();
    assert!(status.success(), "exit status {status:?}");
}

#[tokio::test]
async fn a_request_over_the_time_limit_or_the_in_flight_cap_gets_503_not_a_hang() {
    // A registration at bcrypt cost 13 takes far longer than a 200 ms request budget.
    let slow = spawn_app_with(|c| {
        c.request_timeout = Duration::from_millis(200);
        c.bcrypt_cost = 13;
    })
    .await;
    let started = std::time::Instant::now();
    let resp = slow.register(&user_body(&unique_email())).await;
    assert!(started.elapsed() < Duration::from_secs(3), "answered promptly");
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 503, "server_busy").await;

    let capped = spawn_app_with(|c| {
        c.max_in_flight = 1;
        c.bcrypt_cost = 12;
    })
    .await;
    let first = {
        let (client, url) = (capped.client.clone(), capped.url("/api/v1/auth/register"));
        let body = user_body(&unique_email());
        tokio::spawn(async move { client.post(url).json(&body).send().await.unwrap().status() })
    };
    // The first registration holds the one slot while its password hashes.
    let started = std::time::Instant::now();
    while capped.state.passwords.queued() == 0 {
        assert!(started.elapsed() < Duration::from_secs(10), "the registration never reached bcrypt");
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_problem(capped.get("/health").await, 503, "server_busy").await;
    assert_eq!(first.await.unwrap(), StatusCode::CREATED);
    assert_eq!(capped.get("/health").await.status(), StatusCode::OK);
}
