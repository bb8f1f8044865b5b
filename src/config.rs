//! Settings: read once from the environment (and `.env`) into [`Config`], then
//! checked by [`Config::validate`]. Nothing else in the crate reads env vars.

use std::{net::SocketAddr, time::Duration};

use anyhow::{Context, bail};
use ipnet::IpNet;
use rand::RngCore;

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppEnv {
    Development,
    Production,
}

#[derive(Clone, Debug)]
pub struct Config {
    pub app_env: AppEnv,
    pub bind_addr: SocketAddr,
    pub database_url: String,
    pub database_max_connections: u32,
    /// How long a request waits for a database connection before answering 503.
    pub database_timeout: Duration,
    /// Longest a single SQL statement may run (PostgreSQL `statement_timeout`).
    pub database_statement_timeout: Duration,
    /// `None` only before [`Config::validate`] has filled in a development secret.
    pub jwt_secret: Option<Secret>,
    pub jwt_issuer: String,
    pub jwt_audience: String,
    pub access_token_ttl: Duration,
    pub refresh_token_ttl: Duration,
    pub session_max_age: Duration,
    pub refresh_reuse_grace: Duration,
    pub bcrypt_cost: u32,
    pub cookie_secure: bool,
    pub cookie_domain: Option<String>,
    pub allowed_origins: Vec<String>,
    pub login_rate_per_minute: u32,
    pub register_rate_per_minute: u32,
    pub refresh_rate_per_minute: u32,
    pub trusted_proxies: Vec<IpNet>,
    /// Share rate limits between instances through this Redis.
    pub rate_limit_redis_url: Option<String>,
    pub max_body_bytes: usize,
    /// Longest a request may take, body included, before it answers 503.
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 at once.
    pub max_in_flight: usize,
    pub run_migrations: bool,
    /// How often dead sessions and refresh tokens are deleted; `None` never.
    pub purge_interval: Option<Duration>,
}

pub const MIN_SECRET_BYTES: usize = 32;
pub const MIN_PRODUCTION_BCRYPT_COST: u32 = 10;

impl Default for Config {
    /// The documented defaults (see `.env.example`), development mode, no secret yet.
    fn default() -> Self {
        Self {
            app_env: AppEnv::Development,
            bind_addr: SocketAddr::from(([127, 0, 0, 1], 8000)),
            database_url: "sqlite://latchkey.db?mode=rwc".into(),
            database_max_connections: 20,
            database_timeout: Duration::from_secs(5),
            database_statement_timeout: Duration::from_secs(10),
            jwt_secret: None,
            jwt_issuer: "latchkey".into(),
            jwt_audience: "latchkey".into(),
            access_token_ttl: Duration::from_secs(15 * 60),
            refresh_token_ttl: Duration::from_secs(7 * 24 * 3600),
            session_max_age: Duration::from_secs(30 * 24 * 3600),
            refresh_reuse_grace: Duration::from_secs(10),
            bcrypt_cost: 12,
            cookie_secure: true,
            cookie_domain: None,
            allowed_origins: Vec::new(),
            login_rate_per_minute: 5,
            register_rate_per_minute: 10,
            refresh_rate_per_minute: 60,
            trusted_proxies: Vec::new(),
            rate_limit_redis_url: None,
            max_body_bytes: 64 * 1024,
            request_timeout: Duration::from_secs(30),
            max_in_flight: 1024,
            run_migrations: true,
            purge_interval: Some(Duration::from_secs(3600)),
        }
    }
}

impl Config {
    /// Reads every setting from the process environment. Call `dotenvy::dotenv()` first
    /// to let a `.env` file fill in what the environment does not set.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Same as [`Config::from_env`], over any key/value source (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        let mut c = Config::default();
        let var = |key: &str| get(key).map(|v| v.trim().to_owned()).filter(|v| !v.is_empty());

