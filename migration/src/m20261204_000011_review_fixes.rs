//! What the second outside review asked of the schema: device cookies that
//! can be revoked (`login_devices`), mail priorities (`mail_outbox.priority`:
//! links before notices), and who caused each security event
//! (`audit_events.actor`).

use sea_orm_migration::{prelude::*, schema::*, sea_orm::DatabaseBackend};

use crate::m20260101_000001_create_users::Users;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum LoginDevices {
    Table,
    Id,
    UserId,
    CreatedAt,
    LastUsedAt,
}

#[derive(DeriveIden)]
enum MailOutbox {
    Table,
    Priority,
}

#[derive(DeriveIden)]
enum AuditEvents {
    Table,
    Actor,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(LoginDevices::Table)
                    .if_not_exists()
                    .col(pk_uuid(LoginDevices::Id))
                    .col(uuid(LoginDevices::UserId))
                    .col(timestamp_with_time_zone(LoginDevices::CreatedAt))
                    .col(timestamp_with_time_zone(LoginDevices::LastUsedAt))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_login_devices_user_id")
                            .from(LoginDevices::Table, LoginDevices::UserId)
                            .to(Users::Table, Users::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_login_devices_user_id_created_at")
                    .table(LoginDevices::Table)
                    .col(LoginDevices::UserId)
                    .col(LoginDevices::CreatedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(MailOutbox::Table)
                    .add_column(small_integer(MailOutbox::Priority).default(0))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table(AuditEvents::Table)
                    .add_column(string_len(AuditEvents::Actor, 16).default("self"))
                    .to_owned(),
            )
            .await?;
        // Until now an actor id was only ever an admin's.
        manager
            .get_connection()
            .execute_unprepared("UPDATE audit_events SET actor = 'admin' WHERE actor_id IS NOT NULL")
            .await?;
        if manager.get_database_backend() == DatabaseBackend::MySql {
            for column in ["created_at", "last_used_at"] {
                let sql = format!("ALTER TABLE `login_devices` MODIFY `{column}` TIMESTAMP(3) NOT NULL");
                manager.get_connection().execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(Table::alter().table(AuditEvents::Table).drop_column(AuditEvents::Actor).to_owned())
            .await?;
        manager
            .alter_table(Table::alter().table(MailOutbox::Table).drop_column(MailOutbox::Priority).to_owned())
            .await?;
        manager.drop_table(Table::drop().table(LoginDevices::Table).to_owned()).await
    }
}
