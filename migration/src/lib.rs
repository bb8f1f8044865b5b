//! Schema migrations for Latchkey, in order. Each create file makes one table
//! with its foreign keys declared inline (SQLite cannot add them afterwards);
//! later files change applied ones, never edit them.

pub use sea_orm_migration::prelude::*;

mod m20260101_000001_create_users;
mod m20260101_000002_create_sessions;
mod m20260101_000003_create_refresh_tokens;
mod m20260101_000004_create_tasks;
mod m20260101_000005_create_audit_events;
mod m20261130_000006_millisecond_timestamps;
mod m20261130_000007_email_flows;
mod m20261130_000008_second_factor;
mod m20261130_000009_longer_password_hash;
mod m20261201_000010_signing_keys;
mod m20261204_000011_review_fixes;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20260101_000001_create_users::Migration),
            Box::new(m20260101_000002_create_sessions::Migration),
            Box::new(m20260101_000003_create_refresh_tokens::Migration),
            Box::new(m20260101_000004_create_tasks::Migration),
            Box::new(m20260101_000005_create_audit_events::Migration),
            Box::new(m20261130_000006_millisecond_timestamps::Migration),
            Box::new(m20261130_000007_email_flows::Migration),
            Box::new(m20261130_000008_second_factor::Migration),
            Box::new(m20261130_000009_longer_password_hash::Migration),
            Box::new(m20261201_000010_signing_keys::Migration),
            Box::new(m20261204_000011_review_fixes::Migration),
        ]
    }
}
