//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as
//! text or as JSON lines (`LOG_FORMAT`).

use tracing_subscriber::{EnvFilter, fmt};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Installs the subscriber with `filter` (`RUST_LOG` syntax); a filter that
/// does not parse falls back to `info` rather than silencing the log.
pub fn init(filter: &str, format: LogFormat) {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = fmt().with_env_filter(filter).with_writer(std::io::stderr);
    // `try_init`: tests may call this more than once.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The fields of the request span (`request_id`, `user_id`, ...) go on
        // every line of the request, under `span`.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
}
