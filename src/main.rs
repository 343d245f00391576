//! The `rectus` binary: parses the command line and runs it. Every failure ends as one line
//! on stderr and exit code 1.

use std::process::ExitCode;

use clap::Parser;
use rectus::cli::{self, Cli};

#[global_allocator]
static ALLOCATOR: rectus::allocator::Allocator = rectus::allocator::Allocator;

/// Async worker threads: `TOKIO_WORKER_THREADS` when set (tokio's own setting), else one
/// per core but one, at least one. rectus runs next to its database and the database does
/// the heavy work (JSON included): on two cores shared with PostgreSQL one worker served
/// 10–25% more requests than two, which woke each other across cores.
fn worker_threads() -> Result<usize, String> {
    match std::env::var("TOKIO_WORKER_THREADS") {
        Ok(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| {
                format!("TOKIO_WORKER_THREADS={v} is not valid: use a number of threads from 1")
            }),
        Err(_) => Ok(std::thread::available_parallelism()
            .map_or(1, usize::from)
            .saturating_sub(1)
            .max(1)),
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = match worker_threads() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = e.to_string();
            eprintln!("error: {}", message.lines().next().unwrap_or("failed"));
            ExitCode::FAILURE
        }
    }
}
