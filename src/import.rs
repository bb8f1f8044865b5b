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
    audit::{Entry, Event},
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
        let created =
            accounts::create(&txn, account).await.map_err(|e| anyhow::anyhow!("{}: {e}", user.email.as_str()))?;
        Entry::system(Event::Imported, created.id).record(&txn).await?;
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
    check_hash(&line.password_hash)?;
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

/// The costs an imported hash may have. Below 4 bcrypt refuses; above 16 a
/// single wrong password would hold a hashing thread for seconds and tell the
/// account apart from the rest (logins pad lower costs up to `BCRYPT_COST`,
/// but cannot make a higher one faster).
pub const IMPORT_COSTS: std::ops::RangeInclusive<u32> = 4..=16;

/// `$2?$NN$` + 22 characters of salt + 31 of hash, in bcrypt's base64
/// alphabet, at a cost in [`IMPORT_COSTS`]. The message names what is wrong,
/// never the value.
fn check_hash(hash: &str) -> Result<(), String> {
    const SHAPE: &str = "password_hash is not a bcrypt hash ($2a$, $2b$ or $2y$, a two-digit cost, 60 characters)";
    // Checked first: every slice below is then on a character boundary.
    if !hash.is_ascii() {
        return Err("password_hash has characters that are not ASCII; a bcrypt hash has none".into());
    }
    let b = hash.as_bytes();
    if b.len() != 60
        || !matches!(&hash[..4], "$2a$" | "$2b$" | "$2y$")
        || b[6] != b'$'
        || !b[7..].iter().all(|c| c.is_ascii_alphanumeric() || matches!(c, b'.' | b'/'))
    {
        return Err(SHAPE.into());
    }
    let cost: u32 = hash[4..6].parse().map_err(|_| SHAPE.to_owned())?;
    if !IMPORT_COSTS.contains(&cost) {
        return Err(format!(
            "password_hash has cost {cost}; only {} to {} can be imported",
            IMPORT_COSTS.start(),
            IMPORT_COSTS.end()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const HASH: &str = "$2b$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie";

    #[test]
    fn accepts_the_three_prefixes_and_nothing_else() {
        for prefix in ["$2a$", "$2b$", "$2y$"] {
            assert!(check_hash(&format!("{prefix}{}", &HASH[4..])).is_ok());
        }
        for bad in ["$2x$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie", "$2b$03$", &HASH[..59], "plain"] {
            assert!(check_hash(bad).is_err(), "{bad}");
        }
        assert!(check_hash(&format!("{}!", &HASH[..59])).is_err());
        assert!(check_hash("$2b$xx$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxcie").is_err());
    }

    #[test]
    fn costs_outside_4_to_16_are_refused_by_name() {
        let with_cost = |cost: &str| format!("$2b${cost}${}", &HASH[7..]);
        assert!(check_hash(&with_cost("16")).is_ok());
        for cost in ["03", "17", "31", "99"] {
            let err = check_hash(&with_cost(cost)).unwrap_err();
            assert!(err.contains(&format!("cost {}", cost.parse::<u32>().unwrap())), "{err}");
        }
    }

    #[test]
    fn a_hash_that_is_not_ascii_is_refused_without_a_panic_or_an_echo() {
        // Multi-byte characters where the cost and separators would be: slicing
        // by bytes used to panic here, printing the value.
        for bad in [
            "$2é$04$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxci",
            "$2b$0é$EGdrhbKUv8Oc9vGiXX0HQOxSg445d458Muh7DAHskb6QbtCvdxci",
        ] {
            let err = check_hash(bad).unwrap_err();
            assert!(err.contains("not ASCII") && !err.contains("EGdrhb"), "{err}");
        }
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
