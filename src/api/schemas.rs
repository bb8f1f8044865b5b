//! Wire types: what SPAs send and receive. Doc comments here are the public docs.
//! Request bodies ignore fields they do not know (as the spec allows), so a
//! field like `role` in a registration simply has no effect.
//!
//! The spec states every input rule of [`crate::domain`] that JSON Schema can:
//! `JsonBody` parses with serde, so the `validator(...)` attributes here only
//! document (a broken rule stays a 422 naming the field). The text patterns
//! spell out, in the ECMA-262 subset that Rust, Python and JavaScript read
//! alike, what the parsers do:
//! - *space* is what `str::trim` removes (Unicode `White_Space`):
//!   `[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`;
//! - *control* is `char::is_control` (`Cc`): `\u0000-\u001f` and `\u007f-\u009f`;
//! - so a trimmed value starts and ends with neither:
//!   `[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]`.
//!
//! The tests below hold each pattern against its parser, character by character.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use poem_openapi::{
    Object, Union,
    registry::{MetaSchema, MetaSchemaRef},
    types::{MaybeUndefined, ParseError, ParseFromJSON, ParseResult, ToJSON, Type},
};
use serde::Deserialize;
use serde_json::Value;
use uuid::Uuid;

use crate::{domain::Role, entity};

/// A user account.
#[derive(Debug, Clone, Object)]
pub struct User {
    pub id: Uuid,
    /// Lowercased and trimmed, as it was registered.
    pub email: String,
    #[oai(nullable)]
    pub full_name: Option<String>,
    pub role: Role,
    pub is_active: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    #[oai(nullable)]
    pub last_login_at: Option<DateTime<Utc>>,
    /// Whether the owner of the address followed a verification link (or a
    /// reset or email-change link, which prove the same).
    pub email_verified: bool,
    /// Whether signing in takes a second factor (TOTP) after the password.
    pub mfa_enabled: bool,
}

impl From<entity::user::Model> for User {
    fn from(m: entity::user::Model) -> Self {
        Self {
            id: m.id,
            email: m.email,
            full_name: m.full_name,
            role: m.role,
            is_active: m.is_active,
            created_at: m.created_at,
            updated_at: m.updated_at,
            last_login_at: m.last_login_at,
            email_verified: m.email_verified,
            mfa_enabled: m.mfa_enabled,
        }
    }
}

/// The signed-in user and when the session's tokens expire. The tokens
/// themselves are only in httpOnly cookies, never in a body.
#[derive(Debug, Clone, Object)]
pub struct Session {
    pub user: User,
    /// When the `access_token` cookie stops working; refresh before or after it.
    pub access_expires_at: DateTime<Utc>,
    /// When the `refresh_token` cookie expires if the session stays idle.
    pub refresh_expires_at: DateTime<Utc>,
}

/// A registration waiting for its address to be verified
/// (`REQUIRE_VERIFIED_EMAIL=true`): no session yet.
#[derive(Debug, Object)]
pub struct PendingVerification {
    pub user: User,
}

/// The same answer whether or not anything was sent, so it tells nobody
/// which addresses have accounts.
#[derive(Debug, Object)]
pub struct MailAccepted {
    /// A sentence to show the person.
    pub message: String,
}

/// Ask for a password-reset link.
#[derive(Debug, Object, Deserialize)]
pub struct ForgotPasswordRequest {
    /// The address of the account, with the same rules as at registration.
    pub email: EmailInput,
}

/// Set a new password with the token from a reset link.
#[derive(Debug, Object, Deserialize)]
pub struct ResetPasswordRequest {
    /// The `token` from the link's fragment (`#token=…`). Whether it is still
    /// good (unused, unexpired) no schema can tell: a bad one is 400 `invalid_token`.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub token: String,
    /// The same policy as at registration: 8 to 128 characters with a digit,
    /// a lowercase and an uppercase letter (of any script), not easy to guess.
    #[oai(validator(min_length = 8, max_length = 128, pattern = r"[0-9]"))]
    pub new_password: String,
    /// Required when the account has a second factor: a 6-digit code from
    /// the authenticator app, or a recovery code. A wrong one is 401
    /// `invalid_code` and leaves the link working.
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
}

