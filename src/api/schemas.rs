//! Wire types: what SPAs send and receive. Doc comments here are the public docs.

use chrono::{DateTime, Utc};
use poem_openapi::Object;
use serde::Deserialize;
use uuid::Uuid;

use crate::{domain::Role, entity};

/// A user account.
#[derive(Debug, Clone, Object)]
pub struct User {
    pub id: Uuid,
    /// Lowercased and trimmed, as it was registered.
    pub email: String,
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub last_login_at: Option<DateTime<Utc>>,
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

/// Register a new account.
#[derive(Debug, Object, Deserialize)]
#[serde(deny_unknown_fields)]
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
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
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
