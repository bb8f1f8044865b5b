//! The second factor and re-authentication.

use poem_openapi::{Object, Union};
use serde::Deserialize;

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
