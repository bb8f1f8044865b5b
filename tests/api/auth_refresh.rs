use std::time::Duration;

use futures::future::join_all;
use latchkey::auth::tokens::{Claims, TokenType};
use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

/// Re-signs a real token's claims with the app's key, changing them first.
fn resign(app: &TestApp, token: &str, edit: impl FnOnce(&mut Claims)) -> String {
    use base64::Engine;
    let payload = token.split('.').nth(1).unwrap();
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap();
    let mut claims: Claims = serde_json::from_slice(&bytes).unwrap();
    edit(&mut claims);
    let now = chrono::Utc::now();
    let exp = chrono::DateTime::from_timestamp(claims.exp, 0).unwrap();
    app.state.tokens.sign_with_jti(claims.typ, claims.sub, claims.sid, claims.jti, now, exp).unwrap()
}

#[tokio::test]
async fn refresh_rotates_both_cookies() {
    let app = spawn_app().await;
    let (_, first) = app.signed_up().await;
    let resp = app.refresh().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let second = Tokens::from(resp.headers());
    assert!(second.access.is_some() && second.refresh.is_some());
    assert_ne!(second.refresh, first.refresh);
    assert_ne!(second.access, first.access);
    let body: Value = resp.json().await.unwrap();
    assert_no_secrets(&body.to_string());
    assert!(body["user"]["id"].is_string());
    // The new refresh token works, and so does the new access token.
    assert_eq!(app.me().await.status(), StatusCode::OK);
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_raced_refresh_inside_the_grace_window_gets_only_an_access_cookie() {
    let app = spawn_app().await;
    let (_, first) = app.signed_up().await;
    let old = first.refresh.unwrap();
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    let resp = app.refresh_with(&old).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let tokens = Tokens::from(resp.headers());
    assert!(tokens.access.is_some());
    assert!(set_cookie(resp.headers(), "refresh_token").is_none(), "the loser must keep the winner's successor");
    // The session survives: the successor held by the cookie store still refreshes.
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reusing_a_rotated_refresh_token_after_grace_revokes_the_session() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let (_, first) = app.signed_up().await;
    let stolen = first.refresh.unwrap();
    let resp = app.refresh().await;
    assert_eq!(resp.status(), StatusCode::OK);
    let fresh = Tokens::from(resp.headers()).refresh.unwrap();
    assert_problem(app.refresh_with(&stolen).await, 401, "refresh_token_reused").await;
    assert_problem(app.refresh_with(&fresh).await, 401, "session_revoked").await;
    assert_problem(app.me().await, 401, "session_revoked").await;
}

#[tokio::test]
async fn concurrent_refreshes_of_one_token_rotate_it_exactly_once() {
    let app = spawn_app().await;
    let (_, first) = app.signed_up().await;
    let token = first.refresh.unwrap();
    let responses = join_all((0..6).map(|_| app.refresh_with(&token))).await;
    let statuses: Vec<_> = responses.iter().map(|r| r.status()).collect();
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let rotated = responses.iter().filter(|r| set_cookie(r.headers(), "refresh_token").is_some()).count();
    assert_eq!(rotated, 1, "exactly one request may rotate the token");
}

#[tokio::test]
async fn concurrent_reuse_after_grace_leaves_exactly_one_winner() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::ZERO).await;
    let (_, first) = app.signed_up().await;
    let token = first.refresh.unwrap();
    let responses = join_all((0..6).map(|_| app.refresh_with(&token))).await;
    let ok = responses.iter().filter(|r| r.status() == StatusCode::OK).count();
    assert_eq!(ok, 1, "{:?}", responses.iter().map(|r| r.status()).collect::<Vec<_>>());
    // Every loser presented a used token past the grace: theft detection,
    // which also revokes the session (a loser that comes after that sees it).
    for resp in responses.into_iter().filter(|r| r.status() != StatusCode::OK) {
        let problem: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(problem["status"], 401, "{problem}");
        let code = problem["code"].as_str().unwrap();
        assert!(matches!(code, "refresh_token_reused" | "session_revoked"), "{problem}");
    }
}

