//! Settings of the SQL wire endpoints (`PG_PROXY_*`).

use std::net::IpAddr;
use std::path::PathBuf;

use super::{ConfigError, flag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PgProxySettings {
    pub host: IpAddr,
    /// 0: any free port (the one chosen is printed).
    pub port: u16,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_insecure_password: bool,
    pub pool_size: usize,
    pub pool_timeout: std::time::Duration,
}

/// `None` when the endpoint is off: by `PG_PROXY_ENABLED=false`, or by default when the
/// database is not PostgreSQL (where it cannot be on).
pub(super) fn pg_proxy(
    take: &mut impl FnMut(&str) -> Option<String>,
    postgres: bool,
) -> Result<Option<PgProxySettings>, ConfigError> {
    let enabled = flag("PG_PROXY_ENABLED", take("PG_PROXY_ENABLED"))?;
    let host = take("PG_PROXY_HOST");
    let port = take("PG_PROXY_PORT");
    let tls_cert = take("PG_PROXY_TLS_CERT").map(PathBuf::from);
    let tls_key = take("PG_PROXY_TLS_KEY").map(PathBuf::from);
    let insecure = flag(
        "PG_PROXY_ALLOW_INSECURE_PASSWORD",
        take("PG_PROXY_ALLOW_INSECURE_PASSWORD"),
    )?;
    let pool = take("PG_PROXY_POOL_SIZE");
    let pool_timeout = take("PG_PROXY_POOL_TIMEOUT");
    match (enabled, postgres) {
        (Some(false), _) | (None, false) => return Ok(None),
        (Some(true), false) => {
            return Err(ConfigError(
                "PG_PROXY_ENABLED=true needs DB_CLIENT=pg: the PostgreSQL endpoint forwards to a PostgreSQL database".into(),
            ));
        }
        _ => {}
    }
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(ConfigError(
            "PG_PROXY_TLS_CERT and PG_PROXY_TLS_KEY go together: set both or neither".into(),
        ));
    }
    let host = match host {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
        Some(h) => h.parse().map_err(|_| {
            ConfigError(format!(
                "PG_PROXY_HOST={h} is not an address to listen on: use an IP address such as 0.0.0.0"
            ))
        })?,
    };
    let port = match port {
        None => 6432,
        Some(p) => p.parse::<u16>().map_err(|_| {
            ConfigError(format!(
                "PG_PROXY_PORT={p} is not a valid port: use a number from 0 (any free port) to 65535"
            ))
        })?,
    };
    let pool_size = match pool {
        None => 20,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=10_000).contains(n))
            .ok_or_else(|| {
                ConfigError(format!(
                    "PG_PROXY_POOL_SIZE={v} is not valid: use a number of connections from 1 to 10000"
                ))
            })?,
    };
    let pool_timeout = match pool_timeout {
        None => std::time::Duration::from_secs(30),
        Some(text) => super::parse_duration(&text).ok_or_else(|| {
            ConfigError(format!(
                "PG_PROXY_POOL_TIMEOUT={text} is not a duration: use for example 30s, 500 or 2m"
            ))
        })?,
    };
    Ok(Some(PgProxySettings {
        host,
        port,
        tls_cert,
        tls_key,
        allow_insecure_password: insecure.unwrap_or(false),
        pool_size,
        pool_timeout,
    }))
}
