//! The second factor over HTTP, with codes computed from the secret the API
//! hands out, as an authenticator app would.

use std::time::Duration;

use futures::future::join_all;
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};
use totp_rs::{Algorithm, Secret, TOTP};

use crate::{email::spawn_with_mail, helpers::*};

const STEP: i64 = 30;

struct Authenticator(TOTP);

impl Authenticator {
    fn from_setup(setup: &Value) -> Self {
        let secret = Secret::Encoded(setup["secret"].as_str().unwrap().to_owned()).to_bytes().unwrap();
        assert_eq!(secret.len(), 20, "160-bit secret");
        Self(TOTP::new_unchecked(Algorithm::SHA1, 6, 1, 30, secret, None, String::new()))
    }

    /// The code `steps` steps away from now.
    fn code(&self, steps: i64) -> String {
        let now = chrono::Utc::now().timestamp();
        self.0.generate((now + steps * STEP) as u64)
    }
}

/// Codes are computed here and checked on the server a moment later: start
/// away from a step boundary, so both sides agree which step is current for
/// the few seconds a test takes.
async fn avoid_step_boundary() {
    let into_step = chrono::Utc::now().timestamp() % STEP;
    if into_step >= STEP - 5 {
        tokio::time::sleep(Duration::from_secs((STEP - into_step + 1) as u64)).await;
    }
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post_json(&app.client, &format!("/api/v1/auth{path}"), &body).await
}

/// A signed-up user with TOTP on (enabled with the code one step back, so
/// the current and next steps are still unused); returns the app-side
/// authenticator, the recovery codes and the email.
async fn user_with_totp(app: &TestApp) -> (Authenticator, Vec<String>, String) {
    avoid_step_boundary().await;
    let (email, _) = app.signed_up().await;
    app.verify_address(&email).await;
    let resp = post(app, "/mfa/totp/setup", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let setup: Value = resp.json().await.unwrap();
    assert!(setup["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"), "{setup}");
    assert!(setup["qr_svg"].as_str().unwrap().contains("<svg"));
    let auth = Authenticator::from_setup(&setup);
    let resp = post(app, "/mfa/totp/enable", json!({"code": auth.code(-1)})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.unwrap();
    let codes: Vec<String> =
        body["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().into()).collect();
    (auth, codes, email)
}

/// Logs in on a fresh browser up to the second step; returns that browser.
async fn first_step(app: &TestApp, email: &str) -> TestApp {
    let browser = app.another_browser();
    let resp = browser.login(email, PASSWORD).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        set_cookie(resp.headers(), "access_token").is_none() && set_cookie(resp.headers(), "refresh_token").is_none()
    );
    let ticket = set_cookie(resp.headers(), "mfa_ticket").expect("an mfa_ticket cookie");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/api/v1/auth/mfa", "Max-Age=300"] {
        assert!(ticket.contains(part), "{part} missing from {ticket}");
    }
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body, json!({"mfa_required": true, "methods": ["totp", "recovery_code"]}));
    browser
}

async fn verify(browser: &TestApp, body: Value) -> reqwest::Response {
    post(browser, "/mfa/verify", body).await
}

#[tokio::test]
async fn with_totp_on_a_login_takes_a_code_after_the_password() {
    let app = spawn_app().await;
    let (auth, codes, email) = user_with_totp(&app).await;
    assert_eq!(codes.len(), 10);
    assert!(codes.iter().all(|c| c.chars().filter(char::is_ascii_alphanumeric).count() == 16), "{codes:?}");
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["mfa_enabled"], true);

    let browser = first_step(&app, &email).await;
    assert_problem(browser.me().await, 401, "not_authenticated").await;
    let resp = verify(&browser, json!({"code": auth.code(0)})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(
        set_cookie(resp.headers(), "refresh_token").is_some() && set_cookie(resp.headers(), "device_token").is_some()
    );
    assert!(set_cookie(resp.headers(), "mfa_ticket").unwrap().contains("Max-Age=0"), "the ticket is cleared");
    assert_eq!(browser.me().await.status(), StatusCode::OK);
    // The ticket worked once.
    assert_problem(verify(&browser, json!({"code": auth.code(1)})).await, 401, "mfa_ticket_invalid").await;
}

