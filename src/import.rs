//! `latchkey import-users FILE`: moves users over from another system without
//! resetting their passwords.
//!
//! The file is JSON Lines, one user per line:
//! `{"email", "password_hash", "full_name"?, "role"?, "is_active"?, "email_verified"?}`
//! where `password_hash` is a standard bcrypt hash (`$2a$`, `$2b$` or `$2y$`)
//! of the plain password, as passlib, Python's `bcrypt`, Node's `bcrypt` and
//! most frameworks store it. Latchkey's own hashes are of a SHA-256 prehash
//! (see `auth::password`), so an imported hash is stored marked as legacy;
//! the user's first login checks the password against it and stores a hash of
//! Latchkey's own kind.
//!
//! All or nothing: every line is checked first, and one bad line imports
//! nothing. Importing the same file again changes nothing: an email that has
//! an account already is skipped, never overwritten.

use std::{collections::HashSet, path::Path};

use anyhow::Context;
use sea_orm::{DatabaseConnection, TransactionTrait};
use serde::Deserialize;

use crate::{
    accounts::{self, NewAccount},
    auth::password::LEGACY_PREFIX,
    domain::{Email, Role, parse_full_name},
};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Line {
    email: String,
    password_hash: String,
    full_name: Option<String>,
    role: Option<Role>,
    is_active: Option<bool>,
    email_verified: Option<bool>,
}

/// A line that passed every check.
struct Checked {
    email: Email,
    password_hash: String,
    full_name: Option<String>,
    role: Role,
    is_active: bool,
    email_verified: bool,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub struct Outcome {
    pub imported: usize,
    /// Emails that had an account already.
    pub skipped: usize,
}

pub async fn import_file(db: &DatabaseConnection, path: &Path) -> anyhow::Result<Outcome> {
    let text = std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let users = check(&text)?;
    let txn = db.begin().await?;
    let mut outcome = Outcome::default();
    for user in users {
        if accounts::find_by_email(&txn, &user.email).await?.is_some() {
            outcome.skipped += 1;
            continue;
        }
        let account = NewAccount {
            email: &user.email,
            password_hash: format!("{LEGACY_PREFIX}{}", user.password_hash),
            full_name: user.full_name,
            role: user.role,
            is_active: user.is_active,
            email_verified: user.email_verified,
            signed_in: false,
        };
        accounts::create(&txn, account).await.map_err(|e| anyhow::anyhow!("{}: {e}", user.email.as_str()))?;
        outcome.imported += 1;
    }
    txn.commit().await?;
    Ok(outcome)
}

/// Every line checked; the errors of all bad lines at once (never a hash).
fn check(text: &str) -> anyhow::Result<Vec<Checked>> {
    let mut users = Vec::new();
    let mut errors = Vec::new();
    let mut seen = HashSet::new();
    for (index, raw) in text.lines().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        match check_line(raw) {
            Ok(user) if !seen.insert(user.email.as_str().to_owned()) => {
                errors.push(format!("line {}: {} appears twice in the file", index + 1, user.email.as_str()));
            }
            Ok(user) => users.push(user),
            Err(e) => errors.push(format!("line {}: {e}", index + 1)),
        }
    }
    if !errors.is_empty() {
        anyhow::bail!("nothing imported; fix these lines:\n  {}", errors.join("\n  "));
    }
    Ok(users)
}

fn check_line(raw: &str) -> Result<Checked, String> {
    // serde's message names the field but never echoes a value.
    let line: Line = serde_json::from_str(raw).map_err(|e| format!("not a user object ({e})"))?;
    let email = Email::parse(&line.email).map_err(|e| format!("email {}", e.message))?;
    if !is_standard_bcrypt(&line.password_hash) {
        return Err("password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, cost 04-31, 60 characters)".into());
    }
    let full_name = parse_full_name(line.full_name.as_deref()).map_err(|e| format!("full_name {}", e.message))?;
    Ok(Checked {
        email,
        password_hash: line.password_hash,
        full_name,
        role: line.role.unwrap_or(Role::User),
        is_active: line.is_active.unwrap_or(true),
        email_verified: line.email_verified.unwrap_or(false),
    })
}

/// `$2?$NN$` + 22 characters of salt + 31 of hash, in bcrypt's base64 alphabet.
fn is_standard_bcrypt(hash: &str) -> bool {
    let b = hash.as_bytes();
    b.len() == 60
        && matches!(&hash[..4], "$2a$" | "$2b$" | "$2y$")
        && hash[4..6].parse::<u32>().is_ok_and(|cost| (4..=31).contains(&cost))
        && b[6] == b'$'
        && b[7..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";

    #[test]
    fn accepts_the_three_prefixes_and_nothing_else() {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            assert!(is_standard_bcrypt(&format!("{prefix}{}", &HASH[4..])));
        }
        for bad in ["$2x$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie", "$2b$03$", &HASH[..59], "plain"] {
            assert!(!is_standard_bcrypt(bad), "{bad}");
        }
        assert!(!is_standard_bcrypt(&format!("{}!", &HASH[..59])));
        assert!(!is_standard_bcrypt("$2b$32$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie"));
    }

    #[test]
    fn every_bad_line_is_reported_without_its_hash() {
        let text = format!(
            "{{\"email\":\"ok@example.com\",\"password_hash\":\"{HASH}\"}}\n\n\
             {{\"email\":\"not-an-email\",\"password_hash\":\"{HASH}\"}}\n\
             {{\"email\":\"b@example.com\",\"password_hash\":\"secret-looking\"}}\n\
             {{\"email\":\"c@example.com\",\"password_hash\":\"{HASH}\",\"admin\":true}}\n\
             {{\"email\":\"OK@example.com\",\"password_hash\":\"{HASH}\",\"role\":\"admin\"}}\n"
        );
        let err = check(&text).err().expect("bad lines refuse the file").to_string();
        for line in ["line 3: email", "line 4: password_hash", "line 5: not a user object", "line 6: ok@example.com"] {
            assert!(err.contains(line), "{line} missing from: {err}");
        }
        assert!(!err.contains("secret-looking") && !err.contains(HASH), "{err}");
    }

    #[test]
    fn defaults_are_an_active_unverified_user() {
        let users = check(&format!("{{\"email\":\"a@example.com\",\"password_hash\":\"{HASH}\"}}")).unwrap();
        let user = &users[0];
        assert_eq!((user.role, user.is_active, user.email_verified), (Role::User, true, false));
    }
}
