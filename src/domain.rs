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

impl Role {
    /// Its name on the wire and in the database.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Moderator => "moderator",
            Role::Admin => "admin",
            Role::SuperAdmin => "super_admin",
        }
    }
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

/// The longest piece zxcvbn judges at once (see `check_guessability`).
const ZXCVBN_MAX_CHARS: usize = 28;
/// zxcvbn's score 2: about a million guesses ("somewhat guessable") is the floor.
const MIN_GUESSES_LOG10: f64 = 6.0;

/// Runs shorter than this are left to zxcvbn's own repeat matcher.
const MIN_REPEAT_RUN: usize = 6;

/// `raw` with every repeated run (`abcabcabc`, compared without case) cut
/// to one copy, and the log10 of the guesses the repeat counts add.
fn collapse_repeats(raw: &str) -> (String, f64) {
    let mut chars: Vec<char> = raw.chars().collect();
    let lower: Vec<char> = raw.chars().flat_map(char::to_lowercase).collect();
    let mut lower = if lower.len() == chars.len() { lower } else { chars.clone() };
    let mut log10_count = 0.0;
    // Passwords are at most 128 characters: a cubic search is cheap.
    while let Some((start, period, count)) = longest_repeat(&lower) {
        chars.drain(start + period..start + period * count);
        lower.drain(start + period..start + period * count);
        log10_count += (count as f64).log10();
    }
    (chars.into_iter().collect(), log10_count)
}

/// The repeated run covering the most characters: (start, period, copies).
fn longest_repeat(chars: &[char]) -> Option<(usize, usize, usize)> {
    let n = chars.len();
    let mut best: Option<(usize, usize, usize)> = None;
    for start in 0..n {
        for period in 1..=(n - start) / 2 {
            let mut count = 1;
            while start + period * (count + 1) <= n
                && chars[start..start + period] == chars[start + period * count..start + period * (count + 1)]
            {
                count += 1;
            }
            let covered = period * count;
            if count >= 2 && covered >= MIN_REPEAT_RUN && best.is_none_or(|(_, p, c)| covered > p * c) {
                best = Some((start, period, count));
            }
        }
    }
    best
}

/// `raw` cut into pieces of at most [`ZXCVBN_MAX_CHARS`] characters, each
/// ending after a separator where one is near the end, so words stay whole.
fn pieces(raw: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = raw;
    while !rest.is_empty() {
        let Some((limit, _)) = rest.char_indices().nth(ZXCVBN_MAX_CHARS) else {
            out.push(rest);
            break;
        };
        let window = &rest[..limit];
        let cut = window
            .char_indices()
            .rfind(|(i, c)| !c.is_alphanumeric() && *i >= limit / 2)
            .map_or(limit, |(i, c)| i + c.len_utf8());
        out.push(&rest[..cut]);
        rest = &rest[cut..];
    }
    out
}
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
        // meaningless score in release). So the password is judged in pieces
        // of at most 28 characters and the pieces' guesses multiply, as they
        // would for an attacker guessing each piece; every earlier piece (and
        // its words) is a known word to the later ones, so a repeated phrase
        // adds next to nothing.
        // A repeated run is judged once, plus its repeat count, as zxcvbn
        // itself prices a repeat within a piece: pieces must not count each
        // copy of a phrase as new guesses.
        let (base, mut log10_guesses) = collapse_repeats(raw);
        let mut known: Vec<String> = user_inputs.iter().map(|w| (*w).to_owned()).collect();
        let mut warning = None;
        for piece in pieces(&base) {
            let inputs: Vec<&str> = known.iter().map(String::as_str).collect();
            let estimate = zxcvbn::zxcvbn(piece, &inputs);
            log10_guesses += estimate.guesses_log10();
            if warning.is_none() {
                warning = estimate.feedback().and_then(|f| f.warning()).map(|w| w.to_string());
            }
            known.push(piece.to_lowercase());
            known.extend(piece.split(|c: char| !c.is_alphanumeric()).filter(|w| w.len() >= 3).map(str::to_lowercase));
        }
        if log10_guesses >= MIN_GUESSES_LOG10 {
            return Ok(());
        }
        let hint = warning.map(|w| format!(" ({w})")).unwrap_or_default();
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
    fn the_whole_of_a_long_password_is_judged() {
        // A weak beginning no longer sinks a strong passphrase...
        let weak_start = "Password1Password1Password1 violet-harbor-quill-spruce-mosaic";
        assert!(NewPassword::parse("password", weak_start, &[]).is_ok());
        // ...and a phrase repeated past the first piece stays weak.
        let repeated = "Password1!".repeat(12);
        let Err(err) = NewPassword::parse("password", &repeated, &[]) else { panic!("{repeated} accepted") };
        assert!(err.message.contains("too easy to guess"), "{}", err.message);
        // A walk repeated the length of the password is one walk.
        let walk = "1qaz2wsX3edC".repeat(10);
        let Err(err) = NewPassword::parse("password", &walk, &[]) else { panic!("{walk} accepted") };
        assert!(err.message.contains("too easy to guess"), "{}", err.message);
    }

    #[test]
    fn repeated_runs_are_cut_to_one_copy() {
        let (base, log10) = collapse_repeats("Aa1qwertyQWERTYqwerty!");
        assert_eq!(base, "Aa1qwerty!");
        assert!((log10 - 3f64.log10()).abs() < 1e-9);
        assert_eq!(collapse_repeats("Correct-Horse-9").0, "Correct-Horse-9");
        // Short repeats are zxcvbn's own business.
        assert_eq!(collapse_repeats("Bookkeeper-77").0, "Bookkeeper-77");
    }

    #[test]
    fn pieces_cover_the_password_and_keep_words_whole() {
        let raw = "Zéphyr-à-Québec-9-violet-harbor-quill-spruce-mosaic-lantern";
        let cut = pieces(raw);
        assert_eq!(cut.concat(), raw);
        assert!(cut.iter().all(|p| p.chars().count() <= ZXCVBN_MAX_CHARS), "{cut:?}");
        assert!(cut[..cut.len() - 1].iter().all(|p| p.ends_with('-')), "{cut:?}");
        let solid = "Ab1".repeat(40);
        assert_eq!(pieces(&solid).concat(), solid);
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
