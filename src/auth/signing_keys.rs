//! Key pairs for access tokens when `JWT_ALGORITHM` is `EdDSA` or `ES256`, so
//! that other services can verify them from `/.well-known/jwks.json` without
//! sharing `JWT_SECRET`.
//!
//! Keys live in the database (every instance signs with the same one) with
//! the private half sealed by `DATA_ENCRYPTION_KEY`. A key's life:
//! created and published at once → signs from `signs_from` (creation +
//! `KEY_PUBLISH_DELAY`, so verifiers that cache the key set know it before
//! they meet its tokens) → stops signing when the next key starts → stays
//! published until the last token it signed has expired → deleted.
//!
//! Each instance keeps the keys in memory ([`KeyRing`]), reloads them every
//! [`RELOAD_EVERY`], and at once (at most once a second) when a token names a
//! key it does not know yet.

use std::{
    sync::{Arc, Mutex, RwLock},
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{
    Algorithm, DecodingKey, EncodingKey,
    jwk::{Jwk, ThumbprintHash},
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};

use crate::{auth::crypto::DataKey, clock::now, entity::signing_key};

/// How often each instance reads the key table again. Well under the default
/// `KEY_PUBLISH_DELAY`, so every instance knows a key before any signs with it.
pub const RELOAD_EVERY: Duration = Duration::from_secs(60);
/// A token naming an unknown key reloads the table at most this often.
const RELOAD_ON_MISS_EVERY: Duration = Duration::from_secs(1);
/// Longest `Cache-Control: max-age` of the key set.
const MAX_JWKS_CACHE: Duration = Duration::from_secs(300);

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

    fn from_name(name: &str) -> Option<Self> {
        [Self::EdDsa, Self::Es256].into_iter().find(|a| a.name() == name)
    }
}

/// A key as an instance holds it.
pub struct LoadedKey {
    pub kid: String,
    pub algorithm: AccessAlgorithm,
    pub signs_from: DateTime<Utc>,
    /// `None` when the private half does not open with `DATA_ENCRYPTION_KEY`
    /// (a key made by a process with another key): it can still verify.
    pub encoding: Option<EncodingKey>,
    pub decoding: DecodingKey,
    pub jwk: Jwk,
}

/// Where a key is in its life, at some moment.
#[derive(Debug, PartialEq, Eq)]
pub enum KeyState {
    /// Published; signs from this time.
    Next(DateTime<Utc>),
    Signing,
    /// No longer signs; published until this time.
    Retiring(DateTime<Utc>),
    /// Every token it signed has expired: unpublished, and deleted by the purge job.
    Retired,
}

/// The key set every instance holds, with the timeline rules.
pub struct KeyRing {
    algorithm: AccessAlgorithm,
    /// How long a key stays published after it stops signing: the longest
    /// access token lifetime plus the allowed clock skew.
    retire_after: chrono::Duration,
    publish_delay: Duration,
    db: DatabaseConnection,
    /// Where keys are written (see `AppState::writer`).
    writer: DatabaseConnection,
    data_key: Option<Arc<DataKey>>,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
    /// When a token naming an unknown key last made us reload (forged
    /// `kid`s must not turn into a query each).
    last_miss_reload: Mutex<Option<Instant>>,
}

impl KeyRing {
    pub fn new(
        algorithm: AccessAlgorithm,
        token_lifetime: Duration,
        publish_delay: Duration,
        db: DatabaseConnection,
        writer: DatabaseConnection,
        data_key: Option<Arc<DataKey>>,
    ) -> Self {
        Self {
            algorithm,
            retire_after: chrono::Duration::from_std(token_lifetime).expect("BUG: lifetimes are bounded"),
            publish_delay,
            db,
            writer,
            data_key,
            keys: RwLock::new(Arc::new(Vec::new())),
            last_miss_reload: Mutex::new(None),
        }
    }

    pub fn algorithm(&self) -> AccessAlgorithm {
        self.algorithm
    }

    fn snapshot(&self) -> Arc<Vec<LoadedKey>> {
        self.keys.read().expect("key ring lock").clone()
    }

