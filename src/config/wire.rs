//! Settings of the SQL wire endpoints: `PG_PROXY_*` for the PostgreSQL protocol,
//! `MYSQL_PROXY_*` for the MySQL protocol. Both take the same settings under their prefix.

use std::net::IpAddr;
use std::path::PathBuf;

use super::{ConfigError, flag};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WireSettings {
    pub host: IpAddr,
    /// 0: any free port (the one chosen is printed).
    pub port: u16,
    pub tls_cert: Option<PathBuf>,
    pub tls_key: Option<PathBuf>,
    pub allow_insecure_password: bool,
    pub pool_size: usize,
    pub pool_timeout: std::time::Duration,
    /// Upstream connections that guarded sessions' autocommit reads are pipelined over, per
    /// set of startup settings (MySQL: per shape of answers); 0: none.
    /// `PG_PROXY_SHARED_READS`, `MYSQL_PROXY_SHARED_READS` (MariaDB only).
    pub shared_reads: usize,
    /// A read on the shared connections whose shortest of several runs in a row took
    /// longer goes to the sessions' own connections for a while
    /// (`PG_PROXY_SHARED_READ_TIME`, `MYSQL_PROXY_SHARED_READ_TIME`).
    pub shared_read_time: std::time::Duration,
}

/// `*_SHARED_READS` when not set. One connection batches best: on two cores
/// prepared `pgbench -S` through it ran at 38–44k TPS, through two at 36–37k, four 28–31k.
const SHARED_READS: usize = 1;

/// `PG_PROXY_SHARED_READ_TIME` when not set: about ten times what a read of one row by
/// its key takes the database, so reads that large scans or sorts dominate keep the
/// database's parallelism.
const SHARED_READ_TIME: std::time::Duration = std::time::Duration::from_micros(150);

/// The PostgreSQL endpoint's settings.
pub type PgProxySettings = WireSettings;

/// One endpoint: which prefix, which database client it needs, its default port.
struct Endpoint {
    prefix: &'static str,
    client: &'static str,
    protocol: &'static str,
    port: u16,
}

/// `None` when the PostgreSQL endpoint is off: by `PG_PROXY_ENABLED=false`, or by default
/// when the database is not PostgreSQL (where it cannot be on).
pub(super) fn pg_proxy(
    take: &mut impl FnMut(&str) -> Option<String>,
    postgres: bool,
) -> Result<Option<WireSettings>, ConfigError> {
    let endpoint = Endpoint {
        prefix: "PG_PROXY",
        client: "pg",
        protocol: "PostgreSQL",
        port: 6432,
    };
    settings(take, postgres, &endpoint)
}

/// `None` when the MySQL endpoint is off: by `MYSQL_PROXY_ENABLED=false`, or by default
/// when the database is not MySQL or MariaDB.
pub(super) fn mysql_proxy(
    take: &mut impl FnMut(&str) -> Option<String>,
    mysql: bool,
) -> Result<Option<WireSettings>, ConfigError> {
    let endpoint = Endpoint {
        prefix: "MYSQL_PROXY",
        client: "mysql",
        protocol: "MySQL",
        port: 3307,
    };
    settings(take, mysql, &endpoint)
}

/// `*_SHARED_READ_TIME`: a duration above zero.
fn shared_read_time(key: &str, text: &str) -> Result<std::time::Duration, ConfigError> {
    super::parse_duration(text)
        .filter(|d| !d.is_zero())
        .ok_or_else(|| {
            ConfigError(format!(
                "{key}={text} is not a duration: use for example 150us, 0.5ms or 2ms"
            ))
        })
}

/// `*_SHARED_READS`: how many connections, `default` when not set.
fn shared_reads(key: &str, value: Option<String>, default: usize) -> Result<usize, ConfigError> {
    let Some(v) = value else {
        return Ok(default);
    };
    v.parse::<usize>().ok().filter(|n| *n <= 64).ok_or_else(|| {
        ConfigError(format!(
            "{key}={v} is not valid: use a number of connections from 0 (off) to 64"
        ))
    })
}

