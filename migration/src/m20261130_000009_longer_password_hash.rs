//! Room in `users.password_hash` for a hash imported from another system
//! (`latchkey import-users`), stored as `legacy:` + a 60-character bcrypt
//! hash until that user's first login replaces it. SQLite does not enforce
//! `VARCHAR` lengths, so this changes nothing there.

use sea_orm_migration::{prelude::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

async fn set_length(manager: &SchemaManager<'_>, length: u32) -> Result<(), DbErr> {
    let sql = match manager.get_database_backend() {
        DatabaseBackend::Postgres => format!("ALTER TABLE users ALTER COLUMN password_hash TYPE VARCHAR({length})"),
        DatabaseBackend::MySql => format!("ALTER TABLE `users` MODIFY `password_hash` VARCHAR({length}) NOT NULL"),
        _ => return Ok(()),
    };
    manager.get_connection().execute_unprepared(&sql).await?;
    Ok(())
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 128).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        set_length(manager, 60).await
    }
}
