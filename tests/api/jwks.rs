//! Asymmetric access tokens (`JWT_ALGORITHM` `EdDSA` / `ES256`), the key set
//! at `/.well-known/jwks.json`, key rotation, and what an attacker can put in
//! a token's header.

use std::{process::Stdio, time::Duration};

use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use latchkey::{
    auth::signing_keys::{self, AccessAlgorithm},
    clock::now,
    config::{Config, Secret},
};
use reqwest::StatusCode;
use serde_json::{Value, json};

use crate::helpers::*;

const DATA_KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn asymmetric(algorithm: AccessAlgorithm) -> impl FnOnce(&mut Config) {
    move |c: &mut Config| {
        c.jwt_algorithm = algorithm;
        c.data_encryption_key = Some(Secret::new(DATA_KEY));
    }
}

fn header_of(token: &str) -> Value {
    let part = token.split('.').next().unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

fn claims_of(token: &str) -> Value {
    let part = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).unwrap()).unwrap()
}

async fn key_set(app: &TestApp) -> (Value, reqwest::header::HeaderMap) {
    let resp = app.client.get(app.url("/.well-known/jwks.json")).send().await.unwrap();
    assert_eq!(resp.status(), StatusCode::OK);
    let headers = resp.headers().clone();
    (resp.json().await.unwrap(), headers)
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"].as_array().unwrap().iter().map(|k| k["kid"].as_str().unwrap().to_owned()).collect()
}

#[tokio::test]
async fn hs256_publishes_an_empty_key_set_that_caches_and_revalidates() {
    let app = spawn_app().await;
    let (set, headers) = key_set(&app).await;
    assert_eq!(set, json!({"keys": []}));
    assert_eq!(headers["cache-control"], "public, max-age=300");
    let etag = headers["etag"].to_str().unwrap().to_owned();
    assert!(etag.starts_with('"') && etag.ends_with('"'), "{etag}");

    let again = app.client.get(app.url("/.well-known/jwks.json")).header("If-None-Match", &etag).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::NOT_MODIFIED);
    assert_eq!(again.headers()["etag"], etag.as_str());
    let other =
        app.client.get(app.url("/.well-known/jwks.json")).header("If-None-Match", "\"stale\"").send().await.unwrap();
    assert_eq!(other.status(), StatusCode::OK);

    // HS256 tokens name their key too, a fingerprint of JWT_SECRET.
    let (_, tokens) = app.signed_up().await;
    let header = header_of(tokens.access.as_deref().unwrap());
    assert_eq!(header["alg"], "HS256");
    assert!(header["kid"].as_str().unwrap().starts_with("hs256-"), "{header}");
    assert!(!header["kid"].as_str().unwrap().contains(SECRET));
}

#[tokio::test]
async fn eddsa_and_es256_access_tokens_name_a_published_key_and_sign_in() {
    for (algorithm, alg, kty) in [(AccessAlgorithm::EdDsa, "EdDSA", "OKP"), (AccessAlgorithm::Es256, "ES256", "EC")] {
        let app = spawn_app_with(asymmetric(algorithm)).await;
        let (_, tokens) = app.signed_up().await;
        let access = tokens.access.unwrap();
        let header = header_of(&access);
        assert_eq!(header["alg"], alg);
        let (set, _) = key_set(&app).await;
        assert_eq!(kids(&set), [header["kid"].as_str().unwrap()]);
        let key = &set["keys"][0];
        assert_eq!(
            (key["kty"].as_str(), key["alg"].as_str(), key["use"].as_str()),
            (Some(kty), Some(alg), Some("sig"))
        );
        assert!(key.get("d").is_none(), "no private part is published: {key}");
        assert_eq!(app.me().await.status(), StatusCode::OK);
        // Refresh tokens stay with JWT_SECRET.
        assert_eq!(header_of(tokens.refresh.as_deref().unwrap())["alg"], "HS256");
        assert_eq!(app.refresh().await.status(), StatusCode::OK);
    }
}

