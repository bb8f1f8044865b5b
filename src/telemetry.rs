//! Logging: `tracing` to stderr, filtered by `RUST_LOG` (default `info`), as
//! text or as JSON lines (`LOG_FORMAT`).

use tracing_appender::non_blocking::{NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::{EnvFilter, fmt};

pub use crate::config::LogFormat;

/// Lines queued for the writer thread. The default (128,000) allocates and
/// touches 4 MB up front; a queue this long already absorbs any burst stderr
/// cannot keep up with for a moment, and past it logging waits.
const LOG_QUEUE_LINES: usize = 8_192;

/// Installs the subscriber with `filter` (`RUST_LOG` syntax); a filter that
/// does not parse falls back to `info` rather than silencing the log.
///
/// Lines are written to stderr by a thread of their own, so a request never
/// waits on the write (a line per request at info level halved `/me`
/// throughput when written inline). Keep the returned guard alive until the
/// process ends: dropping it flushes what is still queued.
#[must_use = "dropping the guard stops the log writer"]
pub fn init(filter: &str, format: LogFormat) -> WorkerGuard {
    let filter = EnvFilter::try_new(filter).unwrap_or_else(|_| EnvFilter::new("info"));
    // Never drop a line: under overload, logging slows requests instead.
    let (writer, guard) =
        NonBlockingBuilder::default().lossy(false).buffered_lines_limit(LOG_QUEUE_LINES).finish(std::io::stderr());
    let builder = fmt().with_env_filter(filter).with_writer(writer);
    // `try_init`: tests may call this more than once.
    let _ = match format {
        LogFormat::Text => builder.try_init(),
        // The fields of the request span (`request_id`, `user_id`, ...) go on
        // every line of the request, under `span`.
        LogFormat::Json => builder.json().with_current_span(true).with_span_list(false).try_init(),
    };
    guard
}
