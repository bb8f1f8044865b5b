//! Latchkey: cookie-session authentication for browser single-page apps.

/// User accounts: creating users, checking passwords, writing credentials.
pub mod accounts;
/// HTTP operations and wire types (`#[OpenApi]` structs).
pub mod api;
/// Building and running the server: routes, middleware order, shutdown.
pub mod app;
/// The security audit trail.
pub mod audit;
/// Access tokens, passwords, cookies, sessions and rate limits.
pub mod auth;
/// Who may do what: the platform role rules.
pub mod authz;
/// The command line: serve, migrate, create-admin, openapi.
pub mod cli;
/// Where a request comes from: client IP through trusted proxies, user agent.
pub mod client;
/// "Now", truncated the way every database stores it.
pub mod clock;
/// Settings from the environment, validated once.
pub mod config;
/// Opening the pool and running migrations.
pub mod db;
/// Validated input types: email, password, role.
pub mod domain;
/// sea-orm entities.
pub mod entity;
/// `ApiError` and the RFC 9457 problem document.
pub mod error;
/// Use cases: what each request does, on one transaction, announced after commit.
pub mod flows;
/// `latchkey import-users`: users and their bcrypt hashes from another system.
pub mod import;
/// Outgoing mail: the transactional outbox, its worker, the mails themselves.
pub mod mail;
/// HTTP middleware: browser protections (CORS, cross-site rejection, security headers) and request limits.
/// Giving freed memory back to the operating system.
pub mod memory;
pub mod middleware;
/// The Prometheus metrics listener (`METRICS_ADDR`) and every metric's name.
pub mod prometheus;
/// Shared handler state.
pub mod state;
/// The tasks table's owner: each user's own tasks.
pub mod tasks;
/// Log setup.
pub mod telemetry;
