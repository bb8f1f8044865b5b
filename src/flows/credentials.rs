//! Changing what proves who someone is: the password (changed while signed
//! in, or reset with a mailed link) and the email address. Each ends what the
//! old credential had started ([`end_old_credential`]); each password check
//! spends a failure budget first ([`on_budget`]).

use std::future::Future;

use uuid::Uuid;

use crate::{
    accounts,
    audit::{Entry, Event},
    auth::{
        CurrentUser, devices,
        email_tokens::{self, Purpose},
        mfa,
        ratelimit::{Budget, Limit, RateLimiters},
        sessions,
    },
    client::ClientInfo,
    domain::{Email, NewPassword, personal_words},
    error::{ApiError, FieldError},
    flows::Tx,
    mail::templates,
    state::AppState,
};

/// Spends one cell of `budget` (when there is one), then runs `check`, and
/// gives the cell back when it passed. The spend comes first and is atomic,
/// so N concurrent wrong guesses past the budget cost at most one check.
pub async fn on_budget(
    limiters: &RateLimiters,
    budget: Option<&Budget<'_>>,
    check: impl Future<Output = Result<bool, ApiError>>,
) -> Result<bool, ApiError> {
    if let Some(budget) = budget {
        limiters.spend(budget).await?;
    }
    let passed = check.await?;
    if let (true, Some(budget)) = (passed, budget) {
        limiters.refund(budget).await;
    }
    Ok(passed)
}

/// Checks the signed-in user's password on the session's failure budget
/// (someone holding a stolen session gets no unlimited guesses either; the
/// budget is the session's, so nobody else can spend it). 401
/// `invalid_credentials` when wrong.
pub async fn check_session_password(state: &AppState, current: &CurrentUser, password: &str) -> Result<(), ApiError> {
    let budget = Budget::Session(current.session_id);
    let check = accounts::check_password(&state.passwords, Some(&current.user), password);
    if on_budget(&state.limiters, Some(&budget), check).await? { Ok(()) } else { Err(ApiError::InvalidCredentials) }
}

/// What a new password or a reset ends: outstanding reset and email-change
/// links, half-done logins, the sessions (but `keep`), and every device
/// cookie. Returns how many sessions were revoked.
async fn end_old_credential(tx: &mut Tx<'_>, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, ApiError> {
    email_tokens::void(tx.db(), user_id, Purpose::ResetPassword).await?;
    email_tokens::void(tx.db(), user_id, Purpose::ChangeEmail).await?;
    mfa::close_all_tickets(tx.db(), user_id).await?;
    let revoked = sessions::revoke_all(tx.db(), user_id, keep).await?;
    devices::forget_all(tx.db(), user_id).await?;
    tx.changed(user_id);
    Ok(revoked)
}

/// A new password for a signed-in user.
pub struct PasswordChange {
    pub current_password: String,
    pub new_password: String,
}

/// Changes the password: every other session ends, every device cookie is
/// void; returns the new device id this browser's cookie names.
pub async fn change_password(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    change: PasswordChange,
) -> Result<Uuid, ApiError> {
    if current.user.mfa_enabled {
        current.require_recent(state.config.reauth_max_age)?;
    }
    state.limiters.check(Limit::Login, client.ip).await?;
    let words = personal_words(&current.user.email, current.user.full_name.as_deref());
    let personal: Vec<&str> = words.iter().map(String::as_str).collect();
    let new_password = NewPassword::parse("new_password", &change.new_password, &personal)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    if change.current_password.is_empty() {
        return Err(ApiError::field("current_password", "must not be empty"));
    }
    check_session_password(state, current, &change.current_password).await?;
    if change.new_password == change.current_password {
        return Err(ApiError::field("new_password", "must differ from the current password"));
    }
    let hash = state.passwords.hash(new_password.expose()).await?;
    let user_id = current.user.id;
    let mut tx = Tx::begin(state).await?;
    accounts::set_password(tx.db(), user_id, hash).await?;
    // A reset link mailed before the change must not undo it, nor an email
    // change, a half-done login or a device cookie from the old password's time.
    let revoked = end_old_credential(&mut tx, user_id, Some(current.session_id)).await?;
    // This browser just proved the password: it gets a device of its own again.
    let device = devices::remember(tx.db(), user_id, None).await?;
    let ctx = templates::Context::new(&state.config, client.ip);
    tx.notify(templates::password_changed(&current.user.email, &ctx, true)).await?;
    Entry::new(Event::PasswordChanged, user_id, client)
        .detail(format!("{revoked} other sessions revoked"))
        .record(tx.db())
        .await?;
    tx.commit().await?;
    Ok(device)
}

