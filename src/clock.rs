//! The service's notion of "now".

use chrono::{DateTime, SubsecRound, Utc};

/// The current time, truncated to whole seconds: MySQL's `TIMESTAMP` keeps no
/// fractions, and every backend must hand back exactly what it was given.
pub fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(0)
}
