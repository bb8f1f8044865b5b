//! Sessions and their refresh tokens: the only module that reads or writes
//! `sessions` and `refresh_tokens` rows. Login starts a session, refresh rotates
//! its token (single use, with a grace window for racing tabs and theft
//! detection after it), logout revokes it.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait, sea_query::Expr,
};
use uuid::Uuid;

use crate::{
    audit::{Entry, Event},
    auth::{
        session_cache::{LiveSession, SessionCache},
        tokens::{Claims, TokenError, TokenKeys, TokenType},
    },
    client::ClientInfo,
    clock::now,
    config::Config,
    entity::{refresh_token, session, user},
    error::ApiError,
};

/// The lifetimes that shape a session (see `docs/SESSIONS.md`).
#[derive(Clone, Copy, Debug)]
pub struct SessionPolicy {
    pub access_token_ttl: Duration,
    /// Idle timeout: each refresh starts it again.
    pub refresh_token_ttl: Duration,
    /// Absolute limit from login; no refresh extends a session past it.
    pub session_max_age: Duration,
    /// How long a rotated refresh token may be presented again by a racing tab.
    pub refresh_reuse_grace: Duration,
}

impl SessionPolicy {
    pub fn from_config(config: &Config) -> Self {
        Self {
            access_token_ttl: chrono(config.access_token_ttl),
            refresh_token_ttl: chrono(config.refresh_token_ttl),
            session_max_age: chrono(config.session_max_age),
            refresh_reuse_grace: chrono(config.refresh_reuse_grace),
        }
    }
}

/// Everything session code needs, and nothing else: the database, the token
/// keys and the lifetimes. Cheap to clone; the CLI and tests build their own.
#[derive(Clone)]
pub struct Sessions {
    db: DatabaseConnection,
    /// Where its transactions run (see `AppState::writer`).
    writer: DatabaseConnection,
    tokens: Arc<TokenKeys>,
    policy: SessionPolicy,
    cache: Arc<SessionCache>,
}

/// Tokens to hand to the browser. `refresh_token` is `None` when a tab lost a
/// refresh race: it must keep the successor the winning tab received.
pub struct IssuedTokens {
    pub session_id: Uuid,
    /// When the tokens were signed; cookie lifetimes count from here.
    pub issued_at: DateTime<Utc>,
    pub access_token: String,
    pub access_expires_at: DateTime<Utc>,
    pub refresh_token: Option<String>,
    pub refresh_expires_at: DateTime<Utc>,
}

fn chrono(d: std::time::Duration) -> Duration {
    Duration::from_std(d).unwrap_or(Duration::MAX)
}

impl Sessions {
    pub fn new(
        db: DatabaseConnection,
        writer: DatabaseConnection,
        tokens: Arc<TokenKeys>,
        policy: SessionPolicy,
        cache: Arc<SessionCache>,
    ) -> Self {
        Self { db, writer, tokens, policy, cache }
    }

    pub fn cache(&self) -> &Arc<SessionCache> {
        &self.cache
    }

    /// Call after committing any change to a user or to one of their sessions:
    /// no instance keeps serving the cached state (see `session_cache`).
    pub fn changed(&self, user_id: Uuid) {
        self.cache.forget_user(user_id);
    }

    /// Opens a session for a user whose credentials were just checked, on the
    /// caller's transaction (so the session lands with the login or registration).
    pub async fn start(
        &self,
        txn: &impl ConnectionTrait,
        user_id: Uuid,
        client: &ClientInfo,
    ) -> Result<IssuedTokens, ApiError> {
        let now = now();
        let session_id = Uuid::now_v7();
        let max_expires_at = now + self.policy.session_max_age;
        let refresh_expires_at = (now + self.policy.refresh_token_ttl).min(max_expires_at);
        let (refresh_token, jti) =
            self.tokens.sign(TokenType::Refresh, user_id, session_id, now, refresh_expires_at)?;

        session::ActiveModel {
            id: Set(session_id),
            user_id: Set(user_id),
            created_at: Set(now),
            last_used_at: Set(now),
            expires_at: Set(refresh_expires_at),
            max_expires_at: Set(max_expires_at),
            revoked_at: Set(None),
            user_agent: Set(client.user_agent.clone()),
            ip: Set(client.ip.map(|ip| ip.to_string())),
            authenticated_at: Set(Some(now)),
        }
        .insert(txn)
        .await?;
        insert_refresh_row(txn, jti, session_id, now, refresh_expires_at).await?;

        let (access_token, access_expires_at) = self.sign_access(user_id, session_id, now, max_expires_at)?;
        Ok(IssuedTokens {
            session_id,
            issued_at: now,
            access_token,
            access_expires_at,
            refresh_token: Some(refresh_token),
            refresh_expires_at,
        })
    }