/// A reset link's token, the new password, and a code when a second factor is on.
pub struct PasswordReset {
    pub token: String,
    pub new_password: String,
    pub code: Option<String>,
}

/// Sets a new password with a reset link: every session and device cookie
/// of the user ends, the address counts as verified.
pub async fn reset_password(state: &AppState, client: &ClientInfo, reset: PasswordReset) -> Result<(), ApiError> {
    let row =
        email_tokens::peek(&state.db, &reset.token, Purpose::ResetPassword).await?.ok_or(ApiError::InvalidToken)?;
    let user = accounts::find(&state.db, row.user_id).await?.ok_or(ApiError::InvalidToken)?;
    let words = personal_words(&user.email, user.full_name.as_deref());
    let personal: Vec<&str> = words.iter().map(String::as_str).collect();
    let password = NewPassword::parse("new_password", &reset.new_password, &personal)
        .map_err(|e| ApiError::Validation(vec![e]))?;
    // It mails a notice: limited per IP like every request that can mail.
    state.limiters.check(Limit::Mail, client.ip).await?;
    // With a second factor, the link alone is not enough: a stolen mailbox
    // must not take over the account. Guesses spend the link's own failure
    // budget and one across the user's links, which only link holders reach
    // (strangers' failed logins cannot block the owner); a wrong code rolls
    // back, so the link survives.
    let proof = match (user.mfa_enabled, reset.code.as_deref().filter(|c| !c.trim().is_empty())) {
        (false, _) => None,
        (true, None) => return Err(ApiError::MfaRequired),
        (true, Some(code)) => Some(mfa::Proof::from_input(code)),
    };
    let (link, user_codes) = (Budget::ResetLink(row.id), Budget::ResetCodes(user.id));
    let with_code = |budget| proof.as_ref().map(|_| budget);
    let mut tx = None;
    let check = async {
        let hash = state.passwords.hash(password.expose()).await?;
        let opened = tx.insert(Tx::begin(state).await?);
        // Spent first, in the transaction: of two concurrent resets exactly one gets here.
        if !email_tokens::spend(opened.db(), &reset.token, Purpose::ResetPassword).await? {
            return Err(ApiError::InvalidToken);
        }
        if let Some(proof) = &proof {
            let key = state.data_key.as_deref().ok_or(ApiError::InvalidCode)?;
            if !mfa::accept(&state.db, opened.db(), key, user.id, proof).await? {
                return Ok(false);
            }
        }
        accounts::set_password(opened.db(), user.id, hash).await?;
        Ok(true)
    };
    let on_user = on_budget(&state.limiters, with_code(&user_codes), check);
    let passed = on_budget(&state.limiters, with_code(&link), on_user).await?;
    let mut tx = tx.expect("BUG: the check opened the transaction");
    if !passed {
        tx.rollback().await?;
        Entry::new(Event::MfaFailed, user.id, client).detail("password reset").record(&state.writer).await?;
        return Err(ApiError::InvalidCode);
    }
    accounts::mark_verified(tx.db(), user.id).await?;
    // Whatever someone else started with the old password ends here.
    let revoked = end_old_credential(&mut tx, user.id, None).await?;
    let ctx = templates::Context::new(&state.config, client.ip);
    tx.notify(templates::password_changed(&user.email, &ctx, false)).await?;
    if matches!(proof, Some(mfa::Proof::Recovery(_))) {
        tx.notify(templates::recovery_code_used(&user.email, &ctx)).await?;
        Entry::new(Event::RecoveryCodeUsed, user.id, client).record(tx.db()).await?;
    }
    Entry::new(Event::PasswordReset, user.id, client)
        .detail(format!("{revoked} sessions revoked"))
        .record(tx.db())
        .await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "password reset");
    Ok(())
}

