use latchkey::{
    domain::Role,
    entity::{session, task},
};
use reqwest::{Method, StatusCode};
use sea_orm::{ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter};
use serde_json::{Value, json};

use crate::helpers::*;

const ROLES: [Role; 4] = [Role::User, Role::Moderator, Role::Admin, Role::SuperAdmin];

#[derive(Clone, Copy, Debug)]
enum Action {
    Get,
    Rename,
    Demote,
    Delete,
}

async fn act(actor: &TestApp, action: Action, target: uuid::Uuid) -> reqwest::Response {
    let path = format!("/api/v1/users/{target}");
    match action {
        Action::Get => actor.get(&path).await,
        Action::Rename => actor.send_json(Method::PATCH, &path, &json!({"full_name": "Renamed"})).await,
        Action::Demote => actor.send_json(Method::PUT, &format!("{path}/role"), &json!({"role": "user"})).await,
        Action::Delete => actor.delete(&path).await,
    }
}

/// Every actor role x target role x action, against the role rules in docs/SESSIONS.md.
#[tokio::test]
async fn the_role_hierarchy_decides_who_may_do_what() {
    let app = spawn_app().await;
    for actor_role in ROLES {
        let (actor, _) = app.browser_with_role(actor_role).await;
        for target_role in ROLES {
            for action in [Action::Get, Action::Rename, Action::Demote, Action::Delete] {
                let (_, target) = app.browser_with_role(target_role).await;
                let allowed = actor_role >= Role::Admin && (matches!(action, Action::Get) || target_role < actor_role);
                let resp = act(&actor, action, target).await;
                let case = format!("{actor_role:?} -> {target_role:?}: {action:?}");
                if allowed {
                    assert!(resp.status().is_success(), "{case}: {}", resp.status());
                } else {
                    assert_eq!(resp.status(), StatusCode::FORBIDDEN, "{case}");
                    assert_problem(resp, 403, "forbidden").await;
                }
            }
        }
    }
}

#[tokio::test]
async fn roles_can_only_be_granted_below_your_own() {
    let app = spawn_app().await;
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let (root, _) = app.browser_with_role(Role::SuperAdmin).await;
    let grant = |who: &TestApp, target: uuid::Uuid, role: &str| {
        let (c, url) = (who.client.clone(), who.url(&format!("/api/v1/users/{target}/role")));
        let body = json!({"role": role});
        async move { c.put(url).json(&body).send().await.unwrap() }
    };
    let (_, target) = app.browser_with_role(Role::User).await;
    let resp = grant(&admin, target, "moderator").await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["role"], "moderator");
    assert_problem(grant(&admin, target, "admin").await, 403, "forbidden").await;
    assert_problem(grant(&admin, target, "super_admin").await, 403, "forbidden").await;
    assert_eq!(grant(&root, target, "admin").await.status(), StatusCode::OK);
    let (_, other) = app.browser_with_role(Role::User).await;
    assert_problem(grant(&root, other, "super_admin").await, 403, "forbidden").await;
    let bad = assert_problem(grant(&root, other, "emperor").await, 422, "validation_failed").await;
    assert_eq!(error_fields(&bad), ["role"]);
}

#[tokio::test]
async fn nobody_changes_deactivates_or_deletes_themselves() {
    let app = spawn_app().await;
    let (root, me) = app.browser_with_role(Role::SuperAdmin).await;
    let path = format!("/api/v1/users/{me}");
    assert_problem(
        root.send_json(Method::PUT, &format!("{path}/role"), &json!({"role": "user"})).await,
        403,
        "forbidden",
    )
    .await;
    assert_problem(root.send_json(Method::PATCH, &path, &json!({"is_active": false})).await, 403, "forbidden").await;
    assert_problem(root.delete(&path).await, 403, "forbidden").await;
    assert_eq!(root.me().await.status(), StatusCode::OK);
}

#[tokio::test]
async fn deactivating_a_user_locks_them_out_everywhere_at_once() {
    let app = spawn_app().await;
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let (victim, victim_id) = app.browser_with_role(Role::User).await;
    let email = victim.me().await.json::<Value>().await.unwrap()["email"].as_str().unwrap().to_owned();
    let resp =
        admin.send_json(Method::PATCH, &format!("/api/v1/users/{victim_id}"), &json!({"is_active": false})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.json::<Value>().await.unwrap()["is_active"], false);

    assert_eq!(victim.me().await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(victim.get("/api/v1/tasks").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(victim.refresh().await.status(), StatusCode::UNAUTHORIZED);
    assert_problem(victim.login(&email, PASSWORD).await, 403, "account_disabled").await;

    let resp = admin.send_json(Method::PATCH, &format!("/api/v1/users/{victim_id}"), &json!({"is_active": true})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(victim.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn patch_changes_only_the_fields_sent() {
    let app = spawn_app().await;
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let (_, id) = app.browser_with_role(Role::User).await;
    let path = format!("/api/v1/users/{id}");
    let renamed: Value =
        admin.send_json(Method::PATCH, &path, &json!({"full_name": "  Grace  "})).await.json().await.unwrap();
    assert_eq!((renamed["full_name"].as_str(), renamed["is_active"].as_bool()), (Some("Grace"), Some(true)));
    let cleared: Value = admin.send_json(Method::PATCH, &path, &json!({"full_name": null})).await.json().await.unwrap();
    assert_eq!(cleared["full_name"], Value::Null);
    for (body, field) in
        [(json!({"is_active": null}), "is_active"), (json!({"full_name": "x".repeat(201)}), "full_name")]
    {
        let resp = admin.send_json(Method::PATCH, &path, &body).await;
        assert_eq!(error_fields(&assert_problem(resp, 422, "validation_failed").await), [field]);
    }
}

#[tokio::test]
async fn deleting_a_user_takes_their_sessions_and_tasks() {
    let app = spawn_app().await;
    let (admin, _) = app.browser_with_role(Role::Admin).await;
    let (victim, victim_id) = app.browser_with_role(Role::User).await;
    victim.send_json(Method::POST, "/api/v1/tasks", &json!({"title": "mine"})).await;
    let resp = admin.delete(&format!("/api/v1/users/{victim_id}")).await;
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    let db = &app.state.db;
    assert_eq!(task::Entity::find().filter(task::Column::UserId.eq(victim_id)).count(db).await.unwrap(), 0);
    assert_eq!(session::Entity::find().filter(session::Column::UserId.eq(victim_id)).count(db).await.unwrap(), 0);
    assert_problem(admin.get(&format!("/api/v1/users/{victim_id}")).await, 404, "not_found").await;
    assert_eq!(victim.me().await.status(), StatusCode::UNAUTHORIZED);
    assert_problem(admin.delete(&format!("/api/v1/users/{victim_id}")).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_user_list_is_paginated_with_a_total() {
    let app = spawn_app().await;
    let (admin, admin_id) = app.browser_with_role(Role::Admin).await;
    for _ in 0..3 {
        app.another_browser().signed_up().await;
    }
    let resp = admin.get("/api/v1/users?limit=2").await;
    assert_eq!(resp.headers()["x-total-count"], "4");
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.len(), 2);
    assert_eq!(page[0]["id"], admin_id.to_string(), "oldest first");
    assert_no_secrets(&Value::Array(page).to_string());
    let rest: Vec<Value> = admin.get("/api/v1/users?limit=2&offset=2").await.json().await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_problem(admin.get("/api/v1/users?limit=0").await, 422, "validation_failed").await;
    assert_problem(admin.get(&format!("/api/v1/users/{}", uuid::Uuid::new_v4())).await, 404, "not_found").await;
}
