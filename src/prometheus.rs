//! Metrics in the Prometheus text format, served on `METRICS_ADDR` (a listener
//! of its own, never the public address). Every metric Latchkey exports is
//! named and described here.
//!
//! Counters and histograms are recorded where things happen, through the
//! `metrics` crate; with `METRICS_ADDR` unset no recorder is installed and
//! recording costs next to nothing. Gauges of state (pools, queues, the
//! session cache) are read when Prometheus scrapes: `app` wires the
//! listener to a handler that sets them ([`Gauges`]) and [`render`]s. This
//! module names nothing of the crate's own, so anything may record here.

use std::{
    net::SocketAddr,
    sync::{
        OnceLock,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};

use metrics::{counter, describe_counter, describe_gauge, describe_histogram, gauge, histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use poem::{
    Endpoint, Server,
    listener::{Acceptor, Listener, TcpAcceptor, TcpListener},
};
use sea_orm::{DatabaseConnection, DbBackend};

const HTTP_REQUESTS: &str = "latchkey_http_requests_total";
const HTTP_DURATION: &str = "latchkey_http_request_duration_seconds";
const LOGINS: &str = "latchkey_logins_total";
const REFRESHES: &str = "latchkey_refreshes_total";
const RATE_LIMIT_REFUSALS: &str = "latchkey_rate_limit_refusals_total";
const BCRYPT_DURATION: &str = "latchkey_bcrypt_hash_duration_seconds";
const BCRYPT_QUEUE: &str = "latchkey_bcrypt_queue_depth";
const DB_CONNECTIONS: &str = "latchkey_db_pool_connections";
const MAIL_OUTBOX: &str = "latchkey_mail_outbox_depth";
const MAIL_FAILURES: &str = "latchkey_mail_send_failures_total";
const CACHE_LOOKUPS: &str = "latchkey_session_cache_lookups_total";

/// Latency buckets (seconds) from a cached `/me` (well under a millisecond) to
/// a queued login (seconds).
const BUCKETS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

/// Set once a recorder is installed; until then recording skips even the
/// label allocations.
static ENABLED: AtomicBool = AtomicBool::new(false);

fn enabled() -> bool {
    ENABLED.load(Ordering::Relaxed)
}

/// Installs the process-wide recorder on first use; later calls share it.
fn handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let recorder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Suffix("_seconds".into()), BUCKETS)
                .expect("BUG: the buckets are not empty")
                .build_recorder();
            let handle = recorder.handle();
            if metrics::set_global_recorder(recorder).is_err() {
                tracing::warn!("another metrics recorder is installed; /metrics will be empty");
            }
            describe();
            ENABLED.store(true, Ordering::Relaxed);
            handle
        })
        .clone()
}

fn describe() {
    describe_counter!(HTTP_REQUESTS, "HTTP requests answered, by method, route template and status.");
    describe_histogram!(HTTP_DURATION, metrics::Unit::Seconds, "Time to answer an HTTP request, by method and route.");
    describe_counter!(
        LOGINS,
        "Password logins by outcome: success, mfa_required, bad_credentials, disabled, rate_limited, error."
    );
    describe_counter!(REFRESHES, "Refreshes by outcome: rotated, grace, reuse_detected, expired, invalid, error.");
    describe_counter!(RATE_LIMIT_REFUSALS, "Requests refused with 429, by the limit that refused them.");
    describe_histogram!(BCRYPT_DURATION, metrics::Unit::Seconds, "Time of one bcrypt hash or check.");
    describe_gauge!(BCRYPT_QUEUE, "bcrypt jobs running or waiting for a hashing thread.");
    describe_gauge!(DB_CONNECTIONS, "Database connections by pool (read, write) and state (in_use, idle, max).");
    describe_gauge!(MAIL_OUTBOX, "Mails in the outbox waiting to be sent.");
    describe_counter!(MAIL_FAILURES, "Mail sending attempts that failed (each is retried until MAIL_MAX_ATTEMPTS).");
    describe_counter!(CACHE_LOOKUPS, "Session cache lookups by result: hit or miss.");
}

