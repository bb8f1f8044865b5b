//! A service of yours that trusts Latchkey's access cookie without knowing
//! `JWT_SECRET`: it checks the token against Latchkey's published keys
//! (`JWT_ALGORITHM=EdDSA` or `ES256`). Run it beside Latchkey:
//!
//!     LATCHKEY_URL=http://127.0.0.1:8000 cargo run --example downstream_service -- 127.0.0.1:8100
//!
//! `GET /whoami` with the browser's `access_token` cookie answers the user id, or 401.
use std::sync::RwLock;

use jsonwebtoken::{DecodingKey, Validation, jwk::JwkSet};
use poem::{
    EndpointExt, Request, Route, Server, get, handler, http::StatusCode, listener::TcpListener,
    middleware::CookieJarManager, web::Data,
};

struct Keys {
    url: String,
    cached: RwLock<JwkSet>,
}

#[handler]
async fn whoami(req: &Request, keys: Data<&std::sync::Arc<Keys>>) -> poem::Result<String> {
    let denied = || poem::Error::from_status(StatusCode::UNAUTHORIZED);
    let token = req.cookie().get("access_token").ok_or_else(denied)?.value_str().to_owned();
    let kid = jsonwebtoken::decode_header(&token).map_err(|_| denied())?.kid.ok_or_else(denied)?;
    if keys.cached.read().unwrap().find(&kid).is_none() {
        // A new key, or none cached yet: fetch the set (a real service would also rate-limit this).
        let fresh: JwkSet = reqwest::get(&keys.url)
            .await
            .and_then(|r| r.error_for_status())
            .map_err(|_| denied())?
            .json()
            .await
            .map_err(|_| denied())?;
        *keys.cached.write().unwrap() = fresh;
    }
    let jwk = keys.cached.read().unwrap().find(&kid).cloned().ok_or_else(denied)?;
    // The algorithm comes from the published key, never from the token's header.
    let algorithm =
        jwk.common.key_algorithm.and_then(|a| jsonwebtoken::Algorithm::try_from(a).ok()).ok_or_else(denied)?;
    let mut validation = Validation::new(algorithm);
    validation.set_issuer(&["latchkey"]);
    validation.set_audience(&["latchkey"]);
    let claims = jsonwebtoken::decode::<serde_json::Value>(
        &token,
        &DecodingKey::from_jwk(&jwk).map_err(|_| denied())?,
        &validation,
    )
    .map_err(|_| denied())?
    .claims;
    if claims["typ"] != "access" {
        return Err(denied());
    }
    Ok(claims["sub"].as_str().unwrap_or_default().to_owned())
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let base = std::env::var("LATCHKEY_URL").unwrap_or_else(|_| "http://127.0.0.1:8000".into());
    let keys = std::sync::Arc::new(Keys {
        url: format!("{base}/.well-known/jwks.json"),
        cached: RwLock::new(JwkSet { keys: vec![] }),
    });
    let addr = std::env::args().nth(1).unwrap_or_else(|| "127.0.0.1:8100".into());
    Server::new(TcpListener::bind(addr))
        .run(Route::new().at("/whoami", get(whoami)).data(keys).with(CookieJarManager::new()))
        .await
}
