use sea_orm::entity::prelude::*;

/// One security-relevant event. Never holds a password, token or hash.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub occurred_at: DateTimeUtc,
    pub event: String,
    /// The account the event is about.
    pub user_id: Option<Uuid>,
    /// Who did it, when not the user themselves (an admin).
    pub actor_id: Option<Uuid>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
    /// `self`, `admin` or `system`: who caused it (see `audit::Actor`).
    pub actor: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