    /// At start-up: loads the keys and, when no usable key of
    /// `JWT_ALGORITHM` signs yet, makes one that signs at once (nobody can
    /// hold a token of a key that did not exist).
    pub async fn start(&self) -> anyhow::Result<()> {
        if !self.algorithm.is_asymmetric() {
            return Ok(());
        }
        self.reload().await?;
        if self.with_signing_key(now(), |_| ()).is_none() {
            let data_key = self.data_key.as_deref().context("DATA_ENCRYPTION_KEY is needed to store a signing key")?;
            let key = create(&self.writer, data_key, self.algorithm, now()).await?;
            tracing::info!(kid = %key.kid, algorithm = self.algorithm.name(), "created an access token signing key");
            self.reload().await?;
        }
        Ok(())
    }

    /// Reads the key table again.
    pub async fn reload(&self) -> anyhow::Result<()> {
        if !self.algorithm.is_asymmetric() {
            return Ok(());
        }
        let rows = signing_key::Entity::find()
            .order_by_asc(signing_key::Column::SignsFrom)
            .all(&self.db)
            .await
            .context("loading signing keys")?;
        let keys: Vec<LoadedKey> = rows.iter().filter_map(|row| self.load(row)).collect();
        *self.keys.write().expect("key ring lock") = Arc::new(keys);
        Ok(())
    }

    /// Reloads when a token named an unknown key, unless that was done a moment ago.
    /// Returns whether it reloaded.
    pub async fn reload_on_miss(&self) -> bool {
        if !self.algorithm.is_asymmetric() {
            return false;
        }
        {
            let mut last = self.last_miss_reload.lock().expect("key ring lock");
            if last.is_some_and(|at| at.elapsed() < RELOAD_ON_MISS_EVERY) {
                return false;
            }
            *last = Some(Instant::now());
        }
        match self.reload().await {
            Ok(()) => true,
            Err(e) => {
                tracing::warn!(error = %format!("{e:#}"), "cannot reload signing keys");
                false
            }
        }
    }

    fn load(&self, row: &signing_key::Model) -> Option<LoadedKey> {
        let loaded = (|| -> anyhow::Result<LoadedKey> {
            let algorithm = AccessAlgorithm::from_name(&row.algorithm).context("unknown algorithm")?;
            let jwk: Jwk = serde_json::from_str(&row.public_jwk).context("public key is not a JWK")?;
            let decoding = DecodingKey::from_jwk(&jwk).context("public key does not load")?;
            let encoding = match self.data_key.as_deref().map(|k| k.decrypt(&row.private_key_enc)) {
                Some(Ok((der, _))) => Some(encoding_key(algorithm, &der)),
                _ => {
                    tracing::warn!(kid = %row.kid, "a signing key's private half does not open with DATA_ENCRYPTION_KEY; it only verifies");
                    None
                }
            };
            Ok(LoadedKey { kid: row.kid.clone(), algorithm, signs_from: row.signs_from, encoding, decoding, jwk })
        })();
        loaded.map_err(|e| tracing::warn!(kid = %row.kid, error = %format!("{e:#}"), "skipping a signing key")).ok()
    }

    /// Runs `f` with the key that signs access tokens now: the newest usable
    /// key of `JWT_ALGORITHM` that has started signing.
    pub fn with_signing_key<T>(&self, at: DateTime<Utc>, f: impl FnOnce(&LoadedKey) -> T) -> Option<T> {
        let keys = self.snapshot();
        signing_key_at(&keys, self.algorithm, at).map(f)
    }

    /// Runs `f` with the key a token names, if this instance knows it.
    pub fn with_key<T>(&self, kid: &str, f: impl FnOnce(&LoadedKey) -> T) -> Option<T> {
        self.snapshot().iter().find(|k| k.kid == kid).map(f)
    }

    /// The public keys to publish now, in the order they start signing.
    pub fn published(&self, at: DateTime<Utc>) -> Vec<Jwk> {
        let keys = self.snapshot();
        keys.iter().filter(|k| !matches!(self.state(&keys, k, at), KeyState::Retired)).map(|k| k.jwk.clone()).collect()
    }

    /// Every key and where it is in its life.
    pub fn states(&self, at: DateTime<Utc>) -> Vec<(String, AccessAlgorithm, bool, KeyState)> {
        let keys = self.snapshot();
        keys.iter().map(|k| (k.kid.clone(), k.algorithm, k.encoding.is_some(), self.state(&keys, k, at))).collect()
    }

