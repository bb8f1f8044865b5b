//! `/api/v1/auth`: register, login, refresh, logout, logout-all, me, the
//! session list, and password change.

use poem::{Request, http::header::SET_COOKIE, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::{Json, Response},
};
use uuid::Uuid;

use crate::{
    api::{
        ApiTags,
        events::{self, EventPage},
        json_body::JsonBody,
        schemas::{
            ChangePasswordRequest, LoginRequest, MfaChallenge, PendingVerification, RegisterRequest, Session,
            SessionInfo, User,
        },
        session_cookies::{cleared_cookies, device_cookie, session_body, signed_in, with_session_cookies},
    },
    auth::{
        CurrentUser, access_token,
        cookies::{self, CookieKind},
        mfa,
        ratelimit::Limit,
        tokens::TokenType,
    },
    client::ClientInfo,
    clock::now,
    error::ApiError,
    flows::{
        credentials::{self, PasswordChange},
        registration::{self, Registration},
        sessions,
        sign_in::{self, PasswordLogin, PasswordOutcome},
    },
    state::AppState,
};

pub struct AuthApi;

#[derive(ApiResponse)]
pub enum Registered {
    /// The account was created and signed in: `Set-Cookie` carries `access_token` and `refresh_token`.
    #[oai(status = 201)]
    Created(Json<Session>),
    /// `REQUIRE_VERIFIED_EMAIL=true`: the account was created and must verify
    /// its address (a link was mailed) before it can sign in. No cookies.
    #[oai(status = 202)]
    Pending(Json<PendingVerification>),
}

#[derive(ApiResponse)]
pub enum LoggedIn {
    /// Signed in: `Set-Cookie` carries `access_token`, `refresh_token` and `device_token`.
    #[oai(status = 200)]
    Ok(Json<Session>),
    /// The password was right and the account has a second factor: no session
    /// yet. `Set-Cookie` carries `mfa_ticket`; post the code to `/mfa/verify`.
    #[oai(status = 202)]
    MfaRequired(Json<MfaChallenge>),
}

#[derive(ApiResponse)]
pub enum SignedIn {
    /// Signed in: `Set-Cookie` carries the session cookies (on a raced refresh, only `access_token`).
    #[oai(status = 200)]
    Ok(Json<Session>),
}

#[derive(ApiResponse)]
pub enum NoContent {
    /// Done. Sign-out operations also clear both cookies with `Set-Cookie`.
    #[oai(status = 204)]
    NoContent,
}

#[derive(ApiResponse)]
pub enum Profile {
    /// The signed-in user.
    #[oai(status = 200)]
    Ok(Json<User>),
}

