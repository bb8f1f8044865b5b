use futures::future::join_all;
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

#[tokio::test]
async fn register_creates_a_user_and_signs_in_with_httponly_cookies() {
    let app = spawn_app().await;
    let resp = app.register(&json!({"email": "  Ada@Example.COM ", "password": PASSWORD})).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let access = set_cookie(resp.headers(), "access_token").expect("access cookie");
    let refresh = set_cookie(resp.headers(), "refresh_token").expect("refresh cookie");
    for c in [&access, &refresh] {
        assert!(c.contains("HttpOnly") && c.contains("SameSite=Strict") && c.contains("Max-Age="), "{c}");
    }
    assert!(access.contains("Path=/;") || access.ends_with("Path=/"), "{access}");
    assert!(refresh.contains("Path=/api/v1/auth"), "{refresh}");
    assert_eq!(resp.headers()["cache-control"], "no-store");

    let body: Value = resp.json().await.unwrap();
    assert_no_secrets(&body.to_string());
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "user");
    assert_eq!(body["user"]["is_active"], true);
    assert_eq!(body["user"]["full_name"], Value::Null);
    assert!(body["access_expires_at"].is_string() && body["refresh_expires_at"].is_string());

    // The cookies work straight away.
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email"], "ada@example.com");
}

#[tokio::test]
async fn cookies_are_secure_unless_turned_off() {
    let app = spawn_app_with(|c| c.cookie_secure = true).await;
    let resp = app.register(&user_body(&unique_email())).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    assert!(set_cookie(resp.headers(), "access_token").unwrap().contains("Secure"));
    assert!(set_cookie(resp.headers(), "refresh_token").unwrap().contains("Secure"));
    assert!(resp.headers().contains_key("strict-transport-security"));
}

#[tokio::test]
async fn an_email_can_register_once_whatever_its_case() {
    let app = spawn_app().await;
    assert_eq!(app.register(&user_body("dup@example.com")).await.status(), StatusCode::CREATED);
    let resp = app.register(&user_body("DUP@example.com ")).await;
    assert_problem(resp, 409, "email_taken").await;
}

#[tokio::test]
async fn concurrent_registrations_of_one_email_give_one_201_and_409s() {
    let app = spawn_app().await;
    let attempts = (0..8).map(|_| {
        let client = browser();
        let url = app.url("/api/v1/auth/register");
        async move { client.post(url).json(&user_body("race@example.com")).send().await.unwrap().status() }
    });
    let statuses = join_all(attempts).await;
    let created = statuses.iter().filter(|s| **s == StatusCode::CREATED).count();
    let conflicts = statuses.iter().filter(|s| **s == StatusCode::CONFLICT).count();
    assert_eq!((created, conflicts), (1, 7), "{statuses:?}");
}

#[tokio::test]
async fn invalid_fields_are_all_reported_at_once() {
    let app = spawn_app().await;
    let resp = app.register(&json!({"email": "not-an-email", "password": "weak", "full_name": "x".repeat(201)})).await;
    let problem = assert_problem(resp, 422, "validation_failed").await;
    let mut fields = error_fields(&problem);
    fields.sort();
    assert_eq!(fields, ["email", "full_name", "password"]);
}

#[tokio::test]
async fn weak_passwords_are_rejected_with_the_reason() {
    let app = spawn_app().await;
    for (password, reason) in [
        ("Sh0rt", "at least 8"),
        ("nouppercase1", "uppercase"),
        ("NOLOWERCASE1", "lowercase"),
        ("NoDigitsHere", "digit"),
        (&*format!("Aa1{}", "x".repeat(200)), "at most 128"),
        ("", "at least 8"),
    ] {
        let resp = app.register(&json!({"email": unique_email(), "password": password})).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "password");
        let message = problem["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(reason), "{password:?}: {message}");
        assert!(!problem.to_string().contains(password) || password.is_empty(), "password echoed");
    }
}

#[tokio::test]
async fn common_or_personal_passwords_are_rejected_in_words() {
    let app = spawn_app().await;
    for (email, password) in [
        (unique_email(), "Password1"),
        (unique_email(), "Qwerty123"),
        ("gracehopper@example.com".to_owned(), "Gracehopper1"),
    ] {
        let resp = app.register(&json!({"email": email, "password": password})).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(problem["errors"][0]["field"], "password");
        assert!(problem["errors"][0]["message"].as_str().unwrap().starts_with("is too easy to guess"), "{problem}");
    }
}

#[tokio::test]
async fn invalid_emails_are_rejected() {
    let app = spawn_app().await;
    for email in [
        "",
        "plain",
        "a@b",
        "@example.com",
        "two@@example.com",
        "sp ace@example.com",
        &format!("{}@example.com", "a".repeat(300)),
    ] {
        let resp = app.register(&json!({"email": email, "password": PASSWORD})).await;
        let problem = assert_problem(resp, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), ["email"], "{email:?}");
    }
}

#[tokio::test]
async fn missing_extra_and_mistyped_fields_name_the_field() {
    let app = spawn_app().await;
    let cases = [
        (json!({"email": unique_email()}), "password"),
        (json!({"password": PASSWORD}), "email"),
        (json!({"email": unique_email(), "password": 12345678}), "password"),
        (json!({"email": ["a@example.com"], "password": PASSWORD}), "email"),
        (json!({"email": unique_email(), "password": PASSWORD, "full_name": 7}), "full_name"),
    ];
    for (body, field) in cases {
        let problem = assert_problem(app.register(&body).await, 422, "validation_failed").await;
        assert_eq!(error_fields(&problem), [field], "{body}");
    }
    for body in [json!([]), json!("text"), json!(null)] {
        assert_problem(app.register(&body).await, 422, "validation_failed").await;
    }
}

#[tokio::test]
async fn unknown_fields_are_ignored_and_cannot_grant_a_role() {
    let app = spawn_app().await;
    let body = json!({"email": unique_email(), "password": PASSWORD, "role": "super_admin", "is_active": false});
    let resp = app.register(&body).await;
    assert_eq!(resp.status(), StatusCode::CREATED);
    let session: Value = resp.json().await.unwrap();
    assert_eq!(session["user"]["role"], "user");
    assert_eq!(session["user"]["is_active"], true);
}

#[tokio::test]
async fn unparseable_bodies_and_wrong_content_types_are_400() {
    let app = spawn_app().await;
    let url = app.url("/api/v1/auth/register");
    for body in ["{", "", "{\"email\": }", "\u{0}\u{1}garbage"] {
        let resp = app.client.post(&url).header("content-type", "application/json").body(body).send().await.unwrap();
        assert_problem(resp, 400, "malformed_request").await;
    }
    let form = app
        .client
        .post(&url)
        .header("content-type", "application/x-www-form-urlencoded")
        .body("email=a")
        .send()
        .await
        .unwrap();
    assert_problem(form, 400, "malformed_request").await;
    let none = app.client.post(&url).body("{}").send().await.unwrap();
    assert_problem(none, 400, "malformed_request").await;
}

#[tokio::test]
async fn oversized_bodies_are_413() {
    let app = spawn_app().await;
    let huge = json!({"email": unique_email(), "password": PASSWORD, "full_name": "x".repeat(200_000)});
    assert_problem(app.register(&huge).await, 413, "payload_too_large").await;
}

#[tokio::test]
async fn nothing_is_stored_when_registration_fails() {
    let app = spawn_app().await;
    let email = unique_email();
    app.register(&json!({"email": email, "password": "weak"})).await;
    // The same email can still register: the failed attempt left no row.
    assert_eq!(app.register(&user_body(&email)).await.status(), StatusCode::CREATED);
}
