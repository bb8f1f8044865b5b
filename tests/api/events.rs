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

#[tokio::test]
async fn admins_read_only_the_events_of_users_below_them_and_their_own() {
    let app = spawn_app().await;
    let (admin, admin_id) = app.browser_with_role(Role::Admin).await;
    let (super_admin, super_id) = app.browser_with_role(Role::SuperAdmin).await;
    let (_, peer_id) = app.browser_with_role(Role::Admin).await;
    let (_, user_id) = app.browser_with_role(Role::User).await;
    for (target, status) in [(super_id, 403), (peer_id, 403), (user_id, 200), (admin_id, 200)] {
        let resp = admin.get(&format!("/api/v1/users/{target}/events")).await;
        assert_eq!(resp.status().as_u16(), status, "admin reading {target}");
        if status == 403 {
            assert_problem(resp, 403, "forbidden").await;
        }
    }
    // A super_admin reads everyone's.
    assert_eq!(super_admin.get(&format!("/api/v1/users/{admin_id}/events")).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn events_an_admin_caused_name_the_actor_and_hide_the_admins_address_from_the_user() {
    let app = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    app.signed_up().await;
    let id = app.me().await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let resp = admin
        .client
        .patch(app.url(&format!("/api/v1/users/{id}")))
        .header("X-Forwarded-For", "198.51.100.77")
        .header("User-Agent", "admin-console/1.0")
        .json(&json!({"full_name": "Renamed By Admin"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), StatusCode::OK);

    let mine = page(&app, "/api/v1/auth/events").await;
    let by_admin = &mine["events"][0];
    assert_eq!((by_admin["type"].as_str(), by_admin["actor"].as_str()), (Some("user_updated"), Some("admin")));
    assert_eq!((&by_admin["ip"], &by_admin["user_agent"]), (&Value::Null, &Value::Null), "{by_admin}");
    let own = mine["events"].as_array().unwrap().iter().find(|e| e["type"] == "register").unwrap();
    assert_eq!((own["actor"].as_str(), own["ip"].as_str()), (Some("self"), Some("127.0.0.1")));

    let theirs = page(&admin, &format!("/api/v1/users/{id}/events")).await;
    let seen_by_admin = &theirs["events"][0];
    assert_eq!(seen_by_admin["actor"], "admin");
    assert_eq!(
        (seen_by_admin["ip"].as_str(), seen_by_admin["user_agent"].as_str()),
        (Some("198.51.100.77"), Some("admin-console/1.0"))
    );
}

#[tokio::test]
async fn an_imported_account_shows_the_system_as_the_actor() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("users.jsonl");
    let hash = bcrypt::hash("Imported-Pass-1", 4).unwrap();
    std::fs::write(&file, json!({"email": "moved@example.com", "password_hash": hash}).to_string()).unwrap();
    latchkey::import::import_file(&app.state.db, &file).await.unwrap();
    assert_eq!(app.login("moved@example.com", "Imported-Pass-1").await.status(), StatusCode::OK);
    let events = page(&app, "/api/v1/auth/events").await;
    let imported = events["events"].as_array().unwrap().iter().find(|e| e["type"] == "imported").unwrap();
    assert_eq!((imported["actor"].as_str(), &imported["ip"]), (Some("system"), &Value::Null));
}
