//! `/api/v1/auth`: the second factor (TOTP setup, enable, disable, recovery
//! codes), the second step of a login (`/mfa/verify`) and re-authentication
//! (`/reauth`). Changes to the second factor need a recent sign-in, and are
//! mailed to the user and audited.

use poem::{Request, http::header::SET_COOKIE, web::Data};
use poem_openapi::{
    ApiResponse, OpenApi,
    payload::{Json, Response},
};

use crate::{
    api::{
        ApiTags,
        json_body::JsonBody,
        schemas::{CodeRequest, MfaVerifyRequest, ReauthRequest, RecoveryCodes, Session, TotpSetup},
        session_cookies::signed_in,
    },
    auth::{
        CurrentUser,
        cookies::{self, CookieKind},
        mfa::Proof,
    },
    client::ClientInfo,
    error::ApiError,
    flows::{second_factor, sign_in},
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
        let setup = second_factor::begin_setup(&state, &current).await?;
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
        let codes = second_factor::enable(&state, &current, &client, &body.0.code).await?;
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
        second_factor::disable(&state, &current, &client, &body.0.code).await?;
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
        let codes = second_factor::regenerate_recovery_codes(&state, &current, &client).await?;
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
        let proof = match &body.0 {
            MfaVerifyRequest::Totp(input) => Proof::Totp(&input.code),
            MfaVerifyRequest::Recovery(input) => Proof::Recovery(&input.recovery_code),
        };
        let ticket = cookies::read(req, cookies::MFA_TICKET_COOKIE);
        let signed = sign_in::with_second_factor(&state, &client, ticket, proof).await?;
        Ok(signed_in(&state, signed, |s| Verified::Ok(Json(s)))?
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
        let body = body.0;
        second_factor::reauthenticate(&state, &current, &client, &body.password, body.code.as_deref()).await?;
        Ok(Done::NoContent)
    }
}
