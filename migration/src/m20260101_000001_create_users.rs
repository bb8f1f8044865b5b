use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let mut email = string_len_uniq(Users::Email, 254);
        if manager.get_database_backend() == sea_orm_migration::sea_orm::DbBackend::MySql {
            // MySQL's default collation would call `jose@…` and `josé@…` one
            // address; the app normalizes case itself and wants exact matches.
            email.extra("COLLATE utf8mb4_bin");
        }
        manager
            .create_table(
                Table::create()
                    .table(Users::Table)
                    .if_not_exists()
                    .col(pk_uuid(Users::Id))
                    // Stored already normalized (trimmed, lowercased), so this
                    // unique index is what makes registration race-free.
                    .col(email)
                    .col(string_len(Users::PasswordHash, 60))
                    .col(string_len_null(Users::FullName, 200))
                    .col(string_len(Users::Role, 16))
                    .col(boolean(Users::IsActive))
                    .col(timestamp_with_time_zone(Users::CreatedAt))
                    .col(timestamp_with_time_zone(Users::UpdatedAt))
                    .col(timestamp_with_time_zone_null(Users::LastLoginAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create().name("idx_users_created_at").table(Users::Table).col(Users::CreatedAt).to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(Users::Table).to_owned()).await
    }
}

#[derive(DeriveIden)]
pub enum Users {
    Table,
    Id,
    Email,
    PasswordHash,
    FullName,
    Role,
    IsActive,
    CreatedAt,
    UpdatedAt,
    LastLoginAt,
}
