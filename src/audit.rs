//! The security audit trail. Each event is written on the same connection
//! (usually the same transaction) as the change it records, so the trail and
//! the data never disagree.

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, NotSet, QueryFilter, QueryOrder, QuerySelect, Set,
};
use uuid::Uuid;

use crate::{client::ClientInfo, clock::now, entity::audit_event, error::ApiError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Event {
    Register,
    LoginSucceeded,
    LoginFailed,
    Refresh,
    RefreshReuseDetected,
    Logout,
    LogoutAll,
    SessionRevoked,
    PasswordChanged,
    RoleChanged,
    UserUpdated,
    Deactivated,
    Reactivated,
    Deleted,
    VerificationSent,
    EmailVerified,
    PasswordResetRequested,
    PasswordReset,
    EmailChangeRequested,
    EmailChanged,
    MfaEnabled,
    MfaDisabled,
    MfaReset,
    RecoveryCodesRegenerated,
    RecoveryCodeUsed,
    MfaFailed,
    Reauthenticated,
    /// The account came in through `latchkey import-users`.
    Imported,
}

impl Event {
    pub fn as_str(self) -> &'static str {
        match self {
            Event::Register => "register",
            Event::LoginSucceeded => "login_succeeded",
            Event::LoginFailed => "login_failed",
            Event::Refresh => "refresh",
            Event::RefreshReuseDetected => "refresh_reuse_detected",
            Event::Logout => "logout",
            Event::LogoutAll => "logout_all",
            Event::SessionRevoked => "session_revoked",
            Event::PasswordChanged => "password_changed",
            Event::RoleChanged => "role_changed",
            Event::UserUpdated => "user_updated",
            Event::Deactivated => "deactivated",
            Event::Reactivated => "reactivated",
            Event::Deleted => "deleted",
            Event::VerificationSent => "verification_sent",
            Event::EmailVerified => "email_verified",
            Event::PasswordResetRequested => "password_reset_requested",
            Event::PasswordReset => "password_reset",
            Event::EmailChangeRequested => "email_change_requested",
            Event::EmailChanged => "email_changed",
            Event::MfaEnabled => "mfa_enabled",
            Event::MfaDisabled => "mfa_disabled",
            Event::MfaReset => "mfa_reset",
            Event::RecoveryCodesRegenerated => "recovery_codes_regenerated",
            Event::RecoveryCodeUsed => "recovery_code_used",
            Event::MfaFailed => "mfa_failed",
            Event::Reauthenticated => "reauthenticated",
            Event::Imported => "imported",
        }
    }
}

/// Who caused an event. A user's own list shows where their own actions came
/// from, but not an admin's address or browser, nor anything of the system's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Actor {
    /// The account's user, or whoever acted at its sign-in (a failed login).
    User,
    /// An administrator, by user id.
    Admin(Uuid),
    /// Latchkey itself, or an operator at its command line.
    System,
}

impl Actor {
    /// Its name in `audit_events.actor` and in `SecurityEvent.actor`.
    pub fn as_str(self) -> &'static str {
        match self {
            Actor::User => "self",
            Actor::Admin(_) => "admin",
            Actor::System => "system",
        }
    }
}

/// No client: the event came from a command or a background job.
static NO_CLIENT: ClientInfo = ClientInfo { ip: None, user_agent: None };

/// An event about to be recorded.
pub struct Entry<'a> {
    pub event: Event,
    pub user_id: Option<Uuid>,
    pub actor: Actor,
    pub client: &'a ClientInfo,
    pub detail: Option<String>,
}

impl<'a> Entry<'a> {
    pub fn new(event: Event, user_id: impl Into<Option<Uuid>>, client: &'a ClientInfo) -> Self {
        Self { event, user_id: user_id.into(), actor: Actor::User, client, detail: None }
    }

    /// An event Latchkey or an operator's command caused, with no client.
    pub fn system(event: Event, user_id: Uuid) -> Entry<'static> {
        Entry { event, user_id: Some(user_id), actor: Actor::System, client: &NO_CLIENT, detail: None }
    }

    /// Caused by the admin `actor_id`, from `client`.
    pub fn by(mut self, actor_id: Uuid) -> Self {
        self.actor = Actor::Admin(actor_id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub async fn record(self, db: &impl ConnectionTrait) -> Result<(), ApiError> {
        let actor_id = match self.actor {
            Actor::Admin(id) => Some(id),
            Actor::User | Actor::System => None,
        };
        audit_event::ActiveModel {
            id: NotSet,
            occurred_at: Set(now()),
            event: Set(self.event.as_str().to_owned()),
            user_id: Set(self.user_id),
            actor_id: Set(actor_id),
            actor: Set(self.actor.as_str().to_owned()),
            ip: Set(self.client.ip.map(|ip| ip.to_string())),
            user_agent: Set(self.client.user_agent.clone()),
            detail: Set(self.detail),
        }
        .insert(db)
        .await?;
        Ok(())
    }
}

/// Events a user is shown about their account: everything recorded about it
/// but token refreshes, which happen every few minutes and say nothing new.
const NOT_SHOWN: &[&str] = &["refresh"];

/// One page of a user's events, newest first, and the cursor of the next page.
pub async fn page(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    limit: u64,
    cursor: Option<&str>,
) -> Result<(Vec<audit_event::Model>, Option<String>), ApiError> {
    let mut query = audit_event::Entity::find()
        .filter(audit_event::Column::UserId.eq(user_id))
        .filter(audit_event::Column::Event.is_not_in(NOT_SHOWN.iter().copied()));
    if let Some(cursor) = cursor {
        let before =
            decode_cursor(cursor).ok_or_else(|| ApiError::field("cursor", "is not a cursor from a previous page"))?;
        query = query.filter(audit_event::Column::Id.lt(before));
    }
    // One more than asked tells whether there is a next page.
    let mut events = query.order_by_desc(audit_event::Column::Id).limit(limit + 1).all(db).await?;
    let next = if events.len() as u64 > limit {
        events.truncate(limit as usize);
        events.last().map(|e| encode_cursor(e.id))
    } else {
        None
    };
    Ok((events, next))
}

/// Cursors are opaque to clients: the id of the last event shown, encoded.
fn encode_cursor(id: i64) -> String {
    URL_SAFE_NO_PAD.encode(format!("ev:{id}"))
}

fn decode_cursor(cursor: &str) -> Option<i64> {
    let raw = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    std::str::from_utf8(&raw).ok()?.strip_prefix("ev:")?.parse().ok().filter(|id| *id > 0)
}

/// Deletes events older than `retention`; returns how many.
pub async fn purge_older_than(
    db: &impl ConnectionTrait,
    retention: std::time::Duration,
) -> Result<u64, sea_orm::DbErr> {
    let age = chrono::Duration::from_std(retention).unwrap_or(chrono::Duration::MAX);
    let cutoff = now().checked_sub_signed(age).unwrap_or(chrono::DateTime::<chrono::Utc>::MIN_UTC);
    let result = audit_event::Entity::delete_many().filter(audit_event::Column::OccurredAt.lt(cutoff)).exec(db).await?;
    Ok(result.rows_affected)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        assert_eq!(decode_cursor(&encode_cursor(42)), Some(42));
        for bad in ["", "42", "ev:42", "!!!", &URL_SAFE_NO_PAD.encode("ev:-1"), &URL_SAFE_NO_PAD.encode("ev:x")] {
            assert_eq!(decode_cursor(bad), None, "{bad}");
        }
    }
}