#[tokio::test]
async fn refresh_errors_have_distinct_codes() {
    let app = spawn_app().await;
    let anonymous = app.another_browser();
    assert_problem(anonymous.refresh().await, 401, "refresh_token_missing").await;
    assert_problem(app.refresh_with("not.a.jwt").await, 401, "refresh_token_invalid").await;

    let (_, tokens) = app.signed_up().await;
    let refresh = tokens.refresh.unwrap();
    let access = tokens.access.unwrap();
    // An access token is not a refresh token.
    assert_problem(app.refresh_with(&access).await, 401, "refresh_token_invalid").await;
    // A token whose jti was never issued (forged with the right key) is invalid.
    let unknown = resign(&app, &refresh, |c| c.jti = uuid::Uuid::new_v4());
    assert_problem(app.refresh_with(&unknown).await, 401, "refresh_token_invalid").await;
    // Past its expiry (beyond the 5 s leeway).
    let expired = resign(&app, &refresh, |c| c.exp = chrono::Utc::now().timestamp() - 60);
    assert_problem(app.refresh_with(&expired).await, 401, "refresh_token_expired").await;
}

#[tokio::test]
async fn no_refresh_extends_a_session_past_its_maximum_age() {
    let app = spawn_app_with(|c| c.session_max_age = Duration::from_secs(2)).await;
    let (_, tokens) = app.signed_up().await;
    let refresh = tokens.refresh.unwrap();
    tokio::time::sleep(Duration::from_millis(2100)).await;
    // (The browser would have dropped the cookie by now; a copy still must not work.)
    assert_problem(app.refresh_with(&refresh).await, 401, "session_expired").await;
    // Even once the token itself has expired, the answer is `session_expired`.
    let stale = resign(&app, &refresh, |c| c.exp = chrono::Utc::now().timestamp() - 60);
    assert_problem(app.refresh_with(&stale).await, 401, "session_expired").await;
}

#[tokio::test]
async fn access_and_refresh_lifetimes_follow_the_config() {
    let app = spawn_app_with(|c| {
        c.access_token_ttl = Duration::from_secs(60);
        c.refresh_token_ttl = Duration::from_secs(3600);
    })
    .await;
    let resp = app.register(&user_body(&unique_email())).await;
    let access = set_cookie(resp.headers(), "access_token").unwrap();
    let refresh = set_cookie(resp.headers(), "refresh_token").unwrap();
    let max_age =
        |c: &str| -> i64 { c.split(';').find_map(|p| p.trim().strip_prefix("Max-Age=")).unwrap().parse().unwrap() };
    assert!((58..=60).contains(&max_age(&access)), "{access}");
    assert!((3598..=3600).contains(&max_age(&refresh)), "{refresh}");
    let body: Value = resp.json().await.unwrap();
    let exp = |k: &str| chrono::DateTime::parse_from_rfc3339(body[k].as_str().unwrap()).unwrap();
    assert_eq!((exp("refresh_expires_at") - exp("access_expires_at")).num_seconds(), 3540);
    let _ = TokenType::Access;
}

/// Sleeps until the wall clock is `ms` milliseconds into a second.
async fn sleep_until_millisecond(ms: u32) {
    let now = chrono::Utc::now().timestamp_subsec_millis();
    let wait = (1000 + ms - now) % 1000;
    tokio::time::sleep(Duration::from_millis(u64::from(wait))).await;
}

#[tokio::test]
async fn the_grace_window_is_measured_in_milliseconds_across_a_second_boundary() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = Duration::from_secs(1)).await;
    let (_, first) = app.signed_up().await;
    let old = first.refresh.unwrap();
    // Rotate late in one second, race 250 ms later in the next: well inside a
    // one-second grace, but past it if the rotation were stored as x.000.
    sleep_until_millisecond(850).await;
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    tokio::time::sleep(Duration::from_millis(250)).await;
    assert_eq!(app.refresh_with(&old).await.status(), StatusCode::OK, "a racing tab inside the grace window");
    // And the window still closes: well after it, the same token is theft.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_problem(app.refresh_with(&old).await, 401, "refresh_token_reused").await;
}

#[tokio::test]
async fn cookie_max_age_is_exactly_the_configured_lifetime() {
    let app = spawn_app_with(|c| {
        c.access_token_ttl = Duration::from_secs(900);
        c.refresh_token_ttl = Duration::from_secs(3600);
    })
    .await;
    app.signed_up().await;
    // Many rotations, some of them across a second boundary between signing
    // the token and writing the cookie.
    for _ in 0..40 {
        let resp = app.refresh().await;
        assert_eq!(resp.status(), StatusCode::OK);
        let access = set_cookie(resp.headers(), "access_token").unwrap();
        let refresh = set_cookie(resp.headers(), "refresh_token").unwrap();
        assert!(access.contains("Max-Age=900"), "{access}");
        assert!(refresh.contains("Max-Age=3600"), "{refresh}");
        tokio::time::sleep(Duration::from_millis(23)).await;
    }
}
