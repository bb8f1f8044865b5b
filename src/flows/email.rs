//! Mailed links: verifying an address (at registration, and again on
//! request) and asking for a password-reset link (by the user, or for them
//! by an admin). Each link's mail spends the address's allowance before its
//! token is issued: a flood must not void the link someone is waiting for.

use uuid::Uuid;

use crate::{
    accounts,
    audit::{Entry, Event},
    auth::{
        CurrentUser,
        email_tokens::{self, Purpose},
        ratelimit::Limit,
    },
    client::ClientInfo,
    domain::Email,
    entity::user,
    error::ApiError,
    flows::Tx,
    mail::templates,
    state::AppState,
};

fn context<'a>(state: &'a AppState, client: &ClientInfo) -> templates::Context<'a> {
    templates::Context::new(&state.config, client.ip)
}

/// Queues a verification mail for `user` on `tx`, within the address's mail
/// allowance. Used by registration and resend.
pub async fn queue_verification(
    state: &AppState,
    tx: &mut Tx<'_>,
    user: &user::Model,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    if !state.limiters.allow_mail_to(&user.email, Purpose::VerifyEmail.as_str()).await {
        return Ok(());
    }
    let ttl = state.config.email_verification_ttl;
    let token = email_tokens::issue(tx.db(), user.id, Purpose::VerifyEmail, ttl, None).await?;
    tx.mail_link(templates::verify_email(&user.email, &context(state, client), &token, ttl)).await?;
    Entry::new(Event::VerificationSent, user.id, client).record(tx.db()).await
}

/// Queues a password-reset mail for `user` within the address's allowance;
/// `admin` is the admin who asked, if one did.
pub async fn queue_reset(
    state: &AppState,
    tx: &mut Tx<'_>,
    user: &user::Model,
    client: &ClientInfo,
    admin: Option<Uuid>,
) -> Result<(), ApiError> {
    if !state.limiters.allow_mail_to(&user.email, Purpose::ResetPassword.as_str()).await {
        return Ok(());
    }
    queue_reset_unlimited(state, tx, user, client, admin).await
}

/// [`queue_reset`] once the address's allowance was checked.
async fn queue_reset_unlimited(
    state: &AppState,
    tx: &mut Tx<'_>,
    user: &user::Model,
    client: &ClientInfo,
    admin: Option<Uuid>,
) -> Result<(), ApiError> {
    let ttl = state.config.password_reset_ttl;
    let token = email_tokens::issue(tx.db(), user.id, Purpose::ResetPassword, ttl, None).await?;
    let mail = templates::reset_password(&user.email, &context(state, client), &token, ttl, admin.is_some());
    tx.mail_link(mail).await?;
    let mut entry = Entry::new(Event::PasswordResetRequested, user.id, client);
    if let Some(admin) = admin {
        entry = entry.by(admin);
    }
    entry.record(tx.db()).await
}

/// Someone forgot their password: answers at once, the same for any
/// address; the lookup and the mail happen off the request path, so a known
/// address is not measurably slower.
pub async fn forgot_password(state: &AppState, client: &ClientInfo, email: &str) -> Result<(), ApiError> {
    let email = Email::parse(email).map_err(|e| ApiError::Validation(vec![e]))?;
    state.limiters.check(Limit::Mail, client.ip).await?;
    let (state, client) = (state.clone(), client.clone());
    tokio::spawn(async move {
        if let Err(e) = forgot_in_background(state, email, client).await {
            tracing::error!(error = ?e, "forgot-password: the reset mail could not be queued");
        }
    });
    Ok(())
}

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
        let queued = async {
            let mut tx = Tx::begin(&state).await?;
            queue_reset_unlimited(&state, &mut tx, &user, &client, None).await?;
            tx.commit().await
        }
        .await;
        match queued {
            Err(ApiError::Unavailable(_)) if attempt < 3 => {
                attempt += 1;
                tokio::time::sleep(std::time::Duration::from_millis(50 * attempt)).await;
            }
            other => return other,
        }
    }
}

/// Verifies an address with its link's token.
pub async fn verify_email(state: &AppState, client: &ClientInfo, token: &str) -> Result<(), ApiError> {
    let row = email_tokens::peek(&state.db, token, Purpose::VerifyEmail).await?.ok_or(ApiError::InvalidToken)?;
    let mut tx = Tx::begin(state).await?;
    if !email_tokens::spend(tx.db(), token, Purpose::VerifyEmail).await? {
        return Err(ApiError::InvalidToken);
    }
    accounts::mark_verified(tx.db(), row.user_id).await?;
    Entry::new(Event::EmailVerified, row.user_id, client).record(tx.db()).await?;
    tx.changed(row.user_id);
    tx.commit().await
}

/// Mails the signed-in user a new verification link, unless verified already.
pub async fn resend_verification(state: &AppState, current: &CurrentUser, client: &ClientInfo) -> Result<(), ApiError> {
    state.limiters.check(Limit::Mail, client.ip).await?;
    if current.user.email_verified {
        return Ok(());
    }
    let mut tx = Tx::begin(state).await?;
    queue_verification(state, &mut tx, &current.user, client).await?;
    tx.commit().await
}
