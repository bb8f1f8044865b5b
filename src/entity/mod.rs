//! sea-orm entities: one module per table. Rows, not wire types; the API
//! converts them in `api::schemas`.

pub mod audit_event;
pub mod email_token;
pub mod login_device;
pub mod mail_outbox;
pub mod mfa_ticket;
pub mod mfa_totp;
pub mod recovery_code;
pub mod refresh_token;
pub mod session;
pub mod signing_key;
pub mod task;
pub mod user;