#[tokio::test]
async fn a_code_works_within_one_step_of_drift_and_only_once() {
    let app = spawn_app().await;
    let (auth, _, email) = user_with_totp(&app).await; // step -1 is spent
    let browser = first_step(&app, &email).await;
    assert_problem(verify(&browser, json!({"code": auth.code(2)})).await, 401, "invalid_code").await;
    assert_problem(verify(&browser, json!({"code": auth.code(-1)})).await, 401, "invalid_code").await; // replay
    assert_eq!(verify(&browser, json!({"code": auth.code(1)})).await.status(), StatusCode::OK);
    // Step +1 is spent now, and everything before it with it.
    let again = first_step(&app, &email).await;
    assert_problem(verify(&again, json!({"code": auth.code(1)})).await, 401, "invalid_code").await;
    assert_problem(verify(&again, json!({"code": auth.code(0)})).await, 401, "invalid_code").await;
}

#[tokio::test]
async fn a_ticket_takes_five_tries_then_is_spent() {
    let app = spawn_app().await;
    let (auth, _, email) = user_with_totp(&app).await;
    let browser = first_step(&app, &email).await;
    for _ in 0..5 {
        assert_problem(verify(&browser, json!({"code": "000000"})).await, 401, "invalid_code").await;
    }
    assert_problem(verify(&browser, json!({"code": auth.code(0)})).await, 401, "mfa_ticket_invalid").await;
    assert_problem(verify(&app.another_browser(), json!({"code": auth.code(0)})).await, 401, "mfa_ticket_invalid")
        .await;
    assert_problem(verify(&browser, json!({})).await, 422, "validation_failed").await;
}

#[tokio::test]
async fn an_expired_ticket_is_refused() {
    use sea_orm::{ConnectionTrait, Statement};
    let app = spawn_app().await;
    let (auth, _, email) = user_with_totp(&app).await;
    let browser = first_step(&app, &email).await;
    // Five minutes cannot pass in a test: age the ticket in the database.
    let db = &app.state.db;
    let past = (chrono::Utc::now() - chrono::Duration::seconds(1)).naive_utc();
    let sql = match db.get_database_backend() {
        sea_orm::DatabaseBackend::Postgres => "UPDATE mfa_tickets SET expires_at = $1",
        _ => "UPDATE mfa_tickets SET expires_at = ?",
    };
    let value: sea_orm::Value = chrono::DateTime::<chrono::Utc>::from_naive_utc_and_offset(past, chrono::Utc).into();
    db.execute_raw(Statement::from_sql_and_values(db.get_database_backend(), sql, [value])).await.unwrap();
    assert_problem(verify(&browser, json!({"code": auth.code(0)})).await, 401, "mfa_ticket_invalid").await;
}

#[tokio::test]
async fn recovery_codes_work_once_and_one_wins_a_race() {
    let app = spawn_app().await;
    let (_, codes, email) = user_with_totp(&app).await;
    let browser = first_step(&app, &email).await;
    assert_eq!(verify(&browser, json!({"recovery_code": codes[0].to_uppercase()})).await.status(), StatusCode::OK);
    let again = first_step(&app, &email).await;
    assert_problem(verify(&again, json!({"recovery_code": codes[0]})).await, 401, "invalid_code").await;

    let racers = join_all((0..4).map(|_| first_step(&app, &email))).await;
    let statuses = join_all(racers.iter().map(|b| verify(b, json!({"recovery_code": codes[1]}))))
        .await
        .into_iter()
        .map(|r| r.status());
    let ok = statuses.filter(|s| *s == StatusCode::OK).count();
    assert_eq!(ok, 1, "exactly one login spends a recovery code");
}

