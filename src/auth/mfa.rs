//! The second factor: TOTP (RFC 6238: SHA-1, 6 digits, 30-second steps, one
//! step of drift either way), recovery codes and login tickets. The only
//! module that touches `mfa_totp`, `recovery_codes` and `mfa_tickets`.
//!
//! - A secret is 160 random bits, encrypted at rest ([`DataKey`]).
//! - A code works once: accepting one records its time step, and only a later
//!   step is accepted after it (one conditional UPDATE, so two concurrent
//!   uses of one code cannot both pass).
//! - Recovery codes are 80 random bits each, shown once, stored as SHA-256
//!   digests, each spent by one conditional UPDATE.

use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Set,
    sea_query::{Expr, ExprTrait},
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use totp_rs::{Algorithm, TOTP};
use uuid::Uuid;

use crate::{
    auth::crypto::DataKey,
    clock::now,
    entity::{mfa_ticket, mfa_totp, recovery_code, user},
    error::ApiError,
};

pub const RECOVERY_CODES: usize = 10;
/// Tries of a code per login ticket.
pub const TICKET_TRIES: i32 = 5;
/// A login ticket's lifetime (the `mfa_ticket` cookie's `Max-Age`).
pub const TICKET_TTL: std::time::Duration = std::time::Duration::from_secs(300);
const STEP_SECS: u64 = 30;

