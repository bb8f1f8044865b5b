//! JWT signing and checking. The algorithm, issuer, audience and expiry are
//! pinned here, so a token from another service, with `alg: none`, or of the
//! other type never passes.
//!
//! Every token names its key in `kid`. Access tokens are signed with
//! `JWT_ALGORITHM`: HS256 with `JWT_SECRET`, or a key pair from the
//! [`KeyRing`]; all other tokens with `JWT_SECRET`. The key that checks a
//! token is chosen by its `kid` among Latchkey's own keys, and that key fixes
//! the algorithm: a header's `alg`, `jku` or `jwk` never chooses anything.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{auth::signing_keys::KeyRing, config::Config};

/// Allowed clock skew between instances, in seconds (at most 5, see docs/SESSIONS.md).
pub const LEEWAY_SECS: u64 = 5;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TokenType {
    Access,
    Refresh,
    /// The `device_token` cookie: this browser signed in to `sub` before;
    /// `sid` and `jti` are the device's id.
    Device,
    /// The `mfa_ticket` cookie between a right password and its second
    /// factor; `sid` and `jti` are the ticket's id.
    #[serde(rename = "mfa_ticket")]
    MfaTicket,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: Uuid,
    pub sid: Uuid,
    pub jti: Uuid,
    pub iat: i64,
    pub exp: i64,
    pub iss: String,
    pub aud: String,
    pub typ: TokenType,
}

#[derive(Debug, PartialEq, Eq)]
pub enum TokenError {
    Expired,
    Invalid,
    /// Signed with a key pair this instance has not loaded (yet): another
    /// instance may have started signing with a new key.
    UnknownKey,
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Names `JWT_SECRET` in `kid`: a fingerprint, so a token tells which
    /// secret signed it without revealing anything of it.
    secret_kid: String,
    /// Per algorithm: the checks with `exp`, and without.
    validations: Vec<(Algorithm, Validation, Validation)>,
    issuer: String,
    audience: String,
    ring: Arc<KeyRing>,
    /// Access tokens that passed every check, by SHA-256 of the whole token.
    /// A browser sends the same token for minutes, and the lookup is cheaper
    /// than base64, JSON and the signature again (an Ed25519 check alone is
    /// ~50 µs, a P-256 one ~200 µs, HMAC ~1 µs): `/me` went from ~38k to
    /// ~50k req/s with HS256, and from 20k (EdDSA) and 5.5k (ES256) to the same.
    /// Each entry remembers [`KeyRing::removals`] when it was checked: once a
    /// key is gone (purged, or deleted by an operator), nothing checked before
    /// is taken on trust.
    verified: moka::sync::Cache<[u8; 32], (Arc<Claims>, u64)>,
}

/// Most verified access tokens kept, and for how long at most.
const VERIFIED_CAPACITY: u64 = 10_000;
const VERIFIED_TTL: std::time::Duration = std::time::Duration::from_secs(60);

