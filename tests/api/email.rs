//! Email flows end to end: real mail through a real SMTP listener
//! (`smtp_sink`), links followed by posting their token like the SPA does.

use std::time::{Duration, Instant};

use futures::future::join_all;
use latchkey::config::{Config, Secret};
use reqwest::{Client, StatusCode};
use serde_json::{Value, json};

use crate::{helpers::*, smtp_sink::SmtpSink};

const APP_URL: &str = "https://spa.test";

pub async fn spawn_with_mail(tweak: impl FnOnce(&mut Config)) -> (TestApp, SmtpSink) {
    let sink = SmtpSink::start().await;
    let url = sink.url();
    let app = spawn_app_with(move |c| {
        c.smtp_url = Some(Secret::new(url));
        c.app_url = APP_URL.into();
        c.mail_retry_base = Duration::from_millis(200);
        tweak(c);
    })
    .await;
    (app, sink)
}

async fn post(app: &TestApp, path: &str, body: Value) -> reqwest::Response {
    app.post_json(&app.client, &format!("/api/v1/auth{path}"), &body).await
}

async fn forgot(app: &TestApp, email: &str) -> reqwest::Response {
    post(app, "/password/forgot", json!({"email": email})).await
}

async fn reset(app: &TestApp, token: &str, password: &str) -> reqwest::Response {
    post(app, "/password/reset", json!({"token": token, "new_password": password})).await
}

const NEW_PASSWORD: &str = "Fresh4-Lantern-Quay";

#[tokio::test]
async fn registration_mails_a_verification_link_that_verifies_once() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email_verified"], false);
    let mail = sink.wait_for(&email).await;
    assert!(mail.text().contains(&format!("{APP_URL}/verify-email#token=")), "{}", mail.text());
    assert!(mail.data.contains("text/html") && mail.data.contains("text/plain"), "both parts");
    let token = mail.token("verify-email");
    assert_eq!(token.len(), 43, "256 random bits, base64url");
    // Once delivered, the outbox keeps no copy of the link.
    let started = Instant::now();
    loop {
        use latchkey::entity::mail_outbox;
        use sea_orm::EntityTrait;
        let rows = mail_outbox::Entity::find().all(&app.state.db).await.unwrap();
        if rows.iter().all(|r| r.sent_at.is_some()) {
            assert!(rows.iter().all(|r| !r.text_body.contains(&token) && !r.html_body.contains(&token)));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(5), "the mail was never marked sent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(post(&app, "/email/verify", json!({"token": token})).await.status(), StatusCode::NO_CONTENT);
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    assert_problem(post(&app, "/email/verify", json!({"token": token})).await, 400, "invalid_token").await;
    assert_problem(post(&app, "/email/verify", json!({"token": "x".repeat(43)})).await, 400, "invalid_token").await;
}

#[tokio::test]
async fn forgot_password_answers_alike_for_known_and_unknown_addresses() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    // The unknown address first: by the time the known one's mail is out,
    // its (shorter) background work is done.
    let unknown = forgot(&app, "nobody@example.com").await;
    let known = forgot(&app, &email).await;
    assert_eq!(known.status(), StatusCode::ACCEPTED);
    assert_eq!(unknown.status(), StatusCode::ACCEPTED);
    assert_eq!(known.text().await.unwrap(), unknown.text().await.unwrap());
    let mail = sink.wait_for_subject(&email, "Reset your password").await; // after the verification mail
    assert!(mail.subject().contains("Reset your password"), "{}", mail.subject());
    outbox_drained(&app).await;
    assert!(sink.to("nobody@example.com").is_empty());
    assert_problem(forgot(&app, "not-an-email").await, 422, "validation_failed").await;
}

