//! The PostgreSQL wire endpoint. Clients log in as rectus users; admins are forwarded to the
//! database as they are, everyone else goes through the SQL guard statement by statement.

mod cancel;
mod frame;
mod scram;
mod session;
mod startup;
mod statements;
mod tls;
mod upstream;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rectus_policies::filter::Variables;
use rectus_policies::guard::{DerivedCache, GuardError, Guarded};
use rectus_policies::{EffectivePermissions, SchemaOverview};
use tokio::net::TcpListener;

pub use tls::TlsError;
pub use upstream::UpstreamConfig;

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

/// A logged-in user.
#[derive(Debug, Clone)]
pub struct Identity {
    /// The user's id.
    pub user: String,
    pub role: Option<String>,
    pub admin: bool,
}

/// What one user may do right now. `id` is unique per value, so guarded statements can be
/// cached per permission set.
pub struct Access {
    pub id: u64,
    pub schema: Arc<SchemaOverview>,
    pub permissions: EffectivePermissions,
    pub variables: Variables,
    pub derived: DerivedCache,
}

impl Access {
    pub fn new(
        schema: Arc<SchemaOverview>,
        permissions: EffectivePermissions,
        variables: Variables,
    ) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        Access {
            id: NEXT.fetch_add(1, Ordering::Relaxed),
            schema,
            permissions,
            variables,
            derived: DerivedCache::default(),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LoginError {
    #[error("invalid credentials")]
    Invalid,
    #[error("{0}")]
    Internal(String),
}

#[derive(Debug, thiserror::Error)]
pub enum AccessError {
    /// Suspended, archived or deleted since the session began.
    #[error("the user is no longer active")]
    Inactive,
    #[error("{0}")]
    Internal(String),
}

/// The users and permissions behind the endpoint (the rectus server implements it).
pub trait Directory: Send + Sync + 'static {
    /// Checks an e-mail and password, or a static token given as the password.
    fn login(
        &self,
        user: &str,
        password: &str,
    ) -> impl Future<Output = Result<Identity, LoginError>> + Send;

    /// A number that changes whenever permissions or the schema may have changed; sessions
    /// keep a user's [`Access`] while it stays the same (and for a second at most).
    fn generation(&self) -> u64;

    /// The current permissions of a logged-in user.
    fn access(
        &self,
        identity: &Identity,
    ) -> impl Future<Output = Result<Arc<Access>, AccessError>> + Send;
}

/// Locks a mutex whose data stays usable after a panic elsewhere (every critical section
/// here leaves it consistent).
fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

type GuardCache = moka::sync::Cache<(u64, String), Arc<Result<Vec<Guarded>, GuardError>>>;

struct Shared<D> {
    config: PgProxyConfig,
    tls: tokio_rustls::TlsAcceptor,
    pool: upstream::Pool,
    directory: Arc<D>,
    cancel: cancel::Registry,
    guarded: GuardCache,
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
        let tls = tls::acceptor(config.tls_cert.as_deref(), config.tls_key.as_deref())?;
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| ProxyError::Listen { addr, source })?;
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
                guarded: moka::sync::Cache::new(10_000),
            }),
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Accepts connections until the task is dropped.
    pub async fn serve(self) {
        loop {
            match self.listener.accept().await {
                Ok((stream, peer)) => {
                    let shared = self.shared.clone();
                    tokio::spawn(async move {
                        if let Err(e) = session::run(stream, shared).await {
                            tracing::debug!(%peer, error = %e, "wire session ended");
                        }
                    });
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept a wire connection");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                }
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] TlsError),
}