    fn state(&self, keys: &[LoadedKey], key: &LoadedKey, at: DateTime<Utc>) -> KeyState {
        if key.signs_from > at {
            return KeyState::Next(key.signs_from);
        }
        if signing_key_at(keys, self.algorithm, at).is_some_and(|k| k.kid == key.kid) {
            return KeyState::Signing;
        }
        // It stopped signing when the next key started (or at once, if it
        // never was the one that signs here).
        let stopped = keys.iter().map(|k| k.signs_from).filter(|s| *s > key.signs_from && *s <= at).min();
        match stopped {
            Some(stopped) if stopped + self.retire_after > at => KeyState::Retiring(stopped + self.retire_after),
            Some(_) => KeyState::Retired,
            None => KeyState::Retiring(at + self.retire_after),
        }
    }

    /// `Cache-Control: max-age` for the key set: half of `KEY_PUBLISH_DELAY`,
    /// at most five minutes, so a cached set always holds the next key before
    /// it signs (instances also take up to [`RELOAD_EVERY`] to see it).
    pub fn jwks_max_age(&self) -> Duration {
        (self.publish_delay / 2).min(MAX_JWKS_CACHE)
    }

    /// Deletes the keys that no token can need any more.
    pub async fn purge_retired(&self) -> anyhow::Result<u64> {
        let retired: Vec<String> = self
            .states(now())
            .into_iter()
            .filter(|(_, _, _, state)| *state == KeyState::Retired)
            .map(|(kid, ..)| kid)
            .collect();
        if retired.is_empty() {
            return Ok(0);
        }
        use sea_orm::{ColumnTrait, QueryFilter};
        let deleted = signing_key::Entity::delete_many()
            .filter(signing_key::Column::Kid.is_in(retired))
            .exec(&self.writer)
            .await
            .context("deleting retired signing keys")?
            .rows_affected;
        self.reload().await?;
        Ok(deleted)
    }
}

fn signing_key_at(keys: &[LoadedKey], algorithm: AccessAlgorithm, at: DateTime<Utc>) -> Option<&LoadedKey> {
    keys.iter()
        .filter(|k| k.algorithm == algorithm && k.encoding.is_some() && k.signs_from <= at)
        .max_by_key(|k| k.signs_from)
}

fn encoding_key(algorithm: AccessAlgorithm, pkcs8_der: &[u8]) -> EncodingKey {
    match algorithm {
        AccessAlgorithm::EdDsa => EncodingKey::from_ed_der(pkcs8_der),
        _ => EncodingKey::from_ec_der(pkcs8_der),
    }
}

/// A fresh key pair: the public JWK (with its thumbprint as `kid`) and the
/// private key as PKCS#8 DER.
pub fn generate(algorithm: AccessAlgorithm) -> anyhow::Result<(Jwk, Vec<u8>)> {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    use p256::pkcs8::EncodePrivateKey;
    let (public, der) = match algorithm {
        AccessAlgorithm::EdDsa => {
            let mut seed = [0u8; 32];
            OsRng.fill_bytes(&mut seed);
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
            let der = key.to_pkcs8_der().context("encoding an Ed25519 key")?.as_bytes().to_vec();
            (serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}), der)
        }
        AccessAlgorithm::Es256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key(), false);
            let (x, y) = (point.x().context("P-256 point")?, point.y().context("P-256 point")?);
            let der = key.to_pkcs8_der().context("encoding a P-256 key")?.as_bytes().to_vec();
            (
                serde_json::json!({"kty": "EC", "crv": "P-256", "x": URL_SAFE_NO_PAD.encode(x), "y": URL_SAFE_NO_PAD.encode(y)}),
                der,
            )
        }
        AccessAlgorithm::Hs256 => bail!("HS256 signs with JWT_SECRET; there is no key pair to make"),
    };
    let mut jwk: Jwk = serde_json::from_value(public).context("building a JWK")?;
    let kid = jwk.thumbprint(ThumbprintHash::SHA256).context("JWK thumbprint")?;
    jwk.common.key_id = Some(kid);
    jwk.common.key_algorithm = Some(algorithm.jwt().into());
    jwk.common.public_key_use = Some(jsonwebtoken::jwk::PublicKeyUse::Signature);
    Ok((jwk, der))
}

