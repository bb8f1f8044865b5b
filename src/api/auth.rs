//! `/api/v1/auth`: register, login, refresh, logout, logout-all, me.

use poem::{Request, http::header::SET_COOKIE, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    payload::{Json, Response},
};
use sea_orm::{ActiveModelTrait, ColumnTrait, EntityTrait, QueryFilter, Set, SqlErr};
use uuid::Uuid;

use crate::{
    api::{
        ApiTags,
        json_body::JsonBody,
        schemas::{LoginRequest, RegisterRequest, Session, User},
    },
    auth::{
        CurrentUser, access_token,
        client_ip::client_ip,
        cookies::{self, CookieKind},
        ratelimit::Limit,
        sessions::{self, ClientInfo, IssuedTokens},
        tokens::TokenType,
    },
    clock::now,
    domain::{Email, NewPassword, Role, parse_full_name},
    entity::user,
    error::{ApiError, FieldError},
    state::AppState,
};

pub struct AuthApi;

#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in: `Set-Cookie` carries `access_token` and `refresh_token`.
    #[oai(status = 201)]
    Created(Json<Session>),
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// Signed in: `Set-Cookie` carries the session cookies (on a raced refresh, only `access_token`).
    #[oai(status = 200)]
    Ok(Json<Session>),
}

#[derive(ApiResponse)]
pub enum SignedOut {
    /// Signed out: `Set-Cookie` clears both cookies.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Profile {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account and sign in.
    ///
    /// 409 `email_taken` when the email is registered already; 422 lists every
    /// invalid field (email format, password policy, name length).
    #[oai(path = "/register", method = "post")]
    async fn register(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: JsonBody<RegisterRequest>,
    ) -> Result<Response<Registered>, ApiError> {
        let ip = client_ip(req, &state.config.trusted_proxies);
        state.limiters.check(Limit::Register, ip)?;
        let body = body.0;
        let mut errors = Vec::new();
        let email = Email::parse(&body.email).map_err(|e| errors.push(e)).ok();
        let password = NewPassword::parse("password", &body.password).map_err(|e| errors.push(e)).ok();
        let full_name = parse_full_name(body.full_name.as_deref()).map_err(|e| errors.push(e)).ok();
        let (Some(email), Some(password), Some(full_name)) = (email, password, full_name) else {
            return Err(ApiError::Validation(errors));
        };

        let password_hash = state.passwords.hash(password.expose()).await?;
        let now = now();
        let user = user::ActiveModel {
            id: Set(Uuid::new_v4()),
            email: Set(email.into_inner()),
            password_hash: Set(password_hash),
            full_name: Set(full_name),
            role: Set(Role::User),
            is_active: Set(true),
            created_at: Set(now),
            updated_at: Set(now),
            last_login_at: Set(Some(now)),
        }
        .insert(&state.db)
        .await
        .map_err(|e| match e.sql_err() {
            // The unique index decides races between concurrent registrations.
            Some(SqlErr::UniqueConstraintViolation(_)) => ApiError::EmailTaken,
            _ => e.into(),
        })?;
        tracing::info!(user_id = %user.id, "user registered");

        let issued = sessions::start(&state, user.id, client_info(req, &state)).await?;
        Ok(with_session_cookies(Registered::Created(Json(session_body(user, &issued))), &issued, &state))
    }

