//! The second factor: setting TOTP up, turning it on and off, new recovery
//! codes, and proving it is you again (`/reauth`). Changes need a recent
//! sign-in, are mailed to the user and audited.

use crate::{
    audit::{Entry, Event},
    auth::{
        CurrentUser,
        crypto::DataKey,
        mfa::{self, Proof, Setup},
        ratelimit::{Budget, Limit},
        sessions,
    },
    client::ClientInfo,
    entity::user,
    error::ApiError,
    flows::{Tx, credentials::on_budget},
    mail::templates,
    state::AppState,
};

/// The key that seals TOTP secrets, or 403 when the server has none.
pub fn key(state: &AppState) -> Result<&DataKey, ApiError> {
    state
        .data_key
        .as_deref()
        .ok_or(ApiError::Forbidden("Second factors are not available on this server (DATA_ENCRYPTION_KEY is unset)."))
}

fn context<'a>(state: &'a AppState, client: &ClientInfo) -> templates::Context<'a> {
    templates::Context::new(&state.config, client.ip)
}

/// A second factor is tied to the mailbox that can recover the account:
/// someone who registered another person's address must not lock its owner
/// out of the reset flow with a factor of their own.
fn require_verified_email(current: &CurrentUser) -> Result<(), ApiError> {
    if current.user.email_verified { Ok(()) } else { Err(ApiError::EmailNotVerified) }
}

/// Starts (or restarts) a TOTP setup; nothing is on until [`enable`].
pub async fn begin_setup(state: &AppState, current: &CurrentUser) -> Result<Setup, ApiError> {
    current.require_recent(state.config.reauth_max_age)?;
    require_verified_email(current)?;
    if current.user.mfa_enabled {
        return Err(ApiError::MfaAlreadyEnabled);
    }
    mfa::begin_setup(&state.writer, key(state)?, &current.user, &state.config.app_name).await
}

/// Turns TOTP on with a first code; returns the ten recovery codes.
pub async fn enable(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    code: &str,
) -> Result<Vec<String>, ApiError> {
    current.require_recent(state.config.reauth_max_age)?;
    require_verified_email(current)?;
    if current.user.mfa_enabled {
        return Err(ApiError::MfaAlreadyEnabled);
    }
    state.limiters.check(Limit::Mail, client.ip).await?;
    if !mfa::has_setup(&state.db, current.user.id).await? {
        return Err(ApiError::MfaNotEnabled);
    }
    let mut tx = Tx::begin(state).await?;
    if !mfa::accept_totp(&state.db, tx.db(), key(state)?, current.user.id, code, true).await? {
        return Err(ApiError::InvalidCode);
    }
    let codes = mfa::enable(tx.db(), current.user.id).await?;
    tx.notify(templates::mfa_enabled(&current.user.email, &context(state, client))).await?;
    Entry::new(Event::MfaEnabled, current.user.id, client).record(tx.db()).await?;
    tx.changed(current.user.id);
    tx.commit().await?;
    Ok(codes)
}

/// Turns the second factor off with a code or a recovery code. Guesses
/// spend the session's failure budget: a hijacked session must not get
/// unlimited tries at it.
pub async fn disable(state: &AppState, current: &CurrentUser, client: &ClientInfo, code: &str) -> Result<(), ApiError> {
    current.require_recent(state.config.reauth_max_age)?;
    if !current.user.mfa_enabled {
        return Err(ApiError::MfaNotEnabled);
    }
    state.limiters.check(Limit::Mail, client.ip).await?;
    let budget = Budget::Session(current.session_id);
    let mut opened = None;
    let accepted = on_budget(&state.limiters, Some(&budget), async {
        let tx = opened.insert(Tx::begin(state).await?);
        mfa::accept(&state.db, tx.db(), key(state)?, current.user.id, &Proof::from_input(code)).await
    })
    .await?;
    let mut tx = opened.expect("BUG: the check opened the transaction");
    if !accepted {
        tx.rollback().await?;
        Entry::new(Event::MfaFailed, current.user.id, client).detail("disable").record(&state.writer).await?;
        return Err(ApiError::InvalidCode);
    }
    mfa::disable(tx.db(), current.user.id).await?;
    tx.notify(templates::mfa_disabled(&current.user.email, &context(state, client), false)).await?;
    Entry::new(Event::MfaDisabled, current.user.id, client).record(tx.db()).await?;
    tx.changed(current.user.id);
    tx.commit().await
}

/// Ten new recovery codes; the old ones stop working.
pub async fn regenerate_recovery_codes(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
) -> Result<Vec<String>, ApiError> {
    current.require_recent(state.config.reauth_max_age)?;
    if !current.user.mfa_enabled {
        return Err(ApiError::MfaNotEnabled);
    }
    state.limiters.check(Limit::Mail, client.ip).await?;
    let mut tx = Tx::begin(state).await?;
    let codes = mfa::replace_recovery_codes(tx.db(), current.user.id).await?;
    tx.notify(templates::recovery_codes_replaced(&current.user.email, &context(state, client))).await?;
    Entry::new(Event::RecoveryCodesRegenerated, current.user.id, client).record(tx.db()).await?;
    tx.commit().await?;
    Ok(codes)
}

/// A recovery code was used to sign in or to confirm a change: mailed and audited.
pub async fn note_recovery_code_used(
    state: &AppState,
    user: &user::Model,
    client: &ClientInfo,
) -> Result<(), ApiError> {
    let mut tx = Tx::begin(state).await?;
    tx.notify(templates::recovery_code_used(&user.email, &context(state, client))).await?;
    Entry::new(Event::RecoveryCodeUsed, user.id, client).record(tx.db()).await?;
    tx.commit().await
}

/// Proves it is the user again (the password, and a code with a second
/// factor on), on the session's failure budget: the session then counts as
/// recently signed in.
pub async fn reauthenticate(
    state: &AppState,
    current: &CurrentUser,
    client: &ClientInfo,
    password: &str,
    code: Option<&str>,
) -> Result<(), ApiError> {
    // Each try is a bcrypt check, like a login: the same limit per IP.
    state.limiters.check(Limit::Login, client.ip).await?;
    let budget = Budget::Session(current.session_id);
    let mut recovery = false;
    // Every wrong proof is an error (no refund); a right one passes.
    on_budget(&state.limiters, Some(&budget), async {
        if !crate::accounts::check_password(&state.passwords, Some(&current.user), password).await? {
            return Err(ApiError::InvalidCredentials);
        }
        if current.user.mfa_enabled {
            let code = code.filter(|c| !c.trim().is_empty()).ok_or(ApiError::InvalidCode)?;
            let proof = Proof::from_input(code);
            if !mfa::accept(&state.db, &state.writer, key(state)?, current.user.id, &proof).await? {
                Entry::new(Event::MfaFailed, current.user.id, client).detail("reauth").record(&state.writer).await?;
                return Err(ApiError::InvalidCode);
            }
            recovery = matches!(proof, Proof::Recovery(_));
        }
        Ok(true)
    })
    .await?;
    if recovery {
        note_recovery_code_used(state, &current.user, client).await?;
    }
    let mut tx = Tx::begin(state).await?;
    sessions::mark_authenticated(tx.db(), current.session_id).await?;
    Entry::new(Event::Reauthenticated, current.user.id, client).record(tx.db()).await?;
    tx.changed(current.user.id);
    tx.commit().await
}