        if let Some(v) = var("APP_ENV") {
            c.app_env = match v.to_ascii_lowercase().as_str() {
                "development" | "dev" => AppEnv::Development,
                "production" | "prod" => AppEnv::Production,
                _ => bail!("APP_ENV must be `development` or `production`, got `{v}`"),
            };
        }
        if let Some(v) = var("BIND_ADDR") {
            c.bind_addr = v.parse().with_context(|| format!("BIND_ADDR `{v}` is not host:port"))?;
        }
        if let Some(v) = var("DATABASE_URL") {
            c.database_url = v;
        }
        parse_into(&var, "DATABASE_MAX_CONNECTIONS", &mut c.database_max_connections)?;
        duration_into(&var, "DATABASE_TIMEOUT", &mut c.database_timeout)?;
        duration_into(&var, "DATABASE_STATEMENT_TIMEOUT", &mut c.database_statement_timeout)?;
        c.jwt_secret = get("JWT_SECRET").filter(|s| !s.is_empty()).map(Secret);
        if let Some(v) = var("JWT_ISSUER") {
            c.jwt_issuer = v;
        }
        if let Some(v) = var("JWT_AUDIENCE") {
            c.jwt_audience = v;
        }
        duration_into(&var, "ACCESS_TOKEN_TTL", &mut c.access_token_ttl)?;
        duration_into(&var, "REFRESH_TOKEN_TTL", &mut c.refresh_token_ttl)?;
        duration_into(&var, "SESSION_MAX_AGE", &mut c.session_max_age)?;
        duration_into(&var, "REFRESH_REUSE_GRACE", &mut c.refresh_reuse_grace)?;
        parse_into(&var, "BCRYPT_COST", &mut c.bcrypt_cost)?;
        bool_into(&var, "COOKIE_SECURE", &mut c.cookie_secure)?;
        c.cookie_domain = var("COOKIE_DOMAIN");
        if let Some(v) = var("ALLOWED_ORIGINS") {
            c.allowed_origins = split_list(&v).map(|o| o.trim_end_matches('/').to_owned()).collect();
        }
        parse_into(&var, "LOGIN_RATE_PER_MINUTE", &mut c.login_rate_per_minute)?;
        parse_into(&var, "REGISTER_RATE_PER_MINUTE", &mut c.register_rate_per_minute)?;
        parse_into(&var, "REFRESH_RATE_PER_MINUTE", &mut c.refresh_rate_per_minute)?;
        if let Some(v) = var("TRUSTED_PROXIES") {
            c.trusted_proxies = split_list(&v)
                .map(parse_net)
                .collect::<anyhow::Result<_>>()
                .context("TRUSTED_PROXIES must be a comma-separated list of IPs or CIDRs")?;
        }
        c.rate_limit_redis_url = var("RATE_LIMIT_REDIS_URL");
        parse_into(&var, "MAX_BODY_BYTES", &mut c.max_body_bytes)?;
        duration_into(&var, "REQUEST_TIMEOUT", &mut c.request_timeout)?;
        parse_into(&var, "MAX_IN_FLIGHT", &mut c.max_in_flight)?;
        bool_into(&var, "RUN_MIGRATIONS", &mut c.run_migrations)?;
        if let Some(v) = var("PURGE_INTERVAL") {
            let every = parse_duration(&v).with_context(|| format!("PURGE_INTERVAL `{v}` is not a duration"))?;
            c.purge_interval = (!every.is_zero()).then_some(every);
        }
        Ok(c)
    }

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
        if production && self.bcrypt_cost < MIN_PRODUCTION_BCRYPT_COST {
            bail!("BCRYPT_COST must be at least {MIN_PRODUCTION_BCRYPT_COST} when APP_ENV=production");
        }
        if !(4..=31).contains(&self.bcrypt_cost) {
            bail!("BCRYPT_COST must be between 4 and 31");
        }
        for (name, value) in [
            ("ACCESS_TOKEN_TTL", self.access_token_ttl),
            ("REFRESH_TOKEN_TTL", self.refresh_token_ttl),
            ("SESSION_MAX_AGE", self.session_max_age),
        ] {
            if value.is_zero() {
                bail!("{name} must be longer than zero");
            }
        }
        for (name, value) in [
            ("LOGIN_RATE_PER_MINUTE", self.login_rate_per_minute),
            ("REGISTER_RATE_PER_MINUTE", self.register_rate_per_minute),
            ("REFRESH_RATE_PER_MINUTE", self.refresh_rate_per_minute),
            ("DATABASE_MAX_CONNECTIONS", self.database_max_connections),
        ] {
            if value == 0 {
                bail!("{name} must be at least 1");
            }
        }
        Ok(())
    }

    pub fn jwt_secret(&self) -> &Secret {
        self.jwt_secret.as_ref().expect("BUG: Config::validate fills in the JWT secret")
    }
}

fn random_secret() -> Secret {
    let mut bytes = [0u8; 48];
    rand::rng().fill_bytes(&mut bytes);
    Secret(hex::encode(bytes))
}

fn split_list(v: &str) -> impl Iterator<Item = &str> {
    v.split(',').map(str::trim).filter(|s| !s.is_empty())
}

fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .with_context(|| format!("`{s}` is not an IP address or CIDR"))
}