impl TokenKeys {
    pub fn new(config: &Config, ring: Arc<KeyRing>) -> Self {
        let secret = config.jwt_secret().expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.leeway = LEEWAY_SECS;
        let validations = [Algorithm::HS256, Algorithm::EdDSA, Algorithm::ES256]
            .into_iter()
            .map(|algorithm| {
                let mut with_expiry = validation.clone();
                with_expiry.algorithms = vec![algorithm];
                let mut without = with_expiry.clone();
                without.validate_exp = false;
                (algorithm, with_expiry, without)
            })
            .collect();
        let fingerprint = Sha256::new().chain_update(b"latchkey kid\0").chain_update(secret).finalize();
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            secret_kid: format!("hs256-{}", &hex::encode(fingerprint)[..16]),
            validations,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
            verified: moka::sync::Cache::builder().max_capacity(VERIFIED_CAPACITY).time_to_live(VERIFIED_TTL).build(),
            ring,
        }
    }

    /// Keys for `JWT_SECRET` alone, with no database behind them (HS256 only).
    pub fn secret_only(config: &Config) -> Self {
        let disconnected = sea_orm::DatabaseConnection::default();
        let config = Config { jwt_algorithm: crate::auth::signing_keys::AccessAlgorithm::Hs256, ..config.clone() };
        let ring = KeyRing::from_config(&config, disconnected.clone(), disconnected, None);
        Self::new(&config, Arc::new(ring))
    }

    pub fn ring(&self) -> &Arc<KeyRing> {
        &self.ring
    }

    /// Signs a token; returns it with its `jti`.
    pub fn sign(
        &self,
        typ: TokenType,
        user_id: Uuid,
        session_id: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<(String, Uuid)> {
        let jti = Uuid::new_v4();
        Ok((self.sign_with_jti(typ, user_id, session_id, jti, now, expires_at)?, jti))
    }

    /// Signs a token whose `jti` the caller has already recorded.
    pub fn sign_with_jti(
        &self,
        typ: TokenType,
        user_id: Uuid,
        session_id: Uuid,
        jti: Uuid,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> anyhow::Result<String> {
        let claims = Claims {
            sub: user_id,
            sid: session_id,
            jti,
            iat: now.timestamp(),
            exp: expires_at.timestamp(),
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            typ,
        };
        if typ == TokenType::Access && self.ring.algorithm().is_asymmetric() {
            return self
                .ring
                .with_signing_key(now, |key| {
                    let mut header = Header::new(key.algorithm.jwt());
                    header.kid = Some(key.kid.clone());
                    let encoding = key.encoding.as_ref().expect("BUG: only usable keys sign");
                    jsonwebtoken::encode(&header, &claims, encoding)
                })
                .ok_or_else(|| anyhow::anyhow!("no signing key for JWT_ALGORITHM is loaded"))?
                .map_err(Into::into);
        }
        let mut header = Header::new(Algorithm::HS256);
        header.kid = Some(self.secret_kid.clone());
        Ok(jsonwebtoken::encode(&header, &claims, &self.encoding)?)
    }

    pub fn verify(&self, token: &str, typ: TokenType) -> Result<Claims, TokenError> {
        if typ != TokenType::Access {
            return self.decode(token, typ, true);
        }
        let digest: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let removals = self.ring.removals();
        if let Some((claims, checked_at)) = self.verified.get(&digest) {
            // Past `exp`, the full check below says `Expired`.
            if checked_at == removals && claims.exp.saturating_add(LEEWAY_SECS as i64) >= Utc::now().timestamp() {
                return Ok(Claims::clone(&claims));
            }
        }
        let claims = self.decode(token, typ, true)?;
        self.verified.insert(digest, (Arc::new(claims.clone()), removals));
        Ok(claims)
    }

    /// [`Self::verify`] (or, with `check_expiry` false, [`Self::verify_ignoring_expiry`]),
    /// reloading the key ring once when the token names a key pair this
    /// instance has not loaded: another instance may have started signing with it.
    pub async fn verify_reloading(
        &self,
        token: &str,
        typ: TokenType,
        check_expiry: bool,
    ) -> Result<Claims, TokenError> {
        let verify = || if check_expiry { self.verify(token, typ) } else { self.verify_ignoring_expiry(token, typ) };
        match verify() {
            Err(TokenError::UnknownKey) if self.ring.reload_on_miss().await => verify(),
            result => result,
        }
    }

    /// Checks everything but `exp`: logout must work with an expired token, and
    /// refresh must tell `session_expired` from `refresh_token_expired`.
    pub fn verify_ignoring_expiry(&self, token: &str, typ: TokenType) -> Result<Claims, TokenError> {
        self.decode(token, typ, false)
    }

    fn decode(&self, token: &str, typ: TokenType, check_expiry: bool) -> Result<Claims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Invalid)?;
        let with_secret =
            || jsonwebtoken::decode::<Claims>(token, &self.decoding, self.validation(Algorithm::HS256, check_expiry));
        // Tokens from before `kid` existed, and `JWT_SECRET`'s own, are HS256.
        let result = match header.kid.as_deref().filter(|kid| *kid != self.secret_kid) {
            None => with_secret(),
            Some(kid) => {
                let by_key_pair = self.ring.with_key(kid, Utc::now(), |key| {
                    // Key pairs sign access tokens only.
                    (typ == TokenType::Access).then(|| {
                        jsonwebtoken::decode::<Claims>(
                            token,
                            &key.decoding,
                            self.validation(key.algorithm.jwt(), check_expiry),
                        )
                    })
                });
                match by_key_pair {
                    Some(Some(result)) => result,
                    Some(None) => return Err(TokenError::Invalid),
                    None if header.alg != Algorithm::HS256 && typ == TokenType::Access => {
                        return Err(TokenError::UnknownKey);
                    }
                    None => with_secret(),
                }
            }
        };
        let data = result.map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        if data.claims.typ != typ {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
    }

    /// The checks for tokens of one algorithm, which is the only one they accept.
    fn validation(&self, algorithm: Algorithm, check_expiry: bool) -> &Validation {
        let (with_expiry, without) = self
            .validations
            .iter()
            .find(|(a, ..)| *a == algorithm)
            .map(|(_, with, without)| (with, without))
            .expect("BUG: a validation for every algorithm");
        if check_expiry { with_expiry } else { without }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Secret;
    use base64::Engine;
    use chrono::Duration;

    fn keys(secret: &str) -> TokenKeys {
        let config = Config { jwt_secret: Some(Secret::new(secret)), ..Config::default() };
        TokenKeys::secret_only(&config)
    }

    fn sign(keys: &TokenKeys, typ: TokenType, ttl: Duration) -> String {
        let now = Utc::now();
        keys.sign(typ, Uuid::new_v4(), Uuid::new_v4(), now, now + ttl).unwrap().0
    }

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn a_fresh_token_of_the_right_type_verifies() {
        let k = keys(SECRET);
        let token = sign(&k, TokenType::Access, Duration::minutes(5));
        assert_eq!(k.verify(&token, TokenType::Access).unwrap().typ, TokenType::Access);
    }

    #[test]
    fn the_other_type_is_rejected() {
        let k = keys(SECRET);
        let token = sign(&k, TokenType::Refresh, Duration::minutes(5));
        assert_eq!(k.verify(&token, TokenType::Access).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn expiry_is_reported_and_leeway_is_at_most_five_seconds() {
        let k = keys(SECRET);
        let expired = sign(&k, TokenType::Access, Duration::seconds(-6));
        assert_eq!(k.verify(&expired, TokenType::Access).unwrap_err(), TokenError::Expired);
        assert!(k.verify_ignoring_expiry(&expired, TokenType::Access).is_ok());
    }

    #[test]
    fn a_token_signed_with_another_secret_is_rejected() {
        let other = keys("another-secret-another-secret-xx");
        let token = sign(&other, TokenType::Access, Duration::minutes(5));
        assert_eq!(keys(SECRET).verify(&token, TokenType::Access).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn alg_none_and_tampered_payloads_are_rejected() {
        let k = keys(SECRET);
        let token = sign(&k, TokenType::Access, Duration::minutes(5));
        let mut parts: Vec<String> = token.split('.').map(str::to_owned).collect();
        let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
        let mut payload: serde_json::Value = serde_json::from_slice(&b64.decode(&parts[1]).unwrap()).unwrap();
        payload["sub"] = serde_json::json!(Uuid::new_v4());
        parts[1] = b64.encode(payload.to_string());
        assert_eq!(k.verify(&parts.join("."), TokenType::Access).unwrap_err(), TokenError::Invalid);

        let none_header = b64.encode(r#"{"alg":"none","typ":"JWT"}"#);
        let unsigned = format!("{none_header}.{}.", parts[1]);
        assert_eq!(k.verify(&unsigned, TokenType::Access).unwrap_err(), TokenError::Invalid);
        assert_eq!(k.verify("garbage", TokenType::Access).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_remembered_token_is_not_served_past_its_expiry_nor_for_another_token() {
        let k = keys(SECRET);
        let expired = sign(&k, TokenType::Access, Duration::seconds(-6));
        // As if it had been verified (and remembered) while it was still valid.
        let claims = k.verify_ignoring_expiry(&expired, TokenType::Access).unwrap();
        k.verified.insert(Sha256::digest(expired.as_bytes()).into(), (Arc::new(claims), k.ring.removals()));
        assert_eq!(k.verify(&expired, TokenType::Access).unwrap_err(), TokenError::Expired);

        let fresh = sign(&k, TokenType::Access, Duration::minutes(5));
        assert!(k.verify(&fresh, TokenType::Access).is_ok());
        let mut forged = fresh.clone();
        forged.push('x');
        assert_eq!(k.verify(&forged, TokenType::Access).unwrap_err(), TokenError::Invalid);
        // The remembered access token is still not a refresh token.
        assert_eq!(k.verify(&fresh, TokenType::Refresh).unwrap_err(), TokenError::Invalid);
    }

    #[test]
    fn a_remembered_token_is_checked_again_once_a_key_is_gone() {
        let k = keys(SECRET);
        let foreign =
            sign(&keys("another-secret-another-secret-another-secret"), TokenType::Access, Duration::minutes(5));
        let claims = keys("another-secret-another-secret-another-secret").verify(&foreign, TokenType::Access).unwrap();
        // As if it had been verified with a key that has since been deleted.
        k.verified.insert(Sha256::digest(foreign.as_bytes()).into(), (Arc::new(claims), k.ring.removals()));
        assert!(k.verify(&foreign, TokenType::Access).is_ok(), "served from memory");

        k.ring.note_removal();
        assert_eq!(k.verify(&foreign, TokenType::Access).unwrap_err(), TokenError::Invalid);
    }
}
