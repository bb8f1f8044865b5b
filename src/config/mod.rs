//! Settings: read once from the environment (and `.env`) into [`Config`], then
//! checked by [`Config::validate`]. Nothing else in the crate reads env vars.

mod docs;
mod validate;
pub mod values;

pub use values::{AccessAlgorithm, AppEnv, ForwardedHeader, KEY_RELOAD_EVERY, LogFormat, Secret, parse_duration};
use values::{parse_net, parse_origin, parse_secret};

use std::{net::SocketAddr, time::Duration};

use clap::{ArgAction, FromArgMatches, builder::BoolishValueParser};
use ipnet::IpNet;

/// Every setting, declared once: the field's doc comment is its documentation
/// (`latchkey serve --help`, the README table and `.env.example` are generated
/// from it; a test fails when they drift), `env` names its variable and
/// `default_value` its default.
#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// `development` or `production`. Production refuses to start, naming the
    /// setting, on unsafe values: a missing or short `JWT_SECRET`,
    /// `COOKIE_SECURE=false`, `BCRYPT_COST` below 10.
    #[arg(long, env = "APP_ENV", default_value = "development", ignore_case = true, help_heading = "Server")]
    pub app_env: AppEnv,
    /// Address and port to listen on.
    #[arg(long, env = "BIND_ADDR", default_value = "127.0.0.1:8000", help_heading = "Server")]
    pub bind_addr: SocketAddr,
    /// Largest accepted request body, in bytes; larger is 413.
    #[arg(long, env = "MAX_BODY_BYTES", default_value = "65536", help_heading = "Server")]
    pub max_body_bytes: usize,
    /// Longest a request may take, body included; then 503 `server_busy`.
    #[arg(long, env = "REQUEST_TIMEOUT", default_value = "30s", value_parser = parse_duration, help_heading = "Server")]
    pub request_timeout: Duration,
    /// Requests handled at once; more are answered 503 `server_busy` at once.
    #[arg(long, env = "MAX_IN_FLIGHT", default_value = "1024", help_heading = "Server")]
    pub max_in_flight: usize,
    /// Log filter: `info`, `warn`, `latchkey=debug`, ... Passwords, tokens and
    /// hashes are never logged at any level.
    #[arg(long, env = "RUST_LOG", default_value = "info", help_heading = "Server")]
    pub rust_log: String,
    /// `text` for people, or `json`: one object per line for log collectors.
    /// Either way each request logs one line when it finishes, and every line
    /// logged during a request carries its `X-Request-Id` and, once known, its
    /// user and session ids.
    #[arg(long, env = "LOG_FORMAT", default_value = "text", help_heading = "Server")]
    pub log_format: LogFormat,
    /// `host:port` for a second listener serving `GET /metrics` in the
    /// Prometheus text format (for example `127.0.0.1:9464`). Unset: no metrics.
    /// Keep it off the public network: it is not behind `BIND_ADDR`'s routes.
    #[arg(long, env = "METRICS_ADDR", help_heading = "Server")]
    pub metrics_addr: Option<SocketAddr>,
    /// How long security events (sign-ins, password changes, admin actions)
    /// are kept; older ones are deleted by the purge job (`PURGE_INTERVAL`).
    #[arg(long, env = "AUDIT_RETENTION", default_value = "365d", value_parser = parse_duration, help_heading = "Server")]
    pub audit_retention: Duration,

    /// `sqlite://latchkey.db?mode=rwc` (a file next to the process),
    /// `postgres://user:pass@host:5432/db` or `mysql://user:pass@host:3306/db`
    /// (MySQL and MariaDB).
    #[arg(long, env = "DATABASE_URL", default_value = "sqlite://latchkey.db?mode=rwc", help_heading = "Database")]
    pub database_url: String,
    /// Connection pool size per process. Unset: 20 on PostgreSQL and MySQL,
    /// 4 on SQLite, whose queries run inside this process on a thread per
    /// connection: more connections than cores add threads and page caches,
    /// not speed.
    #[arg(long, env = "DATABASE_MAX_CONNECTIONS", help_heading = "Database")]
    pub database_max_connections: Option<u32>,
    /// Longest wait for a database connection; past it a request answers 503
    /// `database_unavailable`.
    #[arg(long, env = "DATABASE_TIMEOUT", default_value = "5s", value_parser = parse_duration, help_heading = "Database")]
    pub database_timeout: Duration,
    /// PostgreSQL `statement_timeout`: a statement running longer is cancelled.
    #[arg(long, env = "DATABASE_STATEMENT_TIMEOUT", default_value = "10s", value_parser = parse_duration, help_heading = "Database")]
    pub database_statement_timeout: Duration,
    /// Apply pending migrations at start-up (`false` if you run `latchkey migrate` yourself).
    #[arg(long, env = "RUN_MIGRATIONS", default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Database")]
    pub run_migrations: bool,
    /// How often revoked and expired sessions, expired refresh tokens,
    /// expired device cookies, sent and failed mails older than 7 days, old
    /// security events and retired signing keys are deleted; `0` turns it off
    /// (a retired key then stays in the table, but no longer verifies).
    #[arg(long, env = "PURGE_INTERVAL", default_value = "1h", value_parser = parse_duration, help_heading = "Database")]
    pub purge_interval: Duration,

    /// HS256 signing key, at least 32 bytes (`openssl rand -base64 48`); the
    /// same on every instance. Unset in development: a random one is generated
    /// and every session ends when the process stops.
    #[arg(long, env = "JWT_SECRET", value_parser = parse_secret, hide_env_values = true, help_heading = "Tokens")]
    pub jwt_secret: Option<Secret>,
    /// How access tokens are signed: `HS256` with `JWT_SECRET` (only Latchkey
    /// can check them), or `EdDSA` / `ES256` with a key pair kept in the
    /// database (private half sealed with `DATA_ENCRYPTION_KEY`), whose public
    /// half `/.well-known/jwks.json` publishes so other services can verify
    /// access tokens. Other tokens always use `JWT_SECRET`.
    #[arg(long, env = "JWT_ALGORITHM", default_value = "HS256", ignore_case = true, help_heading = "Tokens")]
    pub jwt_algorithm: AccessAlgorithm,
    /// With `EdDSA` or `ES256`: how long after `latchkey keys rotate` the new
    /// key starts signing. It is published at once, so services that cache the
    /// key set (`/.well-known/jwks.json` says to, for half this time) know it
    /// before they meet a token it signed. At least 2 minutes in production.
    #[arg(long, env = "KEY_PUBLISH_DELAY", default_value = "10m", value_parser = parse_duration, help_heading = "Tokens")]
    pub key_publish_delay: Duration,
    /// `iss` claim, required and checked.
    #[arg(long, env = "JWT_ISSUER", default_value = "latchkey", help_heading = "Tokens")]
    pub jwt_issuer: String,
    /// `aud` claim, required and checked.
    #[arg(long, env = "JWT_AUDIENCE", default_value = "latchkey", help_heading = "Tokens")]
    pub jwt_audience: String,
    /// Access token (and `access_token` cookie) lifetime.
    #[arg(long, env = "ACCESS_TOKEN_TTL", default_value = "15m", value_parser = parse_duration, help_heading = "Tokens")]
    pub access_token_ttl: Duration,
    /// Refresh token lifetime, which is the idle timeout: each refresh starts it again.
    #[arg(long, env = "REFRESH_TOKEN_TTL", default_value = "7d", value_parser = parse_duration, help_heading = "Tokens")]
    pub refresh_token_ttl: Duration,
    /// Absolute session limit from login; then 401 `session_expired`.
    #[arg(long, env = "SESSION_MAX_AGE", default_value = "30d", value_parser = parse_duration, help_heading = "Tokens")]
    pub session_max_age: Duration,
    /// A rotated refresh token presented again within this window (two tabs
    /// racing) gets a new access token; later, it revokes the session (theft).
    #[arg(long, env = "REFRESH_REUSE_GRACE", default_value = "10s", value_parser = parse_duration, help_heading = "Tokens")]
    pub refresh_reuse_grace: Duration,
    /// How long an instance may serve a live session from memory without
    /// asking the database. Revocations reach every instance at once through
    /// Redis (`RATE_LIMIT_REDIS_URL`); this bounds the delay when a message is
    /// lost. `0` turns the cache off.
    #[arg(long, env = "SESSION_CACHE_TTL", default_value = "5s", value_parser = parse_duration, help_heading = "Tokens")]
    pub session_cache_ttl: Duration,
    /// bcrypt work factor, 4 to 31 (at least 10 in production); each +1 doubles
    /// the time of a login.
    #[arg(long, env = "BCRYPT_COST", default_value = "12", help_heading = "Tokens")]
    pub bcrypt_cost: u32,
    /// Priority of the threads that hash passwords, as a nice value from 0
    /// (that of request handling) to 19 (the lowest). At 19 every other
    /// request, and every other busy process on the machine, goes first, so
    /// logins never slow the rest of the API. Lower it (10, say) when
    /// Latchkey shares its cores with other busy processes, or logins may
    /// wait behind them until they time out with 503.
    #[arg(long, env = "BCRYPT_THREAD_NICE", default_value = "19", help_heading = "Tokens")]
    pub bcrypt_thread_nice: i32,

    /// `Secure` cookies (and HSTS). `false` only for plain-http development.
    #[arg(long, env = "COOKIE_SECURE", default_value = "true", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Browsers")]
    pub cookie_secure: bool,
    /// Cookie `Domain` attribute; unset means host-only cookies (recommended).
    #[arg(long, env = "COOKIE_DOMAIN", help_heading = "Browsers")]
    pub cookie_domain: Option<String>,
    /// Comma-separated CORS allowlist: these origins may call the API with
    /// credentials (origin echoed, never `*`). Not needed when the SPA is
    /// served from the same origin.
    #[arg(long, env = "ALLOWED_ORIGINS", value_delimiter = ',', value_parser = parse_origin, help_heading = "Browsers")]
    pub allowed_origins: Vec<String>,

    /// 32 random bytes, base64 (`openssl rand -base64 32`): encrypts TOTP
    /// secrets and private signing keys at rest (AES-256-GCM). Required in
    /// production once any user has a second factor, or with `JWT_ALGORITHM`
    /// `EdDSA` or `ES256`; unset in development, a random key is used and
    /// second factors (and signing keys) set up stop working when the process stops.
    #[arg(long, env = "DATA_ENCRYPTION_KEY", value_parser = parse_secret, hide_env_values = true, help_heading = "Second factor")]
    pub data_encryption_key: Option<Secret>,
    /// The key before the current one, during a key rotation: secrets sealed
    /// with it still open, and are re-sealed with the current key when used.
    #[arg(long, env = "DATA_ENCRYPTION_KEY_PREVIOUS", value_parser = parse_secret, hide_env_values = true, help_heading = "Second factor")]
    pub data_encryption_key_previous: Option<Secret>,
    /// How recently a session must have proved a credential (login, second
    /// factor, `POST /auth/reauth`) for second-factor settings, and for
    /// changing the password or email while a second factor is on; older is
    /// 403 `reauth_required`.
    #[arg(long, env = "REAUTH_MAX_AGE", default_value = "10m", value_parser = parse_duration, help_heading = "Second factor")]
    pub reauth_max_age: Duration,

    /// The outgoing mail server: `smtp://user:pass@host:587` (STARTTLS when the
    /// server offers it; add `?tls=required` to insist), `smtps://…:465`
    /// (TLS from the start). Required in production; unset in development,
    /// every mail (with its link) is written to the log instead.
    #[arg(long, env = "SMTP_URL", value_parser = parse_secret, hide_env_values = true, help_heading = "Email")]
    pub smtp_url: Option<Secret>,
    /// The sender of every mail, `Name <address>` or a bare address.
    #[arg(long, env = "MAIL_FROM", default_value = "Latchkey <no-reply@localhost>", help_heading = "Email")]
    pub mail_from: String,
    /// The SPA's origin: mail links are `{APP_URL}/reset-password#token=…` and
    /// alike, never built from a request's `Host`. Required in production.
    #[arg(long, env = "APP_URL", default_value = "http://localhost:5173", help_heading = "Email")]
    pub app_url: String,
    /// The product name mails are signed with.
    #[arg(long, env = "APP_NAME", default_value = "Latchkey", help_heading = "Email")]
    pub app_name: String,
    /// Lifetime of a password-reset link.
    #[arg(long, env = "PASSWORD_RESET_TTL", default_value = "30m", value_parser = parse_duration, help_heading = "Email")]
    pub password_reset_ttl: Duration,
    /// Lifetime of an email-verification link.
    #[arg(long, env = "EMAIL_VERIFICATION_TTL", default_value = "24h", value_parser = parse_duration, help_heading = "Email")]
    pub email_verification_ttl: Duration,
    /// Lifetime of an email-change confirmation link.
    #[arg(long, env = "EMAIL_CHANGE_TTL", default_value = "1h", value_parser = parse_duration, help_heading = "Email")]
    pub email_change_ttl: Duration,
    /// `true`: registration answers 202 without cookies and an unverified
    /// account cannot sign in (403 `email_not_verified`) until its address is verified.
    #[arg(long, env = "REQUIRE_VERIFIED_EMAIL", default_value = "false", action = ArgAction::Set, value_parser = BoolishValueParser::new(), help_heading = "Email")]
    pub require_verified_email: bool,
    /// Requests that can send mail (forgot password, reset, resend
    /// verification, change email, TOTP enable and disable, new recovery
    /// codes, an admin's reset link or second-factor reset) per hour per
    /// client IP; beyond, 429. Each address also gets at most 3 mails of one
    /// kind an hour, notices included (silently, so nobody learns whether it
    /// has an account).
    #[arg(long, env = "EMAIL_RATE_PER_HOUR", default_value = "20", help_heading = "Email")]
    pub email_rate_per_hour: u32,
    /// Wait before the first retry of a mail the server did not accept; it
    /// doubles with each attempt (at most an hour).
    #[arg(long, env = "MAIL_RETRY_BASE", default_value = "5s", value_parser = parse_duration, help_heading = "Email")]
    pub mail_retry_base: Duration,
    /// Attempts before a mail is given up (kept in the outbox, marked failed, logged).
    #[arg(long, env = "MAIL_MAX_ATTEMPTS", default_value = "10", help_heading = "Email")]
    pub mail_max_attempts: u32,

    /// Login (and password-change) attempts per minute per client IP: that many
    /// at once, then one more every 60/N s; beyond, 429 with `Retry-After`.
    #[arg(long, env = "LOGIN_RATE_PER_MINUTE", default_value = "5", help_heading = "Rate limits")]
    pub login_rate_per_minute: u32,
    /// Registrations per minute per client IP.
    #[arg(long, env = "REGISTER_RATE_PER_MINUTE", default_value = "10", help_heading = "Rate limits")]
    pub register_rate_per_minute: u32,
    /// Refreshes per minute per client IP.
    #[arg(long, env = "REFRESH_RATE_PER_MINUTE", default_value = "60", help_heading = "Rate limits")]
    pub refresh_rate_per_minute: u32,
    /// Comma-separated IPs or CIDRs of proxies whose `X-Forwarded-For` is
    /// believed for the client IP. Empty when clients connect directly.
    #[arg(long, env = "TRUSTED_PROXIES", value_delimiter = ',', value_parser = parse_net, help_heading = "Rate limits")]
    pub trusted_proxies: Vec<IpNet>,
    /// How long a device cookie is locked after its own 10 failed passwords
    /// (then one more try each such period). Browsers without a device cookie
    /// share the account's budget: 10 failures, then one a minute.
    #[arg(long, env = "LOGIN_LOCKOUT", default_value = "15m", value_parser = parse_duration, help_heading = "Rate limits")]
    pub login_lockout: Duration,
    /// Lifetime of the `device_token` cookie a successful login sets: the
    /// browser then signs in on its own failure budget, never locked out by
    /// strangers' failures on the account. A password change or reset and
    /// `logout-all` void every device cookie of the user; each keeps at most 20.
    #[arg(long, env = "DEVICE_COOKIE_TTL", default_value = "365d", value_parser = parse_duration, help_heading = "Rate limits")]
    pub device_cookie_ttl: Duration,
    /// Most keys (addresses, accounts, devices) each in-process limiter holds;
    /// past it, the keys with the most budget left are forgotten first.
    #[arg(long, env = "RATE_LIMIT_MAX_KEYS", default_value = "100000", help_heading = "Rate limits")]
    pub rate_limit_max_keys: usize,
    /// The header `TRUSTED_PROXIES` write the client chain into:
    /// `x-forwarded-for` or `forwarded` (RFC 7239). Only that one is read; a
    /// proxy passes the other through untouched, so a client could forge it.
    #[arg(long, env = "FORWARDED_HEADER", default_value = "x-forwarded-for", help_heading = "Rate limits")]
    pub forwarded_header: ForwardedHeader,
    /// `redis://host:6379`: every rate limit is kept in Redis, shared by all
    /// instances, and session revocations are announced there to every
    /// instance's session cache. If Redis stops answering, each instance falls
    /// back to its own in-process limits (logged once a minute).
    #[arg(long, env = "RATE_LIMIT_REDIS_URL", help_heading = "Rate limits")]
    pub rate_limit_redis_url: Option<String>,
}

