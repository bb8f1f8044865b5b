//! Who is calling: [`CurrentUser`] (its extractor is in `api::extract`), and
//! the mechanisms behind it (passwords, tokens, cookies, sessions, rate
//! limits, devices, the second factor).

pub mod bcrypt_impl;
pub mod cookies;
pub mod crypto;
pub mod devices;
pub mod email_tokens;
pub mod hash_pool;
pub mod limiter_store;
pub mod mfa;
pub mod password;
pub mod ratelimit;
pub mod redis_limit;
pub mod session_bus;
pub mod session_cache;
pub mod sessions;
pub mod signing_keys;
pub mod tokens;

use poem::Request;
use uuid::Uuid;

use crate::{domain::Role, entity::user, error::ApiError};

pub const COOKIE_SCHEME: &str = "AccessCookie";
pub const BEARER_SCHEME: &str = "BearerAuth";

/// The signed-in user of a request. Taking it as a handler argument makes the
/// operation require an access token (cookie or `Authorization: Bearer`) and
/// documents both schemes in the spec.
pub struct CurrentUser {
    pub user: user::Model,
    pub session_id: Uuid,
    /// When the session last proved a credential (login, second factor, reauth).
    pub authenticated_at: chrono::DateTime<chrono::Utc>,
}

impl CurrentUser {
    /// 403 `forbidden` unless the caller's role is at least `min`.
    pub fn require_role(&self, min: Role) -> Result<(), ApiError> {
        crate::authz::require_role(self.user.role, min)
    }

    /// 403 `reauth_required` unless the session proved a credential within `max_age`.
    pub fn require_recent(&self, max_age: std::time::Duration) -> Result<(), ApiError> {
        let max_age = chrono::Duration::from_std(max_age).unwrap_or(chrono::Duration::MAX);
        if crate::clock::now() - self.authenticated_at <= max_age { Ok(()) } else { Err(ApiError::ReauthRequired) }
    }
}

/// The access token a request carries: an explicit `Authorization: Bearer`
/// header wins over the cookie.
pub fn access_token(req: &Request) -> Option<String> {
    bearer_token(req).or_else(|| cookies::read(req, cookies::ACCESS_COOKIE))
}

fn bearer_token(req: &Request) -> Option<String> {
    let value = req.headers().get(poem::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then(|| token.to_owned())
}
