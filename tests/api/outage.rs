//! A database outage mid-run: requests fail fast with 503, readiness says so,
//! liveness does not, and service comes back by itself. Runs against
//! PostgreSQL (`TEST_DATABASE_URL=postgres://…`): the test refuses new
//! connections to its own database and kills the open ones, so the shared
//! server is never stopped.

use std::time::{Duration, Instant};

use reqwest::StatusCode;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};

use crate::helpers::*;

/// These tests are `#[ignore]`d, so a plain `cargo test` reports them as
/// ignored, never as passed; `.ci/run` runs them on PostgreSQL.
fn postgres_url() -> String {
    std::env::var("TEST_DATABASE_URL")
        .ok()
        .filter(|u| u.starts_with("postgres"))
        .expect("TEST_DATABASE_URL=postgres://… is set")
}

async fn admin(sql: &str, db: &DatabaseConnection) {
    db.execute_raw(Statement::from_string(db.get_database_backend(), sql.to_owned())).await.unwrap();
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL=postgres://…"]
async fn a_database_outage_gives_fast_503s_and_recovers_without_a_restart() {
    let server = postgres_url();
    let app = spawn_app_with(|c| c.database_timeout = Duration::from_secs(2)).await;
    app.signed_up().await;
    assert_eq!(app.me().await.status(), StatusCode::OK);
    let name = app.database_url.rsplit('/').next().unwrap().to_owned();
    let control = Database::connect(&server).await.unwrap();

    admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS false"), &control).await;
    admin(
        &format!("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}' AND pid <> pg_backend_pid()"),
        &control,
    )
    .await;
    let down = Instant::now();
    let mut first_503 = None;
    // The task list needs the database (`/me` may come from the session cache).
    for _ in 0..5 {
        let start = Instant::now();
        let resp = app.get("/api/v1/tasks").await;
        let took = start.elapsed();
        assert!(took < Duration::from_secs(5), "a request took {took:?} during the outage");
        if resp.status() == StatusCode::SERVICE_UNAVAILABLE {
            first_503.get_or_insert(down.elapsed());
            assert!(resp.headers().contains_key("retry-after"));
            assert_problem(resp, 503, "database_unavailable").await;
        } else {
            assert_ne!(resp.status(), StatusCode::INTERNAL_SERVER_ERROR);
        }
    }
    let first_503 = first_503.expect("at least one 503 while the database is down");
    assert_problem(app.get("/health/ready").await, 503, "database_unavailable").await;
    assert_eq!(app.get("/health").await.status(), StatusCode::OK);

    admin(&format!("ALTER DATABASE {name} ALLOW_CONNECTIONS true"), &control).await;
    let back = Instant::now();
    let mut recovered = None;
    for _ in 0..100 {
        if app.get("/api/v1/tasks").await.status() == StatusCode::OK {
            recovered = Some(back.elapsed());
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let recovered = recovered.expect("service recovers by itself");
    assert_eq!(app.get("/health/ready").await.status(), StatusCode::OK);
    eprintln!("outage: first 503 after {first_503:?}; first 200 after {recovered:?} of the database's return");
}

#[tokio::test]
#[ignore = "needs TEST_DATABASE_URL=postgres://…"]
async fn a_runaway_statement_is_cancelled_by_the_statement_timeout() {
    postgres_url();
    let app = spawn_app_with(|c| c.database_statement_timeout = Duration::from_millis(300)).await;
    let started = Instant::now();
    let result = app.state.db.execute_unprepared("SELECT pg_sleep(5)").await;
    assert!(result.is_err(), "pg_sleep(5) should have been cancelled");
    assert!(started.elapsed() < Duration::from_secs(3), "took {:?}", started.elapsed());
}
