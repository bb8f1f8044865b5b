//! Key pairs that sign access tokens when `JWT_ALGORITHM` is `EdDSA` or
//! `ES256`: the public half as a JWK, the private half sealed with
//! `DATA_ENCRYPTION_KEY`, and when each starts signing.

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum SigningKeys {
    Table,
    Kid,
    Algorithm,
    PublicJwk,
    PrivateKeyEnc,
    CreatedAt,
    SignsFrom,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(SigningKeys::Table)
                    .if_not_exists()
                    .col(string_len(SigningKeys::Kid, 64).primary_key())
                    .col(string_len(SigningKeys::Algorithm, 16))
                    .col(string_len(SigningKeys::PublicJwk, 400))
                    .col(string_len(SigningKeys::PrivateKeyEnc, 400))
                    .col(timestamp_with_time_zone(SigningKeys::CreatedAt))
                    .col(timestamp_with_time_zone(SigningKeys::SignsFrom))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::MySql {
            for column in ["created_at", "signs_from"] {
                let sql = format!("ALTER TABLE `signing_keys` MODIFY `{column}` TIMESTAMP(3) NOT NULL");
                manager.get_connection().execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager.drop_table(Table::drop().table(SigningKeys::Table).to_owned()).await
    }
}
