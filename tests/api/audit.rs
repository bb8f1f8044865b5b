use latchkey::{domain::Role, entity::audit_event};
use reqwest::Method;
use sea_orm::{EntityTrait, QueryOrder};
use serde_json::json;

use crate::helpers::*;

async fn events(app: &TestApp) -> Vec<audit_event::Model> {
    audit_event::Entity::find().order_by_asc(audit_event::Column::Id).all(&app.state.db).await.unwrap()
}

#[tokio::test]
async fn security_events_are_recorded_without_secrets() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    app.login(&email, "Wrong1Password").await;
    app.login(&email, PASSWORD).await;
    app.refresh().await;
    app.send_json(
        Method::PUT,
        "/api/v1/auth/password",
        &json!({"current_password": PASSWORD, "new_password": "Brand2NewPass"}),
    )
    .await;
    app.logout().await;
    let (admin, _) = app.browser_with_role(Role::SuperAdmin).await;
    let (_, target) = app.browser_with_role(Role::User).await;
    admin.send_json(Method::PUT, &format!("/api/v1/users/{target}/role"), &json!({"role": "moderator"})).await;
    admin.send_json(Method::PATCH, &format!("/api/v1/users/{target}"), &json!({"is_active": false})).await;
    admin.delete(&format!("/api/v1/users/{target}")).await;

    let all = events(&app).await;
    let names: Vec<&str> = all.iter().map(|e| e.event.as_str()).collect();
    for expected in [
        "register",
        "login_failed",
        "login_succeeded",
        "refresh",
        "password_changed",
        "logout",
        "role_changed",
        "deactivated",
        "deleted",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    let role_change = all.iter().find(|e| e.event == "role_changed").unwrap();
    assert_eq!(role_change.user_id, Some(target));
    assert!(role_change.actor_id.is_some());
    assert_eq!(role_change.detail.as_deref(), Some("user -> moderator"));
    assert_eq!(role_change.ip.as_deref(), Some("127.0.0.1"));
    let dump = format!("{all:?}");
    assert!(
        !dump.contains(PASSWORD) && !dump.contains("Brand2NewPass") && !dump.contains("$2b$") && !dump.contains("eyJ")
    );
}

#[tokio::test]
async fn refresh_token_reuse_is_recorded() {
    let app = spawn_app_with(|c| c.refresh_reuse_grace = std::time::Duration::ZERO).await;
    let (_, tokens) = app.signed_up().await;
    app.refresh().await;
    app.refresh_with(tokens.refresh.as_deref().unwrap()).await;
    assert!(events(&app).await.iter().any(|e| e.event == "refresh_reuse_detected"));
}
