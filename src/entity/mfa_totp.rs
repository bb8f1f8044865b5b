use sea_orm::entity::prelude::*;

/// A user's TOTP secret, encrypted with `DATA_ENCRYPTION_KEY`. Until
/// `enabled_at` is set it is only a setup in progress.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "mfa_totp")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: Uuid,
    pub secret_enc: String,
    pub enabled_at: Option<DateTimeUtc>,
    /// The last time step a code was accepted for: a code (or an older step)
    /// never works twice.
    pub last_step: Option<i64>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
