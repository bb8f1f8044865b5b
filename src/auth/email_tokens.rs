//! Single-use tokens sent by mail (verify an address, reset a password,
//! confirm an email change): the only module that touches `email_tokens`.
//!
//! A token is 256 random bits, base64url; only its SHA-256 digest is stored,
//! so a copy of the table cannot be turned into working links (and lookups by
//! digest leak nothing useful through timing). A token is spent by one
//! conditional UPDATE, so of two concurrent uses exactly one wins. Issuing a
//! token voids the user's older ones of the same purpose.

use base64::Engine;
use chrono::{DateTime, Utc};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, Set, sea_query::Expr};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{clock::now, entity::email_token, error::ApiError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Purpose {
    VerifyEmail,
    ResetPassword,
    ChangeEmail,
}

impl Purpose {
    pub fn as_str(self) -> &'static str {
        match self {
            Purpose::VerifyEmail => "verify_email",
            Purpose::ResetPassword => "reset_password",
            Purpose::ChangeEmail => "change_email",
        }
    }
}

/// The longest token accepted from a client (ours are 43 characters).
pub const MAX_TOKEN_CHARS: usize = 128;

fn digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// Creates a token for `user_id`, voiding their older ones of `purpose`, on the
/// caller's transaction. Returns the token itself: it goes into the mail and
/// nowhere else.
pub async fn issue(
    db: &impl ConnectionTrait,
    user_id: Uuid,
    purpose: Purpose,
    lifetime: std::time::Duration,
    new_email: Option<&str>,
) -> Result<String, ApiError> {
    let now = now();
    void(db, user_id, purpose).await?;
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
    email_token::ActiveModel {
        id: Set(Uuid::new_v4()),
        user_id: Set(user_id),
        purpose: Set(purpose.as_str().to_owned()),
        token_hash: Set(digest(&token)),
        new_email: Set(new_email.map(str::to_owned)),
        created_at: Set(now),
        expires_at: Set(now + chrono::Duration::from_std(lifetime).unwrap_or(chrono::Duration::MAX)),
        used_at: Set(None),
    }
    .insert(db)
    .await?;
    Ok(token)
}

/// The token's row if it could be spent now (unused, unexpired, of `purpose`),
/// without spending it: lets a handler check everything else first, so a
/// rejected new password does not burn the link.
pub async fn peek(
    db: &impl ConnectionTrait,
    token: &str,
    purpose: Purpose,
) -> Result<Option<email_token::Model>, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Ok(None);
    }
    let now = now();
    Ok(email_token::Entity::find()
        .filter(email_token::Column::TokenHash.eq(digest(token)))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::ExpiresAt.gt(now))
        .one(db)
        .await?
        .filter(|row| row.expires_at > now))
}

/// Spends the token: `true` for exactly one caller, ever.
pub async fn spend(db: &impl ConnectionTrait, token: &str, purpose: Purpose) -> Result<bool, ApiError> {
    if token.is_empty() || token.len() > MAX_TOKEN_CHARS {
        return Ok(false);
    }
    let now: DateTime<Utc> = now();
    let spent = email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, Expr::value(now))
        .filter(email_token::Column::TokenHash.eq(digest(token)))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .filter(email_token::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?
        .rows_affected;
    Ok(spent == 1)
}

/// Voids every outstanding token of `purpose` for the user.
pub async fn void(db: &impl ConnectionTrait, user_id: Uuid, purpose: Purpose) -> Result<(), ApiError> {
    email_token::Entity::update_many()
        .col_expr(email_token::Column::UsedAt, Expr::value(now()))
        .filter(email_token::Column::UserId.eq(user_id))
        .filter(email_token::Column::Purpose.eq(purpose.as_str()))
        .filter(email_token::Column::UsedAt.is_null())
        .exec(db)
        .await?;
    Ok(())
}

/// Deletes tokens that can never be used again (used, voided or expired).
pub async fn purge_dead(db: &impl ConnectionTrait) -> Result<u64, sea_orm::DbErr> {
    use sea_orm::Condition;
    let now = now();
    Ok(email_token::Entity::delete_many()
        .filter(
            Condition::any().add(email_token::Column::UsedAt.is_not_null()).add(email_token::Column::ExpiresAt.lt(now)),
        )
        .exec(db)
        .await?
        .rows_affected)
}
