use std::{future::pending, time::Duration};

use latchkey::{
    app::Application,
    config::{Config, Secret},
    state::AppState,
};
use reqwest::{Client, Response, StatusCode, header::HeaderMap};
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};
use uuid::Uuid;

pub const SECRET: &str = "test-secret-test-secret-test-secret!";
pub const PASSWORD: &str = "Correct1Horse";

pub struct TestApp {
    pub base: String,
    pub database_url: String,
    /// A browser-like client that keeps cookies.
    pub client: Client,
    pub state: AppState,
    /// Where `/metrics` is served, when the test set `metrics_addr`.
    pub metrics: Option<std::net::SocketAddr>,
    _dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

/// Starts the app on a free port with a fresh database; `tweak` edits the config first.
pub async fn spawn_app_with(tweak: impl FnOnce(&mut Config)) -> TestApp {
    let (database_url, dir) = fresh_database().await;
    spawn_on(database_url, dir.map(std::sync::Arc::new), tweak, pending()).await.0
}

/// A second instance of the app on the same database (as behind a load balancer).
pub async fn spawn_instance_sharing(app: &TestApp, tweak: impl FnOnce(&mut Config)) -> TestApp {
    spawn_on(app.database_url.clone(), app._dir.clone(), tweak, pending()).await.0
}

/// An app that shuts down gracefully when `stop` is sent; the handle yields its exit.
pub async fn spawn_stoppable_app(
    tweak: impl FnOnce(&mut Config),
) -> (TestApp, tokio::sync::oneshot::Sender<()>, tokio::task::JoinHandle<anyhow::Result<()>>) {
    let (database_url, dir) = fresh_database().await;
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (app, handle) = spawn_on(database_url, dir.map(std::sync::Arc::new), tweak, async move {
        let _ = stopped.await;
    })
    .await;
    (app, stop, handle)
}

async fn spawn_on(
    database_url: String,
    dir: Option<std::sync::Arc<tempfile::TempDir>>,
    tweak: impl FnOnce(&mut Config),
    stop: impl Future<Output = ()> + Send + 'static,
) -> (TestApp, tokio::task::JoinHandle<anyhow::Result<()>>) {
    if let Ok(filter) = std::env::var("RUST_LOG") {
        // Kept for the whole test process.
        std::mem::forget(latchkey::telemetry::init(&filter, latchkey::telemetry::LogFormat::Text));
    }
    let mut config = Config {
        bind_addr: "127.0.0.1:0".parse().unwrap(),
        database_url: database_url.clone(),
        database_max_connections: Some(5),
        jwt_secret: Some(Secret::new(SECRET)),
        bcrypt_cost: 4,
        cookie_secure: false,
        login_rate_per_minute: 1000,
        register_rate_per_minute: 1000,
        refresh_rate_per_minute: 1000,
        ..Config::default()
    };
    tweak(&mut config);
    config.validate().expect("test config is valid");
    let app = Application::build(config).await.expect("app starts");
    let base = format!("http://{}", app.addr());
    let state = app.state().clone();
    let metrics = app.metrics_addr();
    let handle = tokio::spawn(app.run_until(stop));
    (TestApp { base, database_url, client: browser(), state, metrics, _dir: dir }, handle)
}

pub fn browser() -> Client {
    Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A fresh database: a temporary SQLite file, or a new uniquely named database
/// on the server `TEST_DATABASE_URL` points at.
async fn fresh_database() -> (String, Option<tempfile::TempDir>) {
    match std::env::var("TEST_DATABASE_URL").ok().filter(|u| !u.is_empty()) {
        None => {
            let dir = tempfile::tempdir().unwrap();
            let url = format!("sqlite://{}?mode=rwc", dir.path().join("test.db").display());
            (url, Some(dir))
        }
        Some(server) => {
            let name = format!("latchkey_test_{}", Uuid::new_v4().simple());
            let admin = Database::connect(&server).await.expect("TEST_DATABASE_URL answers");
            let backend = admin.get_database_backend();
            admin
                .execute_raw(Statement::from_string(backend, format!("CREATE DATABASE {name}")))
                .await
                .expect("can create a test database");
            admin.close().await.ok();
            let base = server.rsplit_once('/').map_or(server.as_str(), |(b, _)| b).to_owned();
            (format!("{base}/{name}"), None)
        }
    }
}

pub fn user_body(email: &str) -> Value {
    json!({"email": email, "password": PASSWORD, "full_name": "Ada Lovelace"})
}

pub fn unique_email() -> String {
    format!("user-{}@example.com", Uuid::new_v4().simple())
}

impl TestApp {
    /// Another browser (its own cookie jar) on the same server.
    pub fn another_browser(&self) -> TestApp {
        TestApp {
            base: self.base.clone(),
            database_url: self.database_url.clone(),
            client: browser(),
            state: self.state.clone(),
            metrics: self.metrics,
            _dir: self._dir.clone(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    pub async fn post_json(&self, client: &Client, path: &str, body: &Value) -> Response {
        client.post(self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn register(&self, body: &Value) -> Response {
        self.post_json(&self.client, "/api/v1/auth/register", body).await
    }

    pub async fn login(&self, email: &str, password: &str) -> Response {
        self.post_json(&self.client, "/api/v1/auth/login", &json!({"email": email, "password": password})).await
    }

    pub async fn refresh(&self) -> Response {
        self.client.post(self.url("/api/v1/auth/refresh")).send().await.unwrap()
    }

    /// Refresh with an explicit refresh token, outside the cookie store.
    pub async fn refresh_with(&self, token: &str) -> Response {
        Client::new()
            .post(self.url("/api/v1/auth/refresh"))
            .header("Cookie", format!("refresh_token={token}"))
            .send()
            .await
            .unwrap()
    }

    pub async fn me(&self) -> Response {
        self.client.get(self.url("/api/v1/auth/me")).send().await.unwrap()
    }

    pub async fn me_with_bearer(&self, token: &str) -> Response {
        Client::new().get(self.url("/api/v1/auth/me")).bearer_auth(token).send().await.unwrap()
    }

    pub async fn logout(&self) -> Response {
        self.client.post(self.url("/api/v1/auth/logout")).send().await.unwrap()
    }

    /// A new browser signed in as a fresh user with `role`. The API cannot make
    /// admins (only `latchkey create-admin` can), so the role is set in the database.
    pub async fn browser_with_role(&self, role: latchkey::domain::Role) -> (TestApp, uuid::Uuid) {
        use sea_orm::{ActiveModelTrait, EntityTrait, Set};
        let other = self.another_browser();
        other.signed_up().await;
        let me: Value = other.me().await.json().await.unwrap();
        let id: uuid::Uuid = me["id"].as_str().unwrap().parse().unwrap();
        let found = latchkey::entity::user::Entity::find_by_id(id).one(&self.state.db).await.unwrap().unwrap();
        let mut active: latchkey::entity::user::ActiveModel = found.into();
        active.role = Set(role);
        active.update(&self.state.writer).await.unwrap();
        // Written behind the app's back: say so, as the app does after its own writes.
        self.state.sessions.changed(id);
        (other, id)
    }

    /// Marks `email`'s address verified, as following its verification link would.
    pub async fn verify_address(&self, email: &str) {
        let email = latchkey::domain::Email::parse(email).unwrap();
        let user = latchkey::accounts::find_by_email(&self.state.db, &email).await.unwrap().unwrap();
        latchkey::accounts::mark_verified(&self.state.writer, user.id).await.unwrap();
        self.state.sessions.changed(user.id);
    }

    pub async fn get(&self, path: &str) -> Response {
        self.client.get(self.url(path)).send().await.unwrap()
    }

    pub async fn send_json(&self, method: reqwest::Method, path: &str, body: &Value) -> Response {
        self.client.request(method, self.url(path)).json(body).send().await.unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.client.delete(self.url(path)).send().await.unwrap()
    }

    /// Registers a fresh user with the app's own client; returns its email and
    /// the tokens from the response's cookies.
    pub async fn signed_up(&self) -> (String, Tokens) {
        let email = unique_email();
        let resp = self.register(&user_body(&email)).await;
        assert_eq!(resp.status(), StatusCode::CREATED);
        (email, Tokens::from(resp.headers()))
    }
}

/// The token values a response set in cookies.
#[derive(Debug, Clone, Default)]
pub struct Tokens {
    pub access: Option<String>,
    pub refresh: Option<String>,
}

impl From<&HeaderMap> for Tokens {
    fn from(headers: &HeaderMap) -> Self {
        let value = |name: &str| {
            set_cookie(headers, name).and_then(|c| {
                let v = c.split(';').next()?.split_once('=')?.1.to_owned();
                (!v.is_empty()).then_some(v)
            })
        };
        Tokens { access: value("access_token"), refresh: value("refresh_token") }
    }
}

/// The `Set-Cookie` header for cookie `name`, if the response has one.
pub fn set_cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
        .map(str::to_owned)
}

/// Asserts a problem document: status, content type, stable code, and no leaks.
pub async fn assert_problem(resp: Response, status: u16, code: &str) -> Value {
    assert_eq!(resp.status().as_u16(), status, "wrong status for expected `{code}`");
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    assert_eq!(content_type.as_deref(), Some("application/problem+json"));
    let body: Value = resp.json().await.expect("problem body is JSON");
    assert_eq!(body["code"], code, "{body}");
    assert_eq!(body["status"], status, "{body}");
    assert_eq!(body["type"], "about:blank");
    assert!(body["title"].is_string() && body["detail"].is_string(), "{body}");
    assert_no_secrets(&body.to_string());
    body
}

/// No bcrypt hash, JWT or SQL ever appears in a body.
pub fn assert_no_secrets(text: &str) {
    assert!(!text.contains("$2b$"), "hash leaked: {text}");
    assert!(!text.contains("eyJ"), "JWT leaked: {text}");
    for sql in ["SELECT", "INSERT", "UPDATE ", "sqlx", "constraint"] {
        assert!(!text.contains(sql), "SQL leaked: {text}");
    }
}

/// The field names a 422 reports.
pub fn error_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .map(|errors| errors.iter().map(|e| e["field"].as_str().unwrap_or_default().to_owned()).collect())
        .unwrap_or_default()
}
