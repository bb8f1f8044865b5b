use sea_orm::entity::prelude::*;

/// A mail waiting to be sent, written in the same transaction as the change
/// that causes it; the outbox worker sends it, retries it, and marks it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mail_outbox")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub recipient: String,
    pub subject: String,
    #[sea_orm(column_type = "Text")]
    pub text_body: String,
    #[sea_orm(column_type = "Text")]
    pub html_body: String,
    pub created_at: DateTimeUtc,
    pub attempts: i32,
    /// Also the claim: a worker pushes it forward before sending, so another
    /// instance does not send the same mail meanwhile.
    pub next_attempt_at: DateTimeUtc,
    pub sent_at: Option<DateTimeUtc>,
    /// Set when the mail will never be sent (a permanent SMTP error, or out of attempts).
    pub failed_at: Option<DateTimeUtc>,
    pub last_error: Option<String>,
    /// Sent lowest first: 0 for mails with a link someone waits for, 1 for notices.
    pub priority: i16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
