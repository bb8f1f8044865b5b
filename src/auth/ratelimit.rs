//! Rate limits. Per client IP for each route class, and failed-password
//! budgets, so credential stuffing spread over many IPs still slows down for
//! one account. [`RateLimiters`] enforces them in Redis when
//! `RATE_LIMIT_REDIS_URL` is set (one budget for every instance) and in
//! process otherwise, or whenever Redis does not answer.
//!
//! Failed-password budgets ([`Budget`]) are spent *before* the password is
//! checked and given back when it was right, so N concurrent guesses past the
//! limit cost at most one bcrypt check. A browser that signed in before carries
//! a device cookie and spends only its own budget: strangers' failures on the
//! shared account budget never lock the owner out (`docs/SESSIONS.md`).
//!
//! Memory stays bounded: [`RateLimiters::prune`] (run every minute by the
//! server) drops every key whose budget has refilled, and each in-process
//! limiter holds at most `RATE_LIMIT_MAX_KEYS` keys (see [`CappedStore`] for
//! what a flood evicts). IPv6 clients are keyed by their /64, since one host
//! usually owns the whole prefix.

use std::{
    net::{IpAddr, Ipv6Addr},
    num::NonZeroU32,
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use governor::{
    Quota, RateLimiter,
    clock::{Clock, DefaultClock},
    middleware::NoOpMiddleware,
    nanos::Nanos,
};
use uuid::Uuid;

use crate::{
    auth::{
        limiter_store::CappedStore,
        redis_limit::{Rate, RedisLimiter, Spend, hashed},
    },
    config::Config,
    error::ApiError,
};

#[derive(Clone, Copy, Debug)]
pub enum Limit {
    Login,
    Register,
    Refresh,
    /// Requests that can send mail (`EMAIL_RATE_PER_HOUR`).
    Mail,
}

impl Limit {
    /// Its name in Redis keys and metrics.
    pub fn name(self) -> &'static str {
        match self {
            Limit::Login => "login",
            Limit::Register => "register",
            Limit::Refresh => "refresh",
            Limit::Mail => "mail",
        }
    }
}

/// Mails of one kind one address gets per [`MAIL_PER_ADDRESS_PERIOD`]; past
/// it, nothing is sent and the answer stays the same (no enumeration).
pub const MAIL_PER_ADDRESS: u32 = 3;
pub const MAIL_PER_ADDRESS_PERIOD: Duration = Duration::from_secs(3600);

/// Whose failed-password budget an attempt spends.
#[derive(Clone, Copy, Debug)]
pub enum Budget<'a> {
    /// Attempts on an account (by normalized email) without a device cookie of
    /// that account: one budget shared by everyone, the owner included.
    Account(&'a str),
    /// Attempts from a browser that signed in to the account before.
    Device(Uuid),
    /// Password checks inside a signed-in session (password change).
    Session(Uuid),
    /// Second-factor codes at a password reset, by the reset link's token id:
    /// only whoever holds the link spends it, so strangers' failed logins
    /// never block the owner's reset.
    ResetLink(Uuid),
    /// The same codes across every reset link of one user (by user id):
    /// someone holding the mailbox gets no fresh ten guesses with each new
    /// link. Only link holders spend it, too.
    ResetCodes(Uuid),
}

/// Failed passwords allowed on a shared budget before it slows down: a burst
/// of this many, then one more every [`ACCOUNT_REFILL`].
pub const ACCOUNT_FAILURE_BURST: u32 = 10;
pub const ACCOUNT_REFILL: Duration = Duration::from_secs(60);
/// Failed passwords a device cookie may spend before it is locked for `LOGIN_LOCKOUT`.
pub const DEVICE_FAILURE_BURST: u32 = 10;

type Keyed<K, C> = RateLimiter<K, CappedStore<K>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// One in-process keyed limiter, with a handle on its store for refunds.
struct KeyedLimit<K: std::hash::Hash + Eq + Clone, C: Clock> {
    limiter: Keyed<K, C>,
    store: CappedStore<K>,
    cell: Nanos,
}

impl<K: std::hash::Hash + Eq + Clone, C: Clock> KeyedLimit<K, C> {
    fn new(quota: Quota, max_keys: usize, clock: C) -> Self {
        let store = CappedStore::new(max_keys);
        let cell = Nanos::from(quota.replenish_interval());
        Self { limiter: RateLimiter::new(quota, store.clone(), clock), store, cell }
    }

