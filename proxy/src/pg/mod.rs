//! The PostgreSQL wire endpoint. Clients log in as rectus users; admins are forwarded to the
//! database as they are, everyone else goes through the SQL guard statement by statement.

mod cancel;
mod frame;
mod scram;
mod session;
mod startup;
mod statements;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::net::TcpListener;

use crate::{Directory, GuardCache, TemplateCache};
pub use crate::{ProxyError, TlsError, UpstreamConfig};

/// The endpoint's settings (`PG_PROXY_*`).
#[derive(Debug, Clone)]
pub struct PgProxyConfig {
    pub upstream: UpstreamConfig,
    /// The schema user tables live in; guarded statements name it explicitly.
    pub schema_name: String,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    /// Cleartext passwords on connections without TLS (`PG_PROXY_ALLOW_INSECURE_PASSWORD`).
    pub allow_insecure_password: bool,
    pub pool_size: usize,
    /// How long a new session waits for a free upstream connection before it is refused.
    pub pool_timeout: std::time::Duration,
}

struct Shared<D> {
    config: PgProxyConfig,
    tls: tokio_rustls::TlsAcceptor,
    pool: upstream::Pool,
    directory: Arc<D>,
    cancel: cancel::Registry,
    guarded: GuardCache,
    templates: TemplateCache,
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
        let (listener, tls) = crate::endpoint::bind(
            addr,
            config.tls_cert.as_deref(),
            config.tls_key.as_deref(),
            "PG_PROXY",
        )
        .await?;
        let pool = upstream::Pool::new(
            config.upstream.clone(),
            config.pool_size,
            config.pool_timeout,
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
