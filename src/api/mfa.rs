//! `/api/v1/auth`: the second factor (TOTP setup, enable, disable, recovery
//! codes), the second step of a login (`/mfa/verify`) and re-authentication
//! (`/reauth`). Changes to the second factor need a recent sign-in, and are
//! mailed to the user and audited.

use poem::{Request, http::header::SET_COOKIE, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    payload::{Json, Response},
};
use sea_orm::{EntityTrait, TransactionTrait};

use crate::{
    accounts,
    api::{
        ApiTags,
        auth::{session_body, sign_in, with_session_cookies},
        json_body::JsonBody,
        schemas::{CodeRequest, MfaVerifyRequest, ReauthRequest, RecoveryCodes, Session, TotpSetup},
    },
    audit::{Entry, Event},
    auth::{
        CurrentUser,
        cookies::{self, CookieKind},
        crypto::DataKey,
        mfa::{self, Proof},
        ratelimit::{Budget, Limit},
        sessions,
        tokens::TokenType,
    },
    client::ClientInfo,
    entity::user,
    error::ApiError,
    mail::{self, templates},
    state::AppState,
};

pub struct MfaApi;

#[derive(ApiResponse)]
pub enum SetupStarted {
    /// A new secret, shown once; nothing is on until `/mfa/totp/enable` gets a code from it.
    #[oai(status = 200)]
    Ok(Json<TotpSetup>),
}

#[derive(ApiResponse)]
pub enum CodesIssued {
    /// Ten recovery codes, shown once; any older ones stop working.
    #[oai(status = 200)]
    Ok(Json<RecoveryCodes>),
}

#[derive(ApiResponse)]
pub enum Verified {
    /// Signed in: `Set-Cookie` carries the session and device cookies and clears `mfa_ticket`.
    #[oai(status = 200)]
    Ok(Json<Session>),
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

fn key(state: &AppState) -> Result<&DataKey, ApiError> {
    state
        .data_key
        .as_deref()
        .ok_or(ApiError::Forbidden("Second factors are not available on this server (DATA_ENCRYPTION_KEY is unset)."))
}

/// A second factor is tied to the mailbox that can recover the account:
/// someone who registered another person's address must not lock its owner
/// out of the reset flow with a factor of their own.
fn require_verified_email(current: &CurrentUser) -> Result<(), ApiError> {
    if current.user.email_verified { Ok(()) } else { Err(ApiError::EmailNotVerified) }
}

fn context<'a>(state: &'a AppState, client: &ClientInfo) -> templates::Context<'a> {
    templates::Context::new(&state.config, client.ip)
}

/// Checks the caller's password (and code, with a second factor on) on the
/// session's failure budget: the shared proof behind `/reauth`.
async fn prove(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    password: &str,
    code: Option<&str>,
) -> Result<bool, ApiError> {
    let budget = Budget::Session(current.session_id);
    state.limiters.spend(&budget).await?;
    if !accounts::check_password(&state.passwords, Some(&current.user), password).await? {
        return Err(ApiError::InvalidCredentials);
    }
    let mut recovery = false;
    if current.user.mfa_enabled {
        let code = code.filter(|c| !c.trim().is_empty()).ok_or(ApiError::InvalidCode)?;
        let proof = Proof::from_input(code);
        if !mfa::accept(&state.db, &state.writer, key(state)?, current.user.id, &proof).await? {
            Entry::new(Event::MfaFailed, current.user.id, client).detail("reauth").record(&state.writer).await?;
            return Err(ApiError::InvalidCode);
        }
        recovery = matches!(proof, Proof::Recovery(_));
    }
    state.limiters.refund(&budget).await;
    Ok(recovery)
}

