//! Wiring: [`Application::build`] opens the database, runs migrations, binds
//! the listener and assembles the routes. `main` and the tests both go through
//! it, so the tests run exactly the production wiring.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex, PoisonError, Weak},
    time::Duration,
};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, Route, Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::CatchPanic,
};

use crate::{
    api,
    config::Config,
    db,
    error::{ApiError, render_any_error},
    middleware::{
        AllowOn405, Backpressure, BodyLimit, Cors, NoStore, Origins, RejectCrossSite, RequestLog, security_headers,
    },
    state::AppState,
};

pub struct Application {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    state: AppState,
    metrics: Option<crate::prometheus::MetricsListener>,
}

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// `config` must have been validated.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = db::connect_migrated(&config).await?;
        if config.app_env == crate::config::AppEnv::Production
            && config.data_encryption_key.is_none()
            && crate::auth::mfa::any_enabled(&db).await.context("checking for second factors")?
        {
            anyhow::bail!("DATA_ENCRYPTION_KEY is required when APP_ENV=production and any user has a second factor");
        }
        let acceptor = TcpListener::bind(config.bind_addr)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on BIND_ADDR {}", config.bind_addr))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("listener has no TCP address")?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some(crate::prometheus::MetricsListener::bind(addr).await?),
            None => None,
        };
        let writer = db::writer(&config, &db).await?;
        let state = AppState::new(db, writer, config)?;
        state.tokens.ring().start().await.context("loading access token signing keys")?;
        Ok(Self { acceptor, addr, state, metrics })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where `/metrics` is served, when `METRICS_ADDR` is set.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().map(|m| m.addr())
    }

    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// The relay of session-cache invalidations, when Redis is configured and the cache is on.
    fn session_bus(&self) -> anyhow::Result<Option<impl Future<Output = ()> + Send + 'static>> {
        let cache = self.state.sessions.cache();
        let Some(url) = self.state.config.rate_limit_redis_url.as_deref().filter(|_| cache.enabled()) else {
            return Ok(None);
        };
        let client = redis::Client::open(url).context("RATE_LIMIT_REDIS_URL is not a Redis URL")?;
        Ok(Some(crate::auth::session_bus::run(cache.clone(), client)))
    }

    /// Serves until Ctrl-C or SIGTERM, then lets in-flight requests finish.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        self.run_until(shutdown_signal()).await
    }

    pub async fn run_until(self, stop: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let limiters = self.state.limiters.clone();
        let pruner = tokio::spawn(async move {
            let mut tick = tokio::time::interval(crate::auth::ratelimit::PRUNE_INTERVAL);
            loop {
                tick.tick().await;
                limiters.prune();
            }
        });
        let memory = tokio::spawn(crate::memory::return_freed_memory_when_quiet());
        let purger = tokio::spawn(purge_on_schedule(self.state.clone()));
        let key_reloader = tokio::spawn(reload_keys_on_schedule(self.state.clone()));
        let mailer = tokio::spawn(self.state.outbox.clone().run(self.state.writer.clone()));
        let session_bus = self.session_bus()?.map(tokio::spawn);
        if let Some(addr) = self.metrics_addr() {
            tracing::info!(%addr, "metrics at /metrics");
        }
        let metrics = self.metrics.map(|m| {
            let scrape_route = Route::new().at("/metrics", poem::get(scrape)).data(self.state.clone());
            tokio::spawn(m.serve(scrape_route))
        });
        tracing::info!(addr = %self.addr, bcrypt = self.state.passwords.backend(), "serving; API docs at /docs");
        let db = self.state.db.clone();
        let writer = self.state.writer.clone();
        let result = Server::new_with_acceptor(self.acceptor)
            // Keep-alive connections that send nothing are closed, not held forever.
            .idle_timeout(Duration::from_secs(60))
            .run_with_graceful_shutdown(routes(self.state), stop, Some(SHUTDOWN_GRACE))
            .await;
        pruner.abort();
        memory.abort();
        key_reloader.abort();
        for task in [session_bus, metrics].into_iter().flatten() {
            task.abort();
        }
        purger.abort();
        mailer.abort();
        let _ = writer.close().await;
        let _ = db.close().await;
        result.context("server failed")
    }
}

