use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn list(app: &TestApp) -> Vec<Value> {
    let resp = app.get("/api/v1/auth/sessions").await;
    assert_eq!(resp.status(), StatusCode::OK);
    resp.json().await.unwrap()
}

#[tokio::test]
async fn sessions_lists_each_device_and_marks_the_current_one() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let phone = app.another_browser();
    let resp = phone
        .client
        .post(phone.url("/api/v1/auth/login"))
        .header("User-Agent", "PhoneBrowser/1.0")
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let sessions = list(&app).await;
    assert_eq!(sessions.len(), 2);
    assert_eq!(sessions.iter().filter(|s| s["current"] == true).count(), 1);
    let phone_session = sessions.iter().find(|s| s["user_agent"] == "PhoneBrowser/1.0").expect("phone listed");
    assert_eq!(phone_session["current"], false);
    assert_eq!(phone_session["ip"], "127.0.0.1");
    for key in ["id", "created_at", "last_used_at", "expires_at"] {
        assert!(phone_session[key].is_string(), "{key}");
    }
    assert_no_secrets(&Value::Array(sessions.clone()).to_string());
}

#[tokio::test]
async fn revoking_another_device_signs_it_out() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let phone = app.another_browser();
    phone.login(&email, PASSWORD).await;
    let sessions = list(&app).await;
    let other = sessions.iter().find(|s| s["current"] == false).unwrap();
    let resp = app.delete(&format!("/api/v1/auth/sessions/{}", other["id"].as_str().unwrap())).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(resp.headers(), "access_token").is_none(), "the caller stays signed in");
    assert_problem(phone.me().await, 401, "session_revoked").await;
    assert_problem(phone.refresh().await, 401, "session_revoked").await;
    assert_eq!(list(&app).await.len(), 1);
    assert_eq!(app.me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn revoking_the_current_session_clears_its_cookies() {
    let app = spawn_app().await;
    app.signed_up().await;
    let current = list(&app).await.into_iter().find(|s| s["current"] == true).unwrap();
    let resp = app.delete(&format!("/api/v1/auth/sessions/{}", current["id"].as_str().unwrap())).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert!(set_cookie(resp.headers(), "refresh_token").unwrap().contains("Max-Age=0"));
    assert_problem(app.me().await, 401, "not_authenticated").await;
}

#[tokio::test]
async fn another_users_or_an_unknown_session_is_404() {
    let app = spawn_app().await;
    app.signed_up().await;
    let victim_session = list(&app).await[0]["id"].as_str().unwrap().to_owned();
    let attacker = app.another_browser();
    attacker.signed_up().await;
    let theirs = attacker.delete(&format!("/api/v1/auth/sessions/{victim_session}")).await;
    assert_problem(theirs, 404, "not_found").await;
    let unknown = attacker.delete(&format!("/api/v1/auth/sessions/{}", uuid::Uuid::new_v4())).await;
    assert_problem(unknown, 404, "not_found").await;
    // A path that cannot name a session names no resource: 404, like an unknown id.
    assert_problem(attacker.delete("/api/v1/auth/sessions/not-a-uuid").await, 404, "not_found").await;
    assert_eq!(app.me().await.status(), StatusCode::OK, "the victim is still signed in");
}

#[tokio::test]
async fn sessions_require_a_session() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/auth/sessions").await, 401, "not_authenticated").await;
}

async fn change_password(app: &TestApp, current: &str, new: &str) -> reqwest::Response {
    app.send_json(Method::PUT, "/api/v1/auth/password", &json!({"current_password": current, "new_password": new}))
        .await
}

#[tokio::test]
async fn changing_the_password_keeps_this_session_and_revokes_the_others() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    let laptop = app.another_browser();
    laptop.login(&email, PASSWORD).await;

    let resp = change_password(&app, PASSWORD, "Brand2NewPass").await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.me().await.status(), StatusCode::OK);
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    assert_problem(laptop.me().await, 401, "session_revoked").await;

    let fresh = app.another_browser();
    assert_problem(fresh.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(fresh.login(&email, "Brand2NewPass").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn a_wrong_current_password_or_a_weak_new_one_changes_nothing() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    assert_problem(change_password(&app, "Wrong1Password", "Brand2NewPass").await, 401, "invalid_credentials").await;
    let weak = assert_problem(change_password(&app, PASSWORD, "weak").await, 422, "validation_failed").await;
    assert_eq!(error_fields(&weak), ["new_password"]);
    let same = assert_problem(change_password(&app, PASSWORD, PASSWORD).await, 422, "validation_failed").await;
    assert_eq!(error_fields(&same), ["new_password"]);
    let resp = app.send_json(Method::PUT, "/api/v1/auth/password", &json!({"new_password": "Brand2NewPass"})).await;
    assert_eq!(error_fields(&assert_problem(resp, 422, "validation_failed").await), ["current_password"]);
    // The old password still works.
    assert_eq!(app.another_browser().login(&email, PASSWORD).await.status(), StatusCode::OK);
    let anonymous = app.another_browser();
    assert_problem(change_password(&anonymous, PASSWORD, "Brand2NewPass").await, 401, "not_authenticated").await;
}