/// The metrics listener, bound (so the caller learns its address) but not yet serving.
pub struct MetricsListener {
    acceptor: TcpAcceptor,
    addr: SocketAddr,
}

impl MetricsListener {
    pub async fn bind(addr: SocketAddr) -> anyhow::Result<Self> {
        use anyhow::Context;
        handle();
        let acceptor = TcpListener::bind(addr)
            .into_acceptor()
            .await
            .with_context(|| format!("cannot listen on METRICS_ADDR {addr}"))?;
        let addr = acceptor
            .local_addr()
            .first()
            .and_then(|a| a.as_socket_addr().copied())
            .context("the metrics listener has no TCP address")?;
        Ok(Self { acceptor, addr })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Serves `app` (the `/metrics` route) until the task is dropped.
    pub async fn serve(self, app: impl Endpoint + 'static) {
        if let Err(e) = Server::new_with_acceptor(self.acceptor).run(app).await {
            tracing::error!(error = %e, "the metrics listener stopped");
        }
    }
}

/// Everything recorded so far, in the Prometheus text format.
pub fn render() -> String {
    handle().render()
}

/// The gauges of state, read just before a scrape is rendered.
pub struct Gauges<'a> {
    pub bcrypt_queued: usize,
    pub cache_hits: u64,
    pub cache_misses: u64,
    pub read_pool: &'a DatabaseConnection,
    pub write_pool: &'a DatabaseConnection,
    /// Mails waiting in the outbox, when they could be counted.
    pub mail_pending: Option<u64>,
}

pub fn record_gauges(g: Gauges) {
    gauge!(BCRYPT_QUEUE).set(g.bcrypt_queued as f64);
    counter!(CACHE_LOOKUPS, "result" => "hit").absolute(g.cache_hits);
    counter!(CACHE_LOOKUPS, "result" => "miss").absolute(g.cache_misses);
    pool_gauges("read", g.read_pool);
    pool_gauges("write", g.write_pool);
    if let Some(n) = g.mail_pending {
        gauge!(MAIL_OUTBOX).set(n as f64);
    }
}

fn pool_gauges(pool: &'static str, db: &DatabaseConnection) {
    let (size, idle, max) = match db.get_database_backend() {
        DbBackend::Postgres => {
            let p = db.get_postgres_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        DbBackend::MySql => {
            let p = db.get_mysql_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        DbBackend::Sqlite => {
            let p = db.get_sqlite_connection_pool();
            (p.size(), p.num_idle() as u32, p.options().get_max_connections())
        }
        _ => return,
    };
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "in_use").set(f64::from(size.saturating_sub(idle)));
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "idle").set(f64::from(idle));
    gauge!(DB_CONNECTIONS, "pool" => pool, "state" => "max").set(f64::from(max));
}

pub fn http_request(method: &str, route: &str, status: u16, elapsed: Duration) {
    if !enabled() {
        return;
    }
    // Any token is a method to HTTP: a client inventing new ones must not
    // invent new time series.
    let method = match method {
        "GET" | "HEAD" | "POST" | "PUT" | "PATCH" | "DELETE" | "OPTIONS" => method,
        _ => "other",
    };
    counter!(HTTP_REQUESTS, "method" => method.to_owned(), "route" => route.to_owned(), "status" => status.to_string())
        .increment(1);
    histogram!(HTTP_DURATION, "method" => method.to_owned(), "route" => route.to_owned()).record(elapsed.as_secs_f64());
}

pub fn login(outcome: &'static str) {
    counter!(LOGINS, "outcome" => outcome).increment(1);
}

pub fn refresh(outcome: &'static str) {
    counter!(REFRESHES, "outcome" => outcome).increment(1);
}

pub fn rate_limit_refused(limit: &'static str) {
    counter!(RATE_LIMIT_REFUSALS, "limit" => limit).increment(1);
}

pub fn bcrypt_hash(elapsed: Duration) {
    histogram!(BCRYPT_DURATION).record(elapsed.as_secs_f64());
}

pub fn mail_send_failed() {
    counter!(MAIL_FAILURES).increment(1);
}
