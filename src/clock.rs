//! The service's notion of "now".

use chrono::{DateTime, SubsecRound, Utc};

/// The current time in whole milliseconds: every backend stores exactly that
/// (MySQL's `TIMESTAMP(3)`, PostgreSQL's microseconds, SQLite's text) and hands
/// back what it was given, and the refresh grace window is measured in it.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(3)
}