    /// Exchanges a refresh token for new tokens (`docs/SESSIONS.md`, "Refresh").
    pub async fn rotate(
        &self,
        presented: Option<&str>,
        client: &ClientInfo,
    ) -> Result<(IssuedTokens, user::Model), ApiError> {
        let presented = presented.ok_or(ApiError::RefreshTokenMissing)?;
        let claims = match self.tokens.verify(presented, TokenType::Refresh) {
            Ok(claims) => claims,
            Err(TokenError::Expired) => return Err(self.expired_refresh_error(presented).await),
            Err(TokenError::Invalid | TokenError::UnknownKey) => return Err(ApiError::RefreshTokenInvalid),
        };
        let now = now();
        let new_jti = Uuid::new_v4();

        let txn = self.writer.begin().await?;
        // Claim the token first: a write as the transaction's first statement takes
        // the write lock up front, and `used_at IS NULL` lets exactly one racer win.
        let claimed = refresh_token::Entity::update_many()
            .col_expr(refresh_token::Column::UsedAt, Expr::value(now))
            .col_expr(refresh_token::Column::ReplacedBy, Expr::value(new_jti))
            // Primary key only: a secondary-index range lock here deadlocks MySQL
            // against the winner's insert. `jti` and `sid` are both signed anyway.
            .filter(refresh_token::Column::Id.eq(claims.jti))
            .filter(refresh_token::Column::UsedAt.is_null())
            .exec(&txn)
            .await?
            .rows_affected
            == 1;

        let (session, user) = load_live_session(&txn, &claims, now).await?;
        if !claimed {
            txn.rollback().await?;
            return self.raced_or_reused(&claims, &session, client).await;
        }

        let refresh_expires_at = (now + self.policy.refresh_token_ttl).min(session.max_expires_at);
        let new_token =
            self.tokens.sign_with_jti(TokenType::Refresh, user.id, claims.sid, new_jti, now, refresh_expires_at)?;
        insert_refresh_row(&txn, new_jti, claims.sid, now, refresh_expires_at).await?;
        session::Entity::update_many()
            .col_expr(session::Column::LastUsedAt, Expr::value(now))
            .col_expr(session::Column::ExpiresAt, Expr::value(refresh_expires_at))
            .filter(session::Column::Id.eq(claims.sid))
            .exec(&txn)
            .await?;
        Entry::new(Event::Refresh, user.id, client).record(&txn).await?;
        txn.commit().await?;

        let (access_token, access_expires_at) = self.sign_access(user.id, claims.sid, now, session.max_expires_at)?;
        let issued = IssuedTokens {
            session_id: claims.sid,
            issued_at: now,
            access_token,
            access_expires_at,
            refresh_token: Some(new_token),
            refresh_expires_at,
        };
        Ok((issued, user))
    }

    /// A token that was already rotated: a racing tab inside the grace window gets
    /// a fresh access token only; anyone later is treated as a thief.
    async fn raced_or_reused(
        &self,
        claims: &Claims,
        session: &session::Model,
        client: &ClientInfo,
    ) -> Result<(IssuedTokens, user::Model), ApiError> {
        let Some(row) = refresh_token::Entity::find_by_id(claims.jti).one(&self.db).await? else {
            return Err(ApiError::RefreshTokenInvalid);
        };
        // The clock is read after the winner's rotation is visible: a time
        // taken before waiting on its lock would be earlier than its `used_at`
        // and count as "inside the grace window" even with no grace at all.
        let now = now();
        let used_at = row.used_at.unwrap_or(now);
        let grace = self.policy.refresh_reuse_grace;
        let successor = match row.replaced_by {
            Some(id) if now < used_at + grace => refresh_token::Entity::find_by_id(id).one(&self.db).await?,
            _ => None,
        };
        let Some(successor) = successor else {
            let txn = self.writer.begin().await?;
            revoke(&txn, session.id).await?;
            Entry::new(Event::RefreshReuseDetected, session.user_id, client)
                .detail(format!("session {}", session.id))
                .record(&txn)
                .await?;
            txn.commit().await?;
            self.changed(session.user_id);
            tracing::warn!(session_id = %session.id, user_id = %session.user_id, "refresh token reused: session revoked");
            return Err(ApiError::RefreshTokenReused);
        };
        let user = user::Entity::find_by_id(session.user_id).one(&self.db).await?.ok_or(ApiError::SessionRevoked)?;
        let (access_token, access_expires_at) = self.sign_access(user.id, session.id, now, session.max_expires_at)?;
        let issued = IssuedTokens {
            session_id: session.id,
            issued_at: now,
            access_token,
            access_expires_at,
            refresh_token: None,
            refresh_expires_at: successor.expires_at,
        };
        Ok((issued, user))
    }