#[tokio::test]
async fn regenerating_voids_the_old_codes_and_disabling_voids_everything() {
    let app = spawn_app().await;
    let (auth, old, email) = user_with_totp(&app).await;
    let resp = post(&app, "/mfa/recovery-codes", json!({})).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let new: Vec<String> = resp.json::<Value>().await.unwrap()["recovery_codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().into())
        .collect();
    let browser = first_step(&app, &email).await;
    assert_problem(verify(&browser, json!({"recovery_code": old[0]})).await, 401, "invalid_code").await;
    assert_eq!(verify(&browser, json!({"recovery_code": new[0]})).await.status(), StatusCode::OK);

    let resp =
        app.client.delete(app.url("/api/v1/auth/mfa/totp")).json(&json!({"code": "123456"})).send().await.unwrap();
    assert_problem(resp, 401, "invalid_code").await;
    let resp =
        app.client.delete(app.url("/api/v1/auth/mfa/totp")).json(&json!({"code": auth.code(0)})).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.another_browser().login(&email, PASSWORD).await.status(), StatusCode::OK, "password alone again");
    let resp = app.client.delete(app.url("/api/v1/auth/mfa/totp")).json(&json!({"code": new[1]})).send().await.unwrap();
    assert_problem(resp, 409, "mfa_not_enabled").await;
}

