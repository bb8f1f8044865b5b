//! Input that has been validated once, at the edge. Each `parse` returns a
//! [`FieldError`] that the API reports as a 422 with the offending field.

use poem_openapi::Enum;
use sea_orm::{DeriveActiveEnum, EnumIter, sea_query::StringLen};

use crate::error::FieldError;

/// Roles from lowest to highest; the derived `Ord` is the hierarchy.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Enum, DeriveActiveEnum, EnumIter, serde::Deserialize,
)]
#[oai(rename_all = "snake_case")]
#[serde(rename_all = "snake_case")]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum Role {
    #[sea_orm(string_value = "user")]
    User,
    #[sea_orm(string_value = "moderator")]
    Moderator,
    #[sea_orm(string_value = "admin")]
    Admin,
    #[sea_orm(string_value = "super_admin")]
    SuperAdmin,
}

/// A trimmed, lowercased, syntactically valid email address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Email(String);

impl Email {
    pub const MAX_LEN: usize = 254;

    pub fn parse(raw: &str) -> Result<Self, FieldError> {
        let normalized = raw.trim().to_lowercase();
        let err = |m: &str| Err(FieldError::new("email", m));
        if normalized.is_empty() {
            return err("must not be empty");
        }
        if normalized.len() > Self::MAX_LEN {
            return err("must be at most 254 characters");
        }
        let Some((local, domain)) = normalized.rsplit_once('@') else {
            return err("must be an email address like name@example.com");
        };
        let valid = email_address::EmailAddress::is_valid(&normalized)
            && !local.is_empty()
            && domain.contains('.')
            && !domain.starts_with('.')
            && !domain.ends_with('.')
            && !normalized.chars().any(|c| c.is_whitespace() || c.is_control());
        if !valid {
            return err("must be an email address like name@example.com");
        }
        Ok(Self(normalized))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// The longest prefix zxcvbn judges (see `check_guessability`).
const ZXCVBN_MAX_CHARS: usize = 28;
/// Fewer different characters than this is guessable at any length.
const MIN_DISTINCT_CHARS: usize = 6;

/// A password that meets the policy: 8 to 128 characters with a lowercase
/// letter, an uppercase letter and a digit, and not easy to guess.
pub struct NewPassword(String);

impl NewPassword {
    pub const MIN_CHARS: usize = 8;
    pub const MAX_CHARS: usize = 128;

    /// `user_inputs` (email, name) make passwords built from them count as weak.
    pub fn parse(field: &'static str, raw: &str, user_inputs: &[&str]) -> Result<Self, FieldError> {
        let chars = raw.chars().count();
        let message = if chars < Self::MIN_CHARS {
            "must be at least 8 characters"
        } else if chars > Self::MAX_CHARS {
            "must be at most 128 characters"
        } else if !raw.chars().any(char::is_lowercase) {
            "must contain a lowercase letter"
        } else if !raw.chars().any(char::is_uppercase) {
            "must contain an uppercase letter"
        } else if !raw.chars().any(|c| c.is_ascii_digit()) {
            "must contain a digit"
        } else {
            return Self::check_guessability(field, raw, user_inputs).map(|()| Self(raw.to_owned()));
        };
        Err(FieldError::new(field, message))
    }

    /// Rejects passwords that zxcvbn can guess within about a million tries
    /// (common passwords and their variants, keyboard walks, the user's own
    /// email or name).
    fn check_guessability(field: &'static str, raw: &str, user_inputs: &[&str]) -> Result<(), FieldError> {
        // zxcvbn prices a zig-zag walk (`Qwqwqw…`) by its number of turns, so a
        // long one looks strong although a handful of keys repeat: few distinct
        // characters is weak whatever the length.
        let mut distinct: Vec<char> = raw.chars().collect();
        distinct.sort_unstable();
        distinct.dedup();
        if distinct.len() < MIN_DISTINCT_CHARS {
            return Err(FieldError::new(
                field,
                "is too easy to guess (too few different characters); try a longer phrase",
            ));
        }
        // zxcvbn 3 computes a walk's guesses as `degree.pow(turns)` in u64: past
        // about 27 turns that overflows (a panic in debug builds, a wrapped,
        // meaningless score in release). Judging a prefix is conservative:
        // more characters only add guesses.
        let sample: String = raw.chars().take(ZXCVBN_MAX_CHARS).collect();
        let estimate = zxcvbn::zxcvbn(&sample, user_inputs);
        if estimate.score() >= zxcvbn::Score::Two {
            return Ok(());
        }
        let hint = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
        Err(FieldError::new(field, format!("is too easy to guess{hint}; try a longer phrase")))
    }

    pub fn expose(&self) -> &str {
        &self.0
    }
}

/// Words a password must not be built from: the email, its local part and its
/// pieces, and the words of the name.
pub fn personal_words(email: &str, full_name: Option<&str>) -> Vec<String> {
    let email = email.trim().to_lowercase();
    let local = email.split('@').next().unwrap_or_default().to_owned();
    let mut words = vec![email.clone(), local.clone()];
    words.extend(local.split(|c: char| !c.is_alphanumeric()).map(str::to_owned));
    words.extend(full_name.unwrap_or_default().split_whitespace().map(str::to_lowercase));
    words.retain(|w| w.chars().count() >= 3);
    words
}

/// An optional display name: trimmed, empty means none, at most 200 characters.
pub fn parse_full_name(raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(name) = raw.map(str::trim).filter(|n| !n.is_empty()) else {
        return Ok(None);
    };
    if name.chars().count() > 200 {
        return Err(FieldError::new("full_name", "must be at most 200 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(FieldError::new("full_name", "must not contain control characters"));
    }
    Ok(Some(name.to_owned()))
}

/// Control characters other than line breaks and tabs: never meaningful in
/// text fields, and PostgreSQL refuses NUL outright.
fn has_stray_control(text: &str) -> bool {
    text.chars().any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'))
}

/// A task title: trimmed, 1 to 200 characters.
pub fn parse_task_title(raw: &str) -> Result<String, FieldError> {
    let title = raw.trim();
    if has_stray_control(title) {
        return Err(FieldError::new("title", "must not contain control characters"));
    }
    match title.chars().count() {
        0 => Err(FieldError::new("title", "must not be empty")),
        n if n > 200 => Err(FieldError::new("title", "must be at most 200 characters")),
        _ => Ok(title.to_owned()),
    }
}

/// A task description: at most 1000 characters (not bytes); blank means none.
pub fn parse_task_description(raw: Option<&str>) -> Result<Option<String>, FieldError> {
    let Some(text) = raw.map(str::trim).filter(|t| !t.is_empty()) else {
        return Ok(None);
    };
    if text.chars().count() > 1000 {
        return Err(FieldError::new("description", "must be at most 1000 characters"));
    }
    if has_stray_control(text) {
        return Err(FieldError::new("description", "must not contain control characters"));
    }
    Ok(Some(text.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_trimmed_and_lowercased() {
        assert_eq!(Email::parse("  Ada@Example.COM ").unwrap().as_str(), "ada@example.com");
    }

    #[test]
    fn malformed_emails_are_rejected() {
        let long = format!("{}@example.com", "a".repeat(250));
        for bad in [
            "",
            "   ",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a b@example.com",
            "ada@@example.com",
            "ada@.com",
            &long,
        ] {
            assert!(Email::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn long_keyboard_walks_are_weak_and_never_overflow() {
        // A 41-character zig-zag on the keyboard: zxcvbn used to overflow on it.
        let walk = format!("Qw{}1", "qw".repeat(19));
        assert_eq!(walk.chars().count(), 41);
        for candidate in [walk, format!("Aq1{}", "aq".repeat(40)), format!("7{}Xy", "8989".repeat(30))] {
            let Err(err) = NewPassword::parse("password", &candidate, &[]) else { panic!("{candidate} accepted") };
            assert!(err.message.contains("too easy to guess"), "{candidate}: {}", err.message);
        }
        // A long, unpredictable password still passes.
        assert!(NewPassword::parse("password", "Violet9-harbor-Quill-7-spruce-mosaic-Lantern", &[]).is_ok());
    }

    #[test]
    fn password_policy_names_what_is_missing() {
        let msg = |p: &str| NewPassword::parse("password", p, &[]).err().map(|e| e.message);
        assert_eq!(msg("Sh0rt").as_deref(), Some("must be at least 8 characters"));
        assert_eq!(msg("ALLUPPER123").as_deref(), Some("must contain a lowercase letter"));
        assert_eq!(msg("alllower123").as_deref(), Some("must contain an uppercase letter"));
        assert_eq!(msg("NoDigitsHere").as_deref(), Some("must contain a digit"));
        assert_eq!(msg(&format!("Aa1{}", "x".repeat(126))).as_deref(), Some("must be at most 128 characters"));
        assert!(NewPassword::parse("password", "Correct1Horse", &[]).is_ok());
        // 128 multi-byte characters are allowed: the limit is characters, not bytes.
        let long: String = "Zéphyr-à-Québec-9".chars().cycle().take(128).collect();
        assert!(NewPassword::parse("password", &long, &[]).is_ok());
    }

    #[test]
    fn common_and_personal_passwords_are_too_easy_to_guess() {
        for weak in ["Password1", "Qwerty123", "Passw0rd", "Abcd1234", "Welcome1"] {
            let err = NewPassword::parse("password", weak, &[]).err().unwrap_or_else(|| panic!("{weak} accepted"));
            assert!(err.message.starts_with("is too easy to guess"), "{weak}: {}", err.message);
        }
        let words = personal_words("adalovelace@example.com", Some("Ada Lovelace"));
        let personal: Vec<&str> = words.iter().map(String::as_str).collect();
        assert!(NewPassword::parse("password", "Adalovelace1", &personal).is_err());
        assert!(NewPassword::parse("password", "Adalovelace1", &[]).is_ok(), "weak only because it is personal");
    }

    #[test]
    fn roles_are_ordered_lowest_to_highest() {
        assert!(Role::User < Role::Moderator);
        assert!(Role::Moderator < Role::Admin);
        assert!(Role::Admin < Role::SuperAdmin);
    }

    #[test]
    fn task_limits_count_characters_not_bytes() {
        assert_eq!(parse_task_title("  Buy milk ").unwrap(), "Buy milk");
        assert!(parse_task_title("   ").is_err());
        assert!(parse_task_title(&"ж".repeat(200)).is_ok());
        assert!(parse_task_title(&"ж".repeat(201)).is_err());
        assert!(parse_task_description(Some(&"🦀".repeat(1000))).is_ok());
        assert!(parse_task_description(Some(&"🦀".repeat(1001))).is_err());
        assert_eq!(parse_task_description(Some("  ")).unwrap(), None);
        assert!(parse_task_title("a\u{0}b").is_err());
        assert!(parse_task_description(Some("line\nbreak\ttab")).is_ok());
        assert!(parse_task_description(Some("bell\u{7}")).is_err());
    }

    #[test]
    fn full_names_are_trimmed_and_bounded() {
        assert_eq!(parse_full_name(Some("  Ada  ")).unwrap().as_deref(), Some("Ada"));
        assert_eq!(parse_full_name(Some("   ")).unwrap(), None);
        assert!(parse_full_name(Some(&"x".repeat(201))).is_err());
        assert!(parse_full_name(Some("a\u{0}b")).is_err());
    }
}
