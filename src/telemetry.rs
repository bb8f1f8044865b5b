//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`).

use tracing_subscriber::{EnvFilter, fmt};

/// Installs the subscriber with `filter` (`RUST_LOG` syntax); a filter that
/// does not parse falls back to `info` rather than silencing the log.
pub fn init(filter: &str) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // `try_init`: tests may call this more than once.
    let _ = fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}