#[tokio::test]
async fn settings_need_a_recent_sign_in_and_reauth_refreshes_it() {
    let app = spawn_app_with(|c| c.reauth_max_age = Duration::from_secs(1)).await;
    let (auth, _, _) = user_with_totp(&app).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    assert_problem(post(&app, "/mfa/recovery-codes", json!({})).await, 403, "reauth_required").await;
    let change = json!({"current_password": PASSWORD, "new_password": "Fresh4-Lantern-Quay"});
    assert_problem(app.send_json(reqwest::Method::PUT, "/api/v1/auth/password", &change).await, 403, "reauth_required")
        .await;
    assert_problem(post(&app, "/reauth", json!({"password": PASSWORD})).await, 401, "invalid_code").await;
    assert_problem(
        post(&app, "/reauth", json!({"password": "Wrong1Password", "code": auth.code(0)})).await,
        401,
        "invalid_credentials",
    )
    .await;
    assert_eq!(
        post(&app, "/reauth", json!({"password": PASSWORD, "code": auth.code(0)})).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_eq!(post(&app, "/mfa/recovery-codes", json!({})).await.status(), StatusCode::OK);
    assert_eq!(
        app.send_json(reqwest::Method::PUT, "/api/v1/auth/password", &change).await.status(),
        StatusCode::NO_CONTENT
    );
}

#[tokio::test]
async fn without_a_second_factor_password_changes_need_no_recent_sign_in() {
    let app = spawn_app_with(|c| c.reauth_max_age = Duration::from_secs(1)).await;
    app.signed_up().await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let change = json!({"current_password": PASSWORD, "new_password": "Fresh4-Lantern-Quay"});
    assert_eq!(
        app.send_json(reqwest::Method::PUT, "/api/v1/auth/password", &change).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(post(&app, "/mfa/totp/setup", json!({})).await, 403, "reauth_required").await;
}

#[tokio::test]
async fn the_secret_never_comes_back_after_setup_and_is_sealed_at_rest() {
    use latchkey::entity::mfa_totp;
    use sea_orm::EntityTrait;
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    app.verify_address(&email).await;
    avoid_step_boundary().await;
    let setup: Value = post(&app, "/mfa/totp/setup", json!({})).await.json().await.unwrap();
    let secret = setup["secret"].as_str().unwrap().to_owned();
    let auth = Authenticator::from_setup(&setup);
    let enabled = post(&app, "/mfa/totp/enable", json!({"code": auth.code(0)})).await.text().await.unwrap();
    assert!(!enabled.contains(&secret));
    assert_problem(post(&app, "/mfa/totp/setup", json!({})).await, 409, "mfa_already_enabled").await;
    let me = app.me().await.text().await.unwrap();
    let browser = first_step(&app, &email).await;
    let signed_in = verify(&browser, json!({"code": auth.code(1)})).await.text().await.unwrap();
    for body in [me, signed_in] {
        assert!(!body.contains(&secret), "{body}");
    }
    let rows = mfa_totp::Entity::find().all(&app.state.db).await.unwrap();
    assert!(rows[0].secret_enc.starts_with("v1:") && !rows[0].secret_enc.contains(&secret));
}

#[tokio::test]
async fn a_reset_link_alone_does_not_beat_the_second_factor() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (auth, codes, email) = user_with_totp(&app).await;
    post(&app, "/password/forgot", json!({"email": email})).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    let reset = |code: Option<String>| {
        let client = Client::new();
        let url = app.url("/api/v1/auth/password/reset");
        let token = token.clone();
        async move {
            client
                .post(url)
                .json(&json!({"token": token, "new_password": "Fresh4-Lantern-Quay", "code": code}))
                .send()
                .await
                .unwrap()
        }
    };
    assert_problem(reset(None).await, 401, "mfa_required").await;
    assert_problem(reset(Some("000000".into())).await, 401, "invalid_code").await;
    assert_eq!(reset(Some(codes[0].clone())).await.status(), StatusCode::NO_CONTENT, "the link survived wrong codes");
    sink.wait_for_subject(&email, "A recovery code was used").await;
    let _ = auth;
}

#[tokio::test]
async fn an_admin_can_turn_a_users_second_factor_off_and_it_is_mailed_and_audited() {
    use latchkey::entity::audit_event;
    use sea_orm::EntityTrait;
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (_, _, email) = user_with_totp(&app).await;
    sink.wait_for_subject(&email, "Two-step sign-in is on").await;
    let id = app.me().await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let (admin, admin_id) = app.browser_with_role(latchkey::domain::Role::Admin).await;
    let resp = admin.client.delete(app.url(&format!("/api/v1/users/{id}/mfa"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.another_browser().login(&email, PASSWORD).await.status(), StatusCode::OK);
    let mail = sink.wait_for_subject(&email, "Two-step sign-in is off").await;
    assert!(mail.text().contains("An administrator"), "{}", mail.text());
    let resp = admin.client.delete(app.url(&format!("/api/v1/users/{id}/mfa"))).send().await.unwrap();
    assert_problem(resp, 409, "mfa_not_enabled").await;
    let events = audit_event::Entity::find().all(&app.state.db).await.unwrap();
    assert!(events.iter().any(|e| e.event == "mfa_reset" && e.actor_id == Some(admin_id)));
    assert!(events.iter().any(|e| e.event == "mfa_enabled"));
}

#[tokio::test]
async fn wrong_codes_count_toward_the_account_budget() {
    let app = spawn_app().await;
    let (auth, _, email) = user_with_totp(&app).await;
    // Two tickets' worth of wrong codes spend the shared budget of ten.
    for _ in 0..2 {
        let browser = first_step(&app, &email).await;
        for _ in 0..5 {
            assert_problem(verify(&browser, json!({"code": "000000"})).await, 401, "invalid_code").await;
        }
    }
    // The shared budget is spent: even the right password now waits.
    assert_problem(app.another_browser().login(&email, PASSWORD).await, 429, "rate_limited").await;
    let _ = auth;
}

/// A reset request for `email` with `code`, from a client of its own.
fn reset_with_code(app: &TestApp, token: &str, code: String) -> impl Future<Output = reqwest::Response> + use<> {
    let body = json!({"token": token, "new_password": "Fresh4-Lantern-Quay", "code": code});
    let (client, url) = (Client::new(), app.url("/api/v1/auth/password/reset"));
    async move { client.post(url).json(&body).send().await.unwrap() }
}

#[tokio::test]
async fn guessing_codes_with_a_reset_link_spends_the_links_own_budget() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (auth, _, email) = user_with_totp(&app).await;
    post(&app, "/password/forgot", json!({"email": email})).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    for guess in 0..10 {
        assert_problem(reset_with_code(&app, &token, format!("{guess:06}")).await, 401, "invalid_code").await;
    }
    assert_problem(reset_with_code(&app, &token, auth.code(0)).await, 429, "rate_limited").await;
    // A new link is no fresh budget: the guesses count across the user's links.
    post(&app, "/password/forgot", json!({"email": email})).await;
    let again = sink.wait_for_subject_nth(&email, "Reset your password", 2, Duration::from_secs(10)).await;
    assert_problem(reset_with_code(&app, &again.token("reset-password"), auth.code(0)).await, 429, "rate_limited")
        .await;
    // The account's own budget was not touched: the owner's password still signs in.
    assert_eq!(app.another_browser().login(&email, PASSWORD).await.status(), StatusCode::ACCEPTED);
}

#[tokio::test]
async fn strangers_failed_logins_do_not_block_the_owners_reset() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (auth, _, email) = user_with_totp(&app).await;
    // Strangers spend the account's shared budget, and keep it spent.
    for _ in 0..11 {
        let resp = app.another_browser().login(&email, "Not-The-Password-1").await;
        assert!(matches!(resp.status().as_u16(), 401 | 429), "{}", resp.status());
    }
    assert_problem(app.another_browser().login(&email, PASSWORD).await, 429, "rate_limited").await;
    post(&app, "/password/forgot", json!({"email": email})).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    assert_eq!(reset_with_code(&app, &token, auth.code(0)).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn a_second_factor_needs_a_verified_address() {
    let app = spawn_app().await;
    let (email, _) = app.signed_up().await;
    assert_problem(post(&app, "/mfa/totp/setup", json!({})).await, 403, "email_not_verified").await;
    assert_problem(post(&app, "/mfa/totp/enable", json!({"code": "123456"})).await, 403, "email_not_verified").await;
    app.verify_address(&email).await;
    assert_eq!(post(&app, "/mfa/totp/setup", json!({})).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn reauth_counts_toward_the_login_limit_per_address() {
    let app = spawn_app_with(|c| c.login_rate_per_minute = 3).await;
    app.signed_up().await;
    for _ in 0..3 {
        let resp = post(&app, "/reauth", json!({"password": "Wrong1Password"})).await;
        assert_problem(resp, 401, "invalid_credentials").await;
    }
    let resp = post(&app, "/reauth", json!({"password": PASSWORD})).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "rate_limited").await;
}

#[tokio::test]
async fn second_factor_changes_are_limited_per_address() {
    let app = spawn_app_with(|c| c.email_rate_per_hour = 3).await;
    user_with_totp(&app).await; // enabling was one request that can mail
    for _ in 0..2 {
        assert_eq!(post(&app, "/mfa/recovery-codes", json!({})).await.status(), StatusCode::OK);
    }
    assert_problem(post(&app, "/mfa/recovery-codes", json!({})).await, 429, "rate_limited").await;
}

#[tokio::test]
async fn guessing_codes_to_turn_the_second_factor_off_spends_the_session_budget() {
    let app = spawn_app().await;
    let (auth, _, _) = user_with_totp(&app).await;
    let disable = |code: String| {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/mfa/totp"));
        async move { client.delete(url).json(&json!({"code": code})).send().await.unwrap() }
    };
    for guess in 0..10 {
        assert_problem(disable(format!("{guess:06}")).await, 401, "invalid_code").await;
    }
    assert_problem(disable(auth.code(0)).await, 429, "rate_limited").await;
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["mfa_enabled"], true);
}

#[tokio::test]
async fn new_recovery_codes_are_mailed() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (_, _, email) = user_with_totp(&app).await;
    assert_eq!(post(&app, "/mfa/recovery-codes", json!({})).await.status(), StatusCode::OK);
    sink.wait_for_subject(&email, "New recovery codes were made").await;
}

#[tokio::test]
async fn an_admin_needs_a_recent_sign_in_to_strip_a_second_factor() {
    let app = spawn_app_with(|c| c.reauth_max_age = Duration::from_secs(1)).await;
    let (_, _, _) = user_with_totp(&app).await;
    let id = app.me().await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let (admin, _) = app.browser_with_role(latchkey::domain::Role::Admin).await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let resp = admin.client.delete(app.url(&format!("/api/v1/users/{id}/mfa"))).send().await.unwrap();
    assert_problem(resp, 403, "reauth_required").await;
}