    /// Tells a session past its absolute limit from a token that merely idled out.
    async fn expired_refresh_error(&self, presented: &str) -> ApiError {
        let Ok(claims) = self.tokens.verify_ignoring_expiry(presented, TokenType::Refresh) else {
            return ApiError::RefreshTokenInvalid;
        };
        match session::Entity::find_by_id(claims.sid).one(&self.db).await {
            Ok(Some(s)) if now() >= s.max_expires_at => ApiError::SessionExpired,
            Ok(_) => ApiError::RefreshTokenExpired,
            Err(e) => e.into(),
        }
    }

    /// Checks an access token's session and user on every authenticated request,
    /// so logout, revocation and deactivation take effect at once, not when the
    /// access token expires: from the session cache when it holds the session,
    /// else one primary-key lookup joined to its user.
    pub async fn authenticate(&self, claims: &Claims) -> Result<LiveSession, ApiError> {
        if let Some(live) = self.cache.get(claims.sid, claims.sub) {
            return Ok(live);
        }
        let stamp = self.cache.stamp(claims.sub);
        let found = session::Entity::find_by_id(claims.sid).find_also_related(user::Entity).one(&self.db).await?;
        match found {
            Some((session, Some(user))) if session.user_id == claims.sub => {
                if session.revoked_at.is_some() {
                    Err(ApiError::SessionRevoked)
                } else if !user.is_active {
                    Err(ApiError::AccountDisabled)
                } else {
                    let authenticated_at = session.authenticated_at.unwrap_or(session.created_at);
                    let live = LiveSession { user, session_id: session.id, authenticated_at };
                    self.cache.put(stamp, live.clone());
                    Ok(live)
                }
            }
            _ => Err(ApiError::TokenInvalid),
        }
    }

    /// Revokes the session a token names, if the token is genuine (expired is fine:
    /// logging out with a stale cookie must still end the session).
    pub async fn logout_by_token(&self, token: &str, typ: TokenType, client: &ClientInfo) -> Result<(), ApiError> {
        let Ok(claims) = self.tokens.verify_reloading(token, typ, false).await else {
            return Ok(());
        };
        let txn = self.writer.begin().await?;
        let revoked = revoke_own(&txn, claims.sub, claims.sid).await?;
        if revoked {
            Entry::new(Event::Logout, claims.sub, client).record(&txn).await?;
        }
        txn.commit().await?;
        self.changed(claims.sub);
        Ok(())
    }

    /// A user's sessions that can still be used, newest first.
    pub async fn list_live(&self, user_id: Uuid) -> Result<Vec<session::Model>, ApiError> {
        use sea_orm::QueryOrder;
        let now = now();
        Ok(session::Entity::find()
            .filter(session::Column::UserId.eq(user_id))
            .filter(session::Column::RevokedAt.is_null())
            .filter(session::Column::ExpiresAt.gt(now))
            .filter(session::Column::MaxExpiresAt.gt(now))
            .order_by_desc(session::Column::LastUsedAt)
            .order_by_desc(session::Column::CreatedAt)
            .all(&self.db)
            .await?)
    }

    fn sign_access(
        &self,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
        max_expires_at: DateTime<Utc>,
    ) -> Result<(String, DateTime<Utc>), ApiError> {
        let expires_at = (now + self.policy.access_token_ttl).min(max_expires_at);
        let (token, _) = self.tokens.sign(TokenType::Access, user_id, session_id, now, expires_at)?;
        Ok((token, expires_at))
    }
}

/// The session and its user, if the session may still be refreshed.
async fn load_live_session(
    db: &impl ConnectionTrait,
    claims: &Claims,
    now: DateTime<Utc>,
) -> Result<(session::Model, user::Model), ApiError> {
    let Some((session, Some(user))) =
        session::Entity::find_by_id(claims.sid).find_also_related(user::Entity).one(db).await?
    else {
        // Deleted along with its user.
        return Err(ApiError::SessionRevoked);
    };
    if session.revoked_at.is_some() || session.user_id != claims.sub || !user.is_active {
        return Err(ApiError::SessionRevoked);
    }
    if now >= session.max_expires_at {
        return Err(ApiError::SessionExpired);
    }
    Ok((session, user))
}