/// A login that needs its second factor: no session yet. The `mfa_ticket`
/// cookie (`Path=/api/v1/auth/mfa`, five minutes) carries it to `/mfa/verify`.
#[derive(Debug, Object)]
pub struct MfaChallenge {
    /// Always `true`.
    pub mfa_required: bool,
    /// What `/mfa/verify` takes: `totp` (`code`) or `recovery_code`.
    pub methods: Vec<String>,
}

/// The second step of a login: a code from the app, or a recovery code
/// (exactly one of the two).
#[derive(Debug, Union, Deserialize)]
#[oai(one_of)]
#[serde(try_from = "EitherCode")]
pub enum MfaVerifyRequest {
    Totp(TotpCodeInput),
    Recovery(RecoveryCodeInput),
}

/// What `MfaVerifyRequest` reads before deciding: unknown fields are ignored
/// as everywhere, and exactly one of the two must be there (as `oneOf` says).
#[derive(Deserialize)]
struct EitherCode {
    code: Option<String>,
    recovery_code: Option<String>,
}

impl TryFrom<EitherCode> for MfaVerifyRequest {
    type Error = &'static str;

    fn try_from(body: EitherCode) -> Result<Self, Self::Error> {
        match (body.code, body.recovery_code) {
            (Some(code), None) => Ok(Self::Totp(TotpCodeInput { code })),
            (None, Some(recovery_code)) => Ok(Self::Recovery(RecoveryCodeInput { recovery_code })),
            _ => Err("send exactly one of `code` and `recovery_code`"),
        }
    }
}

/// A 6-digit code from the authenticator app (each works once).
#[derive(Debug, Object, Deserialize)]
pub struct TotpCodeInput {
    #[oai(validator(max_length = 64))]
    pub code: String,
}

/// One of the recovery codes (each works once; its use is mailed).
#[derive(Debug, Object, Deserialize)]
pub struct RecoveryCodeInput {
    #[oai(validator(max_length = 64))]
    pub recovery_code: String,
}

/// A code: 6 digits from the authenticator app (or, where accepted, a recovery code).
#[derive(Debug, Object, Deserialize)]
pub struct CodeRequest {
    #[oai(validator(min_length = 1, max_length = 64))]
    pub code: String,
}

/// A new TOTP secret, shown once. Nothing is on until `/mfa/totp/enable`
/// gets a code from it.
#[derive(Debug, Object)]
pub struct TotpSetup {
    /// The secret in base32, for typing into an app by hand.
    pub secret: String,
    /// `otpauth://totp/…`, what the QR code holds.
    pub otpauth_uri: String,
    /// The QR code as an SVG document, to show as an image.
    pub qr_svg: String,
}

/// Recovery codes, shown once: each signs in once in place of a code.
#[derive(Debug, Object)]
pub struct RecoveryCodes {
    pub recovery_codes: Vec<String>,
}

/// Prove it is you again: the password, and a code when a second factor is on.
#[derive(Debug, Object, Deserialize)]
pub struct ReauthRequest {
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
    /// A 6-digit code or a recovery code; required when a second factor is on.
    #[oai(validator(max_length = 64))]
    pub code: Option<String>,
}

/// A token from a mailed link (`#token=…`).
#[derive(Debug, Object, Deserialize)]
pub struct TokenRequest {
    /// Whether it is still good (unused, unexpired) no schema can tell: a bad
    /// one is 400 `invalid_token`.
    #[oai(validator(min_length = 1, max_length = 128))]
    pub token: String,
}

/// Move the account to another address (confirmed by a link sent there).
#[derive(Debug, Object, Deserialize)]
pub struct ChangeEmailRequest {
    /// The new address, with the same rules as at registration; it must
    /// differ from the current one.
    pub new_email: EmailInput,
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
}

