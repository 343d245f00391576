//! CancelRequest: clients get the proxy's own key pair; a cancel is forwarded to the
//! upstream backend that serves that session, with that backend's key.

use std::collections::HashMap;
use std::sync::Mutex;

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
    sessions: Mutex<HashMap<(i32, i32), Target>>,
}

impl Registry {
    /// A fresh key pair for a session served by `target`.
    pub fn register(&self, target: Target) -> (i32, i32) {
        let mut sessions = crate::lock(&self.sessions);
        loop {
            // A positive process id, as PostgreSQL's are.
            let key = (rand::random::<i32>() & i32::MAX, rand::random::<i32>());
            if let std::collections::hash_map::Entry::Vacant(slot) = sessions.entry(key) {
                slot.insert(target);
                return key;
            }
        }
    }

    pub fn remove(&self, key: (i32, i32)) {
        crate::lock(&self.sessions).remove(&key);
    }

    /// Forwards a cancel for the session with this key, if there is one.
    pub async fn cancel(&self, key: (i32, i32)) {
        let target = crate::lock(&self.sessions).get(&key).cloned();
        if let Some(target) = target {
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
