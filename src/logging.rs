//! Logs through `tracing`, to stderr (stdout carries what a command prints for people, such
//! as the first admin's credentials). `LOG_LEVEL` sets the level, `LOG_STYLE` pretty text or
//! one JSON object per line; `RUST_LOG` may refine it per module.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogLevel, LogStyle};

pub fn init(level: LogLevel, style: LogStyle) {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|f| EnvFilter::try_new(f).ok())
        .unwrap_or_else(|| {
            // The drivers log every statement at info; keep them to warnings.
            let level = level.as_filter();
            EnvFilter::new(format!(
                "{level},tokio_postgres=warn,mysql_async=warn,hyper=warn,deadpool=warn"
            ))
        });
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    // A second init (tests that start several servers in one process) keeps the first.
    let _ = match style {
        LogStyle::Pretty => builder.try_init(),
        LogStyle::Json => builder.json().flatten_event(true).try_init(),
    };
}