#[tokio::test]
async fn tokens_signed_before_a_rotation_verify_until_they_expire() {
    let tweak = |c: &mut Config| {
        asymmetric(AccessAlgorithm::EdDsa)(c);
        c.access_token_ttl = Duration::from_secs(2);
        c.key_publish_delay = Duration::ZERO;
    };
    let app = spawn_app_with(tweak).await;
    // An instance that has loaded only the first key.
    let other = spawn_instance_sharing(&app, tweak).await;
    let (_, before) = app.signed_up().await;
    let old = before.access.unwrap();
    let old_kid = header_of(&old)["kid"].as_str().unwrap().to_owned();

    let data_key = app.state.data_key.clone().unwrap();
    let new = signing_keys::create(&app.state.writer, &data_key, AccessAlgorithm::EdDsa, now()).await.unwrap();
    app.state.tokens.ring().reload().await.unwrap();
    let browser = app.another_browser();
    let (_, after) = browser.signed_up().await;
    let fresh = after.access.unwrap();
    assert_eq!(header_of(&fresh)["kid"], new.kid.as_str());

    assert_eq!(app.me_with_bearer(&old).await.status(), StatusCode::OK, "a token of the old key still works");
    assert_eq!(kids(&key_set(&app).await.0), [old_kid.as_str(), new.kid.as_str()]);
    // The other instance meets the new key in a token and loads it at once.
    assert_eq!(other.me_with_bearer(&fresh).await.status(), StatusCode::OK);
    assert_eq!(other.me_with_bearer(&old).await.status(), StatusCode::OK);

    // The old key's last token expires 2 s after the rotation, plus 5 s of
    // leeway (`exp` counts whole seconds: one more to be sure). The key stays
    // published 5 s longer, for instances whose clocks lag.
    tokio::time::sleep(Duration::from_millis(8_500)).await;
    assert_problem(app.me_with_bearer(&old).await, 401, "token_expired").await;
    assert_eq!(kids(&key_set(&app).await.0), [old_kid.as_str(), new.kid.as_str()]);
}

/// A key whose last token has expired: a token it signs now can only be
/// forged (its private half leaked, say), so it is refused, and once the key
/// is deleted, nothing checked with it before is taken on trust either.
#[tokio::test]
async fn a_retired_key_is_unpublished_and_refuses_fresh_tokens() {
    use latchkey::entity::signing_key;
    use sea_orm::{ActiveModelTrait, EntityTrait, IntoActiveModel, Set};

    let app = spawn_app_with(asymmetric(AccessAlgorithm::EdDsa)).await;
    let (_, tokens) = app.signed_up().await;
    let genuine = tokens.access.unwrap();
    assert_eq!(app.me_with_bearer(&genuine).await.status(), StatusCode::OK);
    let old_kid = header_of(&genuine)["kid"].as_str().unwrap().to_owned();

    // Move the timeline back: the old key signed two hours ago, the next one
    // took over an hour ago, so the old key's last token expired long since.
    let old = signing_key::Entity::find_by_id(old_kid.clone()).one(&app.state.writer).await.unwrap().unwrap();
    let (old_der, _) = app.state.data_key.as_ref().unwrap().decrypt(&old.private_key_enc).unwrap();
    let mut moved = old.into_active_model();
    moved.signs_from = Set(now() - chrono::Duration::hours(2));
    moved.update(&app.state.writer).await.unwrap();
    let data_key = app.state.data_key.clone().unwrap();
    let an_hour_ago = now() - chrono::Duration::hours(1);
    let new = signing_keys::create(&app.state.writer, &data_key, AccessAlgorithm::EdDsa, an_hour_ago).await.unwrap();
    let ring = app.state.tokens.ring();
    ring.reload().await.unwrap();
    assert_eq!(kids(&key_set(&app).await.0), [new.kid.as_str()]);

    let header = Header { kid: Some(old_kid.clone()), ..Header::new(Algorithm::EdDSA) };
    let fresh = jsonwebtoken::encode(&header, &claims_of(&genuine), &EncodingKey::from_ed_der(&old_der)).unwrap();
    assert_ne!(fresh, genuine);
    assert_problem(app.me_with_bearer(&fresh).await, 401, "token_invalid").await;

    // Checked before the key retired, the genuine token is still remembered;
    // the purge deletes the key, and with it that trust.
    assert_eq!(app.me_with_bearer(&genuine).await.status(), StatusCode::OK);
    assert_eq!(ring.purge_retired().await.unwrap(), 1);
    assert_problem(app.me_with_bearer(&genuine).await, 401, "token_invalid").await;
}

/// Tokens an attacker can make knowing everything public.
#[tokio::test]
async fn algorithm_confusion_none_and_header_supplied_keys_are_refused() {
    let app = spawn_app_with(asymmetric(AccessAlgorithm::EdDsa)).await;
    let (_, tokens) = app.signed_up().await;
    let genuine = tokens.access.unwrap();
    assert_eq!(app.me_with_bearer(&genuine).await.status(), StatusCode::OK);
    let claims = claims_of(&genuine);
    let kid = header_of(&genuine)["kid"].as_str().unwrap().to_owned();
    let public = key_set(&app).await.0["keys"][0].clone();
    let raw_public = URL_SAFE_NO_PAD.decode(public["x"].as_str().unwrap()).unwrap();

    let mut forged = Vec::new();
    // HS256 keyed with the public key (raw, and as its JWK text), under the real kid and under none.
    for secret in [raw_public.clone(), public.to_string().into_bytes()] {
        for kid in [Some(kid.clone()), None] {
            let header = Header { kid, ..Header::new(Algorithm::HS256) };
            forged.push(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_secret(&secret)).unwrap());
        }
    }
    // alg none, with the real kid.
    let none = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT", "kid": kid}).to_string());
    forged.push(format!("{none}.{}.", genuine.split('.').nth(1).unwrap()));
    // The attacker's own key pair, offered in `jwk` and `jku`, named by its own kid and by the real one.
    let (attacker_jwk, attacker_der) = signing_keys::generate(AccessAlgorithm::EdDsa).unwrap();
    for kid in [attacker_jwk.common.key_id.clone(), Some(kid.clone())] {
        let header = Header {
            kid,
            jwk: Some(attacker_jwk.clone()),
            jku: Some("http://127.0.0.1:9/jwks.json".into()),
            ..Header::new(Algorithm::EdDSA)
        };
        forged.push(jsonwebtoken::encode(&header, &claims, &EncodingKey::from_ed_der(&attacker_der)).unwrap());
    }
    // The genuine signature under an edited payload.
    let mut edited = claims.clone();
    edited["sub"] = json!(uuid::Uuid::new_v4());
    let parts: Vec<&str> = genuine.split('.').collect();
    forged.push(format!("{}.{}.{}", parts[0], URL_SAFE_NO_PAD.encode(edited.to_string()), parts[2]));

    for token in forged {
        let resp = app.me_with_bearer(&token).await;
        assert_eq!(resp.status(), StatusCode::UNAUTHORIZED, "accepted: {}", header_of(&token));
        assert_problem(resp, 401, "token_invalid").await;
    }
    assert_eq!(app.me_with_bearer(&genuine).await.status(), StatusCode::OK);
}

