//! Password hashing: bcrypt at the configured cost, on a pool of hashing
//! threads (one per core, at the lowest CPU priority; see `hash_pool`) so a
//! login never stalls the runtime workers and a login flood cannot starve
//! other requests of CPU. Logins beyond the pool's threads queue, and are shed
//! with 503 once they have waited too long.
//!
//! bcrypt reads only the first 72 bytes of its input, so two long passwords
//! sharing a prefix would both verify. We hash a SHA-256 digest (64 hex bytes)
//! of the password instead: every byte of the password counts.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::{
    auth::{
        bcrypt_impl::{Backend, HashError},
        hash_pool::HashPool,
    },
    error::ApiError,
};

/// Marks a stored hash imported from another system (`latchkey import-users`):
/// bcrypt of the plain password rather than of our prehash. It verifies once,
/// and the login replaces it (see [`PasswordHasher::needs_rehash`]).
pub const LEGACY_PREFIX: &str = "legacy:";

/// How long a login may wait for a bcrypt slot before it is shed with 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PasswordHasher {
    cost: u32,
    backend: Backend,
    pool: HashPool,
    /// One permit per hashing thread: callers queue here, in arrival order and
    /// with a deadline, rather than inside the pool.
    slots: Semaphore,
    /// A real hash at the same cost, verified when the email is unknown so that
    /// response time does not reveal which accounts exist.
    dummy_hash: String,
}

impl PasswordHasher {
    /// `nice`: the hashing threads' priority (`BCRYPT_THREAD_NICE`).
    pub fn new(cost: u32, nice: i32) -> anyhow::Result<Self> {
        let backend = Backend::detect();
        let dummy_hash = backend.hash(&prehash("latchkey-dummy-password"), cost)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        let pool = HashPool::new(cores, nice)?;
        Ok(Self { cost, backend, slots: Semaphore::new(pool.threads()), pool, dummy_hash })
    }

    /// The bcrypt implementation in use (for the startup log).
    pub fn backend(&self) -> &'static str {
        self.backend.name()
    }

    /// Hashes waiting for a thread or running.
    pub fn queued(&self) -> usize {
        self.pool.in_flight()
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(Backend) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.acquire())
            .await
            .map_err(|_| ApiError::Busy)?
            .expect("BUG: the semaphore is never closed");
        let backend = self.backend;
        self.pool
            .run(move || {
                let start = std::time::Instant::now();
                let result = work(backend);
                crate::prometheus::bcrypt_hash(start.elapsed());
                result
            })
            .await
            .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("the bcrypt thread pool is gone")))?
            .map_err(|e| ApiError::Internal(anyhow::anyhow!("bcrypt failed: {e}")))
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let input = prehash(password);
        let cost = self.cost;
        self.run(move |bcrypt| bcrypt.hash(&input, cost)).await
    }

    /// Verifies against `hash`, or against the dummy hash when there is no user,
    /// so both kinds of failure cost the same bcrypt work.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        // Other systems hash the password itself, and bcrypt cannot take a
        // NUL: such a password never matches an imported hash. It still pays
        // a whole check (against the dummy hash), or the quick refusal would
        // tell which accounts were imported.
        let legacy_refused = password.contains('\0') && hash.is_some_and(|h| h.starts_with(LEGACY_PREFIX));
        let is_real = hash.is_some() && !legacy_refused;
        let hash = hash.filter(|_| is_real).unwrap_or(&self.dummy_hash);
        let (input, hash) = match hash.strip_prefix(LEGACY_PREFIX) {
            Some(legacy) => (password.to_owned(), legacy.to_owned()),
            None => (prehash(password), hash.to_owned()),
        };
        // A hash of a lower cost (imported, or from before a BCRYPT_COST
        // change) would answer a wrong password faster and tell that the
        // account exists: pad it with bcrypt work of costs c, c+1, ... B-1,
        // which with the check itself adds up to one check at cost B
        // (2^c + 2^c + 2^(c+1) + ... + 2^(B-1) = 2^B rounds).
        let padding = cost_of(&hash).map_or(0..0, |cost| cost..self.cost);
        let ok = self
            .run(move |bcrypt| {
                let ok = bcrypt.verify(&input, &hash)?;
                for cost in padding {
                    bcrypt.hash("latchkey-padding", cost)?;
                }
                Ok(ok)
            })
            .await?;
        Ok(ok && is_real)
    }
}

