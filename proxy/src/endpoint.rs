//! What both wire endpoints share around their protocols: the upstream database they
//! connect to, its errors, binding a listener with TLS, and the accept loop.

use std::future::Future;
use std::net::SocketAddr;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, TcpStream, UnixStream};

use crate::TlsError;

/// What both endpoints are configured with besides their upstream (`PG_PROXY_*`,
/// `MYSQL_PROXY_*`).
#[derive(Debug, Clone)]
pub struct EndpointSettings {
    pub tls_cert: Option<std::path::PathBuf>,
    pub tls_key: Option<std::path::PathBuf>,
    /// Passwords in clear on connections without TLS (`*_ALLOW_INSECURE_PASSWORD`).
    pub allow_insecure_password: bool,
    pub pool_size: usize,
    /// How long a new session waits for a free upstream connection before it is refused.
    pub pool_timeout: std::time::Duration,
}

/// Where and as whom an endpoint connects to the database.
#[derive(Clone)]
pub struct UpstreamConfig {
    pub host: String,
    pub port: u16,
    pub user: String,
    pub password: Option<String>,
    pub database: String,
}

impl std::fmt::Debug for UpstreamConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UpstreamConfig")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("database", &self.database)
            .finish_non_exhaustive()
    }
}

pub type UpstreamRead = Box<dyn AsyncRead + Send + Unpin>;
pub type UpstreamWrite = Box<dyn AsyncWrite + Send + Unpin>;

/// A connection to the database at `host`: a host name or address over TCP, or, when it
/// starts with `/`, the Unix socket `socket` names (a sidecar next to the database skips the
/// TCP stack both ways).
pub(crate) async fn open_upstream(
    host: &str,
    port: u16,
    socket: impl FnOnce() -> std::path::PathBuf,
) -> std::io::Result<(UpstreamRead, UpstreamWrite)> {
    if host.starts_with('/') {
        let (read, write) = UnixStream::connect(socket()).await?.into_split();
        return Ok((Box::new(read), Box::new(write)));
    }
    let stream = TcpStream::connect((host, port)).await?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    Ok((Box::new(read), Box::new(write)))
}

/// What a client of either endpoint hears when the database cannot be reached, at login or
/// for its session's connection; nothing of the upstream's address or user.
pub(crate) const UNREACHABLE: &str = "rectus: cannot connect to the database";

/// Whether an idle pooled connection is still open and quiet. The database may have closed
/// it meanwhile (a restart, `idle_session_timeout`, a terminated backend): its socket then
/// reads as ended, or holds the error sent before closing. One read is tried only when the
/// runtime has seen the socket become readable, so a quiet connection costs no system call.
pub(crate) fn still_open(stream: &mut UpstreamRead) -> bool {
    let mut byte = [0u8; 1];
    let mut buf = tokio::io::ReadBuf::new(&mut byte);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    std::pin::Pin::new(stream)
        .poll_read(&mut cx, &mut buf)
        .is_pending()
}

#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("cannot reach the database: {0}")]
    Io(#[from] std::io::Error),
    /// The database refused the proxy's login or a setup statement; the detail goes to the
    /// log only.
    #[error("the database refused the proxy's connection")]
    Refused(String),
    #[error("the database asked for an authentication method the proxy does not support")]
    Unsupported,
    /// Every pooled connection is in use.
    #[error("no free database connection")]
    Full,
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

/// The listener and TLS acceptor of an endpoint whose settings start with `prefix`.
pub(crate) async fn bind(
    addr: SocketAddr,
    settings: &EndpointSettings,
    prefix: &str,
) -> Result<(TcpListener, tokio_rustls::TlsAcceptor), ProxyError> {
    let tls = crate::tls::acceptor(
        settings.tls_cert.as_deref(),
        settings.tls_key.as_deref(),
        prefix,
    )?;
    let listener = TcpListener::bind(addr)
        .await
        .map_err(|source| ProxyError::Listen { addr, source })?;
    Ok((listener, tls))
}

/// Accepts connections until the task is dropped, each served by `session` on a task of
/// its own.
pub(crate) async fn accept<F, Fut>(listener: TcpListener, protocol: &'static str, session: F)
where
    F: Fn(TcpStream, SocketAddr) -> Fut,
    Fut: Future<Output = std::io::Result<()>> + Send + 'static,
{
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let served = session(stream, peer);
                tokio::spawn(async move {
                    if let Err(e) = served.await {
                        tracing::debug!(%peer, protocol, error = %e, "wire session ended");
                    }
                });
            }
            Err(e) => {
                tracing::warn!(protocol, error = %e, "cannot accept a wire connection");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
    }
}