pub use docs::{env_example, help_text, readme_table};

pub const MIN_SECRET_BYTES: usize = 32;
/// The longest lifetime any duration setting may have (ten years).
pub const MAX_LIFETIME: Duration = Duration::from_secs(3650 * 86_400);
pub const MIN_PRODUCTION_BCRYPT_COST: u32 = 10;
pub const MAX_SESSION_CACHE_TTL: Duration = Duration::from_secs(600);
pub const MAX_KEY_PUBLISH_DELAY: Duration = Duration::from_secs(7 * 86_400);

/// Parses `Config` alone (the binary's subcommands do not take settings as flags).
#[derive(clap::Parser)]
#[command(name = "latchkey", no_binary_name = true)]
struct Settings {
    #[command(flatten)]
    config: Config,
}

impl Default for Config {
    /// The documented defaults, development mode, no secret yet.
    fn default() -> Self {
        Self::from_lookup(|_| None).expect("BUG: every default parses")
    }
}

/// One setting as documented: its variable, its default, what it does.
pub struct SettingDoc {
    pub heading: String,
    pub env: String,
    pub default: Option<String>,
    pub help: String,
}

impl Config {
    /// Reads every setting from the process environment. Call `dotenvy::dotenv()` first
    /// to let a `.env` file fill in what the environment does not set.
    pub fn from_env() -> anyhow::Result<Self> {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Same as [`Config::from_env`], over any key/value source (tests pass a
    /// map). An empty or blank value counts as unset, as in `.env.example`.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> anyhow::Result<Self> {
        // The variables are looked up here, not by clap (which reads the process
        // environment when the command is built), so tests never touch it.
        let args: Vec<String> = command()
            .get_arguments()
            .filter_map(|arg| {
                let env = arg.get_env()?.to_str()?;
                let mut value = get(env)?.trim().to_owned();
                if let Some(delimiter) = arg.get_value_delimiter() {
                    let items: Vec<&str> = value.split(delimiter).map(str::trim).filter(|v| !v.is_empty()).collect();
                    value = items.join(&delimiter.to_string());
                }
                let long = arg.get_long()?;
                (!value.is_empty()).then(|| format!("--{long}={value}"))
            })
            .collect();
        let matches = command()
            .mut_args(|arg| arg.env(None))
            .try_get_matches_from(args)
            .map_err(|e| anyhow::anyhow!("{}", e.render().to_string().trim_end()))?;
        Ok(Settings::from_arg_matches(&matches)?.config)
    }

    /// Every setting, in declaration order, for generated documentation.
    pub fn documentation() -> Vec<SettingDoc> {
        command()
            .get_arguments()
            .filter_map(|arg| {
                Some(SettingDoc {
                    heading: arg.get_help_heading().unwrap_or_default().to_owned(),
                    env: arg.get_env()?.to_str()?.to_owned(),
                    default: (!arg.get_default_values().is_empty()).then(|| {
                        arg.get_default_values().iter().map(|v| v.to_string_lossy()).collect::<Vec<_>>().join(",")
                    }),
                    help: arg.get_long_help().or(arg.get_help())?.to_string(),
                })
            })
            .collect()
    }

    /// `DATABASE_MAX_CONNECTIONS`, or its default for the database in `DATABASE_URL`.
    pub fn database_pool_size(&self) -> u32 {
        let sqlite = self.database_url.starts_with("sqlite:");
        self.database_max_connections.unwrap_or(if sqlite { 4 } else { 20 })
    }

    pub fn jwt_secret(&self) -> &Secret {
        self.jwt_secret.as_ref().expect("BUG: Config::validate fills in the JWT secret")
    }
}

fn command() -> clap::Command {
    use clap::CommandFactory;
    Settings::command()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    const SMTP: (&str, &str) = ("SMTP_URL", "smtp://mail.example.com:587");
    const APP: (&str, &str) = ("APP_URL", "https://app.example.com");

    #[test]
    fn production_needs_a_mail_server_and_an_https_app_url() {
        let secret = "x".repeat(32);
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), APP]).unwrap_err().to_string();
        assert!(err.contains("SMTP_URL"), "{err}");
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP]).unwrap_err().to_string();
        assert!(err.contains("APP_URL"), "{err}");
        let err =
            config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP, ("APP_URL", "http://app.example.com")])
                .unwrap_err()
                .to_string();
        assert!(err.contains("APP_URL"), "{err}");
    }

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
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP, APP, ("COOKIE_SECURE", "false")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("COOKIE_SECURE"), "{err}");
        let err = config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP, APP, ("BCRYPT_COST", "4")])
            .unwrap_err()
            .to_string();
        assert!(err.contains("BCRYPT_COST"), "{err}");
        assert!(config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP, APP]).is_ok());
    }

    #[test]
    fn production_key_pairs_need_a_data_key_and_a_publish_delay_of_two_minutes() {
        let secret = "x".repeat(32);
        let key = ("DATA_ENCRYPTION_KEY", "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=");
        let prod = |extra: &[(&str, &str)]| {
            let mut vars = vec![("APP_ENV", "production"), ("JWT_SECRET", secret.as_str()), SMTP, APP];
            vars.extend_from_slice(extra);
            config(&vars).map_err(|e| e.to_string())
        };
        let err = prod(&[("JWT_ALGORITHM", "EdDSA")]).unwrap_err();
        assert!(err.contains("DATA_ENCRYPTION_KEY"), "{err}");
        let err = prod(&[("JWT_ALGORITHM", "EdDSA"), key, ("KEY_PUBLISH_DELAY", "119s")]).unwrap_err();
        assert!(err.contains("KEY_PUBLISH_DELAY"), "{err}");
        assert!(prod(&[("JWT_ALGORITHM", "es256"), key, ("KEY_PUBLISH_DELAY", "2m")]).is_ok());
        // HS256 publishes nothing, and development may rotate at once.
        assert!(prod(&[("KEY_PUBLISH_DELAY", "0")]).is_ok());
        assert!(config(&[("JWT_ALGORITHM", "EdDSA"), key, ("KEY_PUBLISH_DELAY", "0")]).is_ok());
    }

    #[test]
    fn production_refuses_unsafe_origins_and_lifetimes_naming_them() {
        let secret = "x".repeat(32);
        let prod = |extra: (&str, &str)| {
            config(&[("APP_ENV", "production"), ("JWT_SECRET", &secret), SMTP, APP, extra]).map_err(|e| e.to_string())
        };
        for origins in ["null", "https://app.example.com,null", "http://app.example.com", "http://10.0.0.5:5173"] {
            let err = prod(("ALLOWED_ORIGINS", origins)).unwrap_err();
            assert!(err.contains("ALLOWED_ORIGINS"), "{origins}: {err}");
        }
        for ok in ["https://app.example.com", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000"] {
            assert!(prod(("ALLOWED_ORIGINS", ok)).is_ok(), "{ok}");
        }
        let err = prod(("REFRESH_REUSE_GRACE", "7d")).unwrap_err();
        assert!(err.contains("REFRESH_REUSE_GRACE"), "{err}");
        let err = prod(("ACCESS_TOKEN_TTL", "8d")).unwrap_err();
        assert!(err.contains("ACCESS_TOKEN_TTL"), "{err}");
        // Development keeps working with anything, as before.
        assert!(config(&[("ALLOWED_ORIGINS", "null"), ("ACCESS_TOKEN_TTL", "8d")]).is_ok());
    }

    #[test]
    fn absurd_lifetimes_and_a_lone_previous_key_are_refused_by_name() {
        let err = config(&[("DEVICE_COOKIE_TTL", "99999999d")]).unwrap_err().to_string();
        assert!(err.contains("DEVICE_COOKIE_TTL"), "{err}");
        let err = config(&[("DATA_ENCRYPTION_KEY_PREVIOUS", "AAAA")]).unwrap_err().to_string();
        assert!(err.contains("DATA_ENCRYPTION_KEY"), "{err}");
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
            ("BCRYPT_THREAD_NICE", "-5"),
            ("BCRYPT_THREAD_NICE", "20"),
            ("JWT_ALGORITHM", "RS256"),
            ("KEY_PUBLISH_DELAY", "30d"),
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
