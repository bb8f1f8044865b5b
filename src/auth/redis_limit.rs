//! Rate limits shared by every instance through Redis: one GCRA script, run
//! atomically on the server, with Redis's own clock (instances' clocks may
//! disagree). Used when `RATE_LIMIT_REDIS_URL` is set; any Redis failure is
//! reported to the caller, which falls back to the in-process limiter.

use std::{
    sync::atomic::{AtomicU64, Ordering},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use redis::{
    Client, Script,
    aio::{ConnectionManager, ConnectionManagerConfig},
};
use sha2::{Digest, Sha256};
use tokio::sync::{Mutex, RwLock};

/// GCRA. KEYS[1]: the bucket. ARGV: emission interval (ms), tolerance (ms),
/// `spend` (take a cell if there is one) or `refund` (give one back). Returns
/// 0 when allowed, else the milliseconds to wait. Check and spend are one
/// atomic step, so concurrent callers can never share the last cell.
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local interval = tonumber(ARGV[1])
local tolerance = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]))
if not tat or tat < now then tat = now end
if ARGV[3] == 'refund' then
  local new_tat = tat - interval
  if new_tat > now then
    redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
  else
    redis.call('DEL', KEYS[1])
  end
  return 0
end
local allow_at = tat - tolerance
if now < allow_at then return allow_at - now end
local new_tat = tat + interval
redis.call('SET', KEYS[1], new_tat, 'PX', new_tat - now)
return 0
";

/// What [`RedisLimiter::take`] does with the bucket.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spend {
    /// Take one cell if there is one.
    One,
    /// Give one cell back.
    Refund,
}

/// How long one Redis call may take before we fall back to the local limiter.
/// Generous: a fallback grants the local budget on top of the shared one, so
/// a loaded but working Redis must not trigger it (a down Redis fails fast).
const TIMEOUT: Duration = Duration::from_secs(1);
/// How often to retry connecting while Redis is down.
const RECONNECT_EVERY_MS: u64 = 2_000;

/// A quota as GCRA parameters: `burst` requests at once, one more every `interval`.
#[derive(Clone, Copy, Debug)]
pub struct Rate {
    pub interval: Duration,
    pub burst: u32,
}

impl Rate {
    pub fn per_minute(n: u32) -> Self {
        let n = n.max(1);
        Self { interval: Duration::from_secs(60) / n, burst: n }
    }

    pub fn per_hour(n: u32) -> Self {
        let n = n.max(1);
        Self { interval: Duration::from_secs(3600) / n, burst: n }
    }
}

pub struct RedisLimiter {
    client: Client,
    conn: RwLock<Option<ConnectionManager>>,
    /// Held while connecting: callers that arrive meanwhile wait for that
    /// attempt instead of falling back (which would grant them the local
    /// budget on top of the shared one).
    connecting: Mutex<()>,
    last_connect_attempt_ms: AtomicU64,
    script: Script,
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

impl RedisLimiter {
    /// Checks the URL; connecting happens on first use and again after failures.
    pub fn new(url: &str) -> anyhow::Result<Self> {
        let client = Client::open(url).map_err(|e| anyhow::anyhow!("RATE_LIMIT_REDIS_URL is not a Redis URL: {e}"))?;
        Ok(Self {
            client,
            conn: RwLock::new(None),
            connecting: Mutex::new(()),
            last_connect_attempt_ms: AtomicU64::new(0),
            script: Script::new(GCRA),
        })
    }

    async fn connection(&self) -> redis::RedisResult<ConnectionManager> {
        if let Some(conn) = self.conn.read().await.as_ref() {
            return Ok(conn.clone());
        }
        let _connecting = self.connecting.lock().await;
        if let Some(conn) = self.conn.read().await.as_ref() {
            return Ok(conn.clone());
        }
        // Only a connection attempt stamps the clock: stamping every call would
        // push the next attempt out forever under steady traffic.
        let now = now_ms();
        if now.saturating_sub(self.last_connect_attempt_ms.load(Ordering::Relaxed)) < RECONNECT_EVERY_MS {
            return Err(redis::RedisError::from((redis::ErrorKind::Io, "redis unavailable; retrying soon")));
        }
        self.last_connect_attempt_ms.store(now, Ordering::Relaxed);
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(TIMEOUT))
            .set_response_timeout(Some(TIMEOUT))
            .set_number_of_retries(1);
        let conn = ConnectionManager::new_with_config(self.client.clone(), config).await?;
        *self.conn.write().await = Some(conn.clone());
        Ok(conn)
    }

    /// `Ok(None)` when allowed (and counted); `Ok(Some(wait))` when not.
    pub async fn take(&self, bucket: &str, rate: Rate, spend: Spend) -> redis::RedisResult<Option<Duration>> {
        let mut conn = self.connection().await?;
        let interval = rate.interval.as_millis() as u64;
        let tolerance = interval * u64::from(rate.burst.saturating_sub(1));
        let mut invocation = self.script.key(format!("latchkey:rl:{bucket}"));
        invocation.arg(interval).arg(tolerance).arg(if spend == Spend::Refund { "refund" } else { "spend" });
        let call = invocation.invoke_async::<u64>(&mut conn);
        let wait_ms = match tokio::time::timeout(TIMEOUT, call).await {
            Ok(result) => result?,
            Err(_) => return Err(redis::RedisError::from((redis::ErrorKind::Io, "redis timed out"))),
        };
        Ok((wait_ms > 0).then(|| Duration::from_millis(wait_ms)))
    }
}

/// A digest of an account's email, so no address is stored in Redis.
pub fn hashed(email: &str) -> String {
    hex::encode(Sha256::digest(email.as_bytes()))
}