#[derive(ApiResponse)]
pub enum SessionList {
    /// The signed-in user's live sessions, most recently used first.
    #[oai(status = 200)]
    Ok(Json<Vec<SessionInfo>>),
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl AuthApi {
    /// Create an account and sign in.
    ///
    /// A verification link is mailed to the address. With
    /// `REQUIRE_VERIFIED_EMAIL=true` the answer is 202 with the user and no
    /// cookies: the account signs in once the address is verified. 409
    /// `email_taken` when the email is registered already; 422 lists every
    /// invalid field (email format, password policy, name length).
    #[oai(path = "/register", method = "post", operation_id = "register")]
    async fn register(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        body: JsonBody<RegisterRequest>,
    ) -> Result<Response<Registered>, ApiError> {
        let body = body.0;
        let input = Registration { email: &body.email, password: &body.password, full_name: body.full_name.as_deref() };
        match registration::register(&state, &client, input).await? {
            registration::Registered::SignedIn(user, issued) => {
                Ok(with_session_cookies(Registered::Created(Json(session_body(user, &issued))), &issued, &state))
            }
            registration::Registered::PendingVerification(user) => {
                Ok(Response::new(Registered::Pending(Json(PendingVerification { user: user.into() }))))
            }
        }
    }

    /// Sign in with email and password.
    ///
    /// An unknown email and a wrong password get the same 401
    /// `invalid_credentials`, in the same time. 403 `account_disabled` once the
    /// password is right for a deactivated account. 429 `rate_limited` after
    /// `LOGIN_RATE_PER_MINUTE` attempts a minute from one address, or when the
    /// attempt's failure budget is spent: 10 failures on the account (then one
    /// more a minute) for browsers without a `device_token` cookie of the
    /// account, or 10 failures of that device (then locked for `LOGIN_LOCKOUT`).
    /// A successful login sets `device_token` (`Path=/api/v1/auth/login`).
    #[oai(path = "/login", method = "post", operation_id = "login")]
    async fn login(
        &self,
        state: Data<&AppState>,
        req: &Request,
        client: ClientInfo,
        body: JsonBody<LoginRequest>,
    ) -> Result<Response<LoggedIn>, ApiError> {
        let body = body.0;
        let device_cookie = cookies::read(req, cookies::DEVICE_COOKIE);
        let login = PasswordLogin { email: &body.email, password: &body.password, device_cookie };
        let outcome = sign_in::with_password(&state, &client, login).await;
        crate::prometheus::login(login_outcome(&outcome));
        match outcome? {
            PasswordOutcome::SignedIn(signed) => signed_in(&state, *signed, |s| LoggedIn::Ok(Json(s))),
            PasswordOutcome::SecondFactor(step) => {
                let max_age = mfa::TICKET_TTL.as_secs() as i64;
                let cookie = cookies::set(CookieKind::MfaTicket, &step.ticket, max_age, &state.config);
                let methods = vec!["totp".to_owned(), "recovery_code".to_owned()];
                let challenge = LoggedIn::MfaRequired(Json(MfaChallenge { mfa_required: true, methods }));
                Ok(Response::new(challenge).header(SET_COOKIE, cookie))
            }
        }
    }

    /// Rotate the refresh token and get a new access token.
    ///
    /// Takes the `refresh_token` cookie (sent only to `/api/v1/auth`). Each
    /// refresh token works once. A second use within `REFRESH_REUSE_GRACE` of
    /// its rotation (two tabs racing) gets a new `access_token` cookie only;
    /// later, it is 401 `refresh_token_reused` and the whole session is revoked.
    #[oai(path = "/refresh", method = "post", operation_id = "refresh")]
    async fn refresh(
        &self,
        state: Data<&AppState>,
        req: &Request,
        client: ClientInfo,
    ) -> Result<Response<SignedIn>, ApiError> {
        state.limiters.check(Limit::Refresh, client.ip).await?;
        let presented = cookies::read(req, cookies::REFRESH_COOKIE);
        let rotated = state.sessions.rotate(presented.as_deref(), &client).await;
        crate::prometheus::refresh(match &rotated {
            Ok((issued, _)) if issued.refresh_token.is_some() => "rotated",
            Ok(_) => "grace",
            Err(ApiError::RefreshTokenReused) => "reuse_detected",
            Err(ApiError::RefreshTokenExpired | ApiError::SessionExpired) => "expired",
            Err(ApiError::RefreshTokenInvalid | ApiError::SessionRevoked | ApiError::RefreshTokenMissing) => "invalid",
            Err(_) => "error",
        });
        let (issued, user) = rotated?;
        Ok(with_session_cookies(SignedIn::Ok(Json(session_body(user, &issued))), &issued, &state))
    }

    /// Sign out of this session.
    ///
    /// Revokes the session named by the refresh cookie (or else the access
    /// token) and clears both cookies. Never fails for a missing or bad token.
    #[oai(path = "/logout", method = "post", operation_id = "logout")]
    async fn logout(
        &self,
        state: Data<&AppState>,
        req: &Request,
        client: ClientInfo,
    ) -> Result<Response<NoContent>, ApiError> {
        if let Some(token) = cookies::read(req, cookies::REFRESH_COOKIE) {
            state.sessions.logout_by_token(&token, TokenType::Refresh, &client).await?;
        }
        if let Some(token) = access_token(req) {
            state.sessions.logout_by_token(&token, TokenType::Access, &client).await?;
        }
        Ok(cleared_cookies(NoContent::NoContent, &state))
    }

    /// Sign out everywhere: revokes every session of the signed-in user and
    /// voids every device cookie (each browser's own failed-login budget).
    #[oai(path = "/logout-all", method = "post", operation_id = "logoutAll")]
    async fn logout_all(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
    ) -> Result<Response<NoContent>, ApiError> {
        sessions::sign_out_everywhere(&state, &current, &client).await?;
        Ok(cleared_cookies(NoContent::NoContent, &state)
            .header(SET_COOKIE, cookies::cleared(CookieKind::Device, &state.config)))
    }

    /// The signed-in user's security events (sign-ins, failed passwords,
    /// password and email changes, second factor, admin actions), newest first.
    #[oai(path = "/events", method = "get", operation_id = "listMyEvents")]
    async fn events(
        &self,
        state: Data<&AppState>,
        current: CurrentUser,
        /// Page size, 1 to 200 (default 50).
        #[oai(validator(minimum(value = "1"), maximum(value = "200")))]
        limit: Query<Option<i64>>,
        /// `next_cursor` from the previous page; omit it for the newest events.
        #[oai(validator(max_length = 100))]
        cursor: Query<Option<String>>,
    ) -> Result<EventPage, ApiError> {
        events::page(&state, current.user.id, events::Reader::Owner, limit.0, cursor.0.as_deref()).await
    }

    /// The signed-in user's profile.
    #[oai(path = "/me", method = "get", operation_id = "getMe")]
    async fn me(&self, current: CurrentUser) -> Result<Profile, ApiError> {
        Ok(Profile::Ok(Json(current.user.into())))
    }

    /// The signed-in user's live sessions (devices), with the current one marked.
    #[oai(path = "/sessions", method = "get", operation_id = "listSessions")]
    async fn sessions(&self, state: Data<&AppState>, current: CurrentUser) -> Result<SessionList, ApiError> {
        let live = state.sessions.list_live(current.user.id).await?;
        let list = live.into_iter().map(|s| SessionInfo::new(s, current.session_id)).collect();
        Ok(SessionList::Ok(Json(list)))
    }

    /// Revoke one of the signed-in user's sessions (sign that device out).
    ///
    /// 404 for an unknown id, an already revoked session, or another user's
    /// session. Revoking the current session also clears its cookies.
    #[oai(path = "/sessions/:id", method = "delete", operation_id = "revokeSession")]
    async fn revoke_session(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        id: Path<Uuid>,
    ) -> Result<Response<NoContent>, ApiError> {
        sessions::revoke_own(&state, &current, &client, id.0).await?;
        if id.0 == current.session_id {
            Ok(cleared_cookies(NoContent::NoContent, &state))
        } else {
            Ok(Response::new(NoContent::NoContent))
        }
    }

    /// Change the password.
    ///
    /// Checks the current password (401 `invalid_credentials` when wrong,
    /// rate-limited like login), applies the password policy (422), then
    /// revokes every other session and voids every device cookie; this
    /// session stays signed in and its browser gets a new `device_token`.
    /// The account's address gets a notice.
    #[oai(path = "/password", method = "put", operation_id = "changePassword")]
    async fn change_password(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        body: JsonBody<ChangePasswordRequest>,
    ) -> Result<Response<NoContent>, ApiError> {
        let body = body.0;
        let change = PasswordChange { current_password: body.current_password, new_password: body.new_password };
        let device = credentials::change_password(&state, &current, &client, change).await?;
        let cookie = device_cookie(&state, current.user.id, device, now())?;
        Ok(Response::new(NoContent::NoContent).header(SET_COOKIE, cookie))
    }
}

/// The outcome label of `latchkey_logins_total`; a second factor to ask
/// for counts as `mfa_required`.
fn login_outcome(outcome: &Result<PasswordOutcome, ApiError>) -> &'static str {
    match outcome {
        Ok(PasswordOutcome::SignedIn(_)) => "success",
        Ok(PasswordOutcome::SecondFactor(_)) => "mfa_required",
        Err(ApiError::InvalidCredentials) => "bad_credentials",
        Err(ApiError::AccountDisabled) => "disabled",
        Err(ApiError::RateLimited { .. }) => "rate_limited",
        Err(ApiError::Validation(_) | ApiError::BadRequest(_)) => "invalid_request",
        Err(_) => "error",
    }
}
