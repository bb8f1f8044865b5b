//! `/api/v1/auth`: register, login, refresh, logout, logout-all, me, the
//! session list, and password change.

use poem::{Request, http::header::SET_COOKIE, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    param::{Path, Query},
    payload::{Json, Response},
};
use sea_orm::TransactionTrait;
use uuid::Uuid;

use crate::{
    accounts::{self, NewAccount},
    api::{
        ApiTags, email,
        events::{self, EventPage},
        json_body::JsonBody,
        schemas::{
            ChangePasswordRequest, LoginRequest, MfaChallenge, PendingVerification, RegisterRequest, Session,
            SessionInfo, User,
        },
    },
    audit::{Entry, Event},
    auth::{
        CurrentUser, access_token,
        cookies::{self, CookieKind},
        devices,
        email_tokens::{self, Purpose},
        mfa,
        ratelimit::{Budget, Limit},
        sessions::{self, IssuedTokens},
        tokens::TokenType,
    },
    client::ClientInfo,
    clock::now,
    domain::{Email, NewPassword, Role, parse_full_name, personal_words},
    entity::user,
    error::{ApiError, FieldError},
    mail::{self, templates},
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
        state.limiters.check(Limit::Register, client.ip).await?;
        let body = body.0;
        let mut errors = Vec::new();
        let email = Email::parse(&body.email).map_err(|e| errors.push(e)).ok();
        let full_name = parse_full_name(body.full_name.as_deref()).map_err(|e| errors.push(e)).ok();
        let words = personal_words(&body.email, body.full_name.as_deref());
        let personal: Vec<&str> = words.iter().map(String::as_str).collect();
        let password = NewPassword::parse("password", &body.password, &personal).map_err(|e| errors.push(e)).ok();
        let (Some(email), Some(password), Some(full_name)) = (email, password, full_name) else {
            return Err(ApiError::Validation(errors));
        };

        let password_hash = state.passwords.hash(password.expose()).await?;
        let signed_in = !state.config.require_verified_email;
        let txn = state.writer.begin().await?;
        let new = NewAccount {
            email: &email,
            password_hash,
            full_name,
            role: Role::User,
            is_active: true,
            email_verified: false,
            signed_in,
        };
        let user = accounts::create(&txn, new).await?;
        Entry::new(Event::Register, user.id, &client).record(&txn).await?;
        email::queue_verification(&state, &txn, &user, &client).await?;
        if !signed_in {
            txn.commit().await?;
            state.outbox.wake();
            tracing::info!(user_id = %user.id, "user registered; waiting for verification");
            return Ok(Response::new(Registered::Pending(Json(PendingVerification { user: user.into() }))));
        }
        let issued = state.sessions.start(&txn, user.id, &client).await?;
        txn.commit().await?;
        state.outbox.wake();
        tracing::info!(user_id = %user.id, "user registered");
        Ok(with_session_cookies(Registered::Created(Json(session_body(user, &issued))), &issued, &state))
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
        let result: Result<Response<LoggedIn>, ApiError> = async {
            state.limiters.check(Limit::Login, client.ip).await?;
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
                Some(email) => accounts::find_by_email(&state.db, email).await?,
                None => None,
            };
            let claimed = cookies::read(req, cookies::DEVICE_COOKIE)
                .and_then(|token| state.tokens.verify(&token, TokenType::Device).ok())
                .filter(|claims| found.as_ref().is_some_and(|u| u.id == claims.sub));
            // A voided cookie (password changed, logout-all) counts as none.
            let device = match (claimed, &found) {
                (Some(claims), Some(user)) if devices::is_live(&state.db, user.id, claims.jti).await? => {
                    Some(claims.jti)
                }
                _ => None,
            };
            let budget = match (device, &email) {
                (Some(device), _) => Some(Budget::Device(device)),
                (None, Some(email)) => Some(Budget::Account(email.as_str())),
                (None, None) => None,
            };
            // Spent before bcrypt, atomically: concurrent guesses past the limit
            // get 429 without a password check; a right password refunds it below.
            if let Some(budget) = &budget {
                state.limiters.spend(budget).await?;
            }
            let verified = accounts::check_password(&state.passwords, found.as_ref(), &body.password).await?;
            let user = match found {
                Some(user) if verified => user,
                other => {
                    Entry::new(Event::LoginFailed, other.map(|u| u.id), &client).record(&state.writer).await?;
                    return Err(ApiError::InvalidCredentials);
                }
            };
            if let Some(budget) = &budget {
                state.limiters.refund(budget).await;
            }
            if !user.is_active {
                return Err(ApiError::AccountDisabled);
            }
            if state.config.require_verified_email && !user.email_verified {
                return Err(ApiError::EmailNotVerified);
            }

            // After a BCRYPT_COST change, old hashes would make logins on old
            // accounts measurably faster or slower: upgrade them as they log in.
            let new_hash = if state.passwords.needs_rehash(&user.password_hash) {
                Some(state.passwords.hash(&body.password).await?)
            } else {
                None
            };
            if user.mfa_enabled {
                if let Some(hash) = new_hash {
                    accounts::set_password(&state.writer, user.id, hash).await?;
                }
                let ticket = mfa::open_ticket(&state.writer, user.id, device).await?;
                let token = state.tokens.sign_with_jti(
                    TokenType::MfaTicket,
                    user.id,
                    ticket.id,
                    ticket.id,
                    now(),
                    ticket.expires_at,
                )?;
                let cookie =
                    cookies::set(CookieKind::MfaTicket, &token, mfa::TICKET_TTL.as_secs() as i64, &state.config);
                let methods = vec!["totp".to_owned(), "recovery_code".to_owned()];
                let challenge = LoggedIn::MfaRequired(Json(MfaChallenge { mfa_required: true, methods }));
                crate::prometheus::login("mfa_required");
                return Ok(Response::new(challenge).header(SET_COOKIE, cookie));
            }
            let (issued, user, device_cookie) = sign_in(&state, user, &client, device, new_hash).await?;
            crate::prometheus::login("success");
            Ok(with_session_cookies(LoggedIn::Ok(Json(session_body(user, &issued))), &issued, &state)
                .header(SET_COOKIE, device_cookie))
        }
        .await;
        // Successes are counted where they happen (a session, or a second factor to ask for).
        if let Err(e) = &result {
            crate::prometheus::login(match e {
                ApiError::InvalidCredentials => "bad_credentials",
                ApiError::AccountDisabled => "disabled",
                ApiError::RateLimited { .. } => "rate_limited",
                ApiError::Validation(_) | ApiError::BadRequest(_) => "invalid_request",
                _ => "error",
            });
        }
        result
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
        let txn = state.writer.begin().await?;
        let revoked = sessions::revoke_all(&txn, current.user.id, None).await?;
        devices::forget_all(&txn, current.user.id).await?;
        Entry::new(Event::LogoutAll, current.user.id, &client)
            .detail(format!("{revoked} sessions"))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(current.user.id);
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
        let txn = state.writer.begin().await?;
        if !sessions::revoke_own(&txn, current.user.id, id.0).await? {
            return Err(ApiError::NotFound);
        }
        Entry::new(Event::SessionRevoked, current.user.id, &client)
            .detail(format!("session {}", id.0))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(current.user.id);
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
        if current.user.mfa_enabled {
            current.require_recent(state.config.reauth_max_age)?;
        }
        state.limiters.check(Limit::Login, client.ip).await?;
        let body = body.0;
        let words = personal_words(&current.user.email, current.user.full_name.as_deref());
        let personal: Vec<&str> = words.iter().map(String::as_str).collect();
        let new_password = NewPassword::parse("new_password", &body.new_password, &personal)
            .map_err(|e| ApiError::Validation(vec![e]))?;
        if body.current_password.is_empty() {
            return Err(ApiError::field("current_password", "must not be empty"));
        }
        // Someone holding a stolen session must not get unlimited guesses
        // either; the budget is the session's, so nobody else can spend it.
        let budget = Budget::Session(current.session_id);
        state.limiters.spend(&budget).await?;
        if !accounts::check_password(&state.passwords, Some(&current.user), &body.current_password).await? {
            return Err(ApiError::InvalidCredentials);
        }
        state.limiters.refund(&budget).await;
        if body.new_password == body.current_password {
            return Err(ApiError::field("new_password", "must differ from the current password"));
        }
        let hash = state.passwords.hash(new_password.expose()).await?;
        let user_id = current.user.id;
        let txn = state.writer.begin().await?;
        accounts::set_password(&txn, user_id, hash).await?;
        // A reset link mailed before the change must not undo it, nor an email
        // change or a half-done login started with the old password.
        email_tokens::void(&txn, user_id, Purpose::ResetPassword).await?;
        email_tokens::void(&txn, user_id, Purpose::ChangeEmail).await?;
        mfa::close_all_tickets(&txn, user_id).await?;
        let revoked = sessions::revoke_all(&txn, user_id, Some(current.session_id)).await?;
        // Old device cookies, wherever they were collected, are no budgets
        // any more; this browser, which just proved the password, gets a new one.
        devices::forget_all(&txn, user_id).await?;
        let device = devices::remember(&txn, user_id, None).await?;
        let ctx = templates::Context::new(&state.config, client.ip);
        mail::notify(&txn, &state.limiters, templates::password_changed(&current.user.email, &ctx, true)).await?;
        Entry::new(Event::PasswordChanged, user_id, &client)
            .detail(format!("{revoked} other sessions revoked"))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(user_id);
        state.outbox.wake();
        let device_cookie = device_cookie(&state, user_id, device, now())?;
        Ok(Response::new(NoContent::NoContent).header(SET_COOKIE, device_cookie))
    }
}