/// What the person types: a 6-digit code, or a recovery code.
#[derive(Clone, Debug)]
pub enum Proof<'a> {
    Totp(&'a str),
    Recovery(&'a str),
}

impl<'a> Proof<'a> {
    /// Six digits are a TOTP code; anything else is read as a recovery code.
    pub fn from_input(input: &'a str) -> Self {
        let trimmed = input.trim();
        if trimmed.len() == 6 && trimmed.bytes().all(|b| b.is_ascii_digit()) {
            Proof::Totp(trimmed)
        } else {
            Proof::Recovery(trimmed)
        }
    }
}

/// A new secret to show once, before it is enabled.
pub struct Setup {
    pub secret_base32: String,
    pub otpauth_uri: String,
    pub qr_svg: String,
}

fn totp(secret: Vec<u8>, issuer: &str, account: &str) -> anyhow::Result<TOTP> {
    // Issuer and account may not contain `:` in an otpauth label.
    let issuer = issuer.replace(':', " ");
    let account = account.replace(':', " ");
    TOTP::new(Algorithm::SHA1, 6, 1, STEP_SECS, secret, Some(issuer), account)
        .map_err(|e| anyhow::anyhow!("TOTP parameters: {e}"))
}

/// Whether `user_id` started a setup (or has TOTP on).
pub async fn has_setup(db: &impl ConnectionTrait, user_id: Uuid) -> Result<bool, ApiError> {
    Ok(mfa_totp::Entity::find_by_id(user_id).one(db).await?.is_some())
}

/// Starts (or restarts) a setup: a fresh secret, stored encrypted but not enabled.
pub async fn begin_setup(
    db: &impl ConnectionTrait,
    key: &DataKey,
    user: &user::Model,
    issuer: &str,
) -> Result<Setup, ApiError> {
    let mut secret = vec![0u8; 20];
    rand::rng().fill_bytes(&mut secret);
    let generator = totp(secret.clone(), issuer, &user.email).map_err(ApiError::Internal)?;
    let uri = generator.get_url();
    let qr = qrcode::QrCode::new(uri.as_bytes()).map_err(|e| ApiError::Internal(anyhow::anyhow!("QR code: {e}")))?;
    let qr_svg = qr.render::<qrcode::render::svg::Color>().min_dimensions(200, 200).build();
    mfa_totp::Entity::delete_by_id(user.id).exec(db).await?;
    mfa_totp::ActiveModel {
        user_id: Set(user.id),
        secret_enc: Set(key.encrypt(&secret)),
        enabled_at: Set(None),
        last_step: Set(None),
        created_at: Set(now()),
    }
    .insert(db)
    .await?;
    Ok(Setup { secret_base32: generator.get_secret_base32(), otpauth_uri: uri, qr_svg })
}

/// The step `code` matches now (one step of drift either way), if any, in
/// constant time per candidate.
fn matching_step(secret: Vec<u8>, code: &str, at: DateTime<Utc>) -> Option<i64> {
    let code = code.trim();
    if code.len() != 6 || !code.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let generator = totp(secret, "x", "x").ok()?;
    let now = u64::try_from(at.timestamp()).ok()?;
    let current = now / STEP_SECS;
    let mut found = None;
    for step in [current.saturating_sub(1), current, current + 1] {
        let expected = generator.generate(step * STEP_SECS);
        if bool::from(expected.as_bytes().ct_eq(code.as_bytes())) && found.is_none() {
            found = i64::try_from(step).ok();
        }
    }
    found
}

/// Checks a TOTP code against the user's secret (enabled, or only pending when
/// `pending` is true) and records its step, so it never works again.
///
/// The secret is read on `reader` and the step recorded on `writer`: in a
/// transaction, pass the pool as `reader`, so the transaction's first
/// statement is the write (SQLite refuses a read-then-write transaction when
/// another connection wrote in between).
pub async fn accept_totp(
    reader: &impl ConnectionTrait,
    writer: &impl ConnectionTrait,
    key: &DataKey,
    user_id: Uuid,
    code: &str,
    pending: bool,
) -> Result<bool, ApiError> {
    let Some(row) = mfa_totp::Entity::find_by_id(user_id).one(reader).await? else {
        return Ok(false);
    };
    if row.enabled_at.is_some() == pending {
        return Ok(false);
    }
    let (secret, with_previous_key) = key.decrypt(&row.secret_enc).map_err(ApiError::Internal)?;
    let Some(step) = matching_step(secret.clone(), code, now()) else {
        return Ok(false);
    };
    // Replay protection: only a step after the last accepted one, in one update.
    let mut update = mfa_totp::Entity::update_many()
        .col_expr(mfa_totp::Column::LastStep, Expr::value(step))
        .filter(mfa_totp::Column::UserId.eq(user_id))
        .filter(Condition::any().add(mfa_totp::Column::LastStep.is_null()).add(mfa_totp::Column::LastStep.lt(step)));
    if with_previous_key {
        update = update.col_expr(mfa_totp::Column::SecretEnc, Expr::value(key.encrypt(&secret)));
    }
    Ok(update.exec(writer).await?.rows_affected == 1)
}

/// Turns a pending setup on (after its first code was accepted) and returns
/// fresh recovery codes.
pub async fn enable(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<String>, ApiError> {
    mfa_totp::Entity::update_many()
        .col_expr(mfa_totp::Column::EnabledAt, Expr::value(now()))
        .filter(mfa_totp::Column::UserId.eq(user_id))
        .exec(db)
        .await?;
    set_enabled_flag(db, user_id, true).await?;
    replace_recovery_codes(db, user_id).await
}

/// Removes the second factor and its recovery codes.
pub async fn disable(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), ApiError> {
    mfa_totp::Entity::delete_by_id(user_id).exec(db).await?;
    recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(db).await?;
    mfa_ticket::Entity::delete_many().filter(mfa_ticket::Column::UserId.eq(user_id)).exec(db).await?;
    set_enabled_flag(db, user_id, false).await
}

async fn set_enabled_flag(db: &impl ConnectionTrait, user_id: Uuid, on: bool) -> Result<(), ApiError> {
    user::Entity::update_many()
        .col_expr(user::Column::MfaEnabled, Expr::value(on))
        .col_expr(user::Column::UpdatedAt, Expr::value(now()))
        .filter(user::Column::Id.eq(user_id))
        .exec(db)
        .await?;
    Ok(())
}

fn normalize_recovery(code: &str) -> String {
    code.chars().filter(|c| c.is_ascii_alphanumeric()).map(|c| c.to_ascii_lowercase()).collect()
}

fn recovery_digest(code: &str) -> String {
    hex::encode(Sha256::digest(normalize_recovery(code).as_bytes()))
}

/// Voids the user's recovery codes and makes ten new ones (returned once).
pub async fn replace_recovery_codes(db: &impl ConnectionTrait, user_id: Uuid) -> Result<Vec<String>, ApiError> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789"; // no 0/o, 1/l/i
    recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(db).await?;
    let mut codes = Vec::with_capacity(RECOVERY_CODES);
    for _ in 0..RECOVERY_CODES {
        // 16 characters of a 31-letter alphabet: 79 bits.
        let mut raw = [0u8; 16];
        rand::rng().fill_bytes(&mut raw);
        let chars: String = raw.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
        let code = format!("{}-{}-{}-{}", &chars[0..4], &chars[4..8], &chars[8..12], &chars[12..16]);
        recovery_code::ActiveModel {
            id: Set(Uuid::new_v4()),
            user_id: Set(user_id),
            code_hash: Set(recovery_digest(&code)),
            created_at: Set(now()),
            used_at: Set(None),
        }
        .insert(db)
        .await?;
        codes.push(code);
    }
    Ok(codes)
}

/// Spends one recovery code: `true` for exactly one caller.
pub async fn spend_recovery_code(db: &impl ConnectionTrait, user_id: Uuid, code: &str) -> Result<bool, ApiError> {
    let normalized = normalize_recovery(code);
    if normalized.is_empty() || normalized.len() > 64 {
        return Ok(false);
    }
    let spent = recovery_code::Entity::update_many()
        .col_expr(recovery_code::Column::UsedAt, Expr::value(now()))
        .filter(recovery_code::Column::UserId.eq(user_id))
        .filter(recovery_code::Column::CodeHash.eq(recovery_digest(code)))
        .filter(recovery_code::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(spent == 1)
}

/// Checks a proof for a user whose second factor is on (see [`accept_totp`]
/// for `reader` and `writer`).
pub async fn accept(
    reader: &impl ConnectionTrait,
    writer: &impl ConnectionTrait,
    key: &DataKey,
    user_id: Uuid,
    proof: &Proof<'_>,
) -> Result<bool, ApiError> {
    match proof {
        Proof::Totp(code) => accept_totp(reader, writer, key, user_id, code, false).await,
        Proof::Recovery(code) => spend_recovery_code(writer, user_id, code).await,
    }
}

/// Opens a login ticket after a right password.
pub async fn open_ticket(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    device_id: Option<Uuid>,
) -> Result<mfa_ticket::Model, ApiError> {
    let now = now();
    Ok(mfa_ticket::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        device_id: Set(device_id),
        attempts: Set(0),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(TICKET_TTL).expect("BUG: small duration")),
        used_at: Set(None),
    }
    .insert(db)
    .await?)
}

