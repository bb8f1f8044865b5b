use latchkey::{auth::tokens::TokenType, entity::user};
use reqwest::{Client, StatusCode};
use sea_orm::{EntityTrait, ModelTrait};
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn me_accepts_the_cookie_or_a_bearer_token() {
    let app = spawn_app().await;
    let (email, tokens) = app.signed_up().await;
    let body: Value = app.me().await.json().await.unwrap();
    assert_eq!(body["email"], email);
    assert_no_secrets(&body.to_string());
    let resp = app.me_with_bearer(tokens.access.as_deref().unwrap()).await;
    assert_eq!(resp.status(), StatusCode::OK);
}

#[tokio::test]
async fn me_without_a_token_is_401() {
    let app = spawn_app().await;
    assert_problem(app.me().await, 401, "not_authenticated").await;
    let resp =
        Client::new().get(app.url("/api/v1/auth/me")).header("Authorization", "Basic YTpi").send().await.unwrap();
    assert_problem(resp, 401, "not_authenticated").await;
}

#[tokio::test]
async fn forged_and_misused_tokens_are_rejected() {
    use base64::Engine;
    let app = spawn_app().await;
    let (_, tokens) = app.signed_up().await;
    let access = tokens.access.unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let parts: Vec<&str> = access.split('.').collect();
    let mut claims: Value = serde_json::from_slice(&b64.decode(parts[1]).unwrap()).unwrap();

    // alg: none, unsigned.
    let none = format!("{}.{}.", b64.encode(r#"{"alg":"none","typ":"JWT"}"#), parts[1]);
    // Tampered payload, original signature.
    claims["sub"] = Value::String(uuid::Uuid::new_v4().to_string());
    let tampered = format!("{}.{}.{}", parts[0], b64.encode(claims.to_string()), parts[2]);
    // Right shape, wrong secret.
    let other = latchkey::config::Config {
        jwt_secret: Some(latchkey::config::Secret::new("some-other-secret-some-other-secret")),
        ..Default::default()
    };
    let now = chrono::Utc::now();
    let (wrong_secret, _) = latchkey::auth::tokens::TokenKeys::secret_only(&other)
        .sign(TokenType::Access, uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), now, now + chrono::Duration::minutes(5))
        .unwrap();
    for token in [none, tampered, wrong_secret, tokens.refresh.unwrap(), "garbage".into()] {
        assert_problem(app.me_with_bearer(&token).await, 401, "token_invalid").await;
    }
    // Expired beyond the leeway.
    let (expired, _) = app
        .state
        .tokens
        .sign(
            TokenType::Access,
            uuid::Uuid::new_v4(),
            uuid::Uuid::new_v4(),
            now - chrono::Duration::minutes(10),
            now - chrono::Duration::seconds(30),
        )
        .unwrap();
    assert_problem(app.me_with_bearer(&expired).await, 401, "token_expired").await;
}

#[tokio::test]
async fn a_deleted_users_token_stops_working() {
    let app = spawn_app().await;
    let (_, tokens) = app.signed_up().await;
    let me: Value = app.me().await.json().await.unwrap();
    let id: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
    let found = user::Entity::find_by_id(id).one(&app.state.db).await.unwrap().unwrap();
    found.delete(&app.state.writer).await.unwrap();
    // Deleted behind the app's back: say so, as the app does after its own writes.
    app.state.sessions.changed(id);
    assert_problem(app.me_with_bearer(tokens.access.as_deref().unwrap()).await, 401, "token_invalid").await;
    assert_problem(app.refresh().await, 401, "session_revoked").await;
}

#[tokio::test]
async fn logout_revokes_the_session_and_clears_both_cookies() {
    let app = spawn_app().await;
    let (_, tokens) = app.signed_up().await;
    let resp = app.logout().await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let access = set_cookie(resp.headers(), "access_token").unwrap();
    let refresh = set_cookie(resp.headers(), "refresh_token").unwrap();
    assert!(access.contains("Max-Age=0") && access.contains("Path=/"), "{access}");
    assert!(refresh.contains("Max-Age=0") && refresh.contains("Path=/api/v1/auth"), "{refresh}");
    // The old tokens are dead even if someone kept a copy.
    assert_problem(app.me_with_bearer(tokens.access.as_deref().unwrap()).await, 401, "session_revoked").await;
    assert_problem(app.refresh_with(tokens.refresh.as_deref().unwrap()).await, 401, "session_revoked").await;
}

#[tokio::test]
async fn logout_never_fails_for_a_missing_or_bad_token() {
    let app = spawn_app().await;
    assert_eq!(app.logout().await.status(), StatusCode::NO_CONTENT);
    let resp = Client::new()
        .post(app.url("/api/v1/auth/logout"))
        .header("Cookie", "refresh_token=garbage; access_token=also.garbage.here")
        .header("Authorization", "Bearer nonsense")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(resp.headers(), "refresh_token").unwrap().contains("Max-Age=0"));
}

#[tokio::test]
async fn logout_all_revokes_every_session_of_the_user() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let laptop = app.another_browser();
    assert_eq!(laptop.login(&email, PASSWORD).await.status(), StatusCode::OK);
    let resp = app.client.post(app.url("/api/v1/auth/logout-all")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(resp.headers(), "access_token").unwrap().contains("Max-Age=0"));
    assert_problem(laptop.me().await, 401, "session_revoked").await;
    assert_problem(laptop.refresh().await, 401, "session_revoked").await;
    // Logging in again works.
    assert_eq!(laptop.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn logout_all_requires_a_session() {
    let app = spawn_app().await;
    let resp = app.client.post(app.url("/api/v1/auth/logout-all")).send().await.unwrap();
    assert_problem(resp, 401, "not_authenticated").await;
}
