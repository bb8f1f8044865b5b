//! `GET /auth/events` and `GET /users/{id}/events`: an account's security
//! events, newest first, cursor-paged; and the retention purge.

use std::time::Duration;

use latchkey::domain::Role;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn page(app: &TestApp, path: &str) -> Value {
    let resp = app.get(path).await;
    assert_eq!(resp.status(), StatusCode::OK, "{path}");
    resp.json().await.unwrap()
}

fn types(page: &Value) -> Vec<String> {
    page["events"].as_array().unwrap().iter().map(|e| e["type"].as_str().unwrap().to_owned()).collect()
}

/// A user with a known history: registered, one wrong password, a login, a refresh, a password change.
async fn user_with_history(app: &TestApp) -> String {
    let (email, _) = app.signed_up().await;
    assert_eq!(app.login(&email, "Wrong1Password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    let resp = app
        .send_json(
            Method::PUT,
            "/api/v1/auth/password",
            &json!({"current_password": PASSWORD, "new_password": "Brand2NewPass"}),
        )
        .await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    email
}

#[tokio::test]
async fn a_user_sees_their_own_events_newest_first_without_refreshes() {
    let app = spawn_app().await;
    user_with_history(&app).await;
    let stranger = app.another_browser();
    stranger.signed_up().await;

    let all = page(&app, "/api/v1/auth/events").await;
    assert_eq!(types(&all), ["password_changed", "login_succeeded", "login_failed", "verification_sent", "register"]);
    assert_eq!(all["next_cursor"], Value::Null);
    let newest = &all["events"][0];
    assert_eq!(newest["ip"], "127.0.0.1");
    assert!(newest["id"].is_i64() && newest["created_at"].is_string(), "{newest}");
    assert!(newest.get("user_agent").is_some(), "user_agent is present, if null");
    assert_no_secrets(&all.to_string());
    assert_eq!(
        types(&page(&stranger, "/api/v1/auth/events").await),
        ["verification_sent", "register"],
        "only one's own"
    );
}

#[tokio::test]
async fn pages_follow_the_cursor_without_gaps_or_repeats() {
    let app = spawn_app().await;
    user_with_history(&app).await;
    let everything = page(&app, "/api/v1/auth/events").await;
    let mut seen = Vec::new();
    let mut path = "/api/v1/auth/events?limit=3".to_owned();
    let mut pages = 0;
    loop {
        let p = page(&app, &path).await;
        pages += 1;
        seen.extend(p["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()));
        match p["next_cursor"].as_str() {
            Some(cursor) => path = format!("/api/v1/auth/events?limit=3&cursor={cursor}"),
            None => break,
        }
    }
    let expected: Vec<i64> =
        everything["events"].as_array().unwrap().iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(seen, expected);
    assert_eq!(pages, 2);
}

#[tokio::test]
async fn bad_limits_and_cursors_are_refused_by_name() {
    let app = spawn_app().await;
    app.signed_up().await;
    for (query, field) in [("limit=0", "limit"), ("limit=201", "limit"), ("cursor=not-a-cursor", "cursor")] {
        let problem =
            assert_problem(app.get(&format!("/api/v1/auth/events?{query}")).await, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
    assert_problem(app.another_browser().get("/api/v1/auth/events").await, 401, "not_authenticated").await;
}

#[tokio::test]
async fn admins_read_a_users_events_and_others_may_not() {
    let app = spawn_app().await;
    user_with_history(&app).await;
    let me: Value = app.me().await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let theirs = page(&admin, &format!("/api/v1/users/{id}/events")).await;
    assert_eq!(
        types(&theirs),
        ["password_changed", "login_succeeded", "login_failed", "verification_sent", "register"]
    );
    assert_problem(admin.get(&format!("/api/v1/users/{}/events", uuid::Uuid::new_v4())).await, 404, "not_found").await;
    let (moderator, _) = app.browser_with_role(Role::Moderator).await;
    assert_problem(moderator.get(&format!("/api/v1/users/{id}/events")).await, 403, "forbidden").await;
}

#[tokio::test]
async fn events_older_than_the_retention_are_purged() {
    let app = spawn_app().await;
    app.signed_up().await;
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let email = app.me().await.json::<Value>().await.unwrap()["email"].as_str().unwrap().to_owned();
    app.login(&email, PASSWORD).await;
    let purged = latchkey::audit::purge_older_than(&app.state.writer, Duration::from_secs(1)).await.unwrap();
    assert!(purged >= 1, "the registration is older than a second");
    assert_eq!(types(&page(&app, "/api/v1/auth/events").await), ["login_succeeded"]);
}
