//! Which reads keep a shared connection ([`crate::lines`]) busy too long. A read that
//! occupied one longer than the endpoint's limit in each of [`SAMPLES`] runs in a row goes
//! to the sessions' own connections for [`SLOW_FOR`], then is tried again: reads this long
//! gain little from sharing a connection and lose the database's parallelism. The shortest
//! of several runs, because one run can be long only because the database's process was
//! descheduled.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

pub(crate) const SAMPLES: u8 = 8;
pub(crate) const SLOW_FOR: Duration = Duration::from_secs(5);

/// An answer larger than this marks its read slow at once: answers are held whole before
/// they are passed on, which suits only small ones.
pub(crate) const LARGE: usize = 1 << 20;

/// Reads timed at most; when full, those not found slow are forgotten, so clients sending
/// ever new statements cannot grow it without bound.
const TIMED: usize = 4096;

/// How long each read kept a shared connection busy, shared by an endpoint's lines.
#[derive(Clone)]
pub(crate) struct SlowReads {
    timed: Arc<Mutex<HashMap<Arc<str>, Timing>>>,
    limit: Duration,
}

impl SlowReads {
    pub(crate) fn new(limit: Duration) -> SlowReads {
        SlowReads {
            timed: Arc::default(),
            limit,
        }
    }

    /// What a read may take and still be shared.
    pub(crate) fn limit(&self) -> Duration {
        self.limit
    }

    /// Whether `statement` kept a connection busy lately.
    pub(crate) fn is_slow(&self, statement: &str) -> bool {
        crate::lock(&self.timed)
            .get(statement)
            .and_then(|s| s.slow_until)
            .is_some_and(|until| until > Instant::now())
    }

    /// A run of `statement` kept its connection busy for `took`.
    pub(crate) fn ran(&self, statement: &Arc<str>, took: Duration, now: Instant) {
        let mut timed = crate::lock(&self.timed);
        timing(&mut timed, statement, now).record(took, self.limit, now);
    }

    /// `statement` goes to the sessions' own connections from now, for [`SLOW_FOR`] (its
    /// answer is large, or it had to be cancelled).
    pub(crate) fn mark(&self, statement: &Arc<str>, now: Instant) {
        let mut timed = crate::lock(&self.timed);
        timing(&mut timed, statement, now).slow_until = Some(now + SLOW_FOR);
    }
}

/// The timing of `statement`, made when there is none.
fn timing<'a>(
    timed: &'a mut HashMap<Arc<str>, Timing>,
    statement: &Arc<str>,
    now: Instant,
) -> &'a mut Timing {
    if timed.len() >= TIMED && !timed.contains_key(&**statement) {
        timed.retain(|_, t| t.slow_until.is_some_and(|until| until > now));
    }
    timed.entry(statement.clone()).or_insert_with(Timing::new)
}

struct Timing {
    runs: u8,
    shortest: Duration,
    /// Found slow: sent on the sessions' own connections until then.
    slow_until: Option<Instant>,
}

impl Timing {
    fn new() -> Timing {
        Timing {
            runs: 0,
            shortest: Duration::MAX,
            slow_until: None,
        }
    }

    fn record(&mut self, took: Duration, slow: Duration, now: Instant) {
        self.runs += 1;
        self.shortest = self.shortest.min(took);
        if self.runs >= SAMPLES {
            if self.shortest > slow {
                tracing::info!(
                    quickest_us = self.shortest.as_micros() as u64,
                    "wire: a shared read is slow; it runs on the sessions' own connections for 5 s"
                );
                self.slow_until = Some(now + SLOW_FOR);
            }
            self.runs = 0;
            self.shortest = Duration::MAX;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_read_is_slow_when_its_shortest_of_several_runs_is_long() {
        let limit = Duration::from_micros(150);
        let now = Instant::now();
        let mut timing = Timing::new();
        // One quick run among long ones (a descheduled backend): not slow.
        for i in 0..SAMPLES {
            let took = if i == 3 { 50 } else { 5_000 };
            timing.record(Duration::from_micros(took), limit, now);
        }
        assert_eq!(timing.slow_until, None);
        for _ in 0..SAMPLES - 1 {
            timing.record(Duration::from_micros(400), limit, now);
        }
        assert_eq!(timing.slow_until, None, "judged only after {SAMPLES} runs");
        timing.record(Duration::from_micros(400), limit, now);
        assert_eq!(timing.slow_until, Some(now + SLOW_FOR));
    }

    #[test]
    fn a_marked_read_is_slow_and_the_others_are_not() {
        let slow = SlowReads::new(Duration::from_micros(150));
        let (marked, other): (Arc<str>, Arc<str>) = ("SELECT 1".into(), "SELECT 2".into());
        slow.mark(&marked, Instant::now());
        slow.ran(&other, Duration::from_secs(1), Instant::now());
        assert!(slow.is_slow(&marked));
        assert!(!slow.is_slow(&other), "one long run is not enough");
    }
}
