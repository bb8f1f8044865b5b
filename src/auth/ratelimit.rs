//! Per-client-IP rate limits (governor, in process). Each route class has its
//! own keyed limiter; IPv6 clients are keyed by their /64, since one host
//! usually owns the whole prefix. Idle keys are dropped by [`RateLimiters::prune`],
//! which the server calls on a timer, so memory stays bounded.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    time::Duration,
};

use governor::{
    DefaultKeyedRateLimiter, Quota,
    clock::{Clock, DefaultClock},
};

use crate::{config::Config, error::ApiError};

#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Login,
    Register,
    Refresh,
}

pub struct RateLimiters {
    login: DefaultKeyedRateLimiter<IpAddr>,
    register: DefaultKeyedRateLimiter<IpAddr>,
    refresh: DefaultKeyedRateLimiter<IpAddr>,
    clock: DefaultClock,
}

/// How often idle keys are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

impl RateLimiters {
    pub fn new(config: &Config) -> Self {
        let per_minute = |n: u32| Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN));
        Self {
            login: DefaultKeyedRateLimiter::keyed(per_minute(config.login_rate_per_minute)),
            register: DefaultKeyedRateLimiter::keyed(per_minute(config.register_rate_per_minute)),
            refresh: DefaultKeyedRateLimiter::keyed(per_minute(config.refresh_rate_per_minute)),
            clock: DefaultClock::default(),
        }
    }

    /// Spends one request of `ip`'s budget, or says how long to wait.
    pub fn check(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        // No address (e.g. a Unix socket) shares one bucket rather than none.
        let key = ip.map_or(IpAddr::from([0, 0, 0, 0]), key_for);
        let limiter = match limit {
            Limit::Login => &self.login,
            Limit::Register => &self.register,
            Limit::Refresh => &self.refresh,
        };
        limiter.check_key(&key).map_err(|not_until| {
            let wait = not_until.wait_time_from(self.clock.now());
            ApiError::RateLimited { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
        })
    }

    /// Drops keys whose budget is full again; they behave exactly like new keys.
    pub fn prune(&self) {
        for limiter in [&self.login, &self.register, &self.refresh] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }

    pub fn tracked_keys(&self) -> usize {
        self.login.len() + self.register.len() + self.refresh.len()
    }
}

fn key_for(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiters(login: u32) -> RateLimiters {
        RateLimiters::new(&Config { login_rate_per_minute: login, ..Config::default() })
    }

    #[test]
    fn the_sixth_login_in_a_minute_waits_about_twelve_seconds() {
        let l = limiters(5);
        let ip = Some("198.51.100.1".parse().unwrap());
        for _ in 0..5 {
            l.check(Limit::Login, ip).unwrap();
        }
        match l.check(Limit::Login, ip) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!((1..=12).contains(&retry_after_secs)),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address and another route class have their own budgets.
        l.check(Limit::Login, Some("198.51.100.2".parse().unwrap())).unwrap();
        l.check(Limit::Register, ip).unwrap();
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let l = limiters(1);
        l.check(Limit::Login, Some("2001:db8:1:2::1".parse().unwrap())).unwrap();
        assert!(l.check(Limit::Login, Some("2001:db8:1:2:ffff::9".parse().unwrap())).is_err());
        assert!(l.check(Limit::Login, Some("2001:db8:1:3::1".parse().unwrap())).is_ok());
    }
}
