//! `latchkey import-users`: users whose hashes another implementation made
//! (Python's `bcrypt`, in `tests/fixtures/legacy_users.jsonl`) sign in with
//! their old passwords, and their first login replaces the hash.

use latchkey::entity::user;
use reqwest::StatusCode;
use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};
use serde_json::Value;

use crate::helpers::*;

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/legacy_users.jsonl");

async fn stored_hash(app: &TestApp, email: &str) -> String {
    user::Entity::find().filter(user::Column::Email.eq(email)).one(&app.state.db).await.unwrap().unwrap().password_hash
}

#[tokio::test]
async fn imported_users_sign_in_with_their_old_passwords_and_get_a_new_hash() {
    let app = spawn_app().await;
    let outcome = latchkey::import::import_file(&app.state.db, FIXTURE.as_ref()).await.unwrap();
    assert_eq!((outcome.imported, outcome.skipped), (4, 0));

    for (email, password, prefix) in [
        ("ada@example.com", "Ada-Lovelace-1815", "$2b$"),
        ("grace@example.com", "Grace-Hopper-1906", "$2a$"),
        ("alan@example.com", "Alan-Turing-1912", "$2y$"),
    ] {
        assert!(stored_hash(&app, email).await.starts_with(&format!("legacy:{prefix}")));
        let browser = app.another_browser();
        assert_problem(browser.login(email, "Not-The-Password-1").await, 401, "invalid_credentials").await;
        let resp = browser.login(email, password).await;
        assert_eq!(resp.status(), StatusCode::OK, "{email}");
        let upgraded = stored_hash(&app, email).await;
        assert!(upgraded.starts_with("$2b$04$"), "{email}: the login stored a hash of Latchkey's own kind");
        // And the new hash works, the old one is gone.
        assert_eq!(app.another_browser().login(email, password).await.status(), StatusCode::OK);
    }

    let browser = app.another_browser();
    browser.login("ada@example.com", "Ada-Lovelace-1815").await;
    let me: Value = browser.me().await.json().await.unwrap();
    assert_eq!((me["full_name"].as_str(), me["email_verified"].as_bool()), (Some("Ada Lovelace"), Some(true)));
    let browser = app.another_browser();
    browser.login("grace@example.com", "Grace-Hopper-1906").await;
    assert_eq!(browser.me().await.json::<Value>().await.unwrap()["role"], "admin");
    assert_problem(
        app.another_browser().login("retired@example.com", "Retired-User-2001").await,
        403,
        "account_disabled",
    )
    .await;
}

#[tokio::test]
async fn importing_again_changes_nothing() {
    let app = spawn_app().await;
    latchkey::import::import_file(&app.state.db, FIXTURE.as_ref()).await.unwrap();
    assert_eq!(app.login("ada@example.com", "Ada-Lovelace-1815").await.status(), StatusCode::OK);
    let upgraded = stored_hash(&app, "ada@example.com").await;
    let again = latchkey::import::import_file(&app.state.db, FIXTURE.as_ref()).await.unwrap();
    assert_eq!((again.imported, again.skipped), (0, 4));
    assert_eq!(stored_hash(&app, "ada@example.com").await, upgraded, "an existing account is never overwritten");
}

#[tokio::test]
async fn a_file_with_a_bad_line_imports_nothing() {
    let app = spawn_app().await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    let good = std::fs::read_to_string(FIXTURE).unwrap();
    std::fs::write(&path, format!("{good}{{\"email\":\"x@example.com\",\"password_hash\":\"md5:abc\"}}\n")).unwrap();
    let err = latchkey::import::import_file(&app.state.db, &path).await.unwrap_err().to_string();
    assert!(err.contains("line 5: password_hash"), "{err}");
    assert_eq!(user::Entity::find().all(&app.state.db).await.unwrap().len(), 0);
}

#[test]
fn the_command_refuses_bad_hashes_by_line_without_a_panic_or_an_echo() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("users.jsonl");
    // Each hash is the 60 bytes bcrypt's shape asks for; the first two carry
    // multi-byte characters where a byte slice would split one (a panic that
    // printed the value), the last two costs outside 4..=16.
    let tail = "EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxci";
    let hashes =
        [format!("$2é$04${tail}"), format!("$2b$0é${tail}"), format!("$2b$17${tail}e"), format!("$2b$03${tail}e")];
    let lines: Vec<String> = hashes
        .iter()
        .enumerate()
        .map(|(i, h)| serde_json::json!({"email": format!("u{i}@example.com"), "password_hash": h}).to_string())
        .collect();
    std::fs::write(&path, lines.join("\n")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_latchkey"))
        .args(["import-users", path.to_str().unwrap()])
        .current_dir(dir.path())
        .env_clear()
        .env("DATABASE_URL", format!("sqlite://{}?mode=rwc", dir.path().join("import.db").display()))
        .env("JWT_SECRET", SECRET)
        .env("RUST_LOG", "warn")
        .output()
        .expect("the latchkey binary runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert_eq!(out.status.code(), Some(1), "a refusal, not a panic (101): {text}");
    for expected in ["line 1: password_hash", "line 2: password_hash", "line 3: password_hash has cost 17", "line 4"] {
        assert!(text.contains(expected), "{expected} missing from: {text}");
    }
    assert!(!text.contains(tail) && !text.contains("panicked"), "{text}");
}