/// Register a new account.
#[derive(Debug, Object, Deserialize)]
pub struct RegisterRequest {
    /// An email address like `name@example.com`, matched case-insensitively
    /// and stored trimmed and lowercased: at most 254 characters, at most 64
    /// before the `@`, a domain with a dot (labels of letters and digits, at
    /// most 63 characters each) or a bracketed literal. ASCII only in this
    /// spec.
    pub email: EmailInput,
    /// 8 to 128 characters with a digit (0-9), a lowercase letter and an
    /// uppercase letter, and not easy to guess. The letters may be of any
    /// script (Unicode `Lowercase` and `Uppercase`), which no regular expression
    /// that every client reads alike can list; a guessable password (a common
    /// one, a keyboard walk, one built from the email or name) is refused with
    /// a 422 too, which no schema can tell in advance.
    #[oai(validator(min_length = 8, max_length = 128, pattern = r"[0-9]"))]
    pub password: String,
    /// Optional display name: trimmed, at most 200 characters, no control
    /// characters; blank or `null` means none.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    pub full_name: Option<String>,
}

/// The email of a registration. A type of its own because its pattern needs
/// lookaheads (the lengths of the whole address and of its local part), which
/// `#[oai(validator(pattern))]` refuses: it compiles patterns with the `regex`
/// crate. Deserializes like a plain string.
#[derive(Debug, Deserialize)]
#[serde(transparent)]
pub struct EmailInput(pub String);

impl EmailInput {
    /// What [`crate::domain::Email::parse`] accepts, for ASCII addresses: space
    /// around it, at most 254 characters, at most 64 before the last `@`, a
    /// dot-atom or quoted local part, and a domain of at least two labels
    /// (letters or digits at both ends, at most 63 characters) or a literal in
    /// brackets with a dot. Upper case is fine: the server lowercases.
    pub const PATTERN: &str = r#"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?![!-~]{255})(?![!-~]{65,}@[!-?A-~]*[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$)(?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]+)*|"(?:[!#-\[\]-~]|\\[!-~])+")@(?:[a-zA-Z0-9](?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{0,61}[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9!#$%&'*+/=?^_`{|}~-]{0,61}[a-zA-Z0-9])?)+|\[[!-?A-Z^-~]*\.[!-?A-Z^-~]*\])[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"#;
}

impl std::ops::Deref for EmailInput {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl Type for EmailInput {
    const IS_REQUIRED: bool = true;
    type RawValueType = String;
    type RawElementValueType = String;

    fn name() -> Cow<'static, str> {
        "string(email)".into()
    }

    fn schema_ref() -> MetaSchemaRef {
        MetaSchemaRef::Inline(Box::new(MetaSchema {
            min_length: Some(1),
            pattern: Some(Self::PATTERN.to_owned()),
            ..MetaSchema::new("string")
        }))
    }

    fn as_raw_value(&self) -> Option<&String> {
        Some(&self.0)
    }

    fn raw_element_iter<'a>(&'a self) -> Box<dyn Iterator<Item = &'a String> + 'a> {
        Box::new(std::iter::once(&self.0))
    }
}

impl ParseFromJSON for EmailInput {
    fn parse_from_json(value: Option<Value>) -> ParseResult<Self> {
        String::parse_from_json(value).map(Self).map_err(ParseError::propagate)
    }
}

impl ToJSON for EmailInput {
    fn to_json(&self) -> Option<Value> {
        self.0.to_json()
    }
}

/// Sign in.
#[derive(Debug, Object, Deserialize)]
pub struct LoginRequest {
    /// Not blank. Anything else that is not a registered address is a 401
    /// `invalid_credentials`, like a wrong password.
    #[oai(validator(
        min_length = 1,
        pattern = r"[^\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]"
    ))]
    pub email: String,
    /// Not empty; no password is longer than 128 characters, so a longer one is
    /// a 401 like any wrong password.
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub password: String,
}

