//! TLS for the wire endpoints (rustls): the configured certificate, or a self-signed one
//! made at start.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use tokio_rustls::TlsAcceptor;

#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{0} holds no usable certificate or key")]
    Empty(String),
    #[error("TLS setup failed: {0}")]
    Setup(String),
}

/// The acceptor for `cert`/`key` (PEM files); `None` for both: a self-signed certificate
/// for `localhost`, with a warning, since clients cannot verify it.
/// `prefix` names the endpoint's settings in the warning (`PG_PROXY`, `MYSQL_PROXY`).
pub fn acceptor(
    cert: Option<&Path>,
    key: Option<&Path>,
    prefix: &str,
) -> Result<TlsAcceptor, TlsError> {
    let (chain, key) = match (cert, key) {
        (Some(cert), Some(key)) => (read_certs(cert)?, read_key(key)?),
        _ => {
            tracing::warn!(
                "{prefix}_TLS_CERT/{prefix}_TLS_KEY are not set: the SQL endpoint uses a self-signed certificate"
            );
            self_signed()?
        }
    };
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| TlsError::Setup(e.to_string()))?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn self_signed() -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), TlsError> {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()])
        .map_err(|e| TlsError::Setup(e.to_string()))?;
    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(made.signing_key.serialize_der()));
    Ok((vec![made.cert.der().clone()], key))
}

fn read(path: &Path) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        path: path.display().to_string(),
        source,
    })
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read(path)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .filter_map(Result::ok)
        .collect();
    if certs.is_empty() {
        return Err(TlsError::Empty(path.display().to_string()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let pem = read(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .ok()
        .flatten()
        .ok_or_else(|| TlsError::Empty(path.display().to_string()))
}
