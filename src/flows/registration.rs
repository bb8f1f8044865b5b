//! Creating an account: validated input, the user row, a verification mail,
//! and a session unless `REQUIRE_VERIFIED_EMAIL` holds it back.

use crate::{
    accounts::{self, NewAccount},
    audit::{Entry, Event},
    auth::{ratelimit::Limit, sessions::IssuedTokens},
    client::ClientInfo,
    domain::{Email, NewPassword, Role, parse_full_name, personal_words},
    entity::user,
    error::ApiError,
    flows::{Tx, email},
    state::AppState,
};

/// What a registration asks for, unchecked.
pub struct Registration<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub full_name: Option<&'a str>,
}

pub enum Registered {
    /// Signed in at once.
    SignedIn(user::Model, IssuedTokens),
    /// `REQUIRE_VERIFIED_EMAIL=true`: signs in once the address is verified.
    PendingVerification(user::Model),
}

/// 409 `email_taken` when the address has an account; 422 lists every invalid field.
pub async fn register(state: &AppState, client: &ClientInfo, input: Registration<'_>) -> Result<Registered, ApiError> {
    state.limiters.check(Limit::Register, client.ip).await?;
    let mut errors = Vec::new();
    let email = Email::parse(input.email).map_err(|e| errors.push(e)).ok();
    let full_name = parse_full_name(input.full_name).map_err(|e| errors.push(e)).ok();
    let words = personal_words(input.email, input.full_name);
    let personal: Vec<&str> = words.iter().map(String::as_str).collect();
    let password = NewPassword::parse("password", input.password, &personal).map_err(|e| errors.push(e)).ok();
    let (Some(email), Some(password), Some(full_name)) = (email, password, full_name) else {
        return Err(ApiError::Validation(errors));
    };

    let password_hash = state.passwords.hash(password.expose()).await?;
    let signed_in = !state.config.require_verified_email;
    let mut tx = Tx::begin(state).await?;
    let new = NewAccount {
        email: &email,
        password_hash,
        full_name,
        role: Role::User,
        is_active: true,
        email_verified: false,
        signed_in,
    };
    let user = accounts::create(tx.db(), new).await?;
    Entry::new(Event::Register, user.id, client).record(tx.db()).await?;
    email::queue_verification(state, &mut tx, &user, client).await?;
    if !signed_in {
        tx.commit().await?;
        tracing::info!(user_id = %user.id, "user registered; waiting for verification");
        return Ok(Registered::PendingVerification(user));
    }
    let issued = state.sessions.start(tx.db(), user.id, client).await?;
    tx.commit().await?;
    tracing::info!(user_id = %user.id, "user registered");
    Ok(Registered::SignedIn(user, issued))
}