fn parse_into<T: std::str::FromStr>(
    var: &impl Fn(&str) -> Option<String>,
    key: &str,
    slot: &mut T,
) -> anyhow::Result<()> {
    if let Some(v) = var(key) {
        *slot = v.parse().map_err(|_| anyhow::anyhow!("{key} `{v}` is not a valid number"))?;
    }
    Ok(())
}

fn bool_into(var: &impl Fn(&str) -> Option<String>, key: &str, slot: &mut bool) -> anyhow::Result<()> {
    if let Some(v) = var(key) {
        *slot = match v.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => true,
            "false" | "0" | "no" | "off" => false,
            _ => bail!("{key} must be true or false, got `{v}`"),
        };
    }
    Ok(())
}

fn duration_into(var: &impl Fn(&str) -> Option<String>, key: &str, slot: &mut Duration) -> anyhow::Result<()> {
    if let Some(v) = var(key) {
        *slot = parse_duration(&v).with_context(|| format!("{key} `{v}` is not a duration"))?;
    }
    Ok(())
}

/// Whole seconds (`900`) or a number with one unit suffix: `s`, `m`, `h`, `d`.
pub fn parse_duration(s: &str) -> anyhow::Result<Duration> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (digits, unit) = s.split_at(split);
    if digits.is_empty() {
        bail!("expected a number of seconds or a number with a unit (s, m, h, d)");
    }
    let n: u64 = digits.parse().context("number too large")?;
    let factor = match unit.trim() {
        "" | "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        other => bail!("unknown unit `{other}`; use s, m, h or d"),
    };
    n.checked_mul(factor).map(Duration::from_secs).context("duration too large")
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn config(vars: &[(&str, &str)]) -> anyhow::Result<Config> {
        let map: HashMap<String, String> = vars.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        let mut c = Config::from_lookup(|k| map.get(k).cloned())?;
        c.validate()?;
        Ok(c)
    }

    #[test]
    fn durations_take_seconds_or_a_unit() {
        assert_eq!(parse_duration("900").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("15m").unwrap(), Duration::from_secs(900));
        assert_eq!(parse_duration("7d").unwrap(), Duration::from_secs(7 * 86_400));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        for bad in ["", "m", "15x", "-5", "1.5h", "99999999999999999999", "18446744073709551615d"] {
            assert!(parse_duration(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn production_refuses_a_missing_or_short_secret_naming_it() {
        let err = config(&[("APP_ENV", "production")]).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", "short")]).unwrap_err().to_string();
        assert!(err.contains("JWT_SECRET"), "{err}");
    }

    #[test]
    fn production_refuses_insecure_cookies_and_cheap_bcrypt() {
        let secret = "x".repeat(32);
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), ("COOKIE_SECURE", "false")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("COOKIE_SECURE"), "{err}");
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), ("BCRYPT_COST", "4")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("BCRYPT_COST"), "{err}");
        assert!(config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret)]).is_ok());
    }

    #[test]
    fn development_generates_a_secret() {
        let c = config(&[]).unwrap();
        assert!(c.jwt_secret().expose().len() >= MIN_SECRET_BYTES);
        assert_ne!(c.jwt_secret().expose(), config(&[]).unwrap().jwt_secret().expose());
    }

    #[test]
    fn bad_values_name_their_setting() {
        for (key, value) in [
            ("BIND_ADDR", "nope"),
            ("ACCESS_TOKEN_TTL", "soon"),
            ("BCRYPT_COST", "twelve"),
            ("COOKIE_SECURE", "maybe"),
            ("TRUSTED_PROXIES", "10.0.0.0/33"),
            ("APP_ENV", "staging"),
            ("LOGIN_RATE_PER_MINUTE", "0"),
        ] {
            let err = format!("{:#}", config(&[(key, value)]).unwrap_err());
            assert!(err.contains(key), "{key}: {err}");
        }
    }

    #[test]
    fn lists_are_split_and_trimmed() {
        let c = config(&[
            ("ALLOWED_ORIGINS", " https://app.example.com/ , http://localhost:5173"),
            ("TRUSTED_PROXIES", "10.0.0.0/8, 127.0.0.1"),
        ])
        .unwrap();
        assert_eq!(c.allowed_origins, ["https://app.example.com", "http://localhost:5173"]);
        assert_eq!(c.trusted_proxies.len(), 2);
    }

    #[test]
    fn debug_output_hides_the_secret() {
        let c = config(&[("JWT_SECRET", "a-very-secret-value-that-is-long-enough")]).unwrap();
        assert!(!format!("{c:?}").contains("a-very-secret"));
    }
}