/// The cost a bcrypt hash was made at (`$2b$12$…` is 12).
fn cost_of(hash: &str) -> Option<u32> {
    hash.split('$').nth(2).and_then(|c| c.parse().ok())
}

impl PasswordHasher {
    /// True when `hash` was made at another cost than the configured one, or
    /// imported from another system, so a successful login should store a
    /// fresh hash (and timing stays uniform).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash.starts_with(LEGACY_PREFIX) || cost_of(hash) != Some(self.cost)
    }
}

fn prehash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_differing_after_byte_72_do_not_both_verify() {
        let hasher = PasswordHasher::new(4, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap();
        let prefix = "Aa1".to_owned() + &"x".repeat(69);
        assert_eq!(prefix.len(), 72);
        let hash = hasher.hash(&format!("{prefix}first")).await.unwrap();
        assert!(hasher.verify(&format!("{prefix}first"), Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&format!("{prefix}second"), Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn an_imported_hash_of_the_plain_password_verifies_and_asks_to_be_replaced() {
        let hasher = PasswordHasher::new(4, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap();
        let plain = bcrypt::hash_with_salt("Imported-Pass-1", 4, *b"0123456789abcdef").unwrap();
        for version in [bcrypt::Version::TwoA, bcrypt::Version::TwoB, bcrypt::Version::TwoY] {
            let stored = format!("{LEGACY_PREFIX}{}", plain.format_for_version(version));
            assert!(hasher.verify("Imported-Pass-1", Some(&stored)).await.unwrap(), "{stored}");
            assert!(!hasher.verify("Imported-Pass-2", Some(&stored)).await.unwrap());
            assert!(!hasher.verify("Imported-Pass-1\0", Some(&stored)).await.unwrap());
            assert!(hasher.needs_rehash(&stored));
        }
        // Without the mark, the same hash is read as one of ours (of the prehash): no match.
        assert!(
            !hasher.verify("Imported-Pass-1", Some(&plain.format_for_version(bcrypt::Version::TwoB))).await.unwrap()
        );
    }

    #[test]
    fn a_hash_names_its_cost() {
        assert_eq!(cost_of("$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie"), Some(4));
        assert_eq!(cost_of("$2y$12$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie"), Some(12));
        assert_eq!(cost_of("garbage"), None);
    }

    #[tokio::test]
    async fn a_nul_against_an_imported_hash_pays_a_whole_check() {
        // At cost 12 a check takes hundreds of milliseconds, a refusal without one microseconds.
        let hasher = PasswordHasher::new(12, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap();
        let stored = format!("{LEGACY_PREFIX}{}", bcrypt::hash("Imported-Pass-1", 4).unwrap());
        let started = std::time::Instant::now();
        assert!(!hasher.verify("Imported\0Pass-1", Some(&stored)).await.unwrap());
        let refused = started.elapsed();
        let started = std::time::Instant::now();
        assert!(!hasher.verify("Imported-Pass-2", None).await.unwrap());
        let unknown = started.elapsed();
        assert!(refused * 4 > unknown, "{refused:?} against {unknown:?} for an unknown email");
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = PasswordHasher::new(4, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap();
        assert!(!hasher.verify("latchkey-dummy-password", None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_use_the_configured_cost() {
        let hasher = PasswordHasher::new(5, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap();
        let hash = hasher.hash("Correct1Horse").await.unwrap();
        assert!(hash.starts_with("$2b$05$"), "{hash}");
        assert!(!hasher.needs_rehash(&hash));
        assert!(PasswordHasher::new(4, crate::auth::hash_pool::HASH_THREAD_NICE).unwrap().needs_rehash(&hash));
    }
}