/// Swagger UI's page inlines its 3 MB bundle. Held for the process's life it
/// was the largest thing in memory, for a page seldom opened; built for each
/// request, a burst of requests could build it as many times. So it is built
/// when asked for, shared by the requests that overlap, and dropped once the
/// last of them is sent.
fn swagger_ui() -> impl Endpoint<Output = poem::Response> {
    struct Page(Arc<String>);
    impl AsRef<[u8]> for Page {
        fn as_ref(&self) -> &[u8] {
            self.0.as_bytes()
        }
    }
    static SHARED: Mutex<Weak<String>> = Mutex::new(Weak::new());
    poem::endpoint::make_sync(|_| {
        let page = {
            let mut shared = SHARED.lock().unwrap_or_else(PoisonError::into_inner);
            shared.upgrade().unwrap_or_else(|| {
                let page = Arc::new(api::service().swagger_ui_html());
                *shared = Arc::downgrade(&page);
                page
            })
        };
        poem::Response::builder()
            .content_type("text/html; charset=utf-8")
            .body(poem::Body::from_bytes(bytes::Bytes::from_owner(Page(page))))
    })
}

/// Every route and the middleware around them.
pub fn routes(state: AppState) -> impl Endpoint<Output = poem::Response> {
    let service = api::service();
    let spec_json = service.spec_endpoint();
    let spec_yaml = service.spec_endpoint_yaml();
    let allow = AllowOn405::from_spec(&service.spec());
    let route = Route::new()
        .at("/docs", swagger_ui())
        .at("/docs/", swagger_ui())
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .nest("/", service);
    protect(route, state).with(allow)
}

/// The middleware stack, innermost first. Separate from [`routes`] so that
/// tests can put it around an endpoint that misbehaves on purpose.
pub fn protect(ep: impl Endpoint + 'static, state: AppState) -> impl Endpoint<Output = poem::Response> {
    let config = state.config.clone();
    let origins = Origins::new(&config.allowed_origins);
    ep.with(BodyLimit(config.max_body_bytes))
        .with(Backpressure { timeout: config.request_timeout, max_in_flight: config.max_in_flight })
        .with(RejectCrossSite(origins.clone()))
        .data(state)
        // A panicking handler answers 500 like any internal error; the process keeps serving.
        .with(
            CatchPanic::new().with_handler(|_| ApiError::Internal(anyhow::anyhow!("handler panicked")).into_response()),
        )
        // Everything outside this line sees only responses, errors included.
        .catch_all_error(render_any_error)
        .with(Cors(origins))
        .with(NoStore)
        .with(security_headers(config.cookie_secure))
        .with(RequestLog::new(&config.trusted_proxies))
}

/// How long the outbox keeps a sent mail's record (its bodies are cleared at once).
const SENT_MAIL_KEPT: Duration = Duration::from_secs(7 * 24 * 3600);

