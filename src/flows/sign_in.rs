//! Signing in. Every way in ends in [`finish`]: the password ([`with_password`]),
//! the second step after it ([`with_second_factor`]), and the sign-in methods
//! still to come. A browser that signed in before carries a device cookie and
//! spends its own failure budget (`auth::devices`).

use uuid::Uuid;

use crate::{
    accounts,
    audit::{Entry, Event},
    auth::{
        devices,
        mfa::{self, Proof},
        ratelimit::{Budget, Limit},
        sessions::IssuedTokens,
        tokens::TokenType,
    },
    client::ClientInfo,
    clock::now,
    domain::Email,
    entity::user,
    error::{ApiError, FieldError},
    flows::{Tx, credentials::on_budget, second_factor},
    state::AppState,
};

/// A signed-in browser: its session's tokens, the user, and the device its
/// new `device_token` cookie names.
pub struct SignedIn {
    pub issued: IssuedTokens,
    pub user: user::Model,
    pub device: Uuid,
}

/// The password was right and the account has a second factor: the
/// `mfa_ticket` token to hand the browser (it lives `mfa::TICKET_TTL`).
pub struct SecondFactor {
    pub ticket: String,
}

pub enum PasswordOutcome {
    SignedIn(Box<SignedIn>),
    SecondFactor(SecondFactor),
}

/// Email, password, and the `device_token` cookie the browser sent, if any.
pub struct PasswordLogin<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub device_cookie: Option<String>,
}