#[tokio::test]
async fn forgot_password_takes_the_same_time_for_known_and_unknown_addresses() {
    let (app, _sink) = spawn_with_mail(|c| c.email_rate_per_hour = 1000).await;
    let (email, _) = app.signed_up().await;
    let mut known = Vec::new();
    let mut unknown = Vec::new();
    for i in 0..15 {
        let started = Instant::now();
        assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED);
        known.push(started.elapsed());
        let started = Instant::now();
        assert_eq!(forgot(&app, &format!("nobody-{i}@example.com")).await.status(), StatusCode::ACCEPTED);
        unknown.push(started.elapsed());
    }
    known.sort();
    unknown.sort();
    let (k, u) = (known[7], unknown[7]);
    eprintln!("forgot-password median: known {k:?}, unknown {u:?}");
    let difference = k.abs_diff(u);
    assert!(difference < Duration::from_millis(5), "known {k:?} vs unknown {u:?}");
}

#[tokio::test]
async fn a_reset_sets_the_password_signs_everyone_out_and_verifies_the_address() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let other_device = app.another_browser();
    assert_eq!(other_device.login(&email, PASSWORD).await.status(), StatusCode::OK);
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");

    let stranger = app.another_browser();
    assert_eq!(reset(&stranger, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    assert_problem(app.me().await, 401, "session_revoked").await;
    assert_problem(other_device.me().await, 401, "session_revoked").await;
    assert_problem(app.login(&email, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&email, NEW_PASSWORD).await.status(), StatusCode::OK);
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email_verified"], true);
    let notice = sink.wait_for_subject(&email, "Your password was changed").await;
    assert!(notice.subject().contains("Your password was changed"), "{}", notice.subject());
    assert_problem(reset(&stranger, &token, "Another5-Harbor-Quill").await, 400, "invalid_token").await;
}

#[tokio::test]
async fn a_rejected_new_password_does_not_spend_the_link() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    let body = assert_problem(reset(&app, &token, "password").await, 422, "validation_failed").await;
    assert_eq!(error_fields(&body), ["new_password"]);
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
}

#[tokio::test]
async fn of_two_concurrent_uses_of_one_link_exactly_one_wins() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    let attempts = (0..8).map(|i| {
        let client = Client::new();
        let url = app.url("/api/v1/auth/password/reset");
        let token = token.clone();
        async move {
            let password = format!("Fresh4-Lantern-Quay-{i}");
            client.post(url).json(&json!({"token": token, "new_password": password})).send().await.unwrap().status()
        }
    });
    let statuses = join_all(attempts).await;
    let won = statuses.iter().filter(|s| **s == StatusCode::NO_CONTENT).count();
    let lost = statuses.iter().filter(|s| **s == StatusCode::BAD_REQUEST).count();
    assert_eq!((won, lost), (1, 7), "{statuses:?}");
}

#[tokio::test]
async fn expired_and_voided_links_are_invalid_alike() {
    // Voided: with the default lifetime (30 minutes), so it cannot be mistaken for expired.
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    forgot(&app, &email).await;
    let first = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    forgot(&app, &email).await;
    let second = sink
        .wait_for_subject_nth(&email, "Reset your password", 2, Duration::from_secs(10))
        .await
        .token("reset-password");
    // A newer link voids the older one; the newer one still works.
    let voided = assert_problem(reset(&app, &first, NEW_PASSWORD).await, 400, "invalid_token").await;
    assert_eq!(reset(&app, &second, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);

    // Expired: a one-second lifetime, waited out. The answer is the same.
    let (app, sink) = spawn_with_mail(|c| c.password_reset_ttl = Duration::from_secs(1)).await;
    let (email, _) = app.signed_up().await;
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    let expired = assert_problem(reset(&app, &token, NEW_PASSWORD).await, 400, "invalid_token").await;
    assert_eq!(voided, expired, "voided and expired links are refused alike");
}

#[tokio::test]
async fn a_password_change_voids_outstanding_reset_links() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    let body = json!({"current_password": PASSWORD, "new_password": NEW_PASSWORD});
    assert_eq!(
        app.send_json(reqwest::Method::PUT, "/api/v1/auth/password", &body).await.status(),
        StatusCode::NO_CONTENT
    );
    assert_problem(reset(&app, &token, "Another5-Harbor-Quill").await, 400, "invalid_token").await;
}