    /// Sign in with email and password.
    ///
    /// An unknown email and a wrong password get the same 401
    /// `invalid_credentials`, in the same time. 403 `account_disabled` once the
    /// password is right for a deactivated account. 429 `rate_limited` after
    /// `LOGIN_RATE_PER_MINUTE` attempts a minute from one address.
    #[oai(path = "/login", method = "post")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        body: JsonBody<LoginRequest>,
    ) -> Result<Response<SignedIn>, ApiError> {
        let ip = client_ip(req, &state.config.trusted_proxies);
        state.limiters.check(Limit::Login, ip)?;
        let body = body.0;
        let mut errors = Vec::new();
        if body.email.trim().is_empty() {
            errors.push(FieldError::new("email", "must not be empty"));
        }
        if body.password.is_empty() {
            errors.push(FieldError::new("password", "must not be empty"));
        }
        if !errors.is_empty() {
            return Err(ApiError::Validation(errors));
        }
        // A malformed email cannot belong to an account: treat it like an unknown one.
        let email = Email::parse(&body.email).ok();
        let found = match &email {
            Some(email) => user::Entity::find().filter(user::Column::Email.eq(email.as_str())).one(&state.db).await?,
            None => None,
        };
        // Always pay for one bcrypt verify, or timing reveals which emails exist.
        let verified = state.passwords.verify(&body.password, found.as_ref().map(|u| u.password_hash.as_str())).await?;
        let user = found.filter(|_| verified).ok_or_else(|| {
            tracing::info!("login failed");
            ApiError::InvalidCredentials
        })?;
        if !user.is_active {
            return Err(ApiError::AccountDisabled);
        }

        let mut active: user::ActiveModel = user.into();
        active.last_login_at = Set(Some(now()));
        let user = active.update(&state.db).await?;
        let issued = sessions::start(&state, user.id, client_info(req, &state)).await?;
        tracing::info!(user_id = %user.id, session_id = %issued.session_id, "login succeeded");
        Ok(with_session_cookies(SignedIn::Ok(Json(session_body(user, &issued))), &issued, &state))
    }

    /// Rotate the refresh token and get a new access token.
    ///
    /// Takes the `refresh_token` cookie (sent only to `/api/v1/auth`). Each
    /// refresh token works once. A second use within `REFRESH_REUSE_GRACE` of
    /// its rotation (two tabs racing) gets a new `access_token` cookie only;
    /// later, it is 401 `refresh_token_reused` and the whole session is revoked.
    #[oai(path = "/refresh", method = "post")]
    async fn refresh(&self, state: Data<&AppState>, req: &Request) -> Result<Response<SignedIn>, ApiError> {
        let ip = client_ip(req, &state.config.trusted_proxies);
        state.limiters.check(Limit::Refresh, ip)?;
        let presented = cookies::read(req, cookies::REFRESH_COOKIE);
        let (issued, user) = sessions::rotate(&state, presented.as_deref()).await?;
        Ok(with_session_cookies(SignedIn::Ok(Json(session_body(user, &issued))), &issued, &state))
    }

    /// Sign out of this session.
    ///
    /// Revokes the session named by the refresh cookie (or else the access
    /// token) and clears both cookies. Never fails for a missing or bad token.
    #[oai(path = "/logout", method = "post")]
    async fn logout(&self, state: Data<&AppState>, req: &Request) -> Result<Response<SignedOut>, ApiError> {
        if let Some(token) = cookies::read(req, cookies::REFRESH_COOKIE) {
            sessions::revoke_by_token(&state, &token, TokenType::Refresh).await?;
        }
        if let Some(token) = access_token(req) {
            sessions::revoke_by_token(&state, &token, TokenType::Access).await?;
        }
        Ok(cleared_cookies(SignedOut::NoContent, &state))
    }

    /// Sign out everywhere: revokes every session of the signed-in user.
    #[oai(path = "/logout-all", method = "post")]
    async fn logout_all(&self, state: Data<&AppState>, current: CurrentUser) -> Result<Response<SignedOut>, ApiError> {
        let revoked = sessions::revoke_all(&state.db, current.user.id, None).await?;
        tracing::info!(user_id = %current.user.id, revoked, "signed out everywhere");
        Ok(cleared_cookies(SignedOut::NoContent, &state))
    }

    /// The signed-in user's profile.
    #[oai(path = "/me", method = "get")]
    async fn me(&self, current: CurrentUser) -> Profile {
        Profile::Ok(Json(current.user.into()))
    }
}

pub fn client_info(req: &Request, state: &AppState) -> ClientInfo {
    ClientInfo {
        ip: client_ip(req, &state.config.trusted_proxies).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(poem::http::header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
    }
}

fn session_body(user: user::Model, issued: &IssuedTokens) -> Session {
    Session {
        user: user.into(),
        access_expires_at: issued.access_expires_at,
        refresh_expires_at: issued.refresh_expires_at,
    }
}

fn max_age(until: chrono::DateTime<chrono::Utc>) -> i64 {
    (until - now()).num_seconds()
}

fn with_session_cookies<T>(body: T, issued: &IssuedTokens, state: &AppState) -> Response<T> {
    let cfg = &state.config;
    let mut response = Response::new(body).header(
        SET_COOKIE,
        cookies::set(CookieKind::Access, &issued.access_token, max_age(issued.access_expires_at), cfg),
    );
    if let Some(refresh) = &issued.refresh_token {
        response = response.header(
            SET_COOKIE,
            cookies::set(CookieKind::Refresh, refresh, max_age(issued.refresh_expires_at), cfg),
        );
    }
    response
}

fn cleared_cookies<T>(body: T, state: &AppState) -> Response<T> {
    Response::new(body)
        .header(SET_COOKIE, cookies::cleared(CookieKind::Access, &state.config))
        .header(SET_COOKIE, cookies::cleared(CookieKind::Refresh, &state.config))
}
