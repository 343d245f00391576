//! CancelRequest: clients get the proxy's own key pair; a cancel is forwarded to the
//! upstream backend that serves that session, with that backend's key. A session waiting
//! for a read on a shared connection ([`super::shared`]) is told as well: that read is not
//! on its backend.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::Notify;

use bytes::{BufMut, BytesMut};
use tokio::io::AsyncWriteExt;

#[derive(Clone)]
pub struct Target {
    pub host: String,
    pub port: u16,
    pub pid: i32,
    pub secret: i32,
}

impl Target {
    /// The backend of `upstream`, reached as `config` says.
    pub fn of(config: &crate::UpstreamConfig, upstream: &super::upstream::Upstream) -> Target {
        Target {
            host: config.host.clone(),
            port: config.port,
            pid: upstream.pid,
            secret: upstream.secret,
        }
    }
}

#[derive(Default)]
pub struct Registry {
    sessions: Mutex<HashMap<Key, (Target, Arc<Notify>)>>,
}

/// The process id and secret a client cancels with.
type Key = (i32, i32);

impl Registry {
    /// A fresh key pair for a session served by `target`, and what wakes the session's
    /// waits for shared reads when a cancel for it comes.
    pub fn register(&self, target: Target) -> (Key, Arc<Notify>) {
        let mut sessions = crate::lock(&self.sessions);
        loop {
            // A positive process id, as PostgreSQL's are.
            let key = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(key) {
                let cancelled = Arc::new(Notify::new());
                slot.insert((target, cancelled.clone()));
                return (key, cancelled);
            }
        }
    }

    pub fn remove(&self, key: Key) {
        crate::lock(&self.sessions).remove(&key);
    }

    /// Forwards a cancel for the session with this key, if there is one.
    pub async fn cancel(&self, key: Key) {
        let session = crate::lock(&self.sessions).get(&key).cloned();
        if let Some((target, cancelled)) = session {
            // Only a wait under way hears it, as only a running statement is cancelled;
            // an idle backend ignores the request.
            cancelled.notify_waiters();
            send(&target).await;
        }
    }
}

/// Sends a CancelRequest for the backend `target` names.
pub async fn send(target: &Target) {
    let mut packet = BytesMut::with_capacity(16);
    packet.put_i32(16);
    packet.put_i32(80_877_102);
    packet.put_i32(target.pid);
    packet.put_i32(target.secret);
    match super::upstream::open(&target.host, target.port).await {
        Ok((_, mut stream)) => {
            let _ = stream.write_all(&packet).await;
        }
        Err(e) => tracing::warn!(error = %e, "cannot forward a cancel request"),
    }
}
