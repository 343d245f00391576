//! The shared upstream connections ("lines") both endpoints pipeline reads over, kept per
//! key: what makes one connection's answers differ from another's (PostgreSQL: the
//! settings a session started with; MySQL: the shape of answers its client asked for).

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Keys with lines at most; sessions with another keep their reads on their own
/// connections, so clients choosing ever new settings open no more connections.
pub(crate) const KEYS_KEPT: usize = 8;

/// One line as its endpoint keeps it; closed once its reader or writer is gone.
pub(crate) trait Line: Clone {
    fn is_closed(&self) -> bool;
}

pub(crate) struct Lines<K, L> {
    per_key: usize,
    lines: Mutex<HashMap<K, Vec<L>>>,
    /// Held while connecting, so sessions that find too few lines open one each.
    connecting: tokio::sync::Mutex<()>,
    next: AtomicUsize,
}

impl<K: Hash + Eq, L: Line> Lines<K, L> {
    pub(crate) fn new(per_key: usize) -> Self {
        Lines {
            per_key,
            lines: Mutex::new(HashMap::new()),
            connecting: tokio::sync::Mutex::new(()),
            next: AtomicUsize::new(0),
        }
    }

    /// A line of `key` in turn, opening the missing ones with `open` first (which gives
    /// `None` when it cannot; fewer lines are kept then). `None` when there is none.
    pub(crate) async fn get<Q, F, Fut>(&self, key: &Q, open: F) -> Option<L>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<L>>,
    {
        if let Some(line) = self.pick(key, true) {
            return Some(line);
        }
        self.fill(key, open).await;
        self.pick(key, false)
    }

    /// A line in turn; with `full`, only once all of them are open.
    fn pick<Q>(&self, key: &Q, full: bool) -> Option<L>
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ?Sized,
    {
        let lines = crate::lock(&self.lines);
        let list = lines.get(key)?;
        let open = list.iter().filter(|l| !l.is_closed()).count();
        if open == 0 || (full && open < self.per_key) {
            return None;
        }
        let at = self.next.fetch_add(1, Ordering::Relaxed) % open;
        list.iter().filter(|l| !l.is_closed()).nth(at).cloned()
    }

    async fn fill<Q, F, Fut>(&self, key: &Q, mut open: F)
    where
        K: Borrow<Q>,
        Q: Hash + Eq + ToOwned<Owned = K> + ?Sized,
        F: FnMut() -> Fut,
        Fut: Future<Output = Option<L>>,
    {
        let _connecting = self.connecting.lock().await;
        let kept = {
            let mut lines = crate::lock(&self.lines);
            lines.retain(|_, list| {
                list.retain(|l| !l.is_closed());
                !list.is_empty()
            });
            if !lines.contains_key(key) && lines.len() >= KEYS_KEPT {
                return;
            }
            lines.get(key).map_or(0, Vec::len)
        };
        for _ in kept..self.per_key {
            let Some(line) = open().await else {
                return;
            };
            crate::lock(&self.lines)
                .entry(key.to_owned())
                .or_default()
                .push(line);
        }
    }

    /// How many keys have lines.
    #[cfg(test)]
    pub(crate) fn keys(&self) -> usize {
        crate::lock(&self.lines).len()
    }
}
