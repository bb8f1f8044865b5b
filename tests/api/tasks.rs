use futures::future::join_all;
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::helpers::*;

async fn create(app: &TestApp, body: Value) -> Value {
    let resp = app.send_json(Method::POST, "/api/v1/tasks", &body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    resp.json().await.unwrap()
}

fn total(resp: &reqwest::Response) -> u64 {
    resp.headers()["x-total-count"].to_str().unwrap().parse().unwrap()
}

#[tokio::test]
async fn tasks_can_be_created_read_updated_completed_and_deleted() {
    let app = spawn_app().await;
    app.signed_up().await;
    let task = create(&app, json!({"title": "  Buy milk ", "description": "2 litres"})).await;
    assert_eq!(task["title"], "Buy milk");
    assert_eq!(task["description"], "2 litres");
    assert_eq!(task["completed"], false);
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(task["user_id"], me["id"]);
    let path = format!("/api/v1/tasks/{}", task["id"]);

    let got: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(got, task);

    // Absent fields stay; only the title changes.
    let resp = app.send_json(Method::PUT, &path, &json!({"title": "Buy oat milk"})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let updated: Value = resp.json().await.unwrap();
    assert_eq!((updated["title"].as_str(), updated["description"].as_str()), (Some("Buy oat milk"), Some("2 litres")));

    // `description: null` clears it.
    let cleared: Value = app.send_json(Method::PUT, &path, &json!({"description": null})).await.json().await.unwrap();
    assert_eq!(cleared["description"], Value::Null);
    assert_eq!(cleared["title"], "Buy oat milk");

    let done: Value = app
        .send_json(Method::PATCH, &format!("{path}/complete"), &json!({"completed": true}))
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(done["completed"], true);
    let undone: Value = app.send_json(Method::PUT, &path, &json!({"completed": false})).await.json().await.unwrap();
    assert_eq!(undone["completed"], false);

    assert_eq!(app.delete(&path).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.get(&path).await, 404, "not_found").await;
    assert_problem(app.delete(&path).await, 404, "not_found").await;
}

#[tokio::test]
async fn the_list_is_newest_first_filtered_and_paginated_with_a_total() {
    let app = spawn_app().await;
    app.signed_up().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let t = create(&app, json!({"title": format!("task {i}")})).await;
        ids.push(t["id"].as_i64().unwrap());
    }
    app.send_json(Method::PATCH, &format!("/api/v1/tasks/{}/complete", ids[1]), &json!({"completed": true})).await;

    let resp = app.get("/api/v1/tasks").await;
    assert_eq!(total(&resp), 5);
    let list: Vec<Value> = resp.json().await.unwrap();
    let listed: Vec<i64> = list.iter().map(|t| t["id"].as_i64().unwrap()).collect();
    assert_eq!(listed, ids.iter().rev().copied().collect::<Vec<_>>());

    let resp = app.get("/api/v1/tasks?limit=2&offset=1").await;
    assert_eq!(total(&resp), 5);
    let page: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(page.iter().map(|t| t["id"].as_i64().unwrap()).collect::<Vec<_>>(), [ids[3], ids[2]]);

    let resp = app.get("/api/v1/tasks?completed=true").await;
    assert_eq!(total(&resp), 1);
    let done: Vec<Value> = resp.json().await.unwrap();
    assert_eq!(done[0]["id"], ids[1]);
    let resp = app.get("/api/v1/tasks?completed=false").await;
    assert_eq!(total(&resp), 4);

    let resp = app.get("/api/v1/tasks?offset=50").await;
    assert_eq!(total(&resp), 5);
    assert_eq!(resp.json::<Vec<Value>>().await.unwrap().len(), 0);
    assert_eq!(app.get("/api/v1/tasks?limit=200").await.status(), StatusCode::OK);
}

#[tokio::test]
async fn pagination_edges_are_422_naming_the_parameter() {
    let app = spawn_app().await;
    app.signed_up().await;
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("offset=-1", "offset"),
        ("limit=abc", "limit"),
        ("completed=maybe", "completed"),
        ("limit=99999999999999999999", "limit"),
    ] {
        let problem = assert_problem(app.get(&format!("/api/v1/tasks?{query}")).await, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "{query}");
    }
}

