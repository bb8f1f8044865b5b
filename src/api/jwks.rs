//! `GET /.well-known/jwks.json`: the public keys that verify access tokens,
//! for other services (RFC 7517). Empty with `JWT_ALGORITHM=HS256`.

use poem::web::Data;
use poem_openapi::{ApiResponse, Object, OpenApi, param::Header, payload::Json};
use sha2::{Digest, Sha256};

use crate::{api::ApiTags, clock::now, state::AppState};

pub struct JwksApi;

/// A JSON Web Key Set.
#[derive(Debug, Object, serde::Deserialize)]
pub struct KeySet {
    /// Every key that may have signed a live access token, and the next one.
    pub keys: Vec<PublicKey>,
}

/// One public key (RFC 7517), as `jsonwebtoken`, `jose` or `PyJWT` read it.
#[derive(Debug, Object, serde::Deserialize)]
pub struct PublicKey {
    /// `OKP` (Ed25519) or `EC` (P-256).
    pub kty: String,
    /// `Ed25519` or `P-256`.
    pub crv: String,
    /// The public key (`OKP`), or its x coordinate (`EC`), base64url.
    pub x: String,
    /// The y coordinate (`EC` only), base64url.
    #[oai(skip_serializing_if_is_none)]
    pub y: Option<String>,
    /// What access tokens signed with this key carry in their header's `kid`.
    pub kid: String,
    /// `EdDSA` or `ES256`: the only algorithm to accept with this key.
    pub alg: String,
    /// Always `sig`.
    #[oai(rename = "use")]
    #[serde(rename = "use")]
    pub use_: String,
}

#[derive(ApiResponse)]
pub enum KeySetResponse {
    /// The key set. Cache it as `Cache-Control` says; a token naming a `kid`
    /// that is not in a cached set is the moment to fetch it again.
    #[oai(status = 200)]
    Ok(Json<KeySet>, #[oai(header = "Cache-Control")] String, #[oai(header = "ETag")] String),
    /// Unchanged since the `ETag` sent in `If-None-Match`.
    #[oai(status = 304)]
    NotModified(#[oai(header = "Cache-Control")] String, #[oai(header = "ETag")] String),
}

#[OpenApi(tag = "ApiTags::Operations")]
impl JwksApi {
    /// The public keys that verify access tokens.
    ///
    /// With `JWT_ALGORITHM` `EdDSA` or `ES256`: the key that signs now, the
    /// next one (published `KEY_PUBLISH_DELAY` before it signs), and retired
    /// ones until their last token has expired. With `HS256` the set is empty:
    /// only Latchkey can check its tokens.
    #[oai(path = "/.well-known/jwks.json", method = "get", operation_id = "getJwks")]
    async fn jwks(
        &self,
        state: Data<&AppState>,
        /// The `ETag` of a cached copy.
        #[oai(name = "If-None-Match")]
        if_none_match: Header<Option<String>>,
    ) -> KeySetResponse {
        let ring = state.tokens.ring();
        let keys: Vec<PublicKey> = ring
            .published(now())
            .iter()
            .filter_map(|jwk| match serde_json::to_value(jwk).and_then(serde_json::from_value) {
                Ok(key) => Some(key),
                // The key ring checks `kid`, `alg` and `use` when it loads a key.
                Err(e) => {
                    tracing::error!(kid = ?jwk.common.key_id, error = %e, "a signing key does not fit the key set's schema");
                    None
                }
            })
            .collect();
        let kids: Vec<&str> = keys.iter().map(|k| k.kid.as_str()).collect();
        let etag = format!("\"{}\"", &hex::encode(Sha256::digest(kids.join(",").as_bytes()))[..32]);
        let cache_control = format!("public, max-age={}", ring.jwks_max_age().as_secs());
        let unchanged = if_none_match.0.as_deref().is_some_and(|tags| tags.split(',').any(|t| t.trim() == etag));
        if unchanged {
            KeySetResponse::NotModified(cache_control, etag)
        } else {
            KeySetResponse::Ok(Json(KeySet { keys }), cache_control, etag)
        }
    }
}
