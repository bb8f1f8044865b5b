//! Millisecond timestamps on MySQL/MariaDB, whose `TIMESTAMP` keeps whole
//! seconds by default: the refresh grace window and the session clocks are
//! compared to the millisecond. PostgreSQL (`timestamptz`, microseconds) and
//! SQLite (text) already keep them, so this changes nothing there.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

/// Every timestamp column: table, column, nullable.
const COLUMNS: &[(&str, &str, bool)] = &[
    ("users", "created_at", false),
    ("users", "updated_at", false),
    ("users", "last_login_at", true),
    ("sessions", "created_at", false),
    ("sessions", "last_used_at", false),
    ("sessions", "expires_at", false),
    ("sessions", "max_expires_at", false),
    ("sessions", "revoked_at", true),
    ("refresh_tokens", "issued_at", false),
    ("refresh_tokens", "expires_at", false),
    ("refresh_tokens", "used_at", true),
    ("tasks", "created_at", false),
    ("tasks", "updated_at", false),
    ("audit_events", "occurred_at", false),
];

async fn set_precision(manager: &SchemaManager<'_>, fraction_digits: u8) -> Result<(), DbErr> {
    if manager.get_database_backend() != DatabaseBackend::MySql {
        return Ok(());
    }
    for (table, column, nullable) in COLUMNS {
        let null = if *nullable { "NULL DEFAULT NULL" } else { "NOT NULL" };
        let sql = format!("ALTER TABLE `{table}` MODIFY `{column}` TIMESTAMP({fraction_digits}) {null}");
        manager.get_connection().execute_unprepared(&sql).await?;
    }
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_precision(manager, 3).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_precision(manager, 0).await
    }
}