/// Asks to move the signed-in account to `new_email`: a link to the new
/// address (a notice instead when it has an account), the same notice to the
/// current address either way; nothing changes until the link is used.
pub async fn change_email(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    new_email: &str,
    current_password: &str,
) -> Result<(), ApiError> {
    if current.user.mfa_enabled {
        current.require_recent(state.config.reauth_max_age)?;
    }
    state.limiters.check(Limit::Mail, client.ip).await?;
    let mut errors = Vec::new();
    let new_email = Email::parse(new_email)
        .map_err(|e| errors.push(FieldError::new("new_email", &e.message)))
        .ok()
        .filter(|e| e.as_str() != current.user.email);
    if new_email.is_none() && errors.is_empty() {
        errors.push(FieldError::new("new_email", "must differ from the current address"));
    }
    if current_password.is_empty() {
        errors.push(FieldError::new("current_password", "must not be empty"));
    }
    let Some(new_email) = new_email.filter(|_| errors.is_empty()) else {
        return Err(ApiError::Validation(errors));
    };
    check_session_password(state, current, current_password).await?;

    let ctx = templates::Context::new(&state.config, client.ip);
    // Read before the transaction: its first statement should be a write
    // (SQLite refuses a read-then-write transaction after a concurrent write).
    let taken = accounts::find_by_email(&state.db, &new_email).await?.is_some();
    let mut tx = Tx::begin(state).await?;
    // The current address hears of it whatever the new one is: what it
    // gets must not tell whether the new address has an account.
    tx.notify(templates::email_change_requested(&current.user.email, &ctx)).await?;
    if taken {
        tx.notify(templates::email_in_use(new_email.as_str(), &ctx)).await?;
    } else if state.limiters.allow_mail_to(new_email.as_str(), Purpose::ChangeEmail.as_str()).await {
        let ttl = state.config.email_change_ttl;
        let token =
            email_tokens::issue(tx.db(), current.user.id, Purpose::ChangeEmail, ttl, Some(new_email.as_str())).await?;
        tx.mail_link(templates::confirm_email_change(new_email.as_str(), &ctx, &token, ttl)).await?;
    }
    Entry::new(Event::EmailChangeRequested, current.user.id, client).record(tx.db()).await?;
    tx.commit().await
}

/// Moves the account to the address a change link was sent to; 409
/// `email_taken` (and the link stays unused) if it got an account meanwhile.
pub async fn confirm_email(state: &AppState, client: &ClientInfo, token: &str) -> Result<(), ApiError> {
    let row = email_tokens::peek(&state.db, token, Purpose::ChangeEmail).await?.ok_or(ApiError::InvalidToken)?;
    let new_email = row.new_email.clone().ok_or(ApiError::InvalidToken)?;
    let mut tx = Tx::begin(state).await?;
    if !email_tokens::spend(tx.db(), token, Purpose::ChangeEmail).await? {
        return Err(ApiError::InvalidToken);
    }
    // On 409 the transaction rolls back and the token stays unspent.
    accounts::change_email(tx.db(), row.user_id, &new_email).await?;
    email_tokens::void(tx.db(), row.user_id, Purpose::VerifyEmail).await?;
    // A reset link mailed to the old address must not work after the move.
    email_tokens::void(tx.db(), row.user_id, Purpose::ResetPassword).await?;
    Entry::new(Event::EmailChanged, row.user_id, client).record(tx.db()).await?;
    tx.changed(row.user_id);
    tx.commit().await
}
