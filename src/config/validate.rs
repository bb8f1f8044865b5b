//! [`Config::validate`]: refusing unsafe production settings by name, and
//! filling in what development may leave out.

use anyhow::bail;
use rand::RngCore;

use super::{
    AppEnv, Config, MAX_KEY_PUBLISH_DELAY, MAX_LIFETIME, MAX_SESSION_CACHE_TTL, MIN_PRODUCTION_BCRYPT_COST,
    MIN_SECRET_BYTES, Secret,
};

impl Config {
    /// Refuses unsafe production settings, naming the setting; in development,
    /// fills in a random JWT secret (sessions then end with the process).
    pub fn validate(&mut self) -> anyhow::Result<()> {
        let production = self.app_env == AppEnv::Production;
        match &self.jwt_secret {
            Some(s) if s.expose().len() < MIN_SECRET_BYTES => {
                bail!(
                    "JWT_SECRET must be at least {MIN_SECRET_BYTES} bytes (generate one with `openssl rand -base64 48`)"
                )
            }
            Some(_) => {}
            None if production => {
                bail!("JWT_SECRET is required when APP_ENV=production (generate one with `openssl rand -base64 48`)")
            }
            None => {
                tracing::warn!(
                    "JWT_SECRET is not set: using a random secret; every session ends when the process stops"
                );
                self.jwt_secret = Some(random_secret());
            }
        }
        if production && !self.cookie_secure {
            bail!("COOKIE_SECURE=false is not allowed when APP_ENV=production");
        }
        if production {
            // `null` is what sandboxed iframes and `file:` pages send: allowlisting
            // it lets any of them call the API with the user's cookies; a plain
            // http origin can be impersonated by anyone on the network path.
            if let Some(bad) = self.allowed_origins.iter().find(|o| !is_safe_production_origin(o)) {
                bail!(
                    "ALLOWED_ORIGINS may not contain `{bad}` when APP_ENV=production \
                     (only https origins, or http on localhost)"
                );
            }
            if self.refresh_reuse_grace >= self.refresh_token_ttl {
                bail!("REFRESH_REUSE_GRACE must be shorter than REFRESH_TOKEN_TTL when APP_ENV=production");
            }
            if self.smtp_url.is_none() {
                bail!("SMTP_URL is required when APP_ENV=production (mail must reach people, not the log)");
            }
            if !self.app_url.starts_with("https://") {
                bail!("APP_URL must be the SPA's https:// origin when APP_ENV=production");
            }
            if self.access_token_ttl > self.refresh_token_ttl {
                bail!("ACCESS_TOKEN_TTL must not be longer than REFRESH_TOKEN_TTL when APP_ENV=production");
            }
        }
        if production && self.bcrypt_cost < MIN_PRODUCTION_BCRYPT_COST {
            bail!("BCRYPT_COST must be at least {MIN_PRODUCTION_BCRYPT_COST} when APP_ENV=production");
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            bail!("BCRYPT_COST must be between 4 and 31");
        }
        // Below 0 would need privileges, and would put hashing ahead of requests.
        if !(0..=19).contains(&self.bcrypt_thread_nice) {
            bail!("BCRYPT_THREAD_NICE must be between 0 and 19");
        }
        for (name, value) in [
            ("ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("SESSION_MAX_AGE", self.session_max_age),
            ("LOGIN_LOCKOUT", self.login_lockout),
            ("PASSWORD_RESET_TTL", self.password_reset_ttl),
            ("EMAIL_VERIFICATION_TTL", self.email_verification_ttl),
            ("EMAIL_CHANGE_TTL", self.email_change_ttl),
            ("DEVICE_COOKIE_TTL", self.device_cookie_ttl),
            ("AUDIT_RETENTION", self.audit_retention),
        ] {
            if value.is_zero() {
                bail!("{name} must be longer than zero");
            }
        }
        // A revocation may go unseen this long by another instance when Redis
        // is down: minutes at most, never hours.
        if self.session_cache_ttl > MAX_SESSION_CACHE_TTL {
            bail!("SESSION_CACHE_TTL must be at most {} minutes", MAX_SESSION_CACHE_TTL.as_secs() / 60);
        }
        if production && self.jwt_algorithm.is_asymmetric() && self.data_encryption_key.is_none() {
            bail!("DATA_ENCRYPTION_KEY is required when APP_ENV=production and JWT_ALGORITHM is EdDSA or ES256");
        }
        // Instances and the key set's caches each take up to half the delay
        // to see a new key; shorter, a verifier may meet its tokens first.
        let min_publish_delay = 2 * crate::auth::signing_keys::RELOAD_EVERY;
        if production && self.jwt_algorithm.is_asymmetric() && self.key_publish_delay < min_publish_delay {
            bail!(
                "KEY_PUBLISH_DELAY must be at least {} minutes when APP_ENV=production",
                min_publish_delay.as_secs() / 60
            );
        }
        if self.key_publish_delay > MAX_KEY_PUBLISH_DELAY {
            bail!("KEY_PUBLISH_DELAY must be at most {} days", MAX_KEY_PUBLISH_DELAY.as_secs() / 86_400);
        }
        if self.data_encryption_key_previous.is_some() && self.data_encryption_key.is_none() {
            bail!(
                "DATA_ENCRYPTION_KEY_PREVIOUS is set without DATA_ENCRYPTION_KEY: set the new key as DATA_ENCRYPTION_KEY"
            );
        }
        // Lifetimes are added to "now": bound them well below where date
        // arithmetic overflows.
        for (name, value) in [
            ("ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("SESSION_MAX_AGE", self.session_max_age),
            ("REFRESH_REUSE_GRACE", self.refresh_reuse_grace),
            ("LOGIN_LOCKOUT", self.login_lockout),
            ("DEVICE_COOKIE_TTL", self.device_cookie_ttl),
            ("PASSWORD_RESET_TTL", self.password_reset_ttl),
            ("EMAIL_VERIFICATION_TTL", self.email_verification_ttl),
            ("EMAIL_CHANGE_TTL", self.email_change_ttl),
            ("REAUTH_MAX_AGE", self.reauth_max_age),
            ("AUDIT_RETENTION", self.audit_retention),
        ] {
            if value > MAX_LIFETIME {
                bail!("{name} must be at most {} days", MAX_LIFETIME.as_secs() / 86_400);
            }
        }
        for (name, value) in [
            ("LOGIN_RATE_PER_MINUTE", self.login_rate_per_minute),
            ("REGISTER_RATE_PER_MINUTE", self.register_rate_per_minute),
            ("REFRESH_RATE_PER_MINUTE", self.refresh_rate_per_minute),
            ("DATABASE_MAX_CONNECTIONS", self.database_max_connections.unwrap_or(1)),
            ("EMAIL_RATE_PER_HOUR", self.email_rate_per_hour),
            ("MAIL_MAX_ATTEMPTS", self.mail_max_attempts),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        Ok(())
    }
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    Secret(hex::encode(bytes))
}

/// `https://…`, or `http://` on a loopback host (local development of the SPA).
fn is_safe_production_origin(origin: &str) -> bool {
    let origin = origin.to_ascii_lowercase();
    if origin.starts_with("https://") {
        return true;
    }
    let Some(authority) = origin.strip_prefix("http://") else {
        return false;
    };
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => authority.rsplit_once(':').map_or(authority, |(h, _)| h),
    };
    host == "localhost" || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}
