//! The shared state every handler sees: cheap to clone (a pool handle and `Arc`s).

use std::sync::Arc;

use sea_orm::DatabaseConnection;

use crate::{
    auth::{
        password::PasswordHasher,
        ratelimit::RateLimiters,
        sessions::{SessionPolicy, Sessions},
        tokens::TokenKeys,
    },
    config::Config,
    mail::Outbox,
};

#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub config: Arc<Config>,
    pub tokens: Arc<TokenKeys>,
    pub sessions: Sessions,
    pub passwords: Arc<PasswordHasher>,
    pub limiters: Arc<RateLimiters>,
    pub outbox: Outbox,
}

impl AppState {
    /// `config` must have been validated (it carries the JWT secret).
    pub fn new(db: DatabaseConnection, config: Config) -> anyhow::Result<Self> {
        let tokens = Arc::new(TokenKeys::new(&config));
        Ok(Self {
            sessions: Sessions::new(db.clone(), tokens.clone(), SessionPolicy::from_config(&config)),
            tokens,
            passwords: Arc::new(PasswordHasher::new(config.bcrypt_cost)?),
            limiters: Arc::new(RateLimiters::new(&config)?),
            outbox: Outbox::new(&config)?,
            config: Arc::new(config),
            db,
        })
    }
}
