//! Logging: `tracing` to stderr (stdout is kept for what commands print, such as a new
//! API key), as text or JSON lines, filtered by `RUST_LOG` (default `info`).
//!
//! The server's lines are formatted on the thread that logs them and written by a thread
//! of their own ([`mod@tracing_appender::non_blocking`]): a request never waits for a slow
//! terminal, pipe or journal. The queue between them is bounded ([`LOG_QUEUE_LINES`]);
//! when it is full, lines are dropped rather than making requests wait, and counted
//! ([`dropped_lines`], `hallpass_log_lines_dropped_total` in `/metrics`). The writer
//! thread flushes what is queued when the [`LogGuard`] `init` returns is dropped, at the
//! end of `main`. A one-shot command (`import`, `keys create`, ...) writes inline instead,
//! in order with what it prints, so its summary stays its last line.
//!
//! Colour codes only when stderr is a terminal and `NO_COLOR` is unset: a log file or a
//! pipe to a collector gets plain text.
//!
//! What the request log says at which level is decided in [`crate::http::edge`].

use crate::config::LogFormat;
use std::io::IsTerminal;
use std::sync::OnceLock;
use tracing_appender::non_blocking::{ErrorCounter, NonBlockingBuilder, WorkerGuard};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

/// Most log lines waiting for the writer thread; beyond, new lines are dropped (and
/// counted). A line is a few hundred bytes, so the queue holds at most a few MiB.
pub const LOG_QUEUE_LINES: usize = 16_384;

static DROPPED: OnceLock<ErrorCounter> = OnceLock::new();

/// Keeps the log writer thread; dropping it flushes the queued lines.
#[must_use = "dropping the guard stops the log writer"]
pub struct LogGuard(#[allow(dead_code)] Option<WorkerGuard>); // held for its Drop

impl std::fmt::Debug for LogGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LogGuard")
    }
}

/// Log lines dropped because the writer could not keep up (0 before [`init`]).
pub fn dropped_lines() -> u64 {
    DROPPED.get().map_or(0, |c| c.dropped_lines() as u64)
}

/// Whether log lines get terminal colour codes: only on a terminal, and never with
/// `NO_COLOR` set (<https://no-color.org>).
fn colour() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Where log lines are written from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Writer {
    /// A thread of their own behind a bounded queue (the server: see the module docs).
    Background,
    /// The thread that logs, in order with what it prints (one-shot commands).
    Inline,
}

/// Installs the global subscriber (with its writer thread for [`Writer::Background`]).
/// Safe to call once per process; a second call installs nothing.
pub fn init(format: LogFormat, writer: Writer) -> LogGuard {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let (writer, guard) = match writer {
        Writer::Background => {
            let (w, g) = NonBlockingBuilder::default()
                .lossy(true)
                .buffered_lines_limit(LOG_QUEUE_LINES)
                .thread_name("hallpass-log")
                .finish(std::io::stderr());
            (BoxMakeWriter::new(w.clone()), Some((w.error_counter(), g)))
        }
        Writer::Inline => (BoxMakeWriter::new(std::io::stderr), None),
    };
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(writer);
    let installed = match format {
        LogFormat::Text => builder.with_ansi(colour()).try_init(),
        LogFormat::Json => builder.json().flatten_event(true).with_current_span(true).try_init(),
    };
    match (installed, guard) {
        (Ok(()), Some((counter, guard))) => {
            let _ = DROPPED.set(counter);
            LogGuard(Some(guard))
        }
        _ => LogGuard(None),
    }
}