/// One of the signed-in user's sessions (a login and the refreshes after it).
#[derive(Debug, Clone, Object)]
pub struct SessionInfo {
    pub id: Uuid,
    pub created_at: DateTime<Utc>,
    /// The last login or refresh.
    pub last_used_at: DateTime<Utc>,
    /// When it ends if it stays idle (never past the session's maximum age).
    pub expires_at: DateTime<Utc>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
    #[oai(nullable)]
    pub ip: Option<String>,
    /// True for the session making this request.
    pub current: bool,
}

impl SessionInfo {
    pub fn new(m: entity::session::Model, current_id: Uuid) -> Self {
        Self {
            current: m.id == current_id,
            id: m.id,
            created_at: m.created_at,
            last_used_at: m.last_used_at,
            expires_at: m.expires_at.min(m.max_expires_at),
            user_agent: m.user_agent,
            ip: m.ip,
        }
    }
}

/// Change the signed-in user's password.
#[derive(Debug, Object, Deserialize)]
pub struct ChangePasswordRequest {
    /// Not empty; a wrong one is a 401 (no password is longer than 128 characters).
    #[oai(validator(min_length = 1, max_length = 1024))]
    pub current_password: String,
    /// Same policy as at registration, and different from the current password.
    #[oai(validator(min_length = 8, max_length = 128, pattern = r"[0-9]"))]
    pub new_password: String,
}

/// Liveness.
#[derive(Debug, Object)]
pub struct Health {
    /// Always `ok`.
    pub status: String,
}

/// Readiness: the process and its database.
#[derive(Debug, Object)]
pub struct Readiness {
    /// `ok` when ready.
    pub status: String,
    /// `ok` when the database answered.
    pub database: String,
}

/// A task: the example resource owned by one user.
#[derive(Debug, Clone, Object)]
pub struct Task {
    pub id: i64,
    pub user_id: Uuid,
    pub title: String,
    #[oai(nullable)]
    pub description: Option<String>,
    pub completed: bool,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

impl From<entity::task::Model> for Task {
    fn from(m: entity::task::Model) -> Self {
        Self {
            id: m.id,
            user_id: m.user_id,
            title: m.title,
            description: m.description,
            completed: m.completed,
            created_at: m.created_at,
            updated_at: m.updated_at,
        }
    }
}

/// Create a task.
#[derive(Debug, Object, Deserialize)]
pub struct NewTask {
    /// Trimmed, then 1 to 200 characters; no control characters other than
    /// tab, line feed and carriage return.
    #[oai(validator(
        min_length = 1,
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    pub title: String,
    /// Trimmed, then at most 1000 characters; no control characters other
    /// than tab, line feed and carriage return. Blank or `null` means none.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    pub description: Option<String>,
}

/// Change a task. Absent fields stay as they are; `description: null` clears it.
#[derive(Debug, Object, Deserialize)]
pub struct TaskUpdate {
    /// As in `NewTask`; not `null`.
    #[oai(validator(
        min_length = 1,
        pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*$"
    ))]
    #[serde(default)]
    pub title: MaybeUndefined<String>,
    /// As in `NewTask`; blank or `null` clears it.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]{0,998}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    #[serde(default)]
    pub description: MaybeUndefined<String>,
    /// Not `null`.
    #[serde(default)]
    pub completed: MaybeUndefined<bool>,
}

/// Mark a task done or not done.
#[derive(Debug, Object, Deserialize)]
pub struct TaskCompletion {
    pub completed: bool,
}

/// Change a user's profile (admin). Absent fields stay as they are.
#[derive(Debug, Object, Deserialize)]
pub struct UserUpdate {
    /// As at registration: trimmed, at most 200 characters, no control
    /// characters. `null` or blank clears the name.
    #[oai(
        nullable,
        validator(
            pattern = r"^[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*(?:[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000](?:[^\u0000-\u001f\u007f-\u009f]{0,198}[^\u0000-\u0020\u007f-\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000])?[\u0009-\u000d\u0020\u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]*)?$"
        )
    )]
    #[serde(default)]
    pub full_name: MaybeUndefined<String>,
    /// `false` deactivates the account and revokes all its sessions; not `null`.
    #[serde(default)]
    pub is_active: MaybeUndefined<bool>,
}

