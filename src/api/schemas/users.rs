//! User administration.

use poem_openapi::{Object, types::MaybeUndefined};
use serde::Deserialize;

use crate::domain::Role;

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
