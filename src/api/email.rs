//! `/api/v1/auth`, the email flows: forgot and reset a password, verify an
//! address (and resend the link), change the address. Every mail is written
//! to the outbox in the same transaction as the change that causes it; links
//! carry single-use tokens (`auth::email_tokens`) in their fragment.

use poem::web::Data;
use poem_openapi::{ApiResponse, OpenApi, payload::Json};
use sea_orm::{ConnectionTrait, EntityTrait, TransactionTrait};

use crate::{
    accounts,
    api::{
        ApiTags,
        json_body::JsonBody,
        schemas::{ChangeEmailRequest, ForgotPasswordRequest, MailAccepted, ResetPasswordRequest, TokenRequest},
    },
    audit::{Entry, Event},
    auth::{
        CurrentUser, devices,
        email_tokens::{self, Purpose},
        mfa,
        ratelimit::{Budget, Limit},
        sessions,
    },
    client::ClientInfo,
    domain::{Email, NewPassword, personal_words},
    entity::user,
    error::{ApiError, FieldError},
    mail::{self, templates},
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

/// The who-when-where of a mail about `client`'s request.
fn context<'a>(state: &'a AppState, client: &ClientInfo) -> templates::Context<'a> {
    templates::Context::new(&state.config, client.ip)
}

/// Queues a verification mail for `user` on the caller's transaction, within
/// the address's mail allowance. Used by registration and resend.
pub async fn queue_verification(
    state: &AppState,
    txn: &impl ConnectionTrait,
    user: &user::Model,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    if !state.limiters.allow_mail_to(&user.email, Purpose::VerifyEmail.as_str()).await {
        return Ok(());
    }
    let ttl = state.config.email_verification_ttl;
    let token = email_tokens::issue(txn, user.id, Purpose::VerifyEmail, ttl, None).await?;
    mail::enqueue(txn, templates::verify_email(&user.email, &context(state, client), &token, ttl)).await?;
    Entry::new(Event::VerificationSent, user.id, client).record(txn).await
}

/// Queues a password-reset mail for `user` within the address's allowance;
/// `actor` is the admin who asked, if one did.
pub async fn queue_reset(
    state: &AppState,
    txn: &impl ConnectionTrait,
    user: &user::Model,
    client: &ClientInfo,
    actor: Option<uuid::Uuid>,
) -> Result<(), ApiError> {
    if !state.limiters.allow_mail_to(&user.email, Purpose::ResetPassword.as_str()).await {
        return Ok(());
    }
    queue_reset_unlimited(state, txn, user, client, actor).await
}

/// [`queue_reset`] once the address's allowance was checked.
async fn queue_reset_unlimited(
    state: &AppState,
    txn: &impl ConnectionTrait,
    user: &user::Model,
    client: &ClientInfo,
    actor: Option<uuid::Uuid>,
) -> Result<(), ApiError> {
    let ttl = state.config.password_reset_ttl;
    let token = email_tokens::issue(txn, user.id, Purpose::ResetPassword, ttl, None).await?;
    let mail = templates::reset_password(&user.email, &context(state, client), &token, ttl, actor.is_some());
    mail::enqueue(txn, mail).await?;
    let mut entry = Entry::new(Event::PasswordResetRequested, user.id, client);
    if let Some(actor) = actor {
        entry = entry.by(actor);
    }
    entry.record(txn).await
}

