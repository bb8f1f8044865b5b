//! `/api/v1/auth`, the email flows: forgot and reset a password, verify an
//! address (and resend the link), change the address. Every mail is written
//! to the outbox in the same transaction as the change that causes it; links
//! carry single-use tokens (`auth::email_tokens`) in their fragment.

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};

use crate::{
    api::{
        ApiTags,
        json_body::JsonBody,
        schemas::{ChangeEmailRequest, ForgotPasswordRequest, MailAccepted, ResetPasswordRequest, TokenRequest},
    },
    auth::CurrentUser,
    client::ClientInfo,
    error::ApiError,
    flows::{
        credentials::{self, PasswordReset},
        email,
    },
    state::AppState,
};

pub struct EmailApi;

#[derive(ApiResponse)]
pub enum Accepted {
    /// Accepted; any mail is on its way (the answer is the same when nothing was sent).
    #[oai(status = 202)]
    Accepted(Json<MailAccepted>),
}

#[derive(ApiResponse)]
pub enum Done {
    /// Done.
    #[oai(status = 204)]
    NoContent,
}

fn accepted(message: &str) -> Accepted {
    Accepted::Accepted(Json(MailAccepted { message: message.to_owned() }))
}

const FORGOT_MESSAGE: &str = "If an account exists for that address, a link to reset its password is on its way.";

#[OpenApi(prefix_path = "/api/v1/auth", tag = "ApiTags::Auth")]
impl EmailApi {
    /// Ask for a password-reset link.
    ///
    /// Always 202 with the same body, in the same time, whether or not the
    /// address has an account; if it does (and is active), a link valid for
    /// `PASSWORD_RESET_TTL` is mailed to it, at most 3 an hour per address.
    /// 429 after `EMAIL_RATE_PER_HOUR` mail requests an hour from one address.
    #[oai(path = "/password/forgot", method = "post", operation_id = "forgotPassword")]
    async fn forgot_password(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        body: JsonBody<ForgotPasswordRequest>,
    ) -> Result<Accepted, ApiError> {
        email::forgot_password(&state, &client, &body.0.email).await?;
        Ok(accepted(FORGOT_MESSAGE))
    }

    /// Set a new password with a reset link's token.
    ///
    /// The password policy is checked before the token is spent, so a
    /// rejected password (422) keeps the link working. Success revokes every
    /// session and device cookie of the user, marks the address verified and
    /// mails a notice. With a second factor on, `code` is required; wrong
    /// codes spend this link's budget (10, then one a minute: 429) and leave
    /// the link working. 429 after `EMAIL_RATE_PER_HOUR` mail requests an
    /// hour from one address.
    /// 400 `invalid_token` for an unknown, used, expired or voided token.
    #[oai(path = "/password/reset", method = "post", operation_id = "resetPassword")]
    async fn reset_password(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        body: JsonBody<ResetPasswordRequest>,
    ) -> Result<Done, ApiError> {
        let body = body.0;
        let reset = PasswordReset { token: body.token, new_password: body.new_password, code: body.code };
        credentials::reset_password(&state, &client, reset).await?;
        Ok(Done::NoContent)
    }

    /// Verify the address with a verification link's token.
    ///
    /// 400 `invalid_token` for an unknown, used, expired or voided token.
    #[oai(path = "/email/verify", method = "post", operation_id = "verifyEmail")]
    async fn verify_email(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        body: JsonBody<TokenRequest>,
    ) -> Result<Done, ApiError> {
        email::verify_email(&state, &client, &body.0.token).await?;
        Ok(Done::NoContent)
    }

    /// Send the verification link again (signed in).
    ///
    /// 202 either way; nothing is sent when the address is verified already
    /// or has had 3 verification mails this hour. 429 after
    /// `EMAIL_RATE_PER_HOUR` mail requests an hour from one address.
    #[oai(path = "/email/verify/resend", method = "post", operation_id = "resendVerification")]
    async fn resend_verification(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
    ) -> Result<Accepted, ApiError> {
        email::resend_verification(&state, &current, &client).await?;
        Ok(accepted("If your address still needs verifying, a new link is on its way."))
    }

    /// Move the account to another address.
    ///
    /// Checks the current password (401 `invalid_credentials`), then mails a
    /// confirmation link (valid for `EMAIL_CHANGE_TTL`) to the new address and
    /// a notice to the current one; nothing changes until the link is used.
    /// If the new address already has an account, it gets a notice instead of
    /// a link, and the answer is the same 202.
    #[oai(path = "/email", method = "put", operation_id = "changeEmail")]
    async fn change_email(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        current: CurrentUser,
        body: JsonBody<ChangeEmailRequest>,
    ) -> Result<Accepted, ApiError> {
        let body = body.0;
        credentials::change_email(&state, &current, &client, &body.new_email, &body.current_password).await?;
        Ok(accepted("Follow the link we sent to the new address to confirm it."))
    }

    /// Confirm an email change with the link's token.
    ///
    /// The account moves to the new address, which counts as verified. 400
    /// `invalid_token` for an unknown, used, expired or voided token; 409
    /// `email_taken` if the address got an account meanwhile (the link then
    /// stays unused).
    #[oai(path = "/email/confirm", method = "post", operation_id = "confirmEmail")]
    async fn confirm_email(
        &self,
        state: Data<&AppState>,
        client: ClientInfo,
        body: JsonBody<TokenRequest>,
    ) -> Result<Done, ApiError> {
        credentials::confirm_email(&state, &client, &body.0.token).await?;
        Ok(Done::NoContent)
    }
}
