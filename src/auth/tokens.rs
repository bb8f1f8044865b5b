//! JWT signing and checking. The algorithm, issuer, audience and expiry are
//! pinned here, so a token from another service, with `alg: none`, or of the
//! other type never passes.

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::config::Config;

/// Allowed clock skew between instances, in seconds (at most 5, see docs/SESSIONS.md).
const LEEWAY_SECS: u64 = 5;

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
}

pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    validation_ignoring_expiry: Validation,
    issuer: String,
    audience: String,
}

impl TokenKeys {
    pub fn new(config: &Config) -> Self {
        let secret = config.jwt_secret().expose().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.set_issuer(&[&config.jwt_issuer]);
        validation.set_audience(&[&config.jwt_audience]);
        validation.leeway = LEEWAY_SECS;
        let mut validation_ignoring_expiry = validation.clone();
        validation_ignoring_expiry.validate_exp = false;
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            validation_ignoring_expiry,
            issuer: config.jwt_issuer.clone(),
            audience: config.jwt_audience.clone(),
        }
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
        Ok(jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?)
    }

    pub fn verify(&self, token: &str, typ: TokenType) -> Result<Claims, TokenError> {
        self.decode(token, typ, &self.validation)
    }

    /// Checks everything but `exp`: logout must work with an expired token, and
    /// refresh must tell `session_expired` from `refresh_token_expired`.
    pub fn verify_ignoring_expiry(&self, token: &str, typ: TokenType) -> Result<Claims, TokenError> {
        self.decode(token, typ, &self.validation_ignoring_expiry)
    }

    fn decode(&self, token: &str, typ: TokenType, validation: &Validation) -> Result<Claims, TokenError> {
        let data = jsonwebtoken::decode::<Claims>(token, &self.decoding, validation).map_err(|e| match e.kind() {
            ErrorKind::ExpiredSignature => TokenError::Expired,
            _ => TokenError::Invalid,
        })?;
        if data.claims.typ != typ {
            return Err(TokenError::Invalid);
        }
        Ok(data.claims)
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
        TokenKeys::new(&config)
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
}
