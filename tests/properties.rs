//! Property-based fuzzing of everything that parses attacker input: cookie
//! headers, JWTs, request bodies, emails, passwords, durations and
//! `X-Forwarded-For`. None of them may panic, and each keeps its invariant.

use latchkey::{
    api::{json_body, schemas::RegisterRequest},
    auth::{
        cookies,
        tokens::{TokenKeys, TokenType},
    },
    client::resolve,
    config::{Config, Secret, parse_duration},
    domain::{Email, NewPassword},
    error::ApiError,
};
use proptest::prelude::*;

fn keys() -> TokenKeys {
    TokenKeys::secret_only(&Config { jwt_secret: Some(Secret::new("p".repeat(32))), ..Config::default() })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn cookie_headers_never_panic(header in "\\PC{0,300}", name in "[a-z_]{1,20}") {
        if let Ok(value) = poem::http::HeaderValue::from_str(&header) {
            let req = poem::Request::builder().header("cookie", value).finish();
            if let Some(found) = cookies::read(&req, &name) {
                prop_assert!(!found.is_empty());
            }
        }
    }

    #[test]
    fn arbitrary_tokens_never_verify(token in "\\PC{0,400}") {
        prop_assert!(keys().verify(&token, TokenType::Access).is_err());
        prop_assert!(keys().verify_ignoring_expiry(&token, TokenType::Refresh).is_err());
    }

    #[test]
    fn any_change_to_a_signed_token_breaks_it(position in 0usize..1000, replacement in "[A-Za-z0-9_.-]") {
        let k = keys();
        let now = chrono::Utc::now();
        let (token, _) = k
            .sign(TokenType::Access, uuid::Uuid::new_v4(), uuid::Uuid::new_v4(), now, now + chrono::Duration::minutes(5))
            .unwrap();
        let i = position % token.len();
        let mut forged = token.clone();
        forged.replace_range(i..i + 1, &replacement);
        // Base64url's last character can hide a few unused bits; only a real change must fail.
        if forged != token && k.verify(&forged, TokenType::Access).is_ok() {
            let decoded = |t: &str| t.split('.').map(str::to_owned).collect::<Vec<_>>();
            prop_assert_eq!(decoded(&forged).len(), 3);
            prop_assert!(i + 1 == token.len() || token.as_bytes()[i + 1] == b'.', "changed byte {i} still verified");
        }
    }

    #[test]
    fn request_bodies_never_panic_or_fail_internally(body in proptest::collection::vec(any::<u8>(), 0..400)) {
        match json_body::parse::<RegisterRequest>(&body) {
            Ok(_) | Err(ApiError::BadRequest(_)) | Err(ApiError::Validation(_)) => {}
            Err(other) => prop_assert!(false, "unexpected {other:?}"),
        }
    }

    #[test]
    fn json_shaped_bodies_name_fields_or_parse(email in "\\PC{0,40}", password in any::<i64>(), extra in "[a-z]{1,8}") {
        // A number where the password string belongs: always a 422 naming a field.
        let body = format!(r#"{{"email":{},"password":{password},"{extra}":1}}"#, serde_json::Value::String(email));
        match json_body::parse::<RegisterRequest>(body.as_bytes()) {
            Err(ApiError::Validation(fields)) => prop_assert!(!fields.is_empty()),
            other => prop_assert!(false, "expected 422, got {other:?}"),
        }
    }

    #[test]
    fn parsed_emails_are_normalized(raw in "\\PC{0,300}") {
        if let Ok(email) = Email::parse(&raw) {
            let s = email.as_str();
            prop_assert!(s.len() <= Email::MAX_LEN);
            prop_assert_eq!(s, s.trim());
            prop_assert_eq!(s.to_lowercase(), s);
            prop_assert!(s.contains('@'));
        }
    }

    #[test]
    fn accepted_passwords_meet_the_policy(raw in "\\PC{0,200}") {
        if NewPassword::parse("password", &raw, &[]).is_ok() {
            let n = raw.chars().count();
            prop_assert!((8..=128).contains(&n));
            prop_assert!(raw.chars().any(char::is_lowercase) && raw.chars().any(char::is_uppercase));
            prop_assert!(raw.chars().any(|c| c.is_ascii_digit()));
        }
    }

    #[test]
    fn durations_never_panic_and_plain_numbers_are_seconds(raw in "\\PC{0,30}", secs in 0u64..10_000_000) {
        let _ = parse_duration(&raw);
        prop_assert_eq!(parse_duration(&secs.to_string()).unwrap().as_secs(), secs);
        prop_assert_eq!(parse_duration(&format!("{secs}m")).unwrap().as_secs(), secs * 60);
    }

    #[test]
    fn forwarded_for_chains_never_panic(chain in "[0-9a-f:., ]{0,200}", trusted in any::<bool>()) {
        let peer: std::net::IpAddr = "10.0.0.1".parse().unwrap();
        let nets = if trusted { vec!["10.0.0.0/8".parse().unwrap()] } else { vec![] };
        let ip = resolve(peer, &chain, &nets);
        if !trusted {
            prop_assert_eq!(ip, peer);
        }
    }
}