/// Set a user's role (admin).
#[derive(Debug, Object, Deserialize)]
pub struct RoleChange {
    pub role: Role,
}

#[cfg(test)]
mod tests {
    //! Each pattern in the spec against the parser it documents. The patterns
    //! are read from the served spec, so these tests hold what clients see.
    use std::sync::LazyLock;

    use fancy_regex::Regex;
    use proptest::prelude::*;
    use serde_json::Value;

    use crate::domain::{Email, NewPassword, parse_full_name, parse_task_description, parse_task_title};

    fn pattern(schema: &str, field: &str) -> Regex {
        static SPEC: LazyLock<Value> = LazyLock::new(|| serde_json::from_str(&crate::api::service().spec()).unwrap());
        let property = &SPEC["components"]["schemas"][schema]["properties"][field];
        let source = property["pattern"].as_str().unwrap_or_else(|| panic!("{schema}.{field} has no pattern"));
        Regex::new(source).unwrap()
    }

    fn matches(re: &Regex, s: &str) -> bool {
        re.is_match(s).unwrap()
    }

    /// Every character up to U+3100 (all the space and control characters are
    /// there) and a sample of the rest, alone and in the places trimming
    /// treats differently.
    fn sample() -> impl Iterator<Item = char> {
        (0..=0x10FFFFu32).filter(|c| *c < 0x3100 || c % 61 == 0).filter_map(char::from_u32)
    }

    fn probes() -> impl Iterator<Item = String> {
        sample().flat_map(|c| {
            [format!("{c}"), format!("a{c}"), format!("{c}a"), format!("a{c}b"), format!(" {c} "), format!("{c}{c}")]
        })
    }

    /// Checks `accepts(s) == pattern(s)` over the probes and the extra values.
    fn agrees(schema: &str, field: &str, accepts: impl Fn(&str) -> bool, extra: &[String]) {
        let re = pattern(schema, field);
        for s in probes().chain(extra.iter().cloned()) {
            assert_eq!(matches(&re, &s), accepts(&s), "{schema}.{field} disagrees with the server on {s:?}");
        }
    }

    fn padded(core: &str) -> Vec<String> {
        ["", " ", "\t\n", "\u{85}\u{a0}", "\u{3000}"]
            .iter()
            .flat_map(|pad| [format!("{pad}{core}"), format!("{core}{pad}"), format!("{pad}{core}{pad}")])
            .collect()
    }

    fn lengths(unit: &str, around: usize) -> Vec<String> {
        (around - 1..=around + 1).flat_map(|n| padded(&unit.repeat(n))).collect()
    }

    #[test]
    fn task_titles() {
        let mut extra = lengths("ж", 200);
        extra.extend(lengths("🦀", 200));
        extra.extend(padded("a\tb\nc\rd"));
        extra.extend(["", "   ", "a\u{0}b", "a\u{7}b", "\u{b}a\u{c}", "a\u{85}b", "\u{85}a\u{85}"].map(String::from));
        agrees("NewTask", "title", |s| parse_task_title(s).is_ok(), &extra);
        agrees("TaskUpdate", "title", |s| parse_task_title(s).is_ok(), &extra);
    }

    #[test]
    fn task_descriptions() {
        let mut extra = lengths("🦀", 1000);
        extra.extend(lengths("x", 1000));
        extra.extend(["", "   ", "line\nbreak\ttab", "bell\u{7}"].map(String::from));
        let accepts = |s: &str| parse_task_description(Some(s)).is_ok();
        agrees("NewTask", "description", accepts, &extra);
        agrees("TaskUpdate", "description", accepts, &extra);
    }

