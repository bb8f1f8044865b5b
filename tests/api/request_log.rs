//! `X-Request-Id` and the request log: an id on every response, kept only
//! from a trusted proxy, and on every log line of its request.

use std::{process::Stdio, time::Duration};

use reqwest::StatusCode;
use serde_json::Value;

use crate::helpers::*;

fn request_id(resp: &reqwest::Response) -> String {
    resp.headers().get("x-request-id").expect("X-Request-Id is echoed").to_str().unwrap().to_owned()
}

#[tokio::test]
async fn every_response_carries_a_fresh_request_id() {
    let app = spawn_app().await;
    let first = request_id(&app.get("/health").await);
    let second = request_id(&app.get("/api/v1/auth/me").await);
    assert!(uuid::Uuid::parse_str(&first).is_ok(), "{first}");
    assert_ne!(first, second);
}

#[tokio::test]
async fn a_request_id_is_kept_only_from_a_trusted_proxy_and_only_when_sane() {
    let send =
        |app: &TestApp, id: &str| reqwest::Client::new().get(app.url("/health")).header("X-Request-Id", id).send();
    let behind_proxy = spawn_app_with(|c| c.trusted_proxies = vec!["127.0.0.1/32".parse().unwrap()]).await;
    assert_eq!(request_id(&send(&behind_proxy, "edge-7f3a:42").await.unwrap()), "edge-7f3a:42");
    for forged in ["two words", "x".repeat(129).as_str(), "new\u{2028}line"] {
        let echoed = request_id(&send(&behind_proxy, forged).await.unwrap());
        assert_ne!(echoed, forged);
        assert!(uuid::Uuid::parse_str(&echoed).is_ok());
    }
    let direct = spawn_app().await;
    let echoed = request_id(&send(&direct, "edge-7f3a:42").await.unwrap());
    assert_ne!(echoed, "edge-7f3a:42", "a client cannot choose its request id");
}

/// The real binary with `LOG_FORMAT=json`: each request's lines carry its id,
/// and the finishing line its route, status, latency and user.
#[tokio::test]
async fn json_log_lines_carry_the_request_id_and_the_user() {
    let dir = tempfile::tempdir().unwrap();
    let log = std::fs::File::create(dir.path().join("server.log")).unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut server = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .arg("serve")
        .current_dir(dir.path())
        .env_clear()
        .env("BIND_ADDR", format!("127.0.0.1:{port}"))
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("log.db").display()))
        .env("JWT_SECRET", SECRET)
        .env("COOKIE_SECURE", "false")
        .env("BCRYPT_COST", "4")
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(log)
        .spawn()
        .expect("the latchkey binary starts");
    let base = format!("http://127.0.0.1:{port}");
    let client = browser();
    let mut up = false;
    for _ in 0..100 {
        if client.get(format!("{base}/health")).send().await.is_ok() {
            up = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(up, "server did not come up");
    let resp =
        client.post(format!("{base}/api/v1/auth/register")).json(&user_body(&unique_email())).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::CREATED);
    let register_id = request_id(&resp);
    let resp = client.get(format!("{base}/api/v1/auth/me")).send().await.unwrap();
    let me_id = request_id(&resp);
    let me: Value = resp.json().await.unwrap();
    // SIGTERM, not SIGKILL: the log writer flushes its queue on the way out.
    let stopped = std::process::Command::new("kill").args(["-TERM", &server.id().to_string()]).status().unwrap();
    assert!(stopped.success());
    assert!(server.wait().unwrap().success());

    let text = std::fs::read_to_string(dir.path().join("server.log")).unwrap();
    assert!(!text.contains(PASSWORD), "a password was logged");
    assert_no_secrets(&text);
    let lines: Vec<Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))).collect();
    let of = |id: &str| -> Vec<&Value> { lines.iter().filter(|l| l["span"]["request_id"] == id).collect() };

    // Registration logs a line of its own ("user registered") inside the span.
    let register = of(&register_id);
    assert!(register.len() >= 2, "{register:?}");
    assert!(register.iter().any(|l| l["fields"]["message"] == "user registered"), "{register:?}");

    let finished =
        of(&me_id).into_iter().find(|l| l["fields"]["message"] == "request finished").expect("a finish line");
    let span = &finished["span"];
    assert_eq!(span["method"], "GET");
    assert_eq!(span["status"], 200);
    assert!(span["route"].as_str().unwrap().ends_with("/me"), "{span}");
    assert_eq!(span["user_id"], me["id"]);
    assert!(span["session_id"].as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok()), "{span}");
    assert!(span["latency_ms"].as_f64().is_some_and(|ms| ms >= 0.0), "{span}");
}
