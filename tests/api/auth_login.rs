use latchkey::entity::user;
use reqwest::{Client, StatusCode};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set};
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn login_sets_both_cookies_and_records_the_time() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let fresh = app.another_browser();
    let resp = fresh.login(&email.to_uppercase(), PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens = Tokens::from(resp.headers());
    assert!(tokens.access.is_some() && tokens.refresh.is_some());
    let body: Value = resp.json().await.unwrap();
    assert_no_secrets(&body.to_string());
    assert_eq!(body["user"]["email"], email);
    assert!(body["user"]["last_login_at"].is_string());
    assert_eq!(fresh.me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn unknown_email_and_wrong_password_look_the_same() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let wrong = assert_problem(app.login(&email, "Wrong1Password").await, 401, "invalid_credentials").await;
    let unknown = assert_problem(app.login("nobody@example.com", PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(wrong, unknown);
    let malformed = assert_problem(app.login("not-an-email", PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(wrong, malformed);
}

#[tokio::test]
async fn passwords_that_share_their_first_72_bytes_do_not_both_verify() {
    let app = spawn_app().await;
    // Random hex keeps the password hard to guess; only the suffix differs.
    let prefix: String = format!(
        "Aa1{}{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    )[..72]
        .to_owned();
    let email = unique_email();
    let resp = app.register(&json!({"email": email, "password": format!("{prefix}-one")})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert_problem(app.login(&email, &format!("{prefix}-two")).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, &format!("{prefix}-one")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn empty_or_missing_credentials_are_422() {
    let app = spawn_app().await;
    let resp = app.post_json(&app.client, "/api/v1/auth/login", &json!({"email": "", "password": ""})).await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    assert_eq!(error_fields(&problem), ["email", "password"]);
    let resp = app.post_json(&app.client, "/api/v1/auth/login", &json!({"email": "a@example.com"})).await;
    assert_eq!(error_fields(&assert_problem(resp, 422, "validation_failed").await), ["password"]);
}

#[tokio::test]
async fn a_disabled_account_is_refused_once_the_password_is_right() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let found = user::Entity::find().filter(user::Column::Email.eq(&email)).one(&app.state.db).await.unwrap().unwrap();
    let mut active: user::ActiveModel = found.into();
    active.is_active = Set(false);
    active.update(&app.state.db).await.unwrap();

    assert_problem(app.login(&email, "Wrong1Password").await, 401, "invalid_credentials").await;
    assert_problem(app.login(&email, PASSWORD).await, 403, "account_disabled").await;
    // The still-valid access token from registration stops working too.
    assert_problem(app.me().await, 403, "account_disabled").await;
}

#[tokio::test]
async fn the_sixth_login_in_a_minute_is_rate_limited() {
    let app = spawn_app_with(|c| c.login_rate_per_minute = 5).await;
    let (email, _) = app.signed_up().await;
    for attempt in 0..5 {
        let password = if attempt % 2 == 0 { PASSWORD } else { "Wrong1Password" };
        assert_ne!(app.login(&email, password).await.status(), StatusCode::TOO_MANY_REQUESTS);
    }
    let resp = app.login(&email, PASSWORD).await;
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=60).contains(&retry_after), "{retry_after}");
    assert_problem(resp, 429, "rate_limited").await;
}

#[tokio::test]
async fn a_spoofed_forwarded_for_from_an_untrusted_peer_does_not_change_the_key() {
    let app = spawn_app_with(|c| c.login_rate_per_minute = 2).await;
    let client = Client::new();
    let attempt = |i: u32| {
        client
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .json(&json!({"email": "x@example.com", "password": PASSWORD}))
            .send()
    };
    assert_eq!(attempt(1).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(2).await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt(3).await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
}

#[tokio::test]
async fn forwarded_for_from_a_trusted_proxy_is_the_key() {
    let app = spawn_app_with(|c| {
        c.login_rate_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()];
    })
    .await;
    let client = Client::new();
    let attempt = |ip: &str| {
        client
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", ip.to_owned())
            .json(&json!({"email": "x@example.com", "password": PASSWORD}))
            .send()
    };
    assert_eq!(attempt("198.51.100.1").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    assert_eq!(attempt("198.51.100.1").await.unwrap().status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(attempt("198.51.100.2").await.unwrap().status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn failed_logins_spread_over_many_addresses_still_slow_one_account() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    let (email, _) = app.signed_up().await;
    let client = Client::new();
    let attempt = |i: usize, password: &'static str| {
        client
            .post(app.url("/api/v1/auth/login"))
            .header("X-Forwarded-For", format!("203.0.113.{i}"))
            .json(&json!({"email": email, "password": password}))
            .send()
    };
    for i in 0..latchkey::auth::ratelimit::ACCOUNT_FAILURE_BURST as usize {
        assert_eq!(attempt(i, "Wrong1Password").await.unwrap().status(), StatusCode::UNAUTHORIZED);
    }
    // From a fresh address, even the right password now waits (bounded by Retry-After).
    let resp = attempt(200, PASSWORD).await.unwrap();
    let retry_after: u64 = resp.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!(retry_after <= 60, "{retry_after}");
    assert_problem(resp, 429, "rate_limited").await;
    // Other accounts are unaffected.
    let (other, _) = app.another_browser().signed_up().await;
    let resp = client
        .post(app.url("/api/v1/auth/login"))
        .json(&json!({"email": other, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_login_after_a_bcrypt_cost_change_upgrades_the_stored_hash() {
    let app = spawn_app().await; // cost 4
    let (email, _) = app.signed_up().await;
    let stronger = spawn_instance_sharing(&app, |c| c.bcrypt_cost = 5).await;
    assert_eq!(stronger.login(&email, PASSWORD).await.status(), StatusCode::OK);
    let stored = user::Entity::find().filter(user::Column::Email.eq(&email)).one(&app.state.db).await.unwrap().unwrap();
    assert!(stored.password_hash.starts_with("$2b$05$"), "hash was not upgraded");
    assert_eq!(stronger.another_browser().login(&email, PASSWORD).await.status(), StatusCode::OK);
}