pub fn session_body(user: user::Model, issued: &IssuedTokens) -> Session {
    Session {
        user: user.into(),
        access_expires_at: issued.access_expires_at,
        refresh_expires_at: issued.refresh_expires_at,
    }
}

/// Seconds from issue to expiry: exactly the configured lifetime (unless the
/// session's absolute limit cuts it), never one less for a clock read later.
fn max_age(issued: &IssuedTokens, until: chrono::DateTime<chrono::Utc>) -> i64 {
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

/// Finishes a login whose credentials (and second factor) were checked: the
/// login is recorded, a session starts, and the browser gets a device cookie
/// (the same device id again when it had one: its budget stays its own).
pub async fn sign_in(
    state: &AppState,
    user: user::Model,
    client: &ClientInfo,
    device: Option<Uuid>,
    new_hash: Option<String>,
) -> Result<(IssuedTokens, user::Model, String), ApiError> {
    let txn = state.writer.begin().await?;
    let user = accounts::record_login(&txn, user, new_hash).await?;
    let issued = state.sessions.start(&txn, user.id, client).await?;
    let device = devices::remember(&txn, user.id, device).await?;
    Entry::new(Event::LoginSucceeded, user.id, client).record(&txn).await?;
    txn.commit().await?;
    state.sessions.changed(user.id);
    tracing::info!(user_id = %user.id, session_id = %issued.session_id, "login succeeded");
    let device_cookie = device_cookie(state, user.id, device, issued.issued_at)?;
    Ok((issued, user, device_cookie))
}

/// A `device_token` cookie naming `device`, a live device of `user_id`.
fn device_cookie(
    state: &AppState,
    user_id: Uuid,
    device: Uuid,
    issued_at: chrono::DateTime<chrono::Utc>,
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
