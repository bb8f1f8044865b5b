//! The value types of settings: what a setting's string parses into.
//! They live here, below everything that uses them, so `config` names
//! nothing else of the crate.

use std::time::Duration;

use anyhow::{Context, bail};
use ipnet::IpNet;
use jsonwebtoken::Algorithm;

/// A secret that never shows up in `Debug` output or logs.
#[derive(Clone)]
pub struct Secret(pub(super) String);

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

#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AppEnv {
    #[value(alias = "dev")]
    Development,
    #[value(alias = "prod")]
    Production,
}

/// `JWT_ALGORITHM`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum AccessAlgorithm {
    #[value(name = "HS256")]
    Hs256,
    #[value(name = "EdDSA")]
    EdDsa,
    #[value(name = "ES256")]
    Es256,
}

impl AccessAlgorithm {
    pub fn is_asymmetric(self) -> bool {
        self != Self::Hs256
    }

    pub fn jwt(self) -> Algorithm {
        match self {
            Self::Hs256 => Algorithm::HS256,
            Self::EdDsa => Algorithm::EdDSA,
            Self::Es256 => Algorithm::ES256,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Hs256 => "HS256",
            Self::EdDsa => "EdDSA",
            Self::Es256 => "ES256",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        [Self::EdDsa, Self::Es256].into_iter().find(|a| a.name() == name)
    }
}

/// How often each instance reads the signing-key table again. At most half
/// of `KEY_PUBLISH_DELAY` in production, so every instance knows a key
/// before any signs with it.
pub const KEY_RELOAD_EVERY: Duration = Duration::from_secs(60);

/// Which header a trusted proxy writes the client chain into. Only one is
/// read: a proxy passes the other through untouched, so a client could fill it in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum ForwardedHeader {
    /// `X-Forwarded-For: client, proxy1` (nginx, most load balancers).
    #[default]
    #[value(name = "x-forwarded-for")]
    XForwardedFor,
    /// RFC 7239 `Forwarded: for=client;proto=https, for=proxy1`.
    #[value(name = "forwarded")]
    Forwarded,
}

/// `LOG_FORMAT`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

pub(super) fn parse_secret(s: &str) -> Result<Secret, std::convert::Infallible> {
    Ok(Secret::new(s))
}

/// `scheme://host[:port]`, compared without a trailing slash.
pub(super) fn parse_origin(s: &str) -> Result<String, std::convert::Infallible> {
    Ok(s.trim().trim_end_matches('/').to_owned())
}

pub(super) fn parse_net(s: &str) -> anyhow::Result<IpNet> {
    let s = s.trim();
    s.parse::<IpNet>()
        .or_else(|_| s.parse::<std::net::IpAddr>().map(IpNet::from))
        .with_context(|| format!("`{s}` is not an IP address or CIDR"))
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
