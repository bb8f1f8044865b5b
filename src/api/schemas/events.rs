//! Security events.

use chrono::{DateTime, Utc};
use poem_openapi::Object;

use crate::entity;

/// Something that happened to an account: a sign-in, a failed password, a
/// password or email change, a second factor added or removed, an admin's change.
#[derive(Debug, Clone, Object)]
pub struct SecurityEvent {
    pub id: i64,
    /// A stable snake_case name: `register`, `login_succeeded`, `login_failed`,
    /// `logout`, `logout_all`, `session_revoked`, `refresh_reuse_detected`,
    /// `password_changed`, `password_reset_requested`, `password_reset`,
    /// `verification_sent`, `email_verified`, `email_change_requested`,
    /// `email_changed`, `mfa_enabled`, `mfa_disabled`, `mfa_reset`, `mfa_failed`,
    /// `recovery_codes_regenerated`, `recovery_code_used`, `reauthenticated`,
    /// `role_changed`, `user_updated`, `deactivated`, `reactivated`, `imported`.
    #[oai(rename = "type")]
    pub kind: String,
    pub actor: EventActor,
    pub created_at: DateTime<Utc>,
    /// The client's IP address, when known. In the user's own list, `null`
    /// for events an admin or the system caused.
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
}

/// Who caused a security event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventActor {
    /// The user, or whoever tried to sign in as them (a failed login).
    #[oai(rename = "self")]
    Owner,
    /// An administrator.
    Admin,
    /// Latchkey itself, or an operator's command (`latchkey import-users`).
    System,
}

impl From<entity::audit_event::Model> for SecurityEvent {
    fn from(m: entity::audit_event::Model) -> Self {
        let actor = match m.actor.as_str() {
            "admin" => EventActor::Admin,
            "system" => EventActor::System,
            _ => EventActor::Owner,
        };
        Self { id: m.id, kind: m.event, actor, created_at: m.occurred_at, ip: m.ip, user_agent: m.user_agent }
    }
}

/// One page of security events, newest first.
#[derive(Debug, Clone, Object)]
pub struct SecurityEventPage {
    pub events: Vec<SecurityEvent>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}
