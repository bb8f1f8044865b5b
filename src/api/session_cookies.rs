//! How a session reaches the browser: the `Session` body and the cookies
//! that carry its tokens (`access_token`, `refresh_token`, `device_token`),
//! set and cleared the same way by every operation that signs in or out.

use chrono::{DateTime, Utc};
use poem::http::header::SET_COOKIE;
use poem_openapi::payload::Response;
use uuid::Uuid;

use crate::{
    api::schemas::Session,
    auth::{
        cookies::{self, CookieKind},
        sessions::IssuedTokens,
        tokens::TokenType,
    },
    entity::user,
    error::ApiError,
    flows::sign_in::SignedIn,
    state::AppState,
};

pub fn session_body(user: user::Model, issued: &IssuedTokens) -> Session {
    Session {
        user: user.into(),
        access_expires_at: issued.access_expires_at,
        refresh_expires_at: issued.refresh_expires_at,
    }
}

/// Seconds from issue to expiry: exactly the configured lifetime (unless the
/// session's absolute limit cuts it), never one less for a clock read later.
fn max_age(issued: &IssuedTokens, until: DateTime<Utc>) -> i64 {
    (until - issued.issued_at).num_seconds()
}

pub fn with_session_cookies<T>(body: T, issued: &IssuedTokens, state: &AppState) -> Response<T> {
    let cfg = &state.config;
    let mut response = Response::new(body).header(
        SET_COOKIE,
        cookies::set(CookieKind::Access, &issued.access_token, max_age(issued, issued.access_expires_at), cfg),
    );
    if let Some(refresh) = &issued.refresh_token {
        response = response.header(
            SET_COOKIE,
            cookies::set(CookieKind::Refresh, refresh, max_age(issued, issued.refresh_expires_at), cfg),
        );
    }
    response
}

/// A finished sign-in as the browser gets it: `body(session)` with the
/// session cookies and the device cookie.
pub fn signed_in<T>(
    state: &AppState,
    signed: SignedIn,
    body: impl FnOnce(Session) -> T,
) -> Result<Response<T>, ApiError> {
    let SignedIn { issued, user, device } = signed;
    let device_cookie = device_cookie(state, user.id, device, issued.issued_at)?;
    let response = with_session_cookies(body(session_body(user, &issued)), &issued, state);
    Ok(response.header(SET_COOKIE, device_cookie))
}

/// A `device_token` cookie naming `device`, a live device of `user_id`.
pub fn device_cookie(
    state: &AppState,
    user_id: Uuid,
    device: Uuid,
    issued_at: DateTime<Utc>,
) -> Result<String, ApiError> {
    let ttl = state.config.device_cookie_ttl;
    let expires_at = issued_at + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::MAX);
    let token = state.tokens.sign_with_jti(TokenType::Device, user_id, device, device, issued_at, expires_at)?;
    Ok(cookies::set(CookieKind::Device, &token, (expires_at - issued_at).num_seconds(), &state.config))
}

pub fn cleared_cookies<T>(body: T, state: &AppState) -> Response<T> {
    Response::new(body)
        .header(SET_COOKIE, cookies::cleared(CookieKind::Access, &state.config))
        .header(SET_COOKIE, cookies::cleared(CookieKind::Refresh, &state.config))
}