/// Signs in with a password. An unknown email and a wrong password get the
/// same 401 `invalid_credentials` in the same time; the failure budget is
/// spent before bcrypt runs.
pub async fn with_password(
    state: &AppState,
    client: &ClientInfo,
    login: PasswordLogin<'_>,
) -> Result<PasswordOutcome, ApiError> {
    state.limiters.check(Limit::Login, client.ip).await?;
    let mut errors = Vec::new();
    if login.email.trim().is_empty() {
        errors.push(FieldError::new("email", "must not be empty"));
    }
    if login.password.is_empty() {
        errors.push(FieldError::new("password", "must not be empty"));
    }
    if !errors.is_empty() {
        return Err(ApiError::Validation(errors));
    }
    // A malformed email cannot belong to an account: treat it like an unknown one.
    let email = Email::parse(login.email).ok();
    let found = match &email {
        Some(email) => accounts::find_by_email(&state.db, email).await?,
        None => None,
    };
    let device = live_device(state, found.as_ref(), login.device_cookie.as_deref()).await?;
    let budget = match (device, &email) {
        (Some(device), _) => Some(Budget::Device(device)),
        (None, Some(email)) => Some(Budget::Account(email.as_str())),
        (None, None) => None,
    };
    let check = async {
        Ok(accounts::check_password(&state.passwords, found.as_ref(), login.password).await? && found.is_some())
    };
    let user = match (on_budget(&state.limiters, budget.as_ref(), check).await?, found) {
        (true, Some(user)) => user,
        (_, other) => {
            Entry::new(Event::LoginFailed, other.map(|u| u.id), client).record(&state.writer).await?;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if !user.is_active {
        return Err(ApiError::AccountDisabled);
    }
    if state.config.require_verified_email && !user.email_verified {
        return Err(ApiError::EmailNotVerified);
    }
    // After a BCRYPT_COST change, old hashes would make logins on old
    // accounts measurably faster or slower: upgrade them as they log in.
    let new_hash = if state.passwords.needs_rehash(&user.password_hash) {
        Some(state.passwords.hash(login.password).await?)
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
        return Ok(PasswordOutcome::SecondFactor(SecondFactor { ticket: token }));
    }
    Ok(PasswordOutcome::SignedIn(Box::new(finish(state, user, client, device, new_hash).await?)))
}

/// The device a `device_token` cookie names, when it is a live device of `user`.
async fn live_device(
    state: &AppState,
    user: Option<&user::Model>,
    cookie: Option<&str>,
) -> Result<Option<Uuid>, ApiError> {
    let (Some(user), Some(cookie)) = (user, cookie) else { return Ok(None) };
    let Some(claims) = state.tokens.verify(cookie, TokenType::Device).ok().filter(|c| c.sub == user.id) else {
        return Ok(None);
    };
    // A voided cookie (password changed, logout-all) counts as none.
    Ok(devices::is_live(&state.db, user.id, claims.jti).await?.then_some(claims.jti))
}

/// The second step of a login: the `mfa_ticket` token and a code or
/// recovery code. Wrong codes spend the login's failure budget like passwords.
pub async fn with_second_factor(
    state: &AppState,
    client: &ClientInfo,
    ticket_token: Option<String>,
    proof: Proof<'_>,
) -> Result<SignedIn, ApiError> {
    state.limiters.check(Limit::Login, client.ip).await?;
    let ticket_id = ticket_token
        .and_then(|t| state.tokens.verify(&t, TokenType::MfaTicket).ok())
        .map(|claims| claims.jti)
        .ok_or(ApiError::MfaTicketInvalid)?;
    // Counting the try is a write: on SQLite it queues on the one writer.
    let ticket = mfa::try_ticket(&state.writer, ticket_id).await?.ok_or(ApiError::MfaTicketInvalid)?;
    let user = accounts::find(&state.db, ticket.user_id).await?.ok_or(ApiError::MfaTicketInvalid)?;
    let budget = match ticket.device_id {
        Some(device) => Budget::Device(device),
        None => Budget::Account(&user.email),
    };
    let key = second_factor::key(state)?;
    // The code and the ticket are spent together: a verify that loses the
    // race for the ticket must not burn a recovery code.
    let mut opened = None;
    let accepted = on_budget(&state.limiters, Some(&budget), async {
        let tx = opened.insert(Tx::begin(state).await?);
        if !mfa::accept(&state.db, tx.db(), key, user.id, &proof).await? {
            return Ok(false);
        }
        if !mfa::close_ticket(tx.db(), ticket.id).await? {
            return Err(ApiError::MfaTicketInvalid);
        }
        Ok(true)
    })
    .await;
    // An error drops the transaction, which rolls it back.
    match (accepted?, opened) {
        (true, Some(tx)) => tx.commit().await?,
        (_, tx) => {
            if let Some(tx) = tx {
                tx.rollback().await?;
            }
            Entry::new(Event::MfaFailed, user.id, client).record(&state.writer).await?;
            return Err(ApiError::InvalidCode);
        }
    }
    if !user.is_active {
        return Err(ApiError::AccountDisabled);
    }
    if matches!(proof, Proof::Recovery(_)) {
        second_factor::note_recovery_code_used(state, &user, client).await?;
    }
    finish(state, user, client, ticket.device_id, None).await
}

/// Finishes a sign-in whose credentials (and second factor) were checked:
/// the login is recorded, a session starts, and the browser's device is
/// remembered (the same one again when it carried a live one: its budget
/// stays its own).
pub async fn finish(
    state: &AppState,
    user: user::Model,
    client: &ClientInfo,
    device: Option<Uuid>,
    new_hash: Option<String>,
) -> Result<SignedIn, ApiError> {
    let mut tx = Tx::begin(state).await?;
    let user = accounts::record_login(tx.db(), user, new_hash).await?;
    let issued = state.sessions.start(tx.db(), user.id, client).await?;
    let device = devices::remember(tx.db(), user.id, device).await?;
    Entry::new(Event::LoginSucceeded, user.id, client).record(tx.db()).await?;
    tx.changed(user.id);
    tx.commit().await?;
    tracing::info!(user_id = %user.id, session_id = %issued.session_id, "login succeeded");
    Ok(SignedIn { issued, user, device })
}
