//! What a guarded session waits for from the database: the answers it must rewrite (refused
//! statements, translated reads) and the count of its sync points, matched by response
//! batch.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};

use rectus_policies::guard::GuardError;

use super::bound::{Translated, UpstreamStatements};

/// Refusals waiting for the database's error in their response batch.
#[derive(Default)]
pub(super) struct Pending {
    pub(super) refusals: Mutex<VecDeque<(u64, GuardError)>>,
    /// Statements whose parameter types were asked for (Describe of a statement), with the
    /// sync point their answer comes before.
    pub(super) described: Mutex<VecDeque<(u64, String)>>,
    /// Parameter types the database gave for statements (ParameterDescription).
    pub(super) parameter_types: Mutex<HashMap<String, Vec<u32>>>,
    /// Sync points (Query, Sync, FunctionCall) sent upstream.
    pub(super) sent: AtomicU64,
    /// ReadyForQuery frames forwarded to the client.
    pub(super) answered: AtomicU64,
    /// The transaction status of the last of them (0 before the first: idle).
    pub(super) status: AtomicU8,
    /// Reads sent as prepared statements, by the batch that answers them.
    pub(super) translated: Mutex<VecDeque<Translated>>,
    /// The statements prepared upstream for them.
    pub(super) statements: Mutex<UpstreamStatements>,
}

impl Pending {
    /// Nothing is waiting for an answer and no transaction is open.
    pub(super) fn idle(&self) -> bool {
        self.sent.load(Ordering::Relaxed) == self.answered.load(Ordering::Relaxed)
            && matches!(self.status.load(Ordering::Relaxed), 0 | b'I')
    }

    /// Counts a ReadyForQuery frame forwarded to the client.
    pub(super) fn ready(&self, frame: &[u8]) -> u64 {
        self.status
            .store(frame.get(5).copied().unwrap_or(0), Ordering::Relaxed);
        let done = self.answered.fetch_add(1, Ordering::Relaxed) + 1;
        self.forget_described(done);
        done
    }

    /// Records the parameter types of a ParameterDescription frame for the statement whose
    /// Describe it answers.
    pub(super) fn note_types(&self, frame: &[u8]) {
        let batch = self.answered.load(Ordering::Relaxed);
        let name = {
            let mut described = crate::lock(&self.described);
            match described.front() {
                Some((b, _)) if *b == batch => described.pop_front().map(|(_, n)| n),
                _ => None,
            }
        };
        let (Some(name), Some(body)) = (name, frame.get(5..)) else {
            return;
        };
        let count = body
            .get(..2)
            .map_or(0, |c| u16::from_be_bytes([c[0], c[1]]) as usize);
        let types: Vec<u32> = body[2.min(body.len())..]
            .chunks_exact(4)
            .take(count)
            .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]))
            .collect();
        crate::lock(&self.parameter_types).insert(name, types);
    }

    /// Drops the Describes of answered batches (after an error the database skips them).
    pub(super) fn forget_described(&self, done: u64) {
        let mut described = crate::lock(&self.described);
        while described.front().is_some_and(|(b, _)| *b < done) {
            described.pop_front();
        }
    }
}
