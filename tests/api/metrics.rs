//! `/metrics` on `METRICS_ADDR`: the Prometheus text format, with the
//! figures operators graph, and never on the public address.

use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::*;

async fn metrics_app() -> TestApp {
    spawn_app_with(|c| c.metrics_addr = Some("127.0.0.1:0".parse().unwrap())).await
}

async fn scrape(app: &TestApp) -> String {
    let addr = app.metrics.expect("METRICS_ADDR is set");
    let resp = reqwest::get(format!("http://{addr}/metrics")).await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers()["content-type"].to_str().unwrap().starts_with("text/plain; version=0.0.4"));
    resp.text().await.unwrap()
}

/// The value of the sample whose line starts with `series` (name and labels as rendered).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(series).and_then(|rest| rest.strip_prefix(' ')))
        .unwrap_or_else(|| panic!("no sample {series} in:\n{text}"))
        .parse()
        .unwrap()
}

#[tokio::test]
async fn requests_logins_refreshes_and_refusals_are_counted() {
    let app = metrics_app().await;
    let before = scrape(&app).await;
    let count = |text: &str, series: &str| if text.contains(series) { sample(text, series) } else { 0.0 };

    let (email, _) = app.signed_up().await;
    assert_eq!(app.login(&email, "Wrong1Password").await.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(app.login(&email, PASSWORD).await.status(), StatusCode::OK);
    assert_eq!(app.refresh().await.status(), StatusCode::OK);
    assert_eq!(app.me().await.status(), StatusCode::OK);
    let limited = spawn_app_with(|c| {
        c.metrics_addr = Some("127.0.0.1:0".parse().unwrap());
        c.login_rate_per_minute = 1;
    })
    .await;
    for _ in 0..2 {
        limited.post_json(&limited.client, "/api/v1/auth/login", &json!({"email": email, "password": "x"})).await;
    }

    // The recorder is one per process (tests run in parallel): compare with before, at least.
    let after = scrape(&app).await;
    for (series, at_least) in [
        (r#"latchkey_logins_total{outcome="bad_credentials"}"#, 1.0),
        (r#"latchkey_logins_total{outcome="success"}"#, 1.0),
        (r#"latchkey_refreshes_total{outcome="rotated"}"#, 1.0),
        (r#"latchkey_rate_limit_refusals_total{limit="login"}"#, 1.0),
        (r#"latchkey_http_requests_total{method="POST",route="/api/v1/auth/login",status="401"}"#, 1.0),
        (r#"latchkey_http_requests_total{method="GET",route="/api/v1/auth/me",status="200"}"#, 1.0),
    ] {
        let grew = count(&after, series) - count(&before, series);
        assert!(grew >= at_least, "{series} grew by {grew}");
    }
    assert!(after.contains("# TYPE latchkey_http_request_duration_seconds histogram"), "{after}");
    assert!(
        after.contains(
            r#"latchkey_http_request_duration_seconds_bucket{method="GET",route="/api/v1/auth/me",le="0.005"}"#
        )
    );
    assert!(sample(&after, "latchkey_bcrypt_hash_duration_seconds_count") >= 3.0);
    for gauge in [
        "latchkey_bcrypt_queue_depth",
        r#"latchkey_db_pool_connections{pool="read",state="max"}"#,
        r#"latchkey_db_pool_connections{pool="write",state="in_use"}"#,
        "latchkey_mail_outbox_depth",
        r#"latchkey_session_cache_lookups_total{result="hit"}"#,
    ] {
        sample(&after, gauge);
    }
    assert_no_secrets(&after);
    assert!(!after.contains(&email), "no address in metrics");
}

#[tokio::test]
async fn invented_methods_and_paths_add_no_time_series() {
    let app = metrics_app().await;
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("BREW{i}").as_bytes()).unwrap();
        reqwest::Client::new().request(method, app.url(&format!("/api/v1/teapot-{i}"))).send().await.unwrap();
    }
    let text = scrape(&app).await;
    assert!(!text.contains("BREW") && !text.contains("teapot"), "{text}");
    assert!(text.contains(r#"method="other",route="unmatched""#), "{text}");
}

#[tokio::test]
async fn metrics_are_not_on_the_public_address() {
    let app = metrics_app().await;
    assert_eq!(app.get("/metrics").await.status(), StatusCode::NOT_FOUND);
    assert!(spawn_app().await.metrics.is_none(), "no METRICS_ADDR, no listener");
}

/// `promtool check metrics` (Debian's `prometheus` package) accepts a real scrape.
#[tokio::test]
#[ignore = "needs promtool (apt-get install prometheus)"]
async fn promtool_accepts_the_scrape() {
    use std::{io::Write, process::Stdio};
    let app = metrics_app().await;
    let (email, _) = app.signed_up().await;
    app.login(&email, PASSWORD).await;
    let text = scrape(&app).await;
    let mut promtool = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is on the PATH");
    promtool.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let output = promtool.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(output.status.success() && said.trim().is_empty(), "promtool: {said}");
}
