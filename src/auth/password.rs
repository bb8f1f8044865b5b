//! Password hashing: bcrypt at the configured cost, always on tokio's blocking
//! pool so a login never stalls the runtime workers, and at most one hash per
//! core but one at a time, so a login flood queues instead of starving every
//! other request of CPU (and sheds with 503 once the queue is too long).
//!
//! bcrypt reads only the first 72 bytes of its input, so two long passwords
//! sharing a prefix would both verify. We hash a SHA-256 digest (64 hex bytes)
//! of the password instead: every byte of the password counts.

use std::time::Duration;

use sha2::{Digest, Sha256};
use tokio::sync::Semaphore;

use crate::error::ApiError;

/// How long a login may wait for a bcrypt slot before it is shed with 503.
const QUEUE_TIMEOUT: Duration = Duration::from_secs(10);

pub struct PasswordHasher {
    cost: u32,
    slots: Semaphore,
    /// A real hash at the same cost, verified when the email is unknown so that
    /// response time does not reveal which accounts exist.
    dummy_hash: String,
}

impl PasswordHasher {
    pub fn new(cost: u32) -> anyhow::Result<Self> {
        let dummy_hash = bcrypt::hash(prehash("latchkey-dummy-password"), cost)?;
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        Ok(Self { cost, slots: Semaphore::new(cores.saturating_sub(1).max(1)), dummy_hash })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
    ) -> Result<T, ApiError> {
        let _slot = tokio::time::timeout(QUEUE_TIMEOUT, self.slots.acquire())
            .await
            .map_err(|_| ApiError::Busy)?
            .expect("BUG: the semaphore is never closed");
        run_blocking(work).await
    }

    pub async fn hash(&self, password: &str) -> Result<String, ApiError> {
        let input = prehash(password);
        let cost = self.cost;
        self.run(move || bcrypt::hash(input, cost)).await
    }

    /// Verifies against `hash`, or against the dummy hash when there is no user,
    /// so both kinds of failure cost the same bcrypt work.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<bool, ApiError> {
        let input = prehash(password);
        let is_real = hash.is_some();
        let hash = hash.unwrap_or(&self.dummy_hash).to_owned();
        let ok = self.run(move || bcrypt::verify(input, &hash)).await?;
        Ok(ok && is_real)
    }
}

impl PasswordHasher {
    /// True when `hash` was made at another cost than the configured one, so
    /// a successful login should store a fresh hash (and timing stays uniform).
    pub fn needs_rehash(&self, hash: &str) -> bool {
        hash.split('$').nth(2).and_then(|c| c.parse::<u32>().ok()) != Some(self.cost)
    }
}

fn prehash(password: &str) -> String {
    hex::encode(Sha256::digest(password.as_bytes()))
}

async fn run_blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, bcrypt::BcryptError> + Send + 'static,
) -> Result<T, ApiError> {
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(work))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("bcrypt task failed: {e}")))?
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("bcrypt failed: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn passwords_differing_after_byte_72_do_not_both_verify() {
        let hasher = PasswordHasher::new(4).unwrap();
        let prefix = "Aa1".to_owned() + &"x".repeat(69);
        assert_eq!(prefix.len(), 72);
        let hash = hasher.hash(&format!("{prefix}first")).await.unwrap();
        assert!(hasher.verify(&format!("{prefix}first"), Some(&hash)).await.unwrap());
        assert!(!hasher.verify(&format!("{prefix}second"), Some(&hash)).await.unwrap());
    }

    #[tokio::test]
    async fn unknown_users_never_verify() {
        let hasher = PasswordHasher::new(4).unwrap();
        assert!(!hasher.verify("latchkey-dummy-password", None).await.unwrap());
    }

    #[tokio::test]
    async fn hashes_use_the_configured_cost() {
        let hasher = PasswordHasher::new(5).unwrap();
        let hash = hasher.hash("Correct1Horse").await.unwrap();
        assert!(hash.starts_with("$2b$05$"), "{hash}");
        assert!(!hasher.needs_rehash(&hash));
        assert!(PasswordHasher::new(4).unwrap().needs_rehash(&hash));
    }
}