    fn take(&self, key: &K, clock: &C) -> Result<(), ApiError> {
        self.limiter.check_key(key).map_err(|not_until| rate_limited(not_until.wait_time_from(clock.now())))
    }

    fn refund(&self, key: &K) {
        self.store.refund(key, self.cell);
    }

    fn prune(&self) {
        self.limiter.retain_recent();
        self.limiter.shrink_to_fit();
    }
}

/// The in-process limiters (governor).
pub struct LocalLimiters<C: Clock = DefaultClock> {
    login: KeyedLimit<IpAddr, C>,
    register: KeyedLimit<IpAddr, C>,
    refresh: KeyedLimit<IpAddr, C>,
    mail: KeyedLimit<IpAddr, C>,
    /// Mails per address and kind, by [`mail_key`].
    mail_to: KeyedLimit<String, C>,
    /// Shared account budgets and session budgets, by [`Budget::key`].
    failures: KeyedLimit<String, C>,
    devices: KeyedLimit<String, C>,
    clock: C,
}

/// How often idle keys are pruned.
pub const PRUNE_INTERVAL: Duration = Duration::from_secs(60);

fn per_minute(n: u32) -> Quota {
    Quota::per_minute(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn per_hour(n: u32) -> Quota {
    Quota::per_hour(NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN))
}

fn mail_to_quota() -> Quota {
    burst_then_one_per(MAIL_PER_ADDRESS, MAIL_PER_ADDRESS_PERIOD / MAIL_PER_ADDRESS)
}

/// The bucket of mails of one `kind` to one address (hashed, as in Redis).
fn mail_key(address: &str, kind: &str) -> String {
    format!("mailto:{kind}:{}", hashed(address))
}

fn burst_then_one_per(burst: u32, period: Duration) -> Quota {
    Quota::with_period(period.max(Duration::from_millis(1)))
        .expect("BUG: non-zero period")
        .allow_burst(NonZeroU32::new(burst).unwrap_or(NonZeroU32::MIN))
}

impl<'a> Budget<'a> {
    /// The bucket name, also in Redis. Emails are hashed so no address is stored there.
    fn key(&self) -> String {
        match self {
            Budget::Account(email) => format!("fail:{}", hashed(email)),
            Budget::Device(id) => format!("device:{id}"),
            Budget::Session(id) => format!("session:{id}"),
            Budget::ResetLink(id) => format!("reset:{id}"),
            Budget::ResetCodes(id) => format!("resetcodes:{id}"),
        }
    }
}

impl LocalLimiters<DefaultClock> {
    pub fn new(config: &Config) -> Self {
        Self::with_clock(config, DefaultClock::default())
    }
}

impl<C: Clock + Clone> LocalLimiters<C> {
    pub fn with_clock(config: &Config, clock: C) -> Self {
        let cap = config.rate_limit_max_keys;
        Self {
            login: KeyedLimit::new(per_minute(config.login_rate_per_minute), cap, clock.clone()),
            register: KeyedLimit::new(per_minute(config.register_rate_per_minute), cap, clock.clone()),
            refresh: KeyedLimit::new(per_minute(config.refresh_rate_per_minute), cap, clock.clone()),
            mail: KeyedLimit::new(per_hour(config.email_rate_per_hour), cap, clock.clone()),
            mail_to: KeyedLimit::new(mail_to_quota(), cap, clock.clone()),
            failures: KeyedLimit::new(burst_then_one_per(ACCOUNT_FAILURE_BURST, ACCOUNT_REFILL), cap, clock.clone()),
            devices: KeyedLimit::new(
                burst_then_one_per(DEVICE_FAILURE_BURST, config.login_lockout),
                cap,
                clock.clone(),
            ),
            clock,
        }
    }

    fn per_ip(&self, limit: Limit) -> &KeyedLimit<IpAddr, C> {
        match limit {
            Limit::Login => &self.login,
            Limit::Register => &self.register,
            Limit::Refresh => &self.refresh,
            Limit::Mail => &self.mail,
        }
    }

    /// Spends one of the address's mails of `kind`; `false` when none is left.
    pub fn allow_mail_to(&self, address: &str, kind: &str) -> bool {
        self.mail_to.take(&mail_key(address, kind), &self.clock).is_ok()
    }

    fn budget(&self, budget: &Budget) -> &KeyedLimit<String, C> {
        match budget {
            Budget::Device(_) => &self.devices,
            Budget::Account(_) | Budget::Session(_) | Budget::ResetLink(_) | Budget::ResetCodes(_) => &self.failures,
        }
    }

    /// Spends one request of `ip`'s budget, or says how long to wait.
    pub fn check(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        self.per_ip(limit).take(&ip_key(ip), &self.clock)
    }

    /// Spends one failed-password cell of `budget` before the password is
    /// checked; 429 when there is none left.
    pub fn spend(&self, budget: &Budget) -> Result<(), ApiError> {
        self.budget(budget).take(&budget.key(), &self.clock)
    }

    /// Gives back the cell [`Self::spend`] took, after a right password.
    pub fn refund(&self, budget: &Budget) {
        self.budget(budget).refund(&budget.key());
    }

    /// Drops keys whose budget is full again; they behave exactly like new keys.
    pub fn prune(&self) {
        self.login.prune();
        self.register.prune();
        self.refresh.prune();
        self.mail.prune();
        self.mail_to.prune();
        self.failures.prune();
        self.devices.prune();
    }

    /// Keys held across all limiters (for tests and diagnostics).
    pub fn tracked_keys(&self) -> usize {
        [self.login.limiter.len(), self.register.limiter.len(), self.refresh.limiter.len(), self.mail.limiter.len()]
            .iter()
            .sum::<usize>()
            + self.mail_to.limiter.len()
            + self.failures.limiter.len()
            + self.devices.limiter.len()
    }
}

/// Every limit, in Redis when configured and reachable, else in process.
pub struct RateLimiters {
    local: LocalLimiters,
    redis: Option<RedisLimiter>,
    rates: [Rate; 4],
    device_rate: Rate,
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
                Rate::per_hour(config.email_rate_per_hour),
            ],
            device_rate: Rate { interval: config.login_lockout, burst: DEVICE_FAILURE_BURST },
            last_warning_ms: AtomicU64::new(0),
        })
    }

    /// Spends one request of `ip`'s budget for `limit`, or answers 429.
    pub async fn check(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        let result = self.check_unmetered(limit, ip).await;
        if result.is_err() {
            crate::prometheus::rate_limit_refused(limit.name());
        }
        result
    }

    async fn check_unmetered(&self, limit: Limit, ip: Option<IpAddr>) -> Result<(), ApiError> {
        if let Some(redis) = &self.redis {
            let key = ip_key(ip);
            let name = limit.name();
            let rate = match limit {
                Limit::Login => self.rates[0],
                Limit::Register => self.rates[1],
                Limit::Refresh => self.rates[2],
                Limit::Mail => self.rates[3],
            };
            match redis.take(&format!("{name}:{key}"), rate, Spend::One).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(rate_limited(wait)),
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.check(limit, ip)
    }

    fn rate_of(&self, budget: &Budget) -> Rate {
        match budget {
            Budget::Device(_) => self.device_rate,
            Budget::Account(_) | Budget::Session(_) | Budget::ResetLink(_) | Budget::ResetCodes(_) => {
                Rate { interval: ACCOUNT_REFILL, burst: ACCOUNT_FAILURE_BURST }
            }
        }
    }

    /// Spends one failed-password cell of `budget` before the password is
    /// checked (atomically, across instances with Redis); 429 when none is left.
    pub async fn spend(&self, budget: &Budget<'_>) -> Result<(), ApiError> {
        let result = self.spend_unmetered(budget).await;
        if result.is_err() {
            crate::prometheus::rate_limit_refused(match budget {
                Budget::Account(_) => "account_failures",
                Budget::Device(_) => "device_failures",
                Budget::Session(_) => "session_failures",
                Budget::ResetLink(_) | Budget::ResetCodes(_) => "reset_link_failures",
            });
        }
        result
    }

    async fn spend_unmetered(&self, budget: &Budget<'_>) -> Result<(), ApiError> {
        if let Some(redis) = &self.redis {
            match redis.take(&budget.key(), self.rate_of(budget), Spend::One).await {
                Ok(None) => return Ok(()),
                Ok(Some(wait)) => return Err(rate_limited(wait)),
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.spend(budget)
    }

    /// Spends one of the address's mails of `kind`; `false` when none is left
    /// (the caller then sends nothing and answers as if it had).
    pub async fn allow_mail_to(&self, address: &str, kind: &str) -> bool {
        let allowed = self.allow_mail_to_unmetered(address, kind).await;
        if !allowed {
            crate::prometheus::rate_limit_refused("mail_per_address");
        }
        allowed
    }

    async fn allow_mail_to_unmetered(&self, address: &str, kind: &str) -> bool {
        if let Some(redis) = &self.redis {
            let rate = Rate { interval: MAIL_PER_ADDRESS_PERIOD / MAIL_PER_ADDRESS, burst: MAIL_PER_ADDRESS };
            match redis.take(&mail_key(address, kind), rate, Spend::One).await {
                Ok(wait) => return wait.is_none(),
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.allow_mail_to(address, kind)
    }

    /// Gives back the cell [`Self::spend`] took: the password was right.
    pub async fn refund(&self, budget: &Budget<'_>) {
        if let Some(redis) = &self.redis {
            match redis.take(&budget.key(), self.rate_of(budget), Spend::Refund).await {
                Ok(_) => return,
                Err(e) => self.warn_fallback(&e),
            }
        }
        self.local.refund(budget);
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

fn rate_limited(wait: Duration) -> ApiError {
    ApiError::RateLimited { retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0) }
}

/// No address (e.g. a Unix socket) shares one bucket rather than none.
fn ip_key(ip: Option<IpAddr>) -> IpAddr {
    ip.map_or(IpAddr::from([0, 0, 0, 0]), key_for)
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
        let config =
            Config { login_rate_per_minute: login, login_lockout: Duration::from_secs(15 * 60), ..Config::default() };
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
        let victim = Budget::Account("victim@example.com");
        for _ in 0..ACCOUNT_FAILURE_BURST {
            l.spend(&victim).unwrap();
        }
        match l.spend(&victim) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert!(retry_after_secs <= 60),
            other => panic!("expected 429, got {other:?}"),
        }
        l.spend(&Budget::Account("other@example.com")).unwrap();
        // After a refill: exactly one more guess, then locked again.
        clock.advance(ACCOUNT_REFILL);
        l.spend(&victim).unwrap();
        assert!(l.spend(&victim).is_err());
    }

    #[test]
    fn a_right_password_gives_its_cell_back() {
        let (l, _) = limiters(1000);
        let owner = Budget::Account("owner@example.com");
        for _ in 0..ACCOUNT_FAILURE_BURST * 3 {
            l.spend(&owner).unwrap();
            l.refund(&owner);
        }
        l.spend(&owner).unwrap();
    }

    #[test]
    fn a_device_has_its_own_budget_and_locks_for_the_lockout() {
        let (l, clock) = limiters(1000);
        let device = Budget::Device(Uuid::new_v4());
        for _ in 0..ACCOUNT_FAILURE_BURST {
            l.spend(&Budget::Account("owner@example.com")).unwrap();
        }
        assert!(l.spend(&Budget::Account("owner@example.com")).is_err(), "the shared budget is spent");
        for _ in 0..DEVICE_FAILURE_BURST {
            l.spend(&device).unwrap();
        }
        match l.spend(&device) {
            Err(ApiError::RateLimited { retry_after_secs }) => assert_eq!(retry_after_secs, 15 * 60),
            other => panic!("expected 429, got {other:?}"),
        }
        l.spend(&Budget::Device(Uuid::new_v4())).unwrap();
        clock.advance(Duration::from_secs(15 * 60));
        l.spend(&device).unwrap();
    }

    #[test]
    fn a_flood_of_distinct_addresses_stays_under_the_key_cap_and_limits_still_hold() {
        let clock = FakeRelativeClock::default();
        let config = Config { login_rate_per_minute: 5, rate_limit_max_keys: 1_000, ..Config::default() };
        let l = LocalLimiters::with_clock(&config, clock.clone());
        let abuser: IpAddr = "203.0.113.7".parse().unwrap();
        for _ in 0..5 {
            l.check(Limit::Login, Some(abuser)).unwrap();
        }
        assert!(l.check(Limit::Login, Some(abuser)).is_err());
        // 100,000 distinct IPv6 /64s, each trying once.
        for i in 0..100_000u64 {
            let ip = IpAddr::V6(Ipv6Addr::from(u128::from(0x2001_0db8_0000_0000u64 + i) << 64));
            l.check(Limit::Login, Some(ip)).unwrap();
            assert!(l.login.limiter.len() <= 1_000, "{} keys after {i}", l.login.limiter.len());
        }
        assert!(l.check(Limit::Login, Some(abuser)).is_err(), "a limited address stays limited through a flood");
        l.check(Limit::Login, Some("198.51.100.1".parse().unwrap())).unwrap();
    }
}
