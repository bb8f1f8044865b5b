use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

#[tokio::test]
async fn health_and_readiness_answer_ok() {
    let app = spawn_app().await;
    let body: Value = app.client.get(app.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok"}));
    let body: Value = app.client.get(app.url("/health/ready")).send().await.unwrap().json().await.unwrap();
    assert_eq!(body, serde_json::json!({"status": "ok", "database": "ok"}));
}

#[tokio::test]
async fn readiness_is_503_when_the_database_is_gone() {
    let app = spawn_app().await;
    app.state.db.clone().close().await.unwrap();
    let resp = app.client.get(app.url("/health/ready")).send().await.unwrap();
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 503, "database_unavailable").await;
    assert_eq!(app.client.get(app.url("/health")).send().await.unwrap().status(), StatusCode::OK);
}

#[tokio::test]
async fn the_served_spec_is_the_committed_openapi_yaml() {
    let app = spawn_app().await;
    let committed = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi.yaml")).unwrap();
    let served = app.client.get(app.url("/openapi.yaml")).send().await.unwrap().text().await.unwrap();
    assert!(served == committed, "openapi.yaml is stale: run `cargo run -- openapi > openapi.yaml` and commit it");
    let json: Value = app.client.get(app.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let yaml: Value = serde_yaml::from_str(&committed).unwrap();
    assert_eq!(json, yaml);
    assert!(json["components"]["securitySchemes"]["AccessCookie"]["in"] == "cookie");
}

#[tokio::test]
async fn swagger_ui_is_served_at_docs() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.text().await.unwrap().to_lowercase().contains("swagger"));
}

#[tokio::test]
async fn unknown_routes_and_methods_are_problem_documents_with_security_headers() {
    let app = spawn_app().await;
    let resp = app.client.get(app.url("/api/v1/nope")).send().await.unwrap();
    for (header, value) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(resp.headers()[header], value);
    }
    assert_problem(resp, 404, "not_found").await;
    let resp = app.client.delete(app.url("/api/v1/auth/me")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "GET");
    assert_problem(resp, 405, "method_not_allowed").await;
    let resp = app.client.patch(app.url("/api/v1/tasks/7")).send().await.unwrap();
    assert_eq!(resp.headers()["allow"], "DELETE, GET, PUT");
}