#[tokio::test]
async fn titles_and_descriptions_are_validated_in_characters() {
    let app = spawn_app().await;
    app.signed_up().await;
    let ok = create(&app, json!({"title": "ж".repeat(200), "description": "🦀".repeat(1000)})).await;
    assert_eq!(ok["title"].as_str().unwrap().chars().count(), 200);
    for (body, field) in [
        (json!({"title": "   "}), "title"),
        (json!({"title": ""}), "title"),
        (json!({"title": "ж".repeat(201)}), "title"),
        (json!({"title": "ok", "description": "🦀".repeat(1001)}), "description"),
        (json!({"title": "nul\u{0}byte"}), "title"),
        (json!({"title": "ok", "description": "nul\u{0}byte"}), "description"),
        (json!({"description": "no title"}), "title"),
        (json!({"title": 5}), "title"),
    ] {
        let resp = app.send_json(Method::POST, "/api/v1/tasks", &body).await;
        assert_eq!(error_fields(&assert_problem(resp, 422, "validation_failed").await), [field]);
    }
    let path = format!("/api/v1/tasks/{}", ok["id"]);
    for (body, field) in [
        (json!({"title": null}), "title"),
        (json!({"title": " "}), "title"),
        (json!({"completed": null}), "completed"),
        (json!({"completed": "yes"}), "completed"),
    ] {
        let resp = app.send_json(Method::PUT, &path, &body).await;
        assert_eq!(error_fields(&assert_problem(resp, 422, "validation_failed").await), [field], "{body}");
    }
    // Nothing was written by the rejected updates.
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(after, ok);
}

#[tokio::test]
async fn odd_ids_are_a_clean_404() {
    let app = spawn_app().await;
    app.signed_up().await;
    // An id that is not a task id names no task, exactly like an unknown one.
    for id in ["abc", "-1", "0", "99999999999999999999", "1.5", "%00"] {
        assert_problem(app.get(&format!("/api/v1/tasks/{id}")).await, 404, "not_found").await;
    }
}

#[tokio::test]
async fn tasks_require_a_session() {
    let app = spawn_app().await;
    assert_problem(app.get("/api/v1/tasks").await, 401, "not_authenticated").await;
    let resp = app.send_json(Method::POST, "/api/v1/tasks", &json!({"title": "x"})).await;
    assert_problem(resp, 401, "not_authenticated").await;
}

#[tokio::test]
async fn another_users_task_is_an_indistinguishable_404_for_every_operation() {
    let app = spawn_app().await;
    app.signed_up().await;
    let victim_task = create(&app, json!({"title": "private", "description": "secret plans"})).await;
    let path = format!("/api/v1/tasks/{}", victim_task["id"]);
    let missing = "/api/v1/tasks/999999";

    let attacker = app.another_browser();
    attacker.signed_up().await;
    let attempts = [
        (Method::GET, "", None),
        (Method::PUT, "", Some(json!({"title": "pwned", "description": null, "completed": true}))),
        (Method::PATCH, "/complete", Some(json!({"completed": true}))),
        (Method::DELETE, "", None),
    ];
    for (method, suffix, body) in attempts {
        let send = |p: String| {
            let mut req = attacker.client.request(method.clone(), attacker.url(&p));
            if let Some(b) = &body {
                req = req.json(b);
            }
            req.send()
        };
        let theirs = assert_problem(send(format!("{path}{suffix}")).await.unwrap(), 404, "not_found").await;
        let nobody = assert_problem(send(format!("{missing}{suffix}")).await.unwrap(), 404, "not_found").await;
        assert_eq!(theirs, nobody, "{method}");
    }
    let resp = attacker.get("/api/v1/tasks").await;
    assert_eq!(total(&resp), 0);
    // The victim's task is exactly as it was.
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert_eq!(after, victim_task);
}

#[tokio::test]
async fn concurrent_updates_of_different_fields_are_all_kept() {
    let app = spawn_app().await;
    app.signed_up().await;
    let task = create(&app, json!({"title": "original", "description": "original"})).await;
    let path = format!("/api/v1/tasks/{}", task["id"]);
    let updates = (0..12).map(|i| {
        let body = match i % 3 {
            0 => json!({"title": format!("title {i}")}),
            1 => json!({"description": format!("description {i}")}),
            _ => json!({"completed": true}),
        };
        let (client, url) = (app.client.clone(), app.url(&path));
        async move { client.put(url).json(&body).send().await.unwrap().status() }
    });
    let statuses = join_all(updates).await;
    assert!(statuses.iter().all(|s| *s == StatusCode::OK), "{statuses:?}");
    let after: Value = app.get(&path).await.json().await.unwrap();
    assert!(after["title"].as_str().unwrap().starts_with("title "), "{after}");
    assert!(after["description"].as_str().unwrap().starts_with("description "), "{after}");
    assert_eq!(after["completed"], true);
}
