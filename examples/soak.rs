//! Soak test: mixed traffic at a fixed rate against a running Latchkey, with
//! errors, p99 latency and the server's RSS recorded per minute. Not part of
//! `cargo test`; `bench/soak.sh` builds, starts the server and runs this.
//!
//!     cargo run --release --example soak -- <base-url> <server-pid> <minutes> <journeys-per-second>
//!
//! One journey: register, login, me, refresh, create/list/update/complete/
//! delete a task, logout (11 requests). Passes (exit 0) with zero 5xx, no
//! upward p99 drift (last minute within 2x the first) and flat RSS (last
//! minute within 1.5x the first, or +16 MiB).

use std::{
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

use reqwest::{Client, Method, StatusCode};
use serde_json::{Value, json};

#[derive(Default)]
struct Minute {
    latencies_us: Vec<u64>,
    errors_5xx: u64,
    other_failures: u64,
}

struct Recorder {
    start: Instant,
    minutes: Mutex<Vec<Minute>>,
}

impl Recorder {
    fn record(&self, took: Duration, status: Option<StatusCode>, expected: StatusCode) {
        let minute = (self.start.elapsed().as_secs() / 60) as usize;
        let mut minutes = self.minutes.lock().unwrap();
        while minutes.len() <= minute {
            minutes.push(Minute::default());
        }
        let m = &mut minutes[minute];
        m.latencies_us.push(took.as_micros() as u64);
        match status {
            Some(s) if s.is_server_error() => m.errors_5xx += 1,
            Some(s) if s == expected => {}
            _ => m.other_failures += 1,
        }
    }
}

async fn call(
    rec: &Recorder,
    client: &Client,
    method: Method,
    url: String,
    body: Option<Value>,
    expected: StatusCode,
) -> Option<reqwest::Response> {
    let mut req = client.request(method, url);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let start = Instant::now();
    let resp = req.send().await.ok();
    rec.record(start.elapsed(), resp.as_ref().map(|r| r.status()), expected);
    resp
}

async fn journey(rec: Arc<Recorder>, base: String, n: u64) {
    let client = Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().unwrap();
    let email = format!("soak-{n}-{}@example.com", std::process::id());
    let creds = json!({"email": email, "password": "Soak-Test-Passphrase-7"});
    let api = |p: &str| format!("{base}/api/v1{p}");
    call(&rec, &client, Method::POST, api("/auth/register"), Some(creds.clone()), StatusCode::CREATED).await;
    call(&rec, &client, Method::POST, api("/auth/login"), Some(creds), StatusCode::OK).await;
    call(&rec, &client, Method::GET, api("/auth/me"), None, StatusCode::OK).await;
    call(&rec, &client, Method::POST, api("/auth/refresh"), None, StatusCode::OK).await;
    let created =
        call(&rec, &client, Method::POST, api("/tasks"), Some(json!({"title": "soak"})), StatusCode::CREATED).await;
    let id = match created {
        Some(r) => r.json::<Value>().await.ok().and_then(|t| t["id"].as_i64()).unwrap_or(0),
        None => 0,
    };
    call(&rec, &client, Method::GET, api("/tasks?limit=50"), None, StatusCode::OK).await;
    call(&rec, &client, Method::PUT, api(&format!("/tasks/{id}")), Some(json!({"description": "x"})), StatusCode::OK)
        .await;
    call(
        &rec,
        &client,
        Method::PATCH,
        api(&format!("/tasks/{id}/complete")),
        Some(json!({"completed": true})),
        StatusCode::OK,
    )
    .await;
    call(&rec, &client, Method::DELETE, api(&format!("/tasks/{id}")), None, StatusCode::NO_CONTENT).await;
    call(&rec, &client, Method::GET, api("/auth/sessions"), None, StatusCode::OK).await;
    call(&rec, &client, Method::POST, api("/auth/logout"), None, StatusCode::NO_CONTENT).await;
}

fn rss_kib(pid: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let [_, base, pid, minutes, rate] = args.as_slice() else {
        eprintln!("usage: soak <base-url> <server-pid> <minutes> <journeys-per-second>");
        std::process::exit(2);
    };
    let minutes: u64 = minutes.parse().expect("minutes");
    let rate: f64 = rate.parse().expect("journeys per second");
    let rec = Arc::new(Recorder { start: Instant::now(), minutes: Mutex::new(Vec::new()) });
    let mut rss = vec![rss_kib(pid)];
    let deadline = Duration::from_secs(minutes * 60);
    let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / rate));
    let mut tasks = Vec::new();
    let mut n = 0;
    let mut next_rss = Duration::from_secs(60);
    while rec.start.elapsed() < deadline {
        tick.tick().await;
        tasks.push(tokio::spawn(journey(rec.clone(), base.clone(), n)));
        n += 1;
        if rec.start.elapsed() >= next_rss {
            rss.push(rss_kib(pid));
            next_rss += Duration::from_secs(60);
        }
        tasks.retain(|t| !t.is_finished());
    }
    for t in tasks {
        let _ = t.await;
    }
    rss.push(rss_kib(pid));

    let mut minutes = std::mem::take(&mut *rec.minutes.lock().unwrap());
    minutes.truncate(minutes.len().min(deadline.as_secs() as usize / 60));
    println!("minute  requests  5xx  other  p99_ms  rss_kib");
    let mut p99s = Vec::new();
    let mut total_5xx = 0;
    for (i, m) in minutes.iter_mut().enumerate() {
        m.latencies_us.sort_unstable();
        let p99 = m.latencies_us.get(m.latencies_us.len() * 99 / 100).copied().unwrap_or(0) as f64 / 1000.0;
        p99s.push(p99);
        total_5xx += m.errors_5xx;
        println!(
            "{:>6}  {:>8}  {:>3}  {:>5}  {:>6.1}  {:>7}",
            i + 1,
            m.latencies_us.len(),
            m.errors_5xx,
            m.other_failures,
            p99,
            rss.get(i + 1).copied().unwrap_or(0)
        );
    }
    let (first_rss, last_rss) = (rss[0].max(1), *rss.last().unwrap());
    let drift_ok = p99s.len() < 2 || p99s[p99s.len() - 1] <= 2.0 * p99s[0].max(1.0);
    let rss_ok = (last_rss as f64)
        <= (rss[1.min(rss.len() - 1)].max(first_rss) as f64 * 1.5).max((first_rss + 16 * 1024) as f64);
    println!(
        "journeys {n}; 5xx {total_5xx}; RSS start {first_rss} KiB, end {last_rss} KiB; p99 drift ok: {drift_ok}; RSS flat: {rss_ok}"
    );
    if total_5xx > 0 || !drift_ok || !rss_ok {
        std::process::exit(1);
    }
}
