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
    sync::{
        Arc, Mutex, RwLock,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use anyhow::{Context, bail};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use chrono::{DateTime, Utc};
use jsonwebtoken::{
    DecodingKey, EncodingKey,
    jwk::{Jwk, ThumbprintHash},
};
use sea_orm::{ActiveModelTrait, DatabaseConnection, EntityTrait, QueryOrder, Set};
use zeroize::Zeroizing;

use crate::{
    auth::{crypto::DataKey, tokens::LEEWAY_SECS},
    clock::now,
    config::Config,
    entity::signing_key,
};

/// How often each instance reads the key table again (see the config value).
pub const RELOAD_EVERY: Duration = crate::config::KEY_RELOAD_EVERY;
/// A token naming an unknown key reloads the table at most this often.
const RELOAD_ON_MISS_EVERY: Duration = Duration::from_secs(1);
/// Longest `Cache-Control: max-age` of the key set.
const MAX_JWKS_CACHE: Duration = Duration::from_secs(300);

pub use crate::config::AccessAlgorithm;

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
    /// access token lifetime, plus the clock skew allowed between instances
    /// (one that lags may sign with the old key a little longer) and between
    /// an instance and the verifier.
    retire_after: chrono::Duration,
    publish_delay: Duration,
    db: DatabaseConnection,
    /// Where keys are written (see `AppState::writer`).
    writer: DatabaseConnection,
    data_key: Option<Arc<DataKey>>,
    keys: RwLock<Arc<Vec<LoadedKey>>>,
    /// Reloads take turns, so a slow one can never install an older key set
    /// over a newer one.
    reloading: tokio::sync::Mutex<()>,
    /// When a token naming an unknown key last made us reload (forged
    /// `kid`s must not turn into a query each).
    last_miss_reload: Mutex<Option<Instant>>,
    /// Counts reloads that dropped a key: whatever was checked with a
    /// dropped key must be checked again (see `TokenKeys::verify`).
    removals: AtomicU64,
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
        let skew = chrono::Duration::seconds(2 * LEEWAY_SECS as i64);
        Self {
            algorithm,
            retire_after: chrono::Duration::from_std(token_lifetime).expect("BUG: lifetimes are bounded") + skew,
            publish_delay,
            db,
            writer,
            data_key,
            keys: RwLock::new(Arc::new(Vec::new())),
            reloading: tokio::sync::Mutex::new(()),
            last_miss_reload: Mutex::new(None),
            removals: AtomicU64::new(0),
        }
    }

    /// The ring `config` describes, reading keys from `db` and writing them through `writer`.
    pub fn from_config(
        config: &Config,
        db: DatabaseConnection,
        writer: DatabaseConnection,
        data_key: Option<Arc<DataKey>>,
    ) -> Self {
        Self::new(config.jwt_algorithm, config.access_token_ttl, config.key_publish_delay, db, writer, data_key)
    }

    pub fn algorithm(&self) -> AccessAlgorithm {
        self.algorithm
    }

    /// Changes whenever a key this instance held is gone.
    pub fn removals(&self) -> u64 {
        self.removals.load(Ordering::Acquire)
    }

    #[cfg(test)]
    pub(crate) fn note_removal(&self) {
        self.removals.fetch_add(1, Ordering::AcqRel);
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
        let _turn = self.reloading.lock().await;
        self.reload_in_turn().await
    }

    async fn reload_in_turn(&self) -> anyhow::Result<()> {
        let rows = signing_key::Entity::find()
            .order_by_asc(signing_key::Column::SignsFrom)
            .all(&self.db)
            .await
            .context("loading signing keys")?;
        let keys: Vec<LoadedKey> = rows.iter().filter_map(|row| self.load(row)).collect();
        let mut held = self.keys.write().expect("key ring lock");
        if held.iter().any(|old| !keys.iter().any(|new| new.kid == old.kid)) {
            self.removals.fetch_add(1, Ordering::AcqRel);
        }
        *held = Arc::new(keys);
        Ok(())
    }

    /// When a token named an unknown key: reloads, unless that was done a
    /// moment ago; a request that arrives while a reload runs waits for it.
    /// Returns whether the keys may have changed since the caller looked.
    pub async fn reload_on_miss(&self) -> bool {
        if !self.algorithm.is_asymmetric() {
            return false;
        }
        let _turn = self.reloading.lock().await;
        {
            let mut last = self.last_miss_reload.lock().expect("key ring lock");
            if last.is_some_and(|at| at.elapsed() < RELOAD_ON_MISS_EVERY) {
                // The keys are as fresh as this instance lets a token make them.
                return true;
            }
            *last = Some(Instant::now());
        }
        match self.reload_in_turn().await {
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
            // What the key set publishes must name the key and say what it is
            // for, or verifiers would skip it while we sign with it.
            if jwk.common.key_id.as_deref() != Some(row.kid.as_str())
                || jwk.common.key_algorithm != Some(algorithm.jwt().into())
                || jwk.common.public_key_use != Some(jsonwebtoken::jwk::PublicKeyUse::Signature)
            {
                bail!("its public JWK does not carry its kid, alg and use");
            }
            let decoding = DecodingKey::from_jwk(&jwk).context("public key does not load")?;
            let encoding = match self.data_key.as_deref().map(|k| k.decrypt(&row.private_key_enc)) {
                Some(Ok((der, _))) => Some(encoding_key(algorithm, &Zeroizing::new(der))),
                _ => {
                    tracing::warn!(kid = %row.kid, "a signing key's private half does not open with DATA_ENCRYPTION_KEY; it only verifies");
                    None
                }
            };
            Ok(LoadedKey { kid: row.kid.clone(), algorithm, signs_from: row.signs_from, encoding, decoding, jwk })
        })();
        loaded.map_err(|e| tracing::warn!(kid = %row.kid, error = %format!("{e:#}"), "skipping a signing key")).ok()
    }

    /// Runs `f` with the key that signs access tokens now: the newest key of
    /// `JWT_ALGORITHM` that has started signing, if this instance can open it.
    pub fn with_signing_key<T>(&self, at: DateTime<Utc>, f: impl FnOnce(&LoadedKey) -> T) -> Option<T> {
        let keys = self.snapshot();
        signing_key_at(&keys, self.algorithm, at).filter(|k| k.encoding.is_some()).map(f)
    }

    /// Runs `f` with the key a token names, if this instance knows it and the
    /// key is not retired (a token it signed now is forged, or from a clock
    /// far off).
    pub fn with_key<T>(&self, kid: &str, at: DateTime<Utc>, f: impl FnOnce(&LoadedKey) -> T) -> Option<T> {
        let keys = self.snapshot();
        let key = keys.iter().find(|k| k.kid == kid)?;
        (self.state(&keys, key, at) != KeyState::Retired).then(|| f(key))
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

    /// Each algorithm has its own timeline: while instances switch
    /// `JWT_ALGORITHM` one by one, the old ones go on signing with the newest
    /// key of theirs, which therefore stays published.
    fn state(&self, keys: &[LoadedKey], key: &LoadedKey, at: DateTime<Utc>) -> KeyState {
        if key.signs_from > at {
            return KeyState::Next(key.signs_from);
        }
        let stopped = keys
            .iter()
            .filter(|k| k.algorithm == key.algorithm && k.signs_from > key.signs_from && k.signs_from <= at)
            .map(|k| k.signs_from)
            .min();
        match stopped {
            None => KeyState::Signing,
            Some(stopped) if stopped + self.retire_after > at => KeyState::Retiring(stopped + self.retire_after),
            Some(_) => KeyState::Retired,
        }
    }

    /// `Cache-Control: max-age` for the key set: half of `KEY_PUBLISH_DELAY`,
    /// at most five minutes. With the [`RELOAD_EVERY`] instances take to see a
    /// new key, that is within the delay (it is at least twice that in
    /// production), so a cached set holds the next key before it signs.
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

/// The newest key of `algorithm` that has started signing.
fn signing_key_at(keys: &[LoadedKey], algorithm: AccessAlgorithm, at: DateTime<Utc>) -> Option<&LoadedKey> {
    keys.iter().filter(|k| k.algorithm == algorithm && k.signs_from <= at).max_by_key(|k| k.signs_from)
}

fn encoding_key(algorithm: AccessAlgorithm, pkcs8_der: &[u8]) -> EncodingKey {
    match algorithm {
        AccessAlgorithm::EdDsa => EncodingKey::from_ed_der(pkcs8_der),
        _ => EncodingKey::from_ec_der(pkcs8_der),
    }
}

/// A fresh key pair: the public JWK (with its thumbprint as `kid`) and the
/// private key as PKCS#8 DER (wiped from memory when dropped).
pub fn generate(algorithm: AccessAlgorithm) -> anyhow::Result<(Jwk, Zeroizing<Vec<u8>>)> {
    use aes_gcm::aead::{OsRng, rand_core::RngCore};
    use p256::pkcs8::EncodePrivateKey;
    let (public, der) = match algorithm {
        AccessAlgorithm::EdDsa => {
            let mut seed = Zeroizing::new([0u8; 32]);
            OsRng.fill_bytes(seed.as_mut());
            let key = ed25519_dalek::SigningKey::from_bytes(&seed);
            let x = URL_SAFE_NO_PAD.encode(key.verifying_key().as_bytes());
            let der = Zeroizing::new(key.to_pkcs8_der().context("encoding an Ed25519 key")?.as_bytes().to_vec());
            (serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": x}), der)
        }
        AccessAlgorithm::Es256 => {
            let key = p256::SecretKey::random(&mut OsRng);
            let point = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&key.public_key(), false);
            let (x, y) = (point.x().context("P-256 point")?, point.y().context("P-256 point")?);
            let der = Zeroizing::new(key.to_pkcs8_der().context("encoding a P-256 key")?.as_bytes().to_vec());
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
        // `a`'s last token, signed just before minute 110, lives 15 minutes;
        // clocks may be 2 × 5 s apart.
        let a_retires = at(125) + chrono::Duration::seconds(10);

        assert_eq!(signer(105), "a");
        assert_eq!(published(105), ["a", "b"]);
        assert_eq!(r.states(at(105))[1].3, KeyState::Next(at(110)));
        assert_eq!(signer(110), "b");
        assert_eq!(published(125), ["a", "b"]);
        assert_eq!(r.states(at(125))[0].3, KeyState::Retiring(a_retires));
        assert!(r.with_key("a", at(125), |_| ()).is_some());

        assert_eq!(r.published(a_retires).len(), 1);
        assert_eq!(r.states(a_retires)[0].3, KeyState::Retired);
        // A token it signs now is forged (its private half leaked, say).
        assert!(r.with_key("a", a_retires, |_| ()).is_none());
        assert!(r.with_key("b", a_retires, |_| ()).is_some());
    }

    #[test]
    fn an_instance_that_cannot_open_the_newest_key_does_not_sign_with_an_older_one() {
        let r =
            ring(vec![key("a", AccessAlgorithm::EdDsa, at(0), true), key("b", AccessAlgorithm::EdDsa, at(10), false)]);
        assert_eq!(r.with_signing_key(at(5), |k| k.kid.clone()).unwrap(), "a");
        assert!(r.with_signing_key(at(20), |_| ()).is_none(), "`a` stopped signing everywhere at minute 10");
        assert!(r.with_key("b", at(20), |_| ()).is_some(), "`b` still verifies");
        assert_eq!(r.published(at(20)).len(), 2);
    }

    #[test]
    fn keys_of_another_algorithm_do_not_sign_here_and_are_not_retired_by_ours() {
        // Instances switch from ES256 to EdDSA one by one: the ones still on
        // ES256 keep signing with `a`, so it stays published however long that takes.
        let r =
            ring(vec![key("a", AccessAlgorithm::Es256, at(0), true), key("b", AccessAlgorithm::EdDsa, at(10), true)]);
        assert_eq!(r.with_signing_key(at(1000), |k| k.kid.clone()).unwrap(), "b");
        assert_eq!(r.states(at(1000))[0].3, KeyState::Signing);
        assert_eq!(r.published(at(1000)).len(), 2);
        assert!(r.with_key("a", at(1000), |_| ()).is_some());

        let only_es256 = ring(vec![key("a", AccessAlgorithm::Es256, at(0), true)]);
        assert!(only_es256.with_signing_key(at(1), |_| ()).is_none());
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
