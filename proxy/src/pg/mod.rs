//! The PostgreSQL wire endpoint. Clients log in as rectus users; admins are forwarded to the
//! database as they are, everyone else goes through the SQL guard statement by statement.

mod admin_reads;
mod bound;
mod cancel;
mod frame;
mod params;
mod pending;
mod scram;
mod session;
mod shared;
mod startup;
mod statements;
mod upstream;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{Directory, GuardCache, TemplateCache};
pub use crate::{EndpointSettings, ProxyError, TlsError, UpstreamConfig};

/// The endpoint's settings (`PG_PROXY_*`).
#[derive(Debug, Clone)]
pub struct PgProxyConfig {
    pub upstream: UpstreamConfig,
    /// The schema user tables live in; guarded statements name it explicitly.
    pub schema_name: String,
    pub endpoint: EndpointSettings,
    /// Connections that guarded autocommit reads are pipelined over ([`shared`]); 0: none.
    pub shared_reads: usize,
    /// What a shared read may take before it goes back to the sessions' own connections.
    pub shared_read_time: std::time::Duration,
}

struct Shared<D> {
    config: PgProxyConfig,
    tls: tokio_rustls::TlsAcceptor,
    pool: upstream::Pool,
    directory: Arc<D>,
    cancel: cancel::Registry,
    guarded: GuardCache,
    templates: TemplateCache,
    reads: Option<shared::SharedReads>,
}

/// The bound endpoint, ready to serve.
pub struct PgProxy<D> {
    listener: TcpListener,
    shared: Arc<Shared<D>>,
}

impl<D: Directory> PgProxy<D> {
    pub async fn bind(
        addr: SocketAddr,
        config: PgProxyConfig,
        directory: Arc<D>,
    ) -> Result<Self, ProxyError> {
        let (listener, tls) = crate::endpoint::bind(addr, &config.endpoint, "PG_PROXY").await?;
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
        Ok(PgProxy {
            listener,
            shared: Arc::new(Shared {
                config,
                tls,
                pool,
                directory,
                cancel: cancel::Registry::default(),
                guarded: crate::guard_cache(),
                templates: crate::template_cache(),
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
        crate::endpoint::accept(self.listener, "PostgreSQL", move |stream, _| {
            session::run(stream, shared.clone())
        })
        .await
    }
}
