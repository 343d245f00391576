//! How many async worker threads rectus runs on.

/// `TOKIO_WORKER_THREADS` when set (tokio's own setting), else one per core but one, at
/// least one. rectus runs next to its database and the database does the heavy work (JSON
/// included): on two cores shared with PostgreSQL one worker served 10–25% more requests
/// than two, which woke each other across cores.
pub fn worker_threads() -> Result<usize, String> {
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