/// Stores a new key of `algorithm` that signs from `signs_from`.
pub async fn create(
    db: &DatabaseConnection,
    data_key: &DataKey,
    algorithm: AccessAlgorithm,
    signs_from: DateTime<Utc>,
) -> anyhow::Result<signing_key::Model> {
    let (jwk, der) = generate(algorithm)?;
    let row = signing_key::ActiveModel {
        kid: Set(jwk.common.key_id.clone().expect("BUG: generate sets kid")),
        algorithm: Set(algorithm.name().to_owned()),
        public_jwk: Set(serde_json::to_string(&jwk)?),
        private_key_enc: Set(data_key.encrypt(&der)),
        created_at: Set(now()),
        signs_from: Set(signs_from),
    };
    row.insert(db).await.context("storing a signing key")
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn key(kid: &str, algorithm: AccessAlgorithm, signs_from: DateTime<Utc>, usable: bool) -> LoadedKey {
        let (mut jwk, der) = generate(algorithm).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        LoadedKey {
            kid: kid.to_owned(),
            algorithm,
            signs_from,
            encoding: usable.then(|| encoding_key(algorithm, &der)),
            decoding: DecodingKey::from_jwk(&jwk).unwrap(),
            jwk,
        }
    }

    fn ring(keys: Vec<LoadedKey>) -> KeyRing {
        let ring = KeyRing::new(
            AccessAlgorithm::EdDsa,
            Duration::from_secs(900),
            Duration::from_secs(600),
            DatabaseConnection::default(),
            DatabaseConnection::default(),
            None,
        );
        *ring.keys.write().unwrap() = Arc::new(keys);
        ring
    }

    fn at(minute: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_800_000_000, 0).unwrap() + chrono::Duration::minutes(minute)
    }

    #[test]
    fn a_rotated_key_is_published_at_once_signs_later_and_the_old_one_outlives_its_tokens() {
        // `a` signs from minute 0; `b` is made at minute 100 and signs from 110.
        let r =
            ring(vec![key("a", AccessAlgorithm::EdDsa, at(0), true), key("b", AccessAlgorithm::EdDsa, at(110), true)]);
        let signer = |m| r.with_signing_key(at(m), |k| k.kid.clone()).unwrap();
        let published = |m| r.published(at(m)).iter().map(|j| j.common.key_id.clone().unwrap()).collect::<Vec<_>>();

        assert_eq!(signer(105), "a");
        assert_eq!(published(105), ["a", "b"]);
        assert_eq!(signer(110), "b");
        // `a`'s last token, signed just before minute 110, lives 15 minutes.
        assert_eq!(published(124), ["a", "b"]);
        assert_eq!(r.states(at(124))[0].3, KeyState::Retiring(at(125)));
        assert_eq!(published(125), ["b"]);
        assert_eq!(r.states(at(125))[0].3, KeyState::Retired);
        assert_eq!(r.states(at(105))[1].3, KeyState::Next(at(110)));
    }

    #[test]
    fn a_key_whose_private_half_cannot_be_opened_verifies_but_never_signs() {
        let r =
            ring(vec![key("a", AccessAlgorithm::EdDsa, at(0), true), key("b", AccessAlgorithm::EdDsa, at(10), false)]);
        assert_eq!(r.with_signing_key(at(20), |k| k.kid.clone()).unwrap(), "a");
        assert_eq!(r.published(at(20)).len(), 2);
    }

    #[test]
    fn keys_of_another_algorithm_do_not_sign() {
        let r = ring(vec![key("a", AccessAlgorithm::Es256, at(0), true)]);
        assert!(r.with_signing_key(at(1), |_| ()).is_none());
    }

    #[test]
    fn both_algorithms_make_keys_that_sign_and_verify() {
        for algorithm in [AccessAlgorithm::EdDsa, AccessAlgorithm::Es256] {
            let (jwk, der) = generate(algorithm).unwrap();
            let kid = jwk.common.key_id.clone().unwrap();
            assert_eq!(kid.len(), 43, "a base64url SHA-256 thumbprint");
            let mut header = jsonwebtoken::Header::new(algorithm.jwt());
            header.kid = Some(kid);
            let claims = serde_json::json!({"sub": "x", "exp": 4_000_000_000u64});
            let token = jsonwebtoken::encode(&header, &claims, &encoding_key(algorithm, &der)).unwrap();
            let validation = jsonwebtoken::Validation::new(algorithm.jwt());
            let decoded =
                jsonwebtoken::decode::<serde_json::Value>(&token, &DecodingKey::from_jwk(&jwk).unwrap(), &validation);
            assert_eq!(decoded.unwrap().claims["sub"], "x");
            let public = serde_json::to_value(&jwk).unwrap();
            assert!(public.get("d").is_none(), "the JWK holds no private part: {public}");
        }
    }
}