async fn change_email(app: &TestApp, new_email: &str, password: &str) -> reqwest::Response {
    let body = json!({"new_email": new_email, "current_password": password});
    app.send_json(reqwest::Method::PUT, "/api/v1/auth/email", &body).await
}

#[tokio::test]
async fn changing_the_address_takes_a_link_sent_to_the_new_one() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (old, _) = app.signed_up().await;
    let new = unique_email();
    assert_problem(change_email(&app, &new, "Wrong1Password").await, 401, "invalid_credentials").await;
    assert_eq!(change_email(&app, &new, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let link = sink.wait_for(&new).await;
    let notice = sink.wait_for_subject(&old, "change of your email").await;
    assert!(notice.subject().contains("change of your email"), "{}", notice.subject());
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!(me["email"], old.as_str(), "nothing changes before the link is used");

    let token = link.token("confirm-email");
    assert_eq!(post(&app, "/email/confirm", json!({"token": token})).await.status(), StatusCode::NO_CONTENT);
    let me: Value = app.me().await.json().await.unwrap();
    assert_eq!((me["email"].as_str().unwrap(), me["email_verified"].as_bool().unwrap()), (new.as_str(), true));
    assert_problem(app.login(&old, PASSWORD).await, 401, "invalid_credentials").await;
    assert_eq!(app.login(&new, PASSWORD).await.status(), StatusCode::OK);
    assert_problem(post(&app, "/email/confirm", json!({"token": token})).await, 400, "invalid_token").await;
}

#[tokio::test]
async fn an_address_with_an_account_gets_a_notice_not_a_link_and_a_late_confirm_is_409() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    app.signed_up().await;
    let (taken, _) = app.another_browser().signed_up().await;
    assert_eq!(change_email(&app, &taken, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let notice = sink.wait_for_subject(&taken, "Someone tried to use").await;
    assert!(notice.subject().contains("Someone tried to use your email address"), "{}", notice.subject());
    assert!(!notice.text().contains("#token="));

    // The address is free when the link goes out, taken when it is used.
    let later = unique_email();
    assert_eq!(change_email(&app, &later, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let token = sink.wait_for(&later).await.token("confirm-email");
    let squatter = app.another_browser();
    assert_eq!(squatter.register(&user_body(&later)).await.status(), StatusCode::CREATED);
    assert_problem(post(&app, "/email/confirm", json!({"token": token})).await, 409, "email_taken").await;
}

#[tokio::test]
async fn with_verified_email_required_an_unverified_account_cannot_sign_in() {
    let (app, sink) = spawn_with_mail(|c| c.require_verified_email = true).await;
    let email = unique_email();
    let resp = app.register(&user_body(&email)).await;
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert!(
        set_cookie(resp.headers(), "access_token").is_none() && set_cookie(resp.headers(), "refresh_token").is_none()
    );
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["user"]["email_verified"], false);
    assert_problem(app.login(&email, PASSWORD).await, 403, "email_not_verified").await;
    assert_problem(app.login(&email, "Wrong1Password").await, 401, "invalid_credentials").await;
    let token = sink.wait_for(&email).await.token("verify-email");
    assert_eq!(post(&app, "/email/verify", json!({"token": token})).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn without_the_requirement_an_unverified_account_signs_in() {
    let (app, _sink) = spawn_with_mail(|c| c.require_verified_email = false).await;
    let (email, _) = app.signed_up().await;
    assert_eq!(app.another_browser().login(&email, PASSWORD).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn resend_sends_a_new_link_until_verified() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let first = sink.wait_for_subject(&email, "Confirm your email address").await.token("verify-email");
    assert_eq!(post(&app, "/email/verify/resend", json!({})).await.status(), StatusCode::ACCEPTED);
    let second = sink
        .wait_for_subject_nth(&email, "Confirm your email address", 2, Duration::from_secs(10))
        .await
        .token("verify-email");
    assert_problem(post(&app, "/email/verify", json!({"token": first})).await, 400, "invalid_token").await;
    assert_eq!(post(&app, "/email/verify", json!({"token": second})).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(post(&app, "/email/verify/resend", json!({})).await.status(), StatusCode::ACCEPTED);
    // The resend queues its mail before answering: once the outbox is empty,
    // anything it queued has arrived.
    outbox_drained(&app).await;
    assert_eq!(sink.to(&email).len(), 2, "nothing is sent once verified");
    let anonymous = app.another_browser();
    assert_problem(post(&anonymous, "/email/verify/resend", json!({})).await, 401, "not_authenticated").await;
}

#[tokio::test]
async fn an_address_gets_at_most_three_mails_of_a_kind_an_hour_and_an_ip_is_limited() {
    let (app, sink) = spawn_with_mail(|c| c.email_rate_per_hour = 7).await;
    let (email, _) = app.signed_up().await;
    for _ in 0..5 {
        assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED);
    }
    sink.wait_for_subject_nth(&email, "Reset your password", 3, Duration::from_secs(10)).await;
    // A bystander's reset, asked after the five, arriving means the five
    // background lookups ran; then the outbox drains.
    let (bystander, _) = app.another_browser().signed_up().await;
    forgot(&app, &bystander).await;
    sink.wait_for_subject(&bystander, "Reset your password").await;
    outbox_drained(&app).await;
    let resets = sink.to(&email).iter().filter(|m| m.subject().contains("Reset")).count();
    assert_eq!(resets, 3, "the fourth and fifth requests sent nothing");
    assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED);
    let resp = forgot(&app, &email).await;
    assert!(resp.headers().contains_key("retry-after"));
    assert_problem(resp, 429, "rate_limited").await;
}

#[tokio::test]
async fn mail_waits_out_an_smtp_outage_and_arrives() {
    let (app, mut sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    sink.wait_for(&email).await;
    sink.stop();
    assert_eq!(forgot(&app, &email).await.status(), StatusCode::ACCEPTED, "an outage never fails the request");
    // The worker tried during the outage, and failed.
    let started = Instant::now();
    loop {
        use latchkey::entity::mail_outbox;
        use sea_orm::EntityTrait;
        let rows = mail_outbox::Entity::find().all(&app.state.db).await.unwrap();
        if rows.iter().any(|r| r.sent_at.is_none() && r.attempts >= 1) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the worker never tried during the outage");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(sink.to(&email).len(), 1);
    sink.restart().await;
    let mail = sink.wait_for_subject_nth(&email, "Reset your password", 1, Duration::from_secs(15)).await;
    assert!(mail.subject().contains("Reset your password"));
}

#[tokio::test]
async fn a_mail_refused_for_good_is_kept_as_failed_and_not_retried() {
    use latchkey::entity::mail_outbox;
    use sea_orm::EntityTrait;
    let (app, sink) = spawn_with_mail(|_| {}).await;
    sink.refuse_recipients();
    let (email, _) = app.signed_up().await;
    let started = Instant::now();
    let row = loop {
        let rows = mail_outbox::Entity::find().all(&app.state.db).await.unwrap();
        if let Some(row) = rows.into_iter().find(|r| r.failed_at.is_some()) {
            break row;
        }
        assert!(started.elapsed() < Duration::from_secs(10), "the mail was never marked failed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(row.attempts, 1);
    assert!(row.text_body.is_empty() && row.html_body.is_empty(), "a failed mail keeps no live link");
    let error = row.last_error.clone().unwrap();
    assert!(row.sent_at.is_none() && error.contains("550"), "{error}");
    // The relay's refusal quoted the recipient; what is stored does not.
    assert!(!error.contains(&email) && !error.contains('@'), "{error}");
    // The purge takes failed mails with the sent ones.
    // (Older than zero seconds means at least a millisecond old: timestamps are whole milliseconds.)
    while latchkey::clock::now() <= row.failed_at.unwrap() {
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    assert_eq!(latchkey::mail::purge_done(&app.state.writer, Duration::ZERO).await.unwrap(), 1);
    assert!(mail_outbox::Entity::find_by_id(row.id).one(&app.state.db).await.unwrap().is_none());
}

#[tokio::test]
async fn an_admin_can_mail_a_reset_link_but_never_sees_a_password() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let me: Value = app.me().await.json().await.unwrap();
    let id = me["id"].as_str().unwrap();
    let (admin, _) = app.browser_with_role(latchkey::domain::Role::Admin).await;
    let resp = admin.client.post(app.url(&format!("/api/v1/users/{id}/password-reset"))).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::ACCEPTED);
    assert_no_secrets(&resp.text().await.unwrap());
    let mail = sink.wait_for_subject(&email, "Reset your password").await;
    assert!(mail.text().contains("An administrator started a password reset"), "{}", mail.text());
    let (peer, _) = app.browser_with_role(latchkey::domain::Role::User).await;
    let resp = peer.client.post(app.url(&format!("/api/v1/users/{id}/password-reset"))).send().await.unwrap();
    assert_problem(resp, 403, "forbidden").await;
}

#[tokio::test]
async fn every_email_event_is_in_the_audit_trail_without_a_token() {
    use latchkey::entity::audit_event;
    use sea_orm::EntityTrait;
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let verify = sink.wait_for(&email).await.token("verify-email");
    post(&app, "/email/verify", json!({"token": verify})).await;
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    reset(&app, &token, NEW_PASSWORD).await;
    app.login(&email, NEW_PASSWORD).await;
    let new = unique_email();
    change_email(&app, &new, NEW_PASSWORD).await;
    let confirm = sink.wait_for(&new).await.token("confirm-email");
    post(&app, "/email/confirm", json!({"token": confirm})).await;
    let events = audit_event::Entity::find().all(&app.state.db).await.unwrap();
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    for expected in [
        "verification_sent",
        "email_verified",
        "password_reset_requested",
        "password_reset",
        "email_change_requested",
        "email_changed",
    ] {
        assert!(names.contains(&expected), "{expected} missing from {names:?}");
    }
    for e in &events {
        let detail = e.detail.clone().unwrap_or_default();
        for token in [&verify, &token, &confirm] {
            assert!(!detail.contains(token.as_str()), "a token in the trail: {detail}");
        }
    }
}

#[tokio::test]
async fn the_outbox_worker_delivers_a_burst_of_mail() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let n = 300;
    let txn = sea_orm::TransactionTrait::begin(&app.state.writer).await.unwrap();
    for i in 0..n {
        let mail = latchkey::mail::Mail {
            to: format!("burst-{i}@example.com"),
            subject: "burst".into(),
            text: "hello".into(),
            html: "<p>hello</p>".into(),
        };
        latchkey::mail::enqueue(&txn, mail).await.unwrap();
    }
    txn.commit().await.unwrap();
    let started = Instant::now();
    app.state.outbox.wake();
    while sink.all().len() < n {
        assert!(started.elapsed() < Duration::from_secs(60), "{} of {n} mails after a minute", sink.all().len());
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    eprintln!("outbox: {n} mails in {:?} ({:.0}/s)", started.elapsed(), n as f64 / started.elapsed().as_secs_f64());
}

#[tokio::test]
async fn a_reset_ends_a_pending_email_change() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let new = unique_email();
    assert_eq!(change_email(&app, &new, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let confirm = sink.wait_for(&new).await.token("confirm-email");
    forgot(&app, &email).await;
    let token = sink.wait_for_subject(&email, "Reset your password").await.token("reset-password");
    assert_eq!(reset(&app, &token, NEW_PASSWORD).await.status(), StatusCode::NO_CONTENT);
    assert_problem(post(&app, "/email/confirm", json!({"token": confirm})).await, 400, "invalid_token").await;
}

/// Waits until the outbox has sent (or given up on) everything queued.
async fn outbox_drained(app: &TestApp) {
    let started = Instant::now();
    while latchkey::mail::pending(&app.state.db).await.unwrap() > 0 {
        assert!(started.elapsed() < Duration::from_secs(30), "the outbox never drained");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The bound this suite holds a bystander's reset mail to while someone
/// floods the notice-sending endpoints (it arrives in well under a second
/// when the outbox is idle).
const BYSTANDER_DELAY_BOUND: Duration = Duration::from_secs(2);

#[tokio::test]
async fn a_flood_of_recovery_code_regenerations_sends_the_allowance_and_delays_no_reset() {
    let (app, sink) = spawn_with_mail(|c| c.email_rate_per_hour = 1000).await;
    let (email, _) = app.signed_up().await;
    app.verify_address(&email).await;
    let setup: Value = post(&app, "/mfa/totp/setup", json!({})).await.json().await.unwrap();
    let secret = totp_rs::Secret::Encoded(setup["secret"].as_str().unwrap().to_owned()).to_bytes().unwrap();
    let totp = totp_rs::TOTP::new_unchecked(totp_rs::Algorithm::SHA1, 6, 1, 30, secret, None, String::new());
    let code = totp.generate(chrono::Utc::now().timestamp() as u64 - 30);
    assert_eq!(post(&app, "/mfa/totp/enable", json!({"code": code})).await.status(), StatusCode::OK);
    let (bystander, _) = app.another_browser().signed_up().await;

    let flood = {
        let (client, url) = (app.client.clone(), app.url("/api/v1/auth/mfa/recovery-codes"));
        tokio::spawn(async move {
            for _ in 0..200 {
                let resp = client.post(&url).send().await.unwrap();
                assert_eq!(resp.status(), StatusCode::OK);
            }
        })
    };
    // Once the flood is under way, a bystander asks for a reset.
    sink.wait_for_subject(&email, "New recovery codes").await;
    assert!(!flood.is_finished(), "the flood should still be running");
    let asked = Instant::now();
    assert_eq!(forgot(&app, &bystander).await.status(), StatusCode::ACCEPTED);
    sink.wait_for_subject(&bystander, "Reset your password").await;
    let delay = asked.elapsed();
    assert!(delay < BYSTANDER_DELAY_BOUND, "the bystander's reset waited {delay:?}");
    flood.await.unwrap();
    outbox_drained(&app).await;
    let notices = sink.to(&email).iter().filter(|m| m.subject().contains("New recovery codes")).count();
    let allowance = latchkey::auth::ratelimit::MAIL_PER_ADDRESS as usize;
    assert_eq!(notices, allowance, "200 regenerations mail the owner {allowance} times an hour");
    println!("200 regenerations: {notices} mails; bystander's reset mail after {delay:?}");
}

#[tokio::test]
async fn the_current_address_gets_the_same_notice_whether_or_not_the_new_one_is_taken() {
    let (app, sink) = spawn_with_mail(|_| {}).await;
    let (email, _) = app.signed_up().await;
    let (taken, _) = app.another_browser().signed_up().await;
    let free = unique_email();
    let notice = "A change of your email address was requested";
    assert_eq!(change_email(&app, &taken, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let first = sink.wait_for_subject_nth(&email, notice, 1, Duration::from_secs(10)).await;
    sink.wait_for_subject(&taken, "Someone tried to use your email address").await;
    assert_eq!(change_email(&app, &free, PASSWORD).await.status(), StatusCode::ACCEPTED);
    let second = sink.wait_for_subject_nth(&email, notice, 2, Duration::from_secs(10)).await;
    sink.wait_for_subject(&free, "Confirm your new email address").await;
    for mail in [first, second] {
        assert!(mail.text().contains("asked to move it to another email address"), "{}", mail.text());
    }
}