/// The forgot-password work, off the request path: the lookup and the mail
/// insert must not make the answer for a known address measurably slower.
async fn forgot_in_background(state: AppState, email: Email, client: ClientInfo) -> Result<(), ApiError> {
    let Some(user) = accounts::find_by_email(&state.db, &email).await?.filter(|u| u.is_active) else {
        return Ok(());
    };
    if !state.limiters.allow_mail_to(&user.email, Purpose::ResetPassword.as_str()).await {
        return Ok(());
    }
    // Nobody waits on this answer, so a transient conflict (two requests for
    // one account racing on MySQL's locks) is retried instead of losing the mail.
    let mut attempt = 0;
    loop {
        let txn = state.writer.begin().await?;
        let queued = async {
            queue_reset_unlimited(&state, &txn, &user, &client, None).await?;
            txn.commit().await.map_err(ApiError::from)
        }
        .await;
        match queued {
            Err(ApiError::Unavailable(_)) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            other => {
                other?;
                state.outbox.wake();
                return Ok(());
            }
        }
    }
}

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
        let email = Email::parse(&body.0.email).map_err(|e| ApiError::Validation(vec![e]))?;
        state.limiters.check(Limit::Mail, client.ip).await?;
        let state = state.0.clone();
        tokio::spawn(async move {
            if let Err(e) = forgot_in_background(state, email, client).await {
                tracing::error!(error = ?e, "forgot-password: the reset mail could not be queued");
            }
        });
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
        let row =
            email_tokens::peek(&state.db, &body.token, Purpose::ResetPassword).await?.ok_or(ApiError::InvalidToken)?;
        let user = user::Entity::find_by_id(row.user_id).one(&state.db).await?.ok_or(ApiError::InvalidToken)?;
        let words = personal_words(&user.email, user.full_name.as_deref());
        let personal: Vec<&str> = words.iter().map(String::as_str).collect();
        let password = NewPassword::parse("new_password", &body.new_password, &personal)
            .map_err(|e| ApiError::Validation(vec![e]))?;
        // It mails a notice: limited per IP like every request that can mail.
        state.limiters.check(Limit::Mail, client.ip).await?;
        // With a second factor, the link alone is not enough: a stolen mailbox
        // must not take over the account. Guesses spend the link's own failure
        // budget (strangers' failed logins cannot block the owner), and a
        // wrong code rolls back, so the link survives.
        let proof = match (user.mfa_enabled, body.code.as_deref().filter(|c| !c.trim().is_empty())) {
            (false, _) => None,
            (true, None) => return Err(ApiError::MfaRequired),
            (true, Some(code)) => Some(mfa::Proof::from_input(code)),
        };
        let budget = Budget::ResetLink(row.id);
        if proof.is_some() {
            state.limiters.spend(&budget).await?;
        }
        let hash = state.passwords.hash(password.expose()).await?;

        let txn = state.writer.begin().await?;
        // Spent first, in the transaction: of two concurrent resets exactly one gets here.
        if !email_tokens::spend(&txn, &body.token, Purpose::ResetPassword).await? {
            return Err(ApiError::InvalidToken);
        }
        if let Some(proof) = &proof {
            let key = state.data_key.as_deref().ok_or(ApiError::InvalidCode)?;
            if !mfa::accept(&state.db, &txn, key, user.id, proof).await? {
                txn.rollback().await?;
                Entry::new(Event::MfaFailed, user.id, &client).detail("password reset").record(&state.writer).await?;
                return Err(ApiError::InvalidCode);
            }
            state.limiters.refund(&budget).await;
        }
        let used_recovery_code = matches!(proof, Some(mfa::Proof::Recovery(_)));
        accounts::set_password(&txn, user.id, hash).await?;
        accounts::mark_verified(&txn, user.id).await?;
        // Whatever someone else started with the old password ends here.
        email_tokens::void(&txn, user.id, Purpose::ResetPassword).await?;
        email_tokens::void(&txn, user.id, Purpose::ChangeEmail).await?;
        mfa::close_all_tickets(&txn, user.id).await?;
        let revoked = sessions::revoke_all(&txn, user.id, None).await?;
        devices::forget_all(&txn, user.id).await?;
        let ctx = context(&state, &client);
        mail::notify(&txn, &state.limiters, templates::password_changed(&user.email, &ctx, false)).await?;
        if used_recovery_code {
            mail::notify(&txn, &state.limiters, templates::recovery_code_used(&user.email, &ctx)).await?;
            Entry::new(Event::RecoveryCodeUsed, user.id, &client).record(&txn).await?;
        }
        Entry::new(Event::PasswordReset, user.id, &client)
            .detail(format!("{revoked} sessions revoked"))
            .record(&txn)
            .await?;
        txn.commit().await?;
        state.sessions.changed(user.id);
        state.outbox.wake();
        tracing::info!(user_id = %user.id, "password reset");
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
        let token = body.0.token;
        let row = email_tokens::peek(&state.db, &token, Purpose::VerifyEmail).await?.ok_or(ApiError::InvalidToken)?;
        let txn = state.writer.begin().await?;
        if !email_tokens::spend(&txn, &token, Purpose::VerifyEmail).await? {
            return Err(ApiError::InvalidToken);
        }
        accounts::mark_verified(&txn, row.user_id).await?;
        Entry::new(Event::EmailVerified, row.user_id, &client).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(row.user_id);
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
        state.limiters.check(Limit::Mail, client.ip).await?;
        if !current.user.email_verified {
            let txn = state.writer.begin().await?;
            queue_verification(&state, &txn, &current.user, &client).await?;
            txn.commit().await?;
            state.outbox.wake();
        }
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
        if current.user.mfa_enabled {
            current.require_recent(state.config.reauth_max_age)?;
        }
        let body = body.0;
        state.limiters.check(Limit::Mail, client.ip).await?;
        let mut errors = Vec::new();
        let new_email = Email::parse(&body.new_email)
            .map_err(|e| errors.push(FieldError::new("new_email", &e.message)))
            .ok()
            .filter(|e| e.as_str() != current.user.email);
        if new_email.is_none() && errors.is_empty() {
            errors.push(FieldError::new("new_email", "must differ from the current address"));
        }
        if body.current_password.is_empty() {
            errors.push(FieldError::new("current_password", "must not be empty"));
        }
        let Some(new_email) = new_email.filter(|_| errors.is_empty()) else {
            return Err(ApiError::Validation(errors));
        };
        let budget = Budget::Session(current.session_id);
        state.limiters.spend(&budget).await?;
        if !accounts::check_password(&state.passwords, Some(&current.user), &body.current_password).await? {
            return Err(ApiError::InvalidCredentials);
        }
        state.limiters.refund(&budget).await;

        let ctx = context(&state, &client);
        // Read before the transaction: its first statement should be a write
        // (SQLite refuses a read-then-write transaction after a concurrent write).
        let taken = accounts::find_by_email(&state.db, &new_email).await?.is_some();
        let txn = state.writer.begin().await?;
        // The current address hears of it whatever the new one is: what it
        // gets must not tell whether the new address has an account.
        mail::notify(&txn, &state.limiters, templates::email_change_requested(&current.user.email, &ctx)).await?;
        if taken {
            mail::notify(&txn, &state.limiters, templates::email_in_use(new_email.as_str(), &ctx)).await?;
        } else if state.limiters.allow_mail_to(new_email.as_str(), Purpose::ChangeEmail.as_str()).await {
            let ttl = state.config.email_change_ttl;
            let token =
                email_tokens::issue(&txn, current.user.id, Purpose::ChangeEmail, ttl, Some(new_email.as_str())).await?;
            mail::enqueue(&txn, templates::confirm_email_change(new_email.as_str(), &ctx, &token, ttl)).await?;
        }
        Entry::new(Event::EmailChangeRequested, current.user.id, &client).record(&txn).await?;
        txn.commit().await?;
        state.outbox.wake();
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
        let token = body.0.token;
        let row = email_tokens::peek(&state.db, &token, Purpose::ChangeEmail).await?.ok_or(ApiError::InvalidToken)?;
        let new_email = row.new_email.clone().ok_or(ApiError::InvalidToken)?;
        let txn = state.writer.begin().await?;
        if !email_tokens::spend(&txn, &token, Purpose::ChangeEmail).await? {
            return Err(ApiError::InvalidToken);
        }
        // On 409 the transaction rolls back and the token stays unspent.
        accounts::change_email(&txn, row.user_id, &new_email).await?;
        email_tokens::void(&txn, row.user_id, Purpose::VerifyEmail).await?;
        // A reset link mailed to the old address must not work after the move.
        email_tokens::void(&txn, row.user_id, Purpose::ResetPassword).await?;
        Entry::new(Event::EmailChanged, row.user_id, &client).record(&txn).await?;
        txn.commit().await?;
        state.sessions.changed(row.user_id);
        Ok(Done::NoContent)
    }
}
