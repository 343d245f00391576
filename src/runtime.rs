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

/// A runtime of `workers` threads. One worker runs on the thread that starts it
/// (tokio's current-thread scheduler), not as the one thread of a multi-thread scheduler:
/// that one runs a task woken by the running task next (its "LIFO slot"), so a connection
/// task that several requests woke in turn wrote each of them alone — one `sendto` per read
/// on a shared upstream connection (strace), where a plain queue lets it take them all in
/// one go. Measured side by side (loadbench, one order): 0.032 → 0.028 ms of CPU per
/// request, 25k → 28k req/s.
pub fn builder(workers: usize) -> tokio::runtime::Builder {
    if workers == 1 {
        tokio::runtime::Builder::new_current_thread()
    } else {
        let mut builder = tokio::runtime::Builder::new_multi_thread();
        builder.worker_threads(workers);
        builder
    }
}

#[cfg(test)]
mod tests {
    use tokio::runtime::RuntimeFlavor;

    use super::builder;

    #[test]
    fn one_worker_runs_on_the_current_thread_more_on_a_pool() {
        let flavor = |n| {
            builder(n)
                .build()
                .expect("runtime")
                .handle()
                .runtime_flavor()
        };
        assert_eq!(flavor(1), RuntimeFlavor::CurrentThread);
        assert_eq!(flavor(2), RuntimeFlavor::MultiThread);
    }
}
