//! The MySQL wire endpoint, for MySQL and MariaDB databases. Clients log in as rectus users;
//! admins are forwarded to the database as they are, everyone else goes through the SQL
//! guard statement by statement, in lockstep with the database's answers.
//!
//! The protocol is spoken here rather than through `opensrv-mysql`, whose shim decodes and
//! re-encodes every row and has no upstream side: forwarding rows as bytes, renumbering
//! packets and knowing where an answer ends need the packets themselves.

mod admin_reads;
mod auth;
mod bound;
mod commands;
mod packet;
mod params;
mod protocol;
mod session;
mod shared;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::net::TcpListener;

use crate::{Directory, GuardCache, TemplateCache};
pub use crate::{EndpointSettings, ProxyError, UpstreamConfig};

/// The endpoint's settings (`MYSQL_PROXY_*`).
#[derive(Debug, Clone)]
pub struct MysqlProxyConfig {
    pub upstream: UpstreamConfig,
    pub endpoint: EndpointSettings,
    /// Connections that guarded autocommit reads are pipelined over ([`shared`]); 0: none.
    pub shared_reads: usize,
    /// What a shared read may take before it goes back to the sessions' own connections.
    pub shared_read_time: std::time::Duration,
}

struct Shared<D> {
    config: MysqlProxyConfig,
    tls: tokio_rustls::TlsAcceptor,
    pool: upstream::Pool,
    directory: Arc<D>,
    guarded: GuardCache,
    templates: TemplateCache,
    connections: AtomicU32,
    reads: Option<shared::SharedReads>,
}

/// The bound endpoint, ready to serve.
pub struct MysqlProxy<D> {
    listener: TcpListener,
    shared: Arc<Shared<D>>,
}

impl<D: Directory> MysqlProxy<D> {
    pub async fn bind(
        addr: SocketAddr,
        config: MysqlProxyConfig,
        directory: Arc<D>,
    ) -> Result<Self, ProxyError> {
        let (listener, tls) = crate::endpoint::bind(addr, &config.endpoint, "MYSQL_PROXY").await?;
        let pool = upstream::Pool::new(
            config.upstream.clone(),
            config.endpoint.pool_size,
            config.endpoint.pool_timeout,
        );
        let reads = shared::SharedReads::new(
            config.upstream.clone(),
            config.shared_reads,
            config.shared_read_time,
        );
        Ok(MysqlProxy {
            listener,
            shared: Arc::new(Shared {
                config,
                tls,
                pool,
                directory,
                guarded: crate::guard_cache(),
                templates: crate::template_cache(),
                connections: AtomicU32::new(1),
                reads,
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self) {
        let shared = self.shared;
        crate::endpoint::accept(self.listener, "MySQL", move |stream, peer| {
            let id = shared.connections.fetch_add(1, Ordering::Relaxed);
            session::run(stream, peer, id, shared.clone())
        })
        .await
    }
}