/// Deletes dead sessions, refresh tokens, email tokens, expired devices,
/// login tickets, old sent and failed mails, old events and retired keys
/// every `PURGE_INTERVAL`, off the request path.
async fn purge_on_schedule(state: AppState) {
    let every = state.config.purge_interval;
    if every.is_zero() {
        return;
    }
    let mut tick = tokio::time::interval(every);
    tick.tick().await; // the first tick is immediate; start-up is busy enough
    loop {
        tick.tick().await;
        match crate::auth::sessions::purge_dead(&state.writer).await {
            Ok((sessions, tokens)) => tracing::info!(sessions, tokens, "purged dead sessions and refresh tokens"),
            Err(e) => tracing::warn!(error = %e, "purge failed; retrying at the next interval"),
        }
        match crate::auth::email_tokens::purge_dead(&state.writer).await {
            Ok(n) => tracing::info!(email_tokens = n, "purged used and expired email tokens"),
            Err(e) => tracing::warn!(error = %e, "email-token purge failed; retrying at the next interval"),
        }
        match crate::auth::devices::purge_expired(&state.writer, state.config.device_cookie_ttl).await {
            Ok(n) => tracing::info!(devices = n, "purged devices whose cookies have expired"),
            Err(e) => tracing::warn!(error = %e, "device purge failed; retrying at the next interval"),
        }
        match crate::auth::mfa::purge_dead_tickets(&state.writer).await {
            Ok(n) => tracing::info!(mfa_tickets = n, "purged used and expired login tickets"),
            Err(e) => tracing::warn!(error = %e, "login-ticket purge failed; retrying at the next interval"),
        }
        match crate::mail::purge_done(&state.writer, SENT_MAIL_KEPT).await {
            Ok(n) => tracing::info!(mails = n, "purged sent and failed mails"),
            Err(e) => tracing::warn!(error = %e, "mail purge failed; retrying at the next interval"),
        }
        match crate::audit::purge_older_than(&state.writer, state.config.audit_retention).await {
            Ok(n) => tracing::info!(events = n, "purged security events past AUDIT_RETENTION"),
            Err(e) => tracing::warn!(error = %e, "security-event purge failed; retrying at the next interval"),
        }
        match state.tokens.ring().purge_retired().await {
            Ok(n) => tracing::info!(signing_keys = n, "purged signing keys whose tokens have all expired"),
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "signing-key purge failed; retrying at the next interval")
            }
        }
    }
}

/// Picks up keys made by `latchkey keys rotate` (or another instance) long
/// before they start signing.
async fn reload_keys_on_schedule(state: AppState) {
    let ring = state.tokens.ring();
    if !ring.algorithm().is_asymmetric() {
        return;
    }
    // Instances that start together may each make a first key: a reload soon
    // after start-up shows each the others', long before RELOAD_EVERY.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let mut tick = tokio::time::interval(crate::auth::signing_keys::RELOAD_EVERY);
    loop {
        tick.tick().await;
        if let Err(e) = ring.reload().await {
            tracing::warn!(error = %format!("{e:#}"), "cannot reload signing keys; keeping the ones loaded");
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
    tracing::info!("shutdown signal received; finishing in-flight requests");
}

#[cfg(test)]
mod tests {
    use super::*;
    use poem::{Request, handler, http::StatusCode};

    #[handler]
    fn explode() -> &'static str {
        panic!("boom")
    }

    #[tokio::test]
    async fn a_panicking_handler_answers_500_problem_and_the_server_keeps_serving() {
        let mut config = Config { jwt_secret: Some(crate::config::Secret::new("x".repeat(32))), ..Config::default() };
        config.database_url = "sqlite::memory:".into();
        let db = db::connect(&config).await.unwrap();
        let state = AppState::new(db.clone(), db, config).unwrap();
        let ep = protect(Route::new().at("/boom", poem::get(explode)), state);
        for _ in 0..2 {
            let resp = ep.call(Request::builder().uri(poem::http::Uri::from_static("/boom")).finish()).await.unwrap();
            assert_eq!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert_eq!(resp.content_type(), Some(crate::error::PROBLEM_CONTENT_TYPE));
            assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
            let body = resp.into_body().into_string().await.unwrap();
            assert!(body.contains("internal_error") && !body.contains("boom"), "{body}");
        }
    }
}

/// `GET /metrics` on the metrics listener: the gauges of state, then everything.
#[poem::handler]
async fn scrape(state: poem::web::Data<&AppState>) -> poem::Response {
    let mail_pending = match crate::mail::pending(&state.db).await {
        Ok(n) => Some(n),
        Err(e) => {
            tracing::warn!(error = %e, "cannot count the mail outbox for /metrics");
            None
        }
    };
    let (cache_hits, cache_misses) = state.sessions.cache().counters();
    crate::prometheus::record_gauges(crate::prometheus::Gauges {
        bcrypt_queued: state.passwords.queued(),
        cache_hits,
        cache_misses,
        read_pool: &state.db,
        write_pool: &state.writer,
        mail_pending,
    });
    poem::Response::builder().content_type("text/plain; version=0.0.4; charset=utf-8").body(crate::prometheus::render())
}
