//! The security audit trail. Each event is written on the same connection
//! (usually the same transaction) as the change it records, so the trail and
//! the data never disagree.

use sea_orm::{ActiveModelTrait, ConnectionTrait, NotSet, Set};
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
        }
    }
}

/// An event about to be recorded.
pub struct Entry<'a> {
    pub event: Event,
    pub user_id: Option<Uuid>,
    pub actor_id: Option<Uuid>,
    pub client: &'a ClientInfo,
    pub detail: Option<String>,
}

impl<'a> Entry<'a> {
    pub fn new(event: Event, user_id: impl Into<Option<Uuid>>, client: &'a ClientInfo) -> Self {
        Self { event, user_id: user_id.into(), actor_id: None, client, detail: None }
    }

    pub fn by(mut self, actor_id: Uuid) -> Self {
        self.actor_id = Some(actor_id);
        self
    }

    pub fn detail(mut self, detail: impl Into<String>) -> Self {
        self.detail = Some(detail.into());
        self
    }

    pub async fn record(self, db: &impl ConnectionTrait) -> Result<(), ApiError> {
        audit_event::ActiveModel {
            id: NotSet,
            occurred_at: Set(now()),
            event: Set(self.event.as_str().to_owned()),
            user_id: Set(self.user_id),
            actor_id: Set(self.actor_id),
            ip: Set(self.client.ip.map(|ip| ip.to_string())),
            user_agent: Set(self.client.user_agent.clone()),
            detail: Set(self.detail),
        }
        .insert(db)
        .await?;
        Ok(())
    }
}
