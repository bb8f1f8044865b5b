//! Register, sign in, sessions and the password: the users and sessions SPAs see.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Deserialize;
use uuid::Uuid;

use super::rules::EmailInput;
use crate::{domain::Role, entity};

/// A user account.
#[derive(Debug, Clone, Object)]
pub struct User {
    pub id: Uuid,
    /// Lowercased and trimmed, as it was registered.
    pub email: String,
    #[oai(nullable)]
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Whether the owner of the address followed a verification link (or a
    /// reset or email-change link, which prove the same).
    pub email_verified: bool,
    /// Whether signing in takes a second factor (TOTP) after the password.
    pub mfa_enabled: bool,
}

impl From<entity::user::Model> for User {
    fn from(m: entity::user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            full_name: m.full_name,
            role: m.role,
            is_active: m.is_active,
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_login_at: m.last_login_at,
            email_verified: m.email_verified,
            mfa_enabled: m.mfa_enabled,
        }
    }
}

/// The signed-in user and when the session's tokens expire. The tokens
/// themselves are only in httpOnly cookies, never in a body.
#[derive(Debug, Clone, Object)]
pub struct Session {
    pub user: User,
    /// When the `access_token` cookie stops working; refresh before or after it.
    pub access_expires_at: DateTime<Utc>,
    /// When the `refresh_token` cookie expires if the session stays idle.
    pub refresh_expires_at: DateTime<Utc>,
}

/// A registration waiting for its address to be verified
/// (`REQUIRE_VERIFIED_EMAIL=true`): no session yet.
#[derive(Debug, Object)]
pub struct PendingVerification {
    pub user: User,
}

/// Register a new account.
#[derive(Debug, Object, Deserialize)]
pub struct RegisterRequest {
    /// An email address like `name@example.com`, matched case-insensitively
    /// and stored trimmed and lowercased: at most 254 characters, at most 64
    /// before the `@`, a domain with a dot (labels of letters and digits, at
    /// most 63 characters each) or a bracketed literal. ASCII only in this
    /// spec.
    pub email: EmailInput,
    /// 8 to 128 characters with a digit (0-9), a lowercase letter and an
    /// uppercase letter, and not easy to guess. The letters may be of any
    /// script (Unicode `Lowercase` and `Uppercase`), which no regular expression
    /// that every client reads alike can list; a guessable password (a common
    /// one, a keyboard walk, one built from the email or name) is refused with
    /// a 422 too, which no schema can tell in advance.
    #[oai(validator(min_length = 8, max_length = 128, pattern = r"[0-9]"))]
    pub password: String,
    /// Optional display name: trimmed, at most 200 characters, no control
    /// characters; blank or `null` means none.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    pub full_name: Option<String>,
}

/// Sign in.
#[derive(Debug, Object, Deserialize)]
pub struct LoginRequest {
    /// Not blank. Anything else that is not a registered address is a 401
    /// `invalid_credentials`, like a wrong password.
    #[oai(validator(
        min_length = 1,
        pattern = r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    ))]
    pub email: String,
    /// Not empty; no password is longer than 128 characters, so a longer one is
    /// a 401 like any wrong password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// One of the signed-in user's sessions (a login and the refreshes after it).
#[derive(Debug, Clone, Object)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When it ends if it stays idle (never past the session's maximum age).
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl SessionInfo {
    pub fn new(m: entity::session::Model, current_id: Uuid) -> Self {
        Self {
            current: m.id == current_id,
            id: m.id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at.min(m.max_expires_at),
            user_agent: m.user_agent,
            ip: m.ip,
        }
    }
}

/// Change the signed-in user's password.
#[derive(Debug, Object, Deserialize)]
pub struct ChangePasswordRequest {
    /// Not empty; a wrong one is a 401 (no password is longer than 128 characters).
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// Same policy as at registration, and different from the current password.
    #[oai(validator(min_length = 8, max_length = 128, pattern = r"[0-9]"))]
    pub new_password: String,
}