/// Counts one try of a live ticket; `None` when it is unknown, used, expired
/// or out of tries (one conditional update, so tries cannot race past five).
pub async fn try_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> Result<Option<mfa_ticket::Model>, ApiError> {
    let now = now();
    let counted = mfa_ticket::Entity::update_many()
        .col_expr(mfa_ticket::Column::Attempts, Expr::col(mfa_ticket::Column::Attempts).add(1))
        .filter(mfa_ticket::Column::Id.eq(ticket_id))
        .filter(mfa_ticket::Column::UsedAt.is_null())
        .filter(mfa_ticket::Column::ExpiresAt.gt(now))
        .filter(mfa_ticket::Column::Attempts.lt(TICKET_TRIES))
        .exec(db)
        .await?
        .rows_affected;
    if counted == 0 {
        return Ok(None);
    }
    Ok(mfa_ticket::Entity::find_by_id(ticket_id).one(db).await?)
}

/// Spends the ticket once its code was right: `true` for exactly one caller.
pub async fn close_ticket(db: &impl ConnectionTrait, ticket_id: Uuid) -> Result<bool, ApiError> {
    let closed = mfa_ticket::Entity::update_many()
        .col_expr(mfa_ticket::Column::UsedAt, Expr::value(now()))
        .filter(mfa_ticket::Column::Id.eq(ticket_id))
        .filter(mfa_ticket::Column::UsedAt.is_null())
        .exec(db)
        .await?
        .rows_affected;
    Ok(closed == 1)
}

/// Ends every open login ticket of the user (their password just changed).
pub async fn close_all_tickets(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), ApiError> {
    mfa_ticket::Entity::delete_many().filter(mfa_ticket::Column::UserId.eq(user_id)).exec(db).await?;
    Ok(())
}

/// Deletes tickets that can never be used again.
pub async fn purge_dead_tickets(db: &impl ConnectionTrait) -> Result<u64, sea_orm::DbErr> {
    let now = now();
    Ok(mfa_ticket::Entity::delete_many()
        .filter(
            Condition::any().add(mfa_ticket::Column::UsedAt.is_not_null()).add(mfa_ticket::Column::ExpiresAt.lt(now)),
        )
        .exec(db)
        .await?
        .rows_affected)
}

/// Deletes every second-factor row of `user_id` (the account is going).
pub async fn forget_user(db: &impl ConnectionTrait, user_id: Uuid) -> Result<(), ApiError> {
    mfa_ticket::Entity::delete_many().filter(mfa_ticket::Column::UserId.eq(user_id)).exec(db).await?;
    recovery_code::Entity::delete_many().filter(recovery_code::Column::UserId.eq(user_id)).exec(db).await?;
    mfa_totp::Entity::delete_by_id(user_id).exec(db).await?;
    Ok(())
}

/// Whether any user has a second factor (production then needs the key).
pub async fn any_enabled(db: &impl ConnectionTrait) -> Result<bool, sea_orm::DbErr> {
    use sea_orm::PaginatorTrait;
    Ok(user::Entity::find().filter(user::Column::MfaEnabled.eq(true)).count(db).await? > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_match_their_step_and_one_step_of_drift_but_not_two() {
        let secret = b"12345678901234567890".to_vec();
        let generator = totp(secret.clone(), "t", "a").unwrap();
        let at = DateTime::from_timestamp(59, 0).unwrap(); // step 1
        let code_at = |secs: u64| generator.generate(secs);
        assert_eq!(code_at(59), "287082", "RFC 6238's SHA-1 test vector");
        assert_eq!(matching_step(secret.clone(), &code_at(59), at), Some(1));
        assert_eq!(matching_step(secret.clone(), &code_at(29), at), Some(0));
        assert_eq!(matching_step(secret.clone(), &code_at(89), at), Some(2));
        assert_eq!(matching_step(secret.clone(), &code_at(119), at), None, "two steps ahead");
        assert_eq!(matching_step(secret.clone(), "12345", at), None);
        assert_eq!(matching_step(secret, "abcdef", at), None);
    }

    #[test]
    fn recovery_codes_are_read_loosely() {
        assert_eq!(recovery_digest("ABCD-efgh 2345-6789"), recovery_digest("abcdefgh23456789"));
    }
}
