//! Rate limits. Per client IP for each route class, and per account for
//! failed logins, so credential stuffing spread over many IPs still slows down
//! for one account. [`RateLimiters`] enforces them in Redis when
//! `RATE_LIMIT_REDIS_URL` is set (one budget for every instance) and in
//! process otherwise, or whenever Redis does not answer.
//!
//! Memory stays bounded: [`RateLimiters::prune`] (run every minute by the
//! server) drops every key whose budget has refilled, which behaves exactly
//! like a key never seen. IPv6 clients are keyed by their /64, since one host
//! usually owns the whole prefix.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use dashmap::DashMap;
use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock, Reference},
    middleware::{NoOpMiddleware, StateInformationMiddleware},
    state::keyed::DashMapStateStore,
};

use crate::{
    auth::redis_limit::{Rate, RedisLimiter, account_bucket},
    config::Config,
    error::ApiError,
};

#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Login,
    Register,
    Refresh,
}

type Keyed<K, C> = RateLimiter<K, DashMapStateStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Failed logins allowed per account before it is slowed down: a burst of
/// this many, then one more every [`ACCOUNT_REFILL`]. An attacker can delay a
/// victim's login by at most one refill interval at a time, never lock it for good.
pub const ACCOUNT_FAILURE_BURST: u32 = 10;
pub const ACCOUNT_REFILL: Duration = Duration::from_secs(60);

/// The in-process limiters (governor).
pub struct LocalLimiters<C: Clock = DefaultClock> {
    login: Keyed<IpAddr, C>,
    register: Keyed<IpAddr, C>,
    refresh: Keyed<IpAddr, C>,
    failed_logins: RateLimiter<String, DashMapStateStore<String>, C, StateInformationMiddleware>,
    /// Accounts whose failure budget is spent, until when. Checked before any
    /// bcrypt work, without spending anything.
    locked_accounts: DashMap<String, C::Instant>,
    clock: C,
}

/// How often idle keys are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

