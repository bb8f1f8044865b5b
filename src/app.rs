//! Wiring: [`Application::build`] opens the database, runs migrations, binds
//! the listener and assembles the routes. `main` and the tests both go through
//! it, so the tests run exactly the production wiring.

use std::{net::SocketAddr, time::Duration};

use anyhow::Context;
use poem::{
    Endpoint, EndpointExt, Route, Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
    middleware::SetHeader,
};

use crate::{
    api,
    browser::{Cors, Origins, RejectCrossSite},
    config::Config, db, error::render_any_error, middleware::{BodyLimit, NoStore}, state::AppState,
};

pub struct Application {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
    state: AppState,
}

/// How long in-flight requests get to finish after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

impl Application {
    /// `config` must have been validated.
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let db = db::connect(&config).await?;
        if config.run_migrations {
            db::migrate(&db).await?;
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
        let state = AppState::new(db, config)?;
        Ok(Self { acceptor, addr, state })
    }

    /// The address actually bound (useful with port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    pub fn state(&self) -> &AppState {
        &self.state
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
        tracing::info!(addr = %self.addr, "serving; API docs at /docs");
        let db = self.state.db.clone();
        let result = Server::new_with_acceptor(self.acceptor)
            .run_with_graceful_shutdown(routes(self.state), stop, Some(SHUTDOWN_GRACE))
            .await;
        pruner.abort();
        let _ = db.close().await;
        result.context("server failed")
    }
}

/// Every route and the middleware around them.
pub fn routes(state: AppState) -> impl Endpoint {
    let service = api::service();
    let docs = service.swagger_ui();
    let spec_json = service.spec_endpoint();
    let spec_yaml = service.spec_endpoint_yaml();
    let mut security_headers = SetHeader::new()
        .overriding("X-Content-Type-Options", "nosniff")
        .overriding("X-Frame-Options", "DENY")
        .overriding("Referrer-Policy", "no-referrer");
    if state.config.cookie_secure {
        security_headers = security_headers.overriding("Strict-Transport-Security", "max-age=31536000; includeSubDomains");
    }
    let max_body = state.config.max_body_bytes;
    let origins = Origins::new(&state.config.allowed_origins);
    Route::new()
        .nest("/docs", docs)
        .at("/openapi.json", spec_json)
        .at("/openapi.yaml", spec_yaml)
        .nest("/", service)
        .with(BodyLimit(max_body))
        .with(RejectCrossSite(origins.clone()))
        .data(state)
        // Everything outside this line sees only responses, errors included.
        .catch_all_error(render_any_error)
        .with(Cors(origins))
        .with(NoStore)
        .with(security_headers)
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
