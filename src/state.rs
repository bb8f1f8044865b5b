//! The shared state every handler sees: cheap to clone (a pool handle and `Arc`s).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{
        crypto::DataKey,
        password::PasswordHasher,
        ratelimit::RateLimiters,
        session_cache::SessionCache,
        sessions::{SessionPolicy, Sessions},
        signing_keys::KeyRing,
        tokens::TokenKeys,
    },
    config::{AppEnv, Config},
    mail::Outbox,
};

#[derive(Clone)]
pub struct AppState {
    /// Reads, and writes on PostgreSQL and MySQL.
    pub db: DatabaseConnection,
    /// Where writes go. On SQLite, a pool of its own with one connection, so
    /// writers wait their turn in order instead of retrying on the file lock;
    /// elsewhere the same pool as `db`.
    pub writer: DatabaseConnection,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub sessions: Sessions,
    pub passwords: Arc<PasswordHasher>,
    pub limiters: Arc<RateLimiters>,
    pub outbox: Outbox,
    /// Seals TOTP secrets; `None` only in production without `DATA_ENCRYPTION_KEY`
    /// (then no second factor can be set up).
    pub data_key: Option<Arc<DataKey>>,
}

impl AppState {
    /// `config` must have been validated (it carries the JWT secret).
    pub fn new(db: DatabaseConnection, writer: DatabaseConnection, config: Config) -> anyhow::Result<Self> {
        let data_key = data_key(&config)?.map(Arc::new);
        let ring = KeyRing::from_config(&config, db.clone(), writer.clone(), data_key.clone());
        let tokens = Arc::new(TokenKeys::new(&config, Arc::new(ring)));
        let cache = Arc::new(SessionCache::new(config.session_cache_ttl));
        Ok(Self {
            sessions: Sessions::new(
                db.clone(),
                writer.clone(),
                tokens.clone(),
                SessionPolicy::from_config(&config),
                cache,
            ),
            tokens,
            passwords: Arc::new(PasswordHasher::new(config.bcrypt_cost, config.bcrypt_thread_nice)?),
            limiters: Arc::new(RateLimiters::new(&config)?),
            outbox: Outbox::new(&config)?,
            data_key,
            config: Arc::new(config),
            db,
            writer,
        })
    }
}

fn data_key(config: &Config) -> anyhow::Result<Option<DataKey>> {
    match (DataKey::from_config(config)?, config.app_env) {
        (Some(key), _) => Ok(Some(key)),
        (None, AppEnv::Production) => Ok(None),
        (None, AppEnv::Development) => {
            tracing::warn!(
                "DATA_ENCRYPTION_KEY is not set: second factors and signing keys set up now stop working when the process stops"
            );
            Ok(Some(DataKey::random()))
        }
    }
}
