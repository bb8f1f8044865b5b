//! A second factor: TOTP secrets (encrypted), recovery codes (hashed), login
//! tickets between the password and the code, `users.mfa_enabled`, and
//! `sessions.authenticated_at` (when the session last proved a credential).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::{m20260101_000001_create_users::Users, m20260101_000002_create_sessions::Sessions};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum UsersNew {
    MfaEnabled,
}

#[derive(DeriveIden)]
enum SessionsNew {
    AuthenticatedAt,
}

#[derive(DeriveIden)]
enum MfaTotp {
    Table,
    UserId,
    SecretEnc,
    EnabledAt,
    LastStep,
    CreatedAt,
}

#[derive(DeriveIden)]
enum RecoveryCodes {
    Table,
    Id,
    UserId,
    CodeHash,
    CreatedAt,
    UsedAt,
}

#[derive(DeriveIden)]
enum MfaTickets {
    Table,
    Id,
    UserId,
    DeviceId,
    Attempts,
    CreatedAt,
    ExpiresAt,
    UsedAt,
}

const TIMESTAMPS: &[(&str, &str, bool)] = &[
    ("sessions", "authenticated_at", true),
    ("mfa_totp", "enabled_at", true),
    ("mfa_totp", "created_at", false),
    ("recovery_codes", "created_at", false),
    ("recovery_codes", "used_at", true),
    ("mfa_tickets", "created_at", false),
    ("mfa_tickets", "expires_at", false),
    ("mfa_tickets", "used_at", true),
];

fn user_fk(name: &str, table: impl IntoIden, column: impl IntoIden) -> ForeignKeyCreateStatement {
    ForeignKey::create()
        .name(name)
        .from(table, column)
        .to(Users::Table, Users::Id)
        .on_delete(ForeignKeyAction::Cascade)
        .to_owned()
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter().table(Users::Table).add_column(boolean(UsersNew::MfaEnabled).default(false)).to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Sessions::Table)
                    .add_column(timestamp_with_time_zone_null(SessionsNew::AuthenticatedAt))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaTotp::Table)
                    .if_not_exists()
                    .col(pk_uuid(MfaTotp::UserId))
                    .col(string_len(MfaTotp::SecretEnc, 200))
                    .col(timestamp_with_time_zone_null(MfaTotp::EnabledAt))
                    .col(big_integer_null(MfaTotp::LastStep))
                    .col(timestamp_with_time_zone(MfaTotp::CreatedAt))
                    .foreign_key(&mut user_fk("fk_mfa_totp_user_id", MfaTotp::Table, MfaTotp::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(RecoveryCodes::Table)
                    .if_not_exists()
                    .col(pk_uuid(RecoveryCodes::Id))
                    .col(uuid(RecoveryCodes::UserId))
                    .col(string_len(RecoveryCodes::CodeHash, 64))
                    .col(timestamp_with_time_zone(RecoveryCodes::CreatedAt))
                    .col(timestamp_with_time_zone_null(RecoveryCodes::UsedAt))
                    .foreign_key(&mut user_fk("fk_recovery_codes_user_id", RecoveryCodes::Table, RecoveryCodes::UserId))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_recovery_codes_user_id_code_hash")
                    .table(RecoveryCodes::Table)
                    .col(RecoveryCodes::UserId)
                    .col(RecoveryCodes::CodeHash)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(MfaTickets::Table)
                    .if_not_exists()
                    .col(pk_uuid(MfaTickets::Id))
                    .col(uuid(MfaTickets::UserId))
                    .col(uuid_null(MfaTickets::DeviceId))
                    .col(integer(MfaTickets::Attempts).default(0))
                    .col(timestamp_with_time_zone(MfaTickets::CreatedAt))
                    .col(timestamp_with_time_zone(MfaTickets::ExpiresAt))
                    .col(timestamp_with_time_zone_null(MfaTickets::UsedAt))
                    .foreign_key(&mut user_fk("fk_mfa_tickets_user_id", MfaTickets::Table, MfaTickets::UserId))
                    .to_owned(),
            )
            .await?;
        if manager.get_database_backend() == DatabaseBackend::MySql {
            for (table, column, nullable) in TIMESTAMPS {
                let null = if *nullable { "NULL DEFAULT NULL" } else { "NOT NULL" };
                let sql = format!("ALTER TABLE `{table}` MODIFY `{column}` TIMESTAMP(3) {null}");
                manager.get_connection().execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [MfaTickets::Table.into_iden(), RecoveryCodes::Table.into_iden(), MfaTotp::Table.into_iden()] {
            manager.drop_table(Table::drop().table(table).to_owned()).await?;
        }
        manager
            .alter_table(Table::alter().table(Sessions::Table).drop_column(SessionsNew::AuthenticatedAt).to_owned())
            .await?;
        manager.alter_table(Table::alter().table(Users::Table).drop_column(UsersNew::MfaEnabled).to_owned()).await
    }
}