async fn note_recovery_code_used(state: &AppState, user: &user::Model, client: &ClientInfo) -> Result<(), ApiError> {
    let txn = state.writer.begin().await?;
    mail::notify(&txn, &state.limiters, templates::recovery_code_used(&user.email, &context(state, client))).await?;
    Entry::new(Event::RecoveryCodeUsed, user.id, client).record(&txn).await?;
    txn.commit().await?;
    state.outbox.wake();
    Ok(())
}

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl MfaApi {
    /// Start setting up TOTP (recent sign-in).
    ///
    /// Returns a new secret, its `otpauth://` URI and a QR code (SVG) for an
    /// authenticator app. Nothing is on until `/mfa/totp/enable` gets a code;
    /// starting again replaces an unfinished setup. 409 `mfa_already_enabled`;
    /// 403 `reauth_required` when the session's last sign-in is older than
    /// `REAUTH_MAX_AGE`; 403 `email_not_verified` until the address is verified.
    #[oai(path = "/mfa/totp/setup", method = "post", operation_id = "setupTotp")]
    async fn setup_totp(&self, state: Data<&AppState>, current: CurrentUser) -> Result<SetupStarted, ApiError> {
        current.require_recent(state.config.reauth_max_age)?;
        require_verified_email(&current)?;
        if current.user.mfa_enabled {
            return Err(ApiError::MfaAlreadyEnabled);
        }
        let setup = mfa::begin_setup(&state.writer, key(&state)?, &current.user, &state.config.app_name).await?;
        Ok(SetupStarted::Ok(Json(TotpSetup {
            secret: setup.secret_base32,
            otpauth_uri: setup.otpauth_uri,
            qr_svg: setup.qr_svg,
        })))
    }

    /// Turn TOTP on with a first code from the app (recent sign-in).
    ///
    /// Returns ten recovery codes, shown only this once. 401 `invalid_code`;
    /// 403 `email_not_verified`; 409 `mfa_already_enabled`, or
    /// `mfa_not_enabled` when no setup was started. It mails a notice, so it
    /// counts toward `EMAIL_RATE_PER_HOUR` (429).
    #[oai(path = "/mfa/totp/enable", method = "post", operation_id = "enableTotp")]
    async fn enable_totp(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        body: JsonBody<CodeRequest>,
    ) -> Result<CodesIssued, ApiError> {
        current.require_recent(state.config.reauth_max_age)?;
        require_verified_email(&current)?;
        if current.user.mfa_enabled {
            return Err(ApiError::MfaAlreadyEnabled);
        }
        state.limiters.check(Limit::Mail, client.ip).await?;
        let has_setup = crate::entity::mfa_totp::Entity::find_by_id(current.user.id).one(&state.db).await?.is_some();
        if !has_setup {
            return Err(ApiError::MfaNotEnabled);
        }
        let txn = state.writer.begin().await?;
        if !mfa::accept_totp(&state.db, &txn, key(&state)?, current.user.id, &body.0.code, true).await? {
            return Err(ApiError::InvalidCode);
        }
        let codes = mfa::enable(&txn, current.user.id).await?;
        mail::notify(&txn, &state.limiters, templates::mfa_enabled(&current.user.email, &context(&state, &client)))
            .await?;
        Entry::new(Event::MfaEnabled, current.user.id, &client).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(current.user.id);
        state.outbox.wake();
        Ok(CodesIssued::Ok(Json(RecoveryCodes { recovery_codes: codes })))
    }

    /// Turn the second factor off with a code or a recovery code (recent sign-in).
    ///
    /// The recovery codes stop working too. 401 `invalid_code`; 409
    /// `mfa_not_enabled`; 429 after `EMAIL_RATE_PER_HOUR` requests that can
    /// mail from one address, or 10 wrong codes in this session.
    #[oai(path = "/mfa/totp", method = "delete", operation_id = "disableTotp")]
    async fn disable_totp(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        body: JsonBody<CodeRequest>,
    ) -> Result<Done, ApiError> {
        current.require_recent(state.config.reauth_max_age)?;
        if !current.user.mfa_enabled {
            return Err(ApiError::MfaNotEnabled);
        }
        state.limiters.check(Limit::Mail, client.ip).await?;
        // Guesses spend the session's failure budget: a hijacked session must
        // not get unlimited tries at turning the second factor off.
        let budget = Budget::Session(current.session_id);
        state.limiters.spend(&budget).await?;
        let txn = state.writer.begin().await?;
        if !mfa::accept(&state.db, &txn, key(&state)?, current.user.id, &Proof::from_input(&body.0.code)).await? {
            txn.rollback().await?;
            Entry::new(Event::MfaFailed, current.user.id, &client).detail("disable").record(&state.writer).await?;
            return Err(ApiError::InvalidCode);
        }
        state.limiters.refund(&budget).await;
        mfa::disable(&txn, current.user.id).await?;
        let notice = templates::mfa_disabled(&current.user.email, &context(&state, &client), false);
        mail::notify(&txn, &state.limiters, notice).await?;
        Entry::new(Event::MfaDisabled, current.user.id, &client).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(current.user.id);
        state.outbox.wake();
        Ok(Done::NoContent)
    }

    /// Make ten new recovery codes; the old ones stop working (recent sign-in).
    ///
    /// The owner is mailed (at most 3 such notices an hour). 429 after
    /// `EMAIL_RATE_PER_HOUR` requests that can mail from one address.
    #[oai(path = "/mfa/recovery-codes", method = "post", operation_id = "regenerateRecoveryCodes")]
    async fn regenerate_recovery_codes(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
    ) -> Result<CodesIssued, ApiError> {
        current.require_recent(state.config.reauth_max_age)?;
        if !current.user.mfa_enabled {
            return Err(ApiError::MfaNotEnabled);
        }
        state.limiters.check(Limit::Mail, client.ip).await?;
        let txn = state.writer.begin().await?;
        let codes = mfa::replace_recovery_codes(&txn, current.user.id).await?;
        let notice = templates::recovery_codes_replaced(&current.user.email, &context(&state, &client));
        mail::notify(&txn, &state.limiters, notice).await?;
        Entry::new(Event::RecoveryCodesRegenerated, current.user.id, &client).record(&txn).await?;
        txn.commit().await?;
        state.outbox.wake();
        Ok(CodesIssued::Ok(Json(RecoveryCodes { recovery_codes: codes })))
    }

    /// Finish a login with the second factor.
    ///
    /// Takes the `mfa_ticket` cookie that login set (five minutes, five tries,
    /// one login) and either `code` (6 digits from the app; each code works
    /// once) or `recovery_code` (each works once; its use is mailed). Wrong
    /// codes count toward the login's failed-password budget like passwords,
    /// and each try toward `LOGIN_RATE_PER_MINUTE` (429). 401 `invalid_code`;
    /// 401 `mfa_ticket_invalid` for a missing, used, expired or exhausted ticket.
    #[oai(path = "/mfa/verify", method = "post", operation_id = "verifyMfa")]
    async fn verify(
        &self,
        state: Data<&AppState>,
        req: &Request,
        client: ClientInfo,
        body: JsonBody<MfaVerifyRequest>,
    ) -> Result<Response<Verified>, ApiError> {
        state.limiters.check(Limit::Login, client.ip).await?;
        let proof = match &body.0 {
            MfaVerifyRequest::Totp(input) => Proof::Totp(&input.code),
            MfaVerifyRequest::Recovery(input) => Proof::Recovery(&input.recovery_code),
        };
        let ticket_id = cookies::read(req, cookies::MFA_TICKET_COOKIE)
            .and_then(|t| state.tokens.verify(&t, TokenType::MfaTicket).ok())
            .map(|claims| claims.jti)
            .ok_or(ApiError::MfaTicketInvalid)?;
        let ticket = mfa::try_ticket(&state.db, ticket_id).await?.ok_or(ApiError::MfaTicketInvalid)?;
        let user = user::Entity::find_by_id(ticket.user_id).one(&state.db).await?.ok_or(ApiError::MfaTicketInvalid)?;
        let budget = match ticket.device_id {
            Some(device) => Budget::Device(device),
            None => Budget::Account(&user.email),
        };
        state.limiters.spend(&budget).await?;
        // The code and the ticket are spent together: a verify that loses the
        // race for the ticket must not burn a recovery code.
        let txn = state.writer.begin().await?;
        if !mfa::accept(&state.db, &txn, key(&state)?, user.id, &proof).await? {
            txn.rollback().await?;
            Entry::new(Event::MfaFailed, user.id, &client).record(&state.writer).await?;
            return Err(ApiError::InvalidCode);
        }
        if !mfa::close_ticket(&txn, ticket.id).await? {
            txn.rollback().await?;
            return Err(ApiError::MfaTicketInvalid);
        }
        txn.commit().await?;
        state.limiters.refund(&budget).await;
        if !user.is_active {
            return Err(ApiError::AccountDisabled);
        }
        if matches!(proof, Proof::Recovery(_)) {
            note_recovery_code_used(&state, &user, &client).await?;
        }
        let (issued, user, device_cookie) = sign_in(&state, user, &client, ticket.device_id, None).await?;
        Ok(with_session_cookies(Verified::Ok(Json(session_body(user, &issued))), &issued, &state)
            .header(SET_COOKIE, device_cookie)
            .header(SET_COOKIE, cookies::cleared(CookieKind::MfaTicket, &state.config)))
    }

    /// Prove it is you again: this session then counts as recently signed in.
    ///
    /// Takes the password, and a code (or recovery code) when a second factor
    /// is on. 401 `invalid_credentials` / `invalid_code`; 429 after 10 wrong
    /// tries in this session (then one a minute), or past
    /// `LOGIN_RATE_PER_MINUTE` tries from one address.
    #[oai(path = "/reauth", method = "post", operation_id = "reauthenticate")]
    async fn reauth(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        body: JsonBody<ReauthRequest>,
    ) -> Result<Done, ApiError> {
        // Each try is a bcrypt check, like a login: the same limit per IP.
        state.limiters.check(Limit::Login, client.ip).await?;
        let body = body.0;
        let used_recovery = prove(&state, &current, &client, &body.password, body.code.as_deref()).await?;
        if used_recovery {
            note_recovery_code_used(&state, &current.user, &client).await?;
        }
        let txn = state.writer.begin().await?;
        sessions::mark_authenticated(&txn, current.session_id).await?;
        Entry::new(Event::Reauthenticated, current.user.id, &client).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(current.user.id);
        Ok(Done::NoContent)
    }
}