    #[test]
    fn full_names() {
        let mut extra = lengths("é", 200);
        extra.extend(["", "  ", "Ada Lovelace", "Ada\tLovelace", "Ada\nLovelace", "\tAda\n"].map(String::from));
        let accepts = |s: &str| parse_full_name(Some(s)).is_ok();
        agrees("RegisterRequest", "full_name", accepts, &extra);
        agrees("UserUpdate", "full_name", accepts, &extra);
    }

    #[test]
    fn login_emails_must_not_be_blank() {
        agrees("LoginRequest", "email", |s| !s.trim().is_empty(), &["".into(), " \u{2028} ".into()]);
    }

    /// The spec's email is ASCII: the server also takes some non-ASCII
    /// addresses, never the other way round.
    fn email_agrees(re: &Regex, s: &str) {
        let accepted = Email::parse(s).is_ok();
        if s.trim().is_ascii() {
            assert_eq!(matches(re, s), accepted, "the email pattern disagrees with the server on {s:?}");
        } else {
            assert!(!matches(re, s) || accepted, "the email pattern takes {s:?}, which the server refuses");
        }
    }

    #[test]
    fn registration_emails() {
        let re = pattern("RegisterRequest", "email");
        for c in sample() {
            for s in [
                format!("{c}"),
                format!("{c}a@b.co"),
                format!("a{c}b@c.de"),
                format!("a{c}@b.co"),
                format!("a@{c}b.co"),
                format!("a@b{c}.co"),
                format!("a@b.c{c}"),
                format!("\"a{c}b\"@c.de"),
                format!("\"a\\{c}\"@c.de"),
                format!("a@[1.2{c}]"),
                format!("{c}a@b.co{c}"),
            ] {
                email_agrees(&re, &s);
            }
        }
        let local = |n: usize| "a".repeat(n);
        let label = |n: usize| "b".repeat(n);
        let mut cases = vec![
            format!("{}@example.com", local(64)),
            format!("{}@example.com", local(65)),
            format!("x@{}.com", label(63)),
            format!("x@{}.com", label(64)),
            format!("\"{}\"@example.com", local(62)),
            format!("\"{}\"@example.com", local(63)),
            format!("a.{}@example.com", local(62)),
            format!("a.{}@example.com", local(63)),
        ];
        // Whole addresses of 253 to 256 characters.
        for n in 253..=256 {
            let domain_len = n - 2;
            let labels = format!("{}.{}.{}.{}", label(63), label(63), label(63), label(domain_len - 3 * 64));
            cases.push(format!("a@{labels}"));
        }
        let more: Vec<String> = [
            "ada@example.com",
            "Ada.Lovelace+tag@Example.COM",
            "a@b.c",
            "a@b",
            "a@.b.c",
            "a@b..c",
            "a@b.c.",
            "a@-b.c",
            "a@b-.c",
            "a@b.c-d",
            "a@b!c.d",
            ".a@b.c",
            "a.@b.c",
            "a..b@c.d",
            "\"\"@b.c",
            "\"a@b\"@c.de",
            "\"a\\\"b\"@c.de",
            "\"a\\\"@c.de",
            "\"a b\"@c.de",
            "a@[]",
            "a@[.]",
            "a@[1.2.3.4]",
            "a@[a@b.c]",
            "a@[1.2",
            "a@b@c.de",
            "<a@b.co>",
            "Ada <a@b.co>",
            "@b.co",
            "a@",
            "",
            "  ",
        ]
        .map(String::from)
        .to_vec();
        cases.extend(more);
        for case in cases {
            for s in padded(&case) {
                email_agrees(&re, &s);
            }
        }
    }