impl LocalLimiters<DefaultClock> {
    pub fn new(config: &Config) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimiters<C> {
    pub fn with_clock(config: &Config, clock: C) -> Self {
        let account_quota = Quota::with_period(ACCOUNT_REFILL)
            .expect("BUG: non-zero period")
            .allow_burst(NonZeroU32::new(ACCOUNT_FAILURE_BURST).expect("BUG: non-zero burst"));
        Self {
            login: RateLimiter::dashmap_with_clock(per_minute(config.login_rate_per_minute), clock.clone()),
            register: RateLimiter::dashmap_with_clock(per_minute(config.register_rate_per_minute), clock.clone()),
            refresh: RateLimiter::dashmap_with_clock(per_minute(config.refresh_rate_per_minute), clock.clone()),
            failed_logins: RateLimiter::dashmap_with_clock(account_quota, clock.clone())
                .with_middleware::<StateInformationMiddleware>(),
            locked_accounts: DashMap::new(),
            clock,
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
        limiter.check_key(&key).map_err(|not_until| rate_limited(not_until.wait_time_from(self.clock.now())))
    }

    /// 429 while `account` (a normalized email) has spent its failure budget.
    pub fn check_account(&self, account: &str) -> Result<(), ApiError> {
        let now = self.clock.now();
        if let Some(until) = self.locked_accounts.get(account).map(|u| *u) {
            if until > now {
                return Err(rate_limited(until.duration_since(now).into()));
            }
            self.locked_accounts.remove(account);
        }
        Ok(())
    }

    /// Records a failed login for `account`; the failure that spends the last
    /// cell locks the account until the next one refills.
    pub fn record_failure(&self, account: &str) {
        let key = account.to_owned();
        let spent = match self.failed_logins.check_key(&key) {
            Ok(snapshot) => snapshot.remaining_burst_capacity() == 0,
            Err(_) => true,
        };
        if spent {
            self.locked_accounts.insert(key, self.clock.now() + ACCOUNT_REFILL.into());
        }
    }

    /// Drops keys whose budget is full again; they behave exactly like new keys.
    pub fn prune(&self) {
        for limiter in [&self.login, &self.register, &self.refresh] {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        self.failed_logins.retain_recent();
        self.failed_logins.shrink_to_fit();
        let now = self.clock.now();
        self.locked_accounts.retain(|_, until| *until > now);
        self.locked_accounts.shrink_to_fit();
    }

    /// Keys held across all limiters (for tests and diagnostics).
    pub fn tracked_keys(&self) -> usize {
        self.login.len()
            + self.register.len()
            + self.refresh.len()
            + self.failed_logins.len()
            + self.locked_accounts.len()
    }
}

/// Every limit, in Redis when configured and reachable, else in process.
pub struct RateLimiters {
    local: LocalLimiters,
    redis: Option<RedisLimiter>,
    rates: [Rate; 3],
    /// When the last "falling back" warning was logged (ms since the epoch),
    /// so an outage logs once a minute, not once a request.
    last_warning_ms: AtomicU64,
}

impl RateLimiters {
    pub fn new(config: &Config) -> anyhow::Result<Self> {
        let redis = config.rate_limit_redis_url.as_deref().map(RedisLimiter::new).transpose()?;
        Ok(Self {
            local: LocalLimiters::new(config),
            redis,
            rates: [
                Rate::per_minute(config.login_rate_per_minute),
                Rate::per_minute(config.register_rate_per_minute),
                Rate::per_minute(config.refresh_rate_per_minute),
            ],
            last_warning_ms: AtomicU64::new(0),
        })
    }

    /// Spends one request of `ip`'s budget for `limit`, or answers 429.
    pub async fn check(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(redis) = &self.redis {
            let key = ip.map_or(IpAddr::from([0, 0, 0, 0]), key_for);
            let (name, rate) = match limit {
                Limit::Login => ("login", self.rates[0]),
                Limit::Register => ("register", self.rates[1]),
                Limit::Refresh => ("refresh", self.rates[2]),
            };
            match redis.take(&format!("{name}:{key}"), rate, true).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(rate_limited(wait)),
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.check(limit, ip)
    }

    /// 429 while `account` has spent its failed-login budget.
    pub async fn check_account(&self, account: &str) -> Result<(), ApiError> {
        if let Some(redis) = &self.redis {
            match redis.take(&account_bucket(account), account_rate(), false).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(rate_limited(wait)),
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.check_account(account)
    }

    pub async fn record_failure(&self, account: &str) {
        if let Some(redis) = &self.redis {
            match redis.take(&account_bucket(account), account_rate(), true).await {
                Ok(_) => return,
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.record_failure(account);
    }

    pub fn prune(&self) {
        self.local.prune();
    }

    pub fn tracked_keys(&self) -> usize {
        self.local.tracked_keys()
    }

    fn warn_fallback(&self, err: &redis::RedisError) {
        let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        let last = self.last_warning_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 60_000
            && self.last_warning_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(error = %err, "Redis rate limiter unavailable; using the in-process limiter");
        }
    }
}

fn account_rate() -> Rate {
    Rate { interval: ACCOUNT_REFILL, burst: ACCOUNT_FAILURE_BURST }
}

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::RateLimited { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
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
    use governor::clock::FakeRelativeClock;

    fn limiters(login: u32) -> (LocalLimiters<FakeRelativeClock>, FakeRelativeClock) {
        let clock = FakeRelativeClock::default();
        let config = Config { login_rate_per_minute: login, ..Config::default() };
        (LocalLimiters::with_clock(&config, clock.clone()), clock)
    }

    #[test]
    fn the_sixth_login_in_a_minute_waits_and_the_window_refills() {
        let (l, clock) = limiters(5);
        let ip = Some("198.51.100.1".parse().unwrap());
        for _ in 0..5 {
            l.check(Limit::Login, ip).unwrap();
        }
        match l.check(Limit::Login, ip) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 12),
            other => panic!("expected 429, got {other:?}"),
        }
        // Another address and another route class have their own budgets.
        l.check(Limit::Login, Some("198.51.100.2".parse().unwrap())).unwrap();
        l.check(Limit::Register, ip).unwrap();
        clock.advance(Duration::from_secs(12));
        l.check(Limit::Login, ip).unwrap();
        assert!(l.check(Limit::Login, ip).is_err());
        clock.advance(Duration::from_secs(60));
        for _ in 0..5 {
            l.check(Limit::Login, ip).unwrap();
        }
    }

    #[test]
    fn ipv6_clients_share_a_budget_per_64() {
        let (l, _) = limiters(1);
        l.check(Limit::Login, Some("2001:db8:1:2::1".parse().unwrap())).unwrap();
        assert!(l.check(Limit::Login, Some("2001:db8:1:2:ffff::9".parse().unwrap())).is_err());
        assert!(l.check(Limit::Login, Some("2001:db8:1:3::1".parse().unwrap())).is_ok());
    }

    #[test]
    fn memory_is_released_for_100_000_idle_addresses() {
        let (l, clock) = limiters(5);
        for i in 0..100_000u32 {
            l.check(Limit::Login, Some(IpAddr::from(i.to_be_bytes()))).unwrap();
        }
        assert_eq!(l.tracked_keys(), 100_000);
        l.prune();
        assert_eq!(l.tracked_keys(), 100_000, "budgets not yet refilled are kept");
        clock.advance(Duration::from_secs(61));
        l.prune();
        assert_eq!(l.tracked_keys(), 0);
    }

    #[test]
    fn failed_logins_slow_one_account_down_for_a_bounded_time() {
        let (l, clock) = limiters(1000);
        for _ in 0..ACCOUNT_FAILURE_BURST {
            l.check_account("victim@example.com").unwrap();
            l.record_failure("victim@example.com");
        }
        match l.check_account("victim@example.com") {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs <= 60),
            other => panic!("expected 429, got {other:?}"),
        }
        l.check_account("other@example.com").unwrap();
        // After a refill: exactly one more guess, then locked again.
        clock.advance(ACCOUNT_REFILL);
        l.check_account("victim@example.com").unwrap();
        l.record_failure("victim@example.com");
        assert!(l.check_account("victim@example.com").is_err());
    }
}
