//! Wire types: what SPAs send and receive. Doc comments here are the public docs.
//! Request bodies ignore fields they do not know (as the spec allows), so a
//! field like `role` in a registration simply has no effect.

use chrono::{DateTime, Utc};
use poem_openapi::{Object, types::MaybeUndefined};
use serde::Deserialize;
use uuid::Uuid;

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

/// The same answer whether or not anything was sent, so it tells nobody
/// which addresses have accounts.
#[derive(Debug, Object)]
pub struct MailAccepted {
    /// A sentence to show the person.
    pub message: String,
}

/// Ask for a password-reset link.
#[derive(Debug, Object, Deserialize)]
pub struct ForgotPasswordRequest {
    #[oai(validator(max_length = 254))]
    pub email: String,
}

/// Set a new password with the token from a reset link.
#[derive(Debug, Object, Deserialize)]
pub struct ResetPasswordRequest {
    /// The `token` from the link's fragment (`#token=…`).
    #[oai(validator(max_length = 128))]
    pub token: String,
    /// The same policy as at registration.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// A token from a mailed link (`#token=…`).
#[derive(Debug, Object, Deserialize)]
pub struct TokenRequest {
    #[oai(validator(max_length = 128))]
    pub token: String,
}

/// Move the account to another address (confirmed by a link sent there).
#[derive(Debug, Object, Deserialize)]
pub struct ChangeEmailRequest {
    #[oai(validator(max_length = 254))]
    pub new_email: String,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
}

/// Register a new account.
#[derive(Debug, Object, Deserialize)]
pub struct RegisterRequest {
    /// Matched case-insensitively and stored lowercased.
    #[oai(validator(max_length = 254))]
    pub email: String,
    /// 8 to 128 characters with a lowercase letter, an uppercase letter and a digit.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub password: String,
    /// Optional display name, at most 200 characters.
    #[oai(validator(max_length = 200))]
    pub full_name: Option<String>,
}

/// Sign in.
#[derive(Debug, Object, Deserialize)]
pub struct LoginRequest {
    #[oai(validator(min_length = 1, max_length = 254))]
    pub email: String,
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
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// Same policy as at registration, and different from the current password.
    #[oai(validator(min_length = 8, max_length = 128))]
    pub new_password: String,
}

/// Liveness.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Readiness: the process and its database.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ok` when ready.
    pub status: String,
    /// `ok` when the database answered.
    pub database: String,
}

/// A task: the example resource owned by one user.
#[derive(Debug, Clone, Object)]
pub struct Task {
    pub id: i64,
    pub user_id: Uuid,
    pub title: String,
    #[oai(nullable)]
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<entity::task::Model> for Task {
    fn from(m: entity::task::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            title: m.title,
            description: m.description,
            completed: m.completed,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Create a task.
#[derive(Debug, Object, Deserialize)]
pub struct NewTask {
    /// 1 to 200 characters after trimming.
    #[oai(validator(max_length = 200))]
    pub title: String,
    /// At most 1000 characters.
    #[oai(validator(max_length = 1000))]
    pub description: Option<String>,
}

/// Change a task. Absent fields stay as they are; `description: null` clears it.
#[derive(Debug, Object, Deserialize)]
pub struct TaskUpdate {
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    pub title: MaybeUndefined<String>,
    #[oai(validator(max_length = 1000))]
    #[serde(default)]
    pub description: MaybeUndefined<String>,
    #[serde(default)]
    pub completed: MaybeUndefined<bool>,
}

/// Mark a task done or not done.
#[derive(Debug, Object, Deserialize)]
pub struct TaskCompletion {
    pub completed: bool,
}

/// Change a user's profile (admin). Absent fields stay as they are.
#[derive(Debug, Object, Deserialize)]
pub struct UserUpdate {
    /// `null` or blank clears the name.
    #[oai(validator(max_length = 200))]
    #[serde(default)]
    pub full_name: MaybeUndefined<String>,
    /// `false` deactivates the account and revokes all its sessions.
    #[serde(default)]
    pub is_active: MaybeUndefined<bool>,
}

/// Set a user's role (admin).
#[derive(Debug, Object, Deserialize)]
pub struct RoleChange {
    pub role: Role,
}
