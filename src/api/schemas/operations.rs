//! Health probes.

use poem_openapi::Object;

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
