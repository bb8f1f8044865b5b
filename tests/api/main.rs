//! Black-box tests: the real app on a real port, a real database per test.
//! SQLite by default; set `TEST_DATABASE_URL` to a PostgreSQL or MySQL/MariaDB
//! server URL to run the same suite there (each test gets its own database).

mod helpers;
mod smtp_sink;

mod audit;
mod auth_login;
mod auth_refresh;
mod auth_register;
mod auth_session;
mod browser;
mod email;
mod events;
mod import;
mod jwks;
mod metrics;
mod mfa;
mod operations;
mod outage;
mod ratelimit_redis;
mod request_log;
mod resilience;
mod session_cache;
mod sessions;
mod tasks;
mod users;
