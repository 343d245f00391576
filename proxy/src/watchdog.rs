//! A read that holds a shared connection ([`crate::lines`]) too long is cancelled there
//! (PostgreSQL: a CancelRequest; MySQL: `KILL QUERY`) and runs again on its session's own
//! connection: the reads queued behind it are not held up for its whole run, and the
//! client's own cancel requests reach it (they go to the session's connection). Running a
//! read again is safe because only reads are shared. The cancel may come a moment late and
//! stop the read after it instead; that one runs again on its session's connection as well.
//! A cancel that did not take is sent again, less often each time: PostgreSQL ignores one
//! that arrives before the backend has read the statement (a loaded machine can delay
//! that past the limit), and a cancel connection can fail.
//! A read whose session stopped waiting for it (its client cancelled) is cancelled as soon
//! as it runs.

use std::collections::VecDeque;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

/// A read that keeps a shared connection busy for this many times the endpoint's
/// `*_SHARED_READ_TIME` is cancelled there (15 ms by default).
pub(crate) const OVERDUE_FACTOR: u32 = 100;

/// What a shared connection is busy with.
pub(crate) struct Clock {
    state: Mutex<State>,
    /// Wakes the watchdog when the line gets busy; it sleeps while the line is idle.
    busy: tokio::sync::Notify,
    /// Wakes it when the request being answered was given up.
    given_up: tokio::sync::Notify,
}

struct State {
    /// Requests written and not answered yet, in order, each with its session's flag for
    /// having given it up.
    outstanding: VecDeque<Arc<AtomicBool>>,
    /// When the request being answered began: its line's last answer, or its writing to
    /// an idle line.
    since: Instant,
    /// When the last cancel went out for the request being answered, and how many did.
    cancelled: Option<Instant>,
    cancels: u32,
}

impl Clock {
    pub(crate) fn new() -> Arc<Clock> {
        Arc::new(Clock {
            state: Mutex::new(State {
                outstanding: VecDeque::new(),
                since: Instant::now(),
                cancelled: None,
                cancels: 0,
            }),
            busy: tokio::sync::Notify::new(),
            given_up: tokio::sync::Notify::new(),
        })
    }

    /// Requests are about to be written, with their sessions' flags for giving them up.
    pub(crate) fn writing(&self, requests: impl Iterator<Item = Arc<AtomicBool>>) {
        let mut state = crate::lock(&self.state);
        let idle = state.outstanding.is_empty();
        state.outstanding.extend(requests);
        if idle && !state.outstanding.is_empty() {
            state.since = Instant::now();
            state.not_cancelled();
            self.busy.notify_one();
        }
    }

    /// A request was answered: the next one begins.
    pub(crate) fn answered(&self) {
        let mut state = crate::lock(&self.state);
        state.outstanding.pop_front();
        state.since = Instant::now();
        state.not_cancelled();
        if state.outstanding.front().is_some_and(|g| is_gone(g)) {
            self.given_up.notify_one();
        }
    }

    /// A session gave up a request it sent on this line.
    pub(crate) fn abandoned(&self) {
        self.given_up.notify_one();
    }

    /// Whether the request being answered should be cancelled: run past `limit`, or given
    /// up, with no cancel sent yet, or the last one sent long enough ago (`limit`, doubled
    /// for each cancel sent, at most 64 times); it counts as cancelled from now. And whether
    /// the line is busy.
    fn overdue(&self, limit: Duration) -> (bool, bool) {
        let mut state = crate::lock(&self.state);
        let Some(current) = state.outstanding.front() else {
            return (false, false);
        };
        let due = is_gone(current) || state.since.elapsed() > limit;
        let again = state
            .cancelled
            .is_none_or(|at| at.elapsed() > limit.saturating_mul(1 << state.cancels.min(6)));
        let overdue = due && again;
        if overdue {
            state.cancelled = Some(Instant::now());
            state.cancels += 1;
        }
        (overdue, true)
    }
}

impl State {
    fn not_cancelled(&mut self) {
        self.cancelled = None;
        self.cancels = 0;
    }
}

/// Cancels what runs on a connection past `limit`, with `cancel`, until the line's reader
/// and writer are gone. It looks every half `limit` while the line is busy and sleeps while
/// it is idle.
pub(crate) async fn watch<F, Fut>(clock: Weak<Clock>, cancel: F, limit: Duration)
where
    F: Fn() -> Fut,
    Fut: Future<Output = ()>,
{
    let tick = (limit / 2).max(Duration::from_millis(1));
    loop {
        let Some(line) = clock.upgrade() else {
            return;
        };
        let (overdue, busy) = line.overdue(limit);
        if overdue {
            tracing::debug!(
                "wire: a shared read ran too long or its client cancelled it; cancelling it"
            );
            cancel().await;
        }
        if busy {
            let _ = tokio::time::timeout(tick, line.given_up.notified()).await;
        } else {
            // A line that is gone wakes it no more: it looks again now and then.
            let _ = tokio::time::timeout(Duration::from_secs(5), line.busy.notified()).await;
        }
    }
}

/// Whether the session that sent a request stopped waiting for it.
pub(crate) fn is_gone(gone: &AtomicBool) -> bool {
    gone.load(Ordering::Acquire)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::time::Duration;

    use super::Clock;

    #[test]
    fn a_given_up_read_is_cancelled_once_it_runs_and_only_then() {
        let clock = Clock::new();
        let hour = Duration::from_secs(3600);
        assert_eq!(clock.overdue(hour), (false, false), "idle");
        let (first, second) = (Arc::new(AtomicBool::new(false)), Arc::default());
        clock.writing([first, Arc::clone(&second)].into_iter());
        assert_eq!(clock.overdue(hour), (false, true), "running, not given up");
        // Given up while queued behind another read: that one is not cancelled.
        second.store(true, Ordering::Release);
        clock.abandoned();
        assert_eq!(clock.overdue(hour), (false, true));
        clock.answered();
        assert_eq!(clock.overdue(hour), (true, true), "it runs now");
        assert_eq!(clock.overdue(hour), (false, true), "one cancel for it");
        clock.answered();
        assert_eq!(clock.overdue(hour), (false, false));
        // A read that runs past the limit is cancelled whether given up or not.
        clock.writing([Arc::new(AtomicBool::new(false))].into_iter());
        std::thread::sleep(Duration::from_millis(2));
        let limit = Duration::from_millis(1);
        assert_eq!(clock.overdue(limit), (true, true));
        assert_eq!(clock.overdue(limit), (false, true), "not again at once");
        // Still running: the cancel did not take, and is sent again after twice the limit.
        std::thread::sleep(Duration::from_millis(3));
        assert_eq!(clock.overdue(limit), (true, true), "sent again");
        assert_eq!(clock.overdue(limit), (false, true));
        clock.answered();
        assert_eq!(clock.overdue(limit), (false, false));
    }
}
