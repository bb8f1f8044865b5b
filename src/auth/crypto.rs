//! Encryption of secrets at rest (TOTP secrets) with AES-256-GCM: a fresh
//! 96-bit nonce each time, stored as `v1:` + base64(nonce ‖ ciphertext ‖ tag).
//! `DATA_ENCRYPTION_KEY_PREVIOUS` still decrypts during a key rotation.

use aes_gcm::{
    Aes256Gcm, KeyInit, Nonce,
    aead::{Aead, OsRng, rand_core::RngCore},
};
use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::STANDARD};

const PREFIX: &str = "v1:";
const NONCE_BYTES: usize = 12;

/// The key secrets are encrypted with, and the one before it.
pub struct DataKey {
    current: Aes256Gcm,
    previous: Option<Aes256Gcm>,
}

impl DataKey {
    /// `DATA_ENCRYPTION_KEY` (with `DATA_ENCRYPTION_KEY_PREVIOUS`), if set.
    pub fn from_config(config: &crate::config::Config) -> anyhow::Result<Option<Self>> {
        let previous = config.data_encryption_key_previous.as_ref().map(|k| k.expose());
        config.data_encryption_key.as_ref().map(|key| Self::from_base64(key.expose(), previous)).transpose()
    }

    /// From `DATA_ENCRYPTION_KEY` and `DATA_ENCRYPTION_KEY_PREVIOUS` (32 bytes, base64 each).
    pub fn from_base64(current: &str, previous: Option<&str>) -> anyhow::Result<Self> {
        let cipher = |name: &str, value: &str| -> anyhow::Result<Aes256Gcm> {
            let bytes = STANDARD.decode(value.trim()).with_context(|| format!("{name} is not base64"))?;
            if bytes.len() != 32 {
                bail!("{name} must be 32 bytes (base64 of `openssl rand 32`), not {}", bytes.len());
            }
            Ok(Aes256Gcm::new_from_slice(&bytes).expect("BUG: 32-byte key"))
        };
        Ok(Self {
            current: cipher("DATA_ENCRYPTION_KEY", current)?,
            previous: previous.map(|p| cipher("DATA_ENCRYPTION_KEY_PREVIOUS", p)).transpose()?,
        })
    }

    /// A random key, for development without `DATA_ENCRYPTION_KEY`.
    pub fn random() -> Self {
        Self { current: Aes256Gcm::new(&Aes256Gcm::generate_key(OsRng)), previous: None }
    }

    pub fn encrypt(&self, plaintext: &[u8]) -> String {
        let mut nonce = [0u8; NONCE_BYTES];
        OsRng.fill_bytes(&mut nonce);
        let sealed = self.current.encrypt(&Nonce::from(nonce), plaintext).expect("BUG: AES-GCM cannot fail to seal");
        let mut out = nonce.to_vec();
        out.extend(sealed);
        format!("{PREFIX}{}", STANDARD.encode(out))
    }

    /// The plaintext, and whether it was sealed with the previous key (so the
    /// caller re-encrypts it with the current one).
    pub fn decrypt(&self, stored: &str) -> anyhow::Result<(Vec<u8>, bool)> {
        let bytes = STANDARD.decode(stored.strip_prefix(PREFIX).context("unknown secret format")?)?;
        if bytes.len() <= NONCE_BYTES {
            bail!("sealed secret too short");
        }
        let (nonce, sealed) = bytes.split_at(NONCE_BYTES);
        let nonce: [u8; NONCE_BYTES] = nonce.try_into().expect("BUG: split at the nonce length");
        let nonce = Nonce::from(nonce);
        if let Ok(plain) = self.current.decrypt(&nonce, sealed) {
            return Ok((plain, false));
        }
        match &self.previous {
            Some(previous) => previous
                .decrypt(&nonce, sealed)
                .map(|plain| (plain, true))
                .map_err(|_| anyhow::anyhow!("secret does not decrypt with DATA_ENCRYPTION_KEY or its previous key")),
            None => bail!("secret does not decrypt with DATA_ENCRYPTION_KEY"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_encryption_has_a_fresh_nonce_and_round_trips() {
        let key = DataKey::random();
        let (a, b) = (key.encrypt(b"secret"), key.encrypt(b"secret"));
        assert_ne!(a, b);
        assert_eq!(key.decrypt(&a).unwrap(), (b"secret".to_vec(), false));
        assert!(!a.contains("secret"));
    }

    #[test]
    fn a_rotated_key_still_reads_old_secrets_and_says_so() {
        let old = STANDARD.encode([1u8; 32]);
        let new = STANDARD.encode([2u8; 32]);
        let sealed = DataKey::from_base64(&old, None).unwrap().encrypt(b"s");
        let rotated = DataKey::from_base64(&new, Some(&old)).unwrap();
        assert_eq!(rotated.decrypt(&sealed).unwrap(), (b"s".to_vec(), true));
        assert!(DataKey::from_base64(&new, None).unwrap().decrypt(&sealed).is_err());
        assert!(DataKey::from_base64("c2hvcnQ=", None).is_err());
    }
}
