//! Mailed links: forgot and reset a password, verify and change the address.

use poem_openapi::Object;
use serde::Deserialize;

use super::rules::EmailInput;

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