/// Records that the session just proved a credential again (`POST /auth/reauth`).
pub async fn mark_authenticated(db: &impl ConnectionTrait, session_id: Uuid) -> Result<(), ApiError> {
    session::Entity::update_many()
        .col_expr(session::Column::AuthenticatedAt, Expr::value(now()))
        .filter(session::Column::Id.eq(session_id))
        .exec(db)
        .await?;
    Ok(())
}

/// The one way sessions get revoked: every live session matching `which` is
/// marked revoked now. Returns how many were.
async fn revoke_where(db: &impl ConnectionTrait, which: Condition) -> Result<u64, ApiError> {
    let result = session::Entity::update_many()
        .col_expr(session::Column::RevokedAt, Expr::value(now()))
        .filter(which)
        .filter(session::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    Ok(result.rows_affected)
}

/// Revokes one session; its refresh tokens stop working and so do its access tokens.
pub async fn revoke(db: &impl ConnectionTrait, session_id: Uuid) -> Result<bool, ApiError> {
    Ok(revoke_where(db, Condition::all().add(session::Column::Id.eq(session_id))).await? > 0)
}

/// Revokes one of the user's own live sessions; `false` when there is none by that id.
pub async fn revoke_own(db: &impl ConnectionTrait, user_id: Uuid, session_id: Uuid) -> Result<bool, ApiError> {
    let which = Condition::all().add(session::Column::Id.eq(session_id)).add(session::Column::UserId.eq(user_id));
    Ok(revoke_where(db, which).await? > 0)
}

/// Revokes every live session of a user, except `keep` if given.
pub async fn revoke_all(db: &impl ConnectionTrait, user_id: Uuid, keep: Option<Uuid>) -> Result<u64, ApiError> {
    let mut which = Condition::all().add(session::Column::UserId.eq(user_id));
    if let Some(keep) = keep {
        which = which.add(session::Column::Id.ne(keep));
    }
    revoke_where(db, which).await
}

async fn insert_refresh_row(
    db: &impl ConnectionTrait,
    jti: Uuid,
    session_id: Uuid,
    now: DateTime<Utc>,
    expires_at: DateTime<Utc>,
) -> Result<(), ApiError> {
    refresh_token::ActiveModel {
        id: Set(jti),
        session_id: Set(session_id),
        issued_at: Set(now),
        expires_at: Set(expires_at),
        used_at: Set(None),
        replaced_by: Set(None),
    }
    .insert(db)
    .await?;
    Ok(())
}

/// How long a refresh-token row outlives its expiry before it is purged (more
/// than the JWT clock leeway, so an expired token still reads as expired).
const PURGE_AFTER_EXPIRY: Duration = Duration::minutes(5);

/// Deletes sessions that can never be used again (revoked, idle-expired or past
/// their maximum age) and refresh tokens past their expiry. Used tokens of live
/// sessions stay until they expire: they are what reuse detection compares against.
pub async fn purge_dead(db: &DatabaseConnection) -> Result<(u64, u64), sea_orm::DbErr> {
    use sea_orm::sea_query::{Query, SimpleExpr};
    let cutoff = now() - PURGE_AFTER_EXPIRY;
    let dead = || {
        Condition::any()
            .add(session::Column::RevokedAt.lt(cutoff))
            .add(session::Column::ExpiresAt.lt(cutoff))
            .add(session::Column::MaxExpiresAt.lt(cutoff))
    };
    // A subquery, not a list of ids: a large backlog must not exceed parameter limits.
    let of_dead_sessions: SimpleExpr = refresh_token::Column::SessionId
        .in_subquery(Query::select().column(session::Column::Id).from(session::Entity).cond_where(dead()).to_owned());
    let txn = db.begin().await?;
    let tokens = refresh_token::Entity::delete_many()
        .filter(Condition::any().add(refresh_token::Column::ExpiresAt.lt(cutoff)).add(of_dead_sessions))
        .exec(&txn)
        .await?
        .rows_affected;
    let sessions = session::Entity::delete_many().filter(dead()).exec(&txn).await?.rows_affected;
    txn.commit().await?;
    Ok((sessions, tokens))
}