fn settings(
    take: &mut impl FnMut(&str) -> Option<String>,
    matching_database: bool,
    endpoint: &Endpoint,
) -> Result<Option<WireSettings>, ConfigError> {
    let prefix = endpoint.prefix;
    let mut get = |name: &str| {
        let key = format!("{prefix}_{name}");
        let value = take(&key);
        (key, value)
    };
    let (enabled_key, enabled) = get("ENABLED");
    let enabled = flag(&enabled_key, enabled)?;
    let (_, host) = get("HOST");
    let (port_key, port) = get("PORT");
    let (cert_key, tls_cert) = get("TLS_CERT");
    let (key_key, tls_key) = get("TLS_KEY");
    let (insecure_key, insecure) = get("ALLOW_INSECURE_PASSWORD");
    let insecure = flag(&insecure_key, insecure)?;
    let (pool_key, pool) = get("POOL_SIZE");
    let (timeout_key, pool_timeout) = get("POOL_TIMEOUT");
    let (shared_key, shared) = get("SHARED_READS");
    let (time_key, time) = get("SHARED_READ_TIME");
    match (enabled, matching_database) {
        (Some(false), _) | (None, false) => return Ok(None),
        (Some(true), false) => {
            return Err(ConfigError(format!(
                "{enabled_key}=true needs DB_CLIENT={}: the {} endpoint forwards to a {} database",
                endpoint.client, endpoint.protocol, endpoint.protocol
            )));
        }
        _ => {}
    }
    if tls_cert.is_some() != tls_key.is_some() {
        return Err(ConfigError(format!(
            "{cert_key} and {key_key} go together: set both or neither"
        )));
    }
    let host = match host {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
        Some(h) => h.parse().map_err(|_| {
            ConfigError(format!(
                "{prefix}_HOST={h} is not an address to listen on: use an IP address such as 0.0.0.0"
            ))
        })?,
    };
    let port = match port {
        None => endpoint.port,
        Some(p) => p.parse::<u16>().map_err(|_| {
            ConfigError(format!(
                "{port_key}={p} is not a valid port: use a number from 0 (any free port) to 65535"
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
                    "{pool_key}={v} is not valid: use a number of connections from 1 to 10000"
                ))
            })?,
    };
    let pool_timeout = match pool_timeout {
        None => std::time::Duration::from_secs(30),
        Some(text) => super::parse_duration(&text).ok_or_else(|| {
            ConfigError(format!(
                "{timeout_key}={text} is not a duration: use for example 30s, 500 or 2m"
            ))
        })?,
    };
    let shared_reads = shared_reads(&shared_key, shared, SHARED_READS)?;
    let shared_read_time = match time {
        None => SHARED_READ_TIME,
        Some(text) => shared_read_time(&time_key, &text)?,
    };
    Ok(Some(WireSettings {
        host,
        port,
        tls_cert: tls_cert.map(PathBuf::from),
        tls_key: tls_key.map(PathBuf::from),
        allow_insecure_password: insecure.unwrap_or(false),
        pool_size,
        pool_timeout,
        shared_reads,
        shared_read_time,
    }))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn from(pairs: &[(&str, &str)]) -> impl FnMut(&str) -> Option<String> {
        let mut map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.remove(name)
    }

    #[test]
    fn each_endpoint_is_on_for_its_own_database_only() {
        let pg = pg_proxy(&mut from(&[]), true).unwrap().unwrap();
        assert_eq!(pg.port, 6432);
        let mysql = mysql_proxy(&mut from(&[]), true).unwrap().unwrap();
        assert_eq!((mysql.port, mysql.pool_size), (3307, 20));
        assert!(!mysql.allow_insecure_password);
        assert!(mysql_proxy(&mut from(&[]), false).unwrap().is_none());
        let e = mysql_proxy(&mut from(&[("MYSQL_PROXY_ENABLED", "true")]), false).unwrap_err();
        assert_eq!(
            e.0,
            "MYSQL_PROXY_ENABLED=true needs DB_CLIENT=mysql: the MySQL endpoint forwards to a MySQL database"
        );
        assert!(
            mysql_proxy(&mut from(&[("MYSQL_PROXY_ENABLED", "false")]), true)
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn bad_values_name_their_setting() {
        let e = mysql_proxy(&mut from(&[("MYSQL_PROXY_PORT", "x")]), true).unwrap_err();
        assert!(
            e.0.starts_with("MYSQL_PROXY_PORT=x is not a valid port"),
            "{}",
            e.0
        );
        let e = mysql_proxy(&mut from(&[("MYSQL_PROXY_TLS_CERT", "a.pem")]), true).unwrap_err();
        assert!(e.0.starts_with("MYSQL_PROXY_TLS_CERT and MYSQL_PROXY_TLS_KEY go together"));
        let pg = pg_proxy(
            &mut from(&[
                ("PG_PROXY_SHARED_READS", "0"),
                ("PG_PROXY_SHARED_READ_TIME", "2ms"),
            ]),
            true,
        )
        .unwrap()
        .unwrap();
        assert_eq!(pg.shared_reads, 0);
        assert_eq!(pg.shared_read_time, std::time::Duration::from_millis(2));
        let mysql = mysql_proxy(&mut from(&[]), true).unwrap().unwrap();
        assert_eq!(mysql.shared_reads, 1);
        let mysql = mysql_proxy(&mut from(&[("MYSQL_PROXY_SHARED_READS", "2")]), true);
        assert_eq!(mysql.unwrap().unwrap().shared_reads, 2);
        let e = mysql_proxy(&mut from(&[("MYSQL_PROXY_SHARED_READS", "65")]), true).unwrap_err();
        assert!(e.0.starts_with("MYSQL_PROXY_SHARED_READS=65 is not valid"));
        let mysql = mysql_proxy(&mut from(&[("MYSQL_PROXY_SHARED_READ_TIME", "1ms")]), true);
        let mysql = mysql.unwrap().unwrap();
        assert_eq!(mysql.shared_read_time, std::time::Duration::from_millis(1));
        let e = mysql_proxy(&mut from(&[("MYSQL_PROXY_SHARED_READ_TIME", "x")]), true);
        assert!(
            e.unwrap_err()
                .0
                .starts_with("MYSQL_PROXY_SHARED_READ_TIME=x is not")
        );
        let e = pg_proxy(&mut from(&[("PG_PROXY_SHARED_READS", "many")]), true).unwrap_err();
        assert!(e.0.starts_with("PG_PROXY_SHARED_READS=many is not valid"));
        let e = pg_proxy(&mut from(&[("PG_PROXY_SHARED_READ_TIME", "0")]), true).unwrap_err();
        assert!(e.0.starts_with("PG_PROXY_SHARED_READ_TIME=0 is not a duration"));
        let e = pg_proxy(&mut from(&[("PG_PROXY_POOL_SIZE", "0")]), true).unwrap_err();
        assert!(
            e.0.starts_with("PG_PROXY_POOL_SIZE=0 is not valid"),
            "{}",
            e.0
        );
    }
}