fn latchkey(dir: &std::path::Path, args: &[&str], env: &[(&str, &str)]) -> (bool, String) {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(args)
        .current_dir(dir)
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.join("keys.db").display()))
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .envs(env.iter().copied())
        .output()
        .expect("the latchkey binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[test]
fn keys_rotate_and_list_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let eddsa = [("JWT_ALGORITHM", "EdDSA"), ("DATA_ENCRYPTION_KEY", DATA_KEY), ("KEY_PUBLISH_DELAY", "10m")];

    let (ok, text) = latchkey(dir.path(), &["keys", "rotate"], &eddsa);
    assert!(ok, "{text}");
    assert!(text.contains("added EdDSA key") && text.contains("signs from"), "{text}");
    let (ok, text) = latchkey(dir.path(), &["keys", "list"], &eddsa);
    assert!(ok, "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("next: published, signs from")).count(), 1, "{text}");

    let (ok, text) = latchkey(dir.path(), &["keys", "rotate"], &[("JWT_ALGORITHM", "HS256")]);
    assert!(!ok && text.contains("JWT_SECRET"), "{text}");
    let (ok, text) = latchkey(dir.path(), &["keys", "rotate"], &[("JWT_ALGORITHM", "ES256")]);
    assert!(!ok && text.contains("DATA_ENCRYPTION_KEY must be set"), "{text}");
    let (ok, text) = latchkey(dir.path(), &["keys", "list"], &eddsa);
    assert!(ok && text.lines().count() == 2, "a refused rotation adds nothing: {text}");
}

/// `examples/downstream_service.rs`, built by `cargo test` beside this binary.
fn example_binary() -> std::path::PathBuf {
    let profile_dir = std::env::current_exe().unwrap().parent().unwrap().parent().unwrap().to_owned();
    let path = profile_dir.join("examples").join("downstream_service");
    assert!(path.exists(), "{} is missing: `cargo test` builds it (or `cargo build --examples`)", path.display());
    path
}

#[tokio::test]
async fn the_example_downstream_service_trusts_the_access_cookie_through_the_key_set() {
    let app = spawn_app_with(asymmetric(AccessAlgorithm::Es256)).await;
    let (_, tokens) = app.signed_up().await;
    let me: Value = app.me().await.json().await.unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut service = std::process::Command::new(example_binary())
        .arg(format!("127.0.0.1:{port}"))
        .env("LATCHKEY_URL", &app.base)
        .stdout(Stdio::null())
        .spawn()
        .expect("the example starts");
    let client = reqwest::Client::new();
    let whoami = |cookie: String| {
        let client = client.clone();
        async move { client.get(format!("http://127.0.0.1:{port}/whoami")).header("Cookie", cookie).send().await }
    };
    let access = tokens.access.unwrap();
    let mut answer = None;
    for _ in 0..100 {
        if let Ok(resp) = whoami(format!("access_token={access}")).await {
            answer = Some((resp.status(), resp.text().await.unwrap()));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let refresh = tokens.refresh.unwrap();
    let mut tampered = access.clone().into_bytes();
    let i = tampered.len() - 10; // inside the signature, clear of base64's padding bits
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    let tampered = String::from_utf8(tampered).unwrap();
    let refused = [
        whoami(format!("access_token={tampered}")).await.unwrap().status(),
        whoami(format!("access_token={refresh}")).await.unwrap().status(),
        whoami(String::new()).await.unwrap().status(),
    ];
    service.kill().unwrap();
    service.wait().unwrap();
    assert_eq!(answer, Some((StatusCode::OK, me["id"].as_str().unwrap().to_owned())));
    assert_eq!(refused, [StatusCode::UNAUTHORIZED; 3]);
}