    /// The pattern is the digit rule; the letter rules are the server's alone.
    #[test]
    fn password_digits() {
        for (schema, field) in [("RegisterRequest", "password"), ("ChangePasswordRequest", "new_password")] {
            let re = pattern(schema, field);
            for c in sample() {
                let s = format!("Correct{c}Horse");
                let server = match NewPassword::parse("password", &s, &[]) {
                    Ok(_) => true,
                    Err(e) => e.message != "must contain a digit",
                };
                assert_eq!(matches(&re, &s), server, "{schema}.{field} disagrees with the server on {s:?}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn random_near_emails(s in "[ \t\u{85}]{0,2}([a-cA-C0-9.@\"\\\\\\[\\]!#<> -]{0,12}|[a-b]{1,3}(\\.[a-b]{1,3}){0,2}@[a-b0-9-]{1,3}(\\.[a-b0-9-]{1,3}){0,3})[ \t\u{85}]{0,2}") {
            static RE: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "email"));
            email_agrees(&RE, &s);
        }

        #[test]
        fn random_titles(s in "[ \t\n\u{0}\u{7}\u{85}\u{a0}aé🦀-]{0,210}") {
            static TITLE: LazyLock<Regex> = LazyLock::new(|| pattern("NewTask", "title"));
            static NAME: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "full_name"));
            prop_assert_eq!(matches(&TITLE, &s), parse_task_title(&s).is_ok());
            prop_assert_eq!(matches(&NAME, &s), parse_full_name(Some(&s)).is_ok());
        }

        #[test]
        fn random_passwords(s in "[aB3é\u{c9} !]{8,12}") {
            static RE: LazyLock<Regex> = LazyLock::new(|| pattern("RegisterRequest", "password"));
            let refusal = NewPassword::parse("password", &s, &[]).err().map(|e| e.message);
            if matches(&RE, &s) {
                prop_assert_ne!(refusal.as_deref(), Some("must contain a digit"), "{:?}", s);
            } else {
                prop_assert!(refusal.is_some(), "{:?} has no digit but was accepted", s);
            }
        }
    }
}

/// Something that happened to an account: a sign-in, a failed password, a
/// password or email change, a second factor added or removed, an admin's change.
#[derive(Debug, Clone, Object)]
pub struct SecurityEvent {
    pub id: i64,
    /// A stable snake_case name: `register`, `login_succeeded`, `login_failed`,
    /// `logout`, `logout_all`, `session_revoked`, `refresh_reuse_detected`,
    /// `password_changed`, `password_reset_requested`, `password_reset`,
    /// `verification_sent`, `email_verified`, `email_change_requested`,
    /// `email_changed`, `mfa_enabled`, `mfa_disabled`, `mfa_reset`, `mfa_failed`,
    /// `recovery_codes_regenerated`, `recovery_code_used`, `reauthenticated`,
    /// `role_changed`, `user_updated`, `deactivated`, `reactivated`, `imported`.
    #[oai(rename = "type")]
    pub kind: String,
    pub actor: EventActor,
    pub created_at: DateTime<Utc>,
    /// The client's IP address, when known. In the user's own list, `null`
    /// for events an admin or the system caused.
    #[oai(nullable)]
    pub ip: Option<String>,
    #[oai(nullable)]
    pub user_agent: Option<String>,
}

/// Who caused a security event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, poem_openapi::Enum)]
#[oai(rename_all = "snake_case")]
pub enum EventActor {
    /// The user, or whoever tried to sign in as them (a failed login).
    #[oai(rename = "self")]
    Owner,
    /// An administrator.
    Admin,
    /// Latchkey itself, or an operator's command (`latchkey import-users`).
    System,
}

impl From<entity::audit_event::Model> for SecurityEvent {
    fn from(m: entity::audit_event::Model) -> Self {
        let actor = match m.actor.as_str() {
            "admin" => EventActor::Admin,
            "system" => EventActor::System,
            _ => EventActor::Owner,
        };
        Self { id: m.id, kind: m.event, actor, created_at: m.occurred_at, ip: m.ip, user_agent: m.user_agent }
    }
}

/// One page of security events, newest first.
#[derive(Debug, Clone, Object)]
pub struct SecurityEventPage {
    pub events: Vec<SecurityEvent>,
    /// Pass as `cursor` for the next (older) page; `null` on the last page.
    #[oai(nullable)]
    pub next_cursor: Option<String>,
}
