//! The `rectus` binary: parses the command line and runs it. Every failure ends as one line
//! on stderr and exit code 1.

use std::process::ExitCode;

use clap::Parser;
use rectus::cli::{self, Cli};

#[global_allocator]
static ALLOCATOR: rectus::allocator::Allocator = rectus::allocator::Allocator;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let workers = match rectus::runtime::worker_threads() {
        Ok(n) => n,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match rectus::runtime::builder(workers).enable_all().build() {
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
