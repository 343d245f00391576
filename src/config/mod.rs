//! Configuration: built-in defaults, then `config/rectus.toml` (or `--config FILE`), then
//! environment variables with Directus's names; later wins. Every value is validated here,
//! once, into typed settings; a bad value becomes one line that names the setting and what
//! is allowed.

mod auth;
mod graphql;
mod wire;

pub use auth::{AuthConfig, CookieConfig, SameSite};
pub use graphql::GraphqlSettings;

pub use wire::{PgProxySettings, WireSettings};

use std::collections::BTreeMap;
use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use figment::providers::{Format, Toml};
use figment::value::{Dict, Map, Value};
use figment::{Figment, Metadata, Profile, Provider};
use serde::Deserialize;

/// The configuration file read when `--config` is not given (relative to the working dir).
pub const DEFAULT_CONFIG_FILE: &str = "config/rectus.toml";

/// Every setting rectus reads, by its environment variable name.
pub const SETTINGS: &[&str] = &[
    "DB_CLIENT",
    "DB_HOST",
    "DB_SOCKET_PATH",
    "DB_PORT",
    "DB_DATABASE",
    "DB_USER",
    "DB_PASSWORD",
    "DB_FILENAME",
    "DB_CONNECTION_STRING",
    "DB_POOL__MAX",
    "KEY",
    "SECRET",
    "ADMIN_EMAIL",
    "ADMIN_PASSWORD",
    "HOST",
    "PORT",
    "PUBLIC_URL",
    "LOG_LEVEL",
    "LOG_STYLE",
    "ACCESS_TOKEN_TTL",
    "REFRESH_TOKEN_TTL",
    "REFRESH_TOKEN_COOKIE_NAME",
    "REFRESH_TOKEN_COOKIE_SECURE",
    "REFRESH_TOKEN_COOKIE_SAME_SITE",
    "REFRESH_TOKEN_COOKIE_DOMAIN",
    "SESSION_COOKIE_NAME",
    "SESSION_COOKIE_TTL",
    "SESSION_COOKIE_SECURE",
    "SESSION_COOKIE_SAME_SITE",
    "SESSION_COOKIE_DOMAIN",
    "LOGIN_STALL_TIME",
    "QUERY_LIMIT_DEFAULT",
    "QUERY_LIMIT_MAX",
    "PG_PROXY_ENABLED",
    "PG_PROXY_HOST",
    "PG_PROXY_PORT",
    "PG_PROXY_TLS_CERT",
    "PG_PROXY_TLS_KEY",
    "PG_PROXY_ALLOW_INSECURE_PASSWORD",
    "PG_PROXY_POOL_SIZE",
    "PG_PROXY_POOL_TIMEOUT",
    "PG_PROXY_SHARED_READS",
    "PG_PROXY_SHARED_READ_TIME",
    "MYSQL_PROXY_ENABLED",
    "MYSQL_PROXY_HOST",
    "MYSQL_PROXY_PORT",
    "MYSQL_PROXY_TLS_CERT",
    "MYSQL_PROXY_TLS_KEY",
    "MYSQL_PROXY_ALLOW_INSECURE_PASSWORD",
    "MYSQL_PROXY_POOL_SIZE",
    "MYSQL_PROXY_SHARED_READS",
    "MYSQL_PROXY_SHARED_READ_TIME",
    "MYSQL_PROXY_POOL_TIMEOUT",
    "GRAPHQL_INTROSPECTION",
    "GRAPHQL_QUERY_TOKEN_LIMIT",
    "GRAPHQL_QUERY_DEPTH_LIMIT",
    "GRAPHQL_QUERY_ALIAS_LIMIT",
];

/// A configuration problem, already phrased for the person starting rectus.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(pub String);

#[derive(Debug, Clone)]
pub struct Config {
    pub database: DatabaseConfig,
    pub key: String,
    pub secret: String,
    /// No `SECRET` was configured and a random one is in use.
    pub secret_generated: bool,
    pub admin_email: String,
    pub admin_password: Option<String>,
    pub host: IpAddr,
    pub port: u16,
    pub public_url: String,
    pub log_level: LogLevel,
    pub log_style: LogStyle,
    pub auth: AuthConfig,
    /// Items a list answers when the query names no `limit` (`QUERY_LIMIT_DEFAULT`).
    pub query_limit_default: i64,
    /// The most items one list answers, whatever `limit` asks; `-1`: no cap
    /// (`QUERY_LIMIT_MAX`).
    pub query_limit_max: i64,
    /// The PostgreSQL wire endpoint; `None` when it is off.
    pub pg_proxy: Option<wire::PgProxySettings>,
    /// The MySQL wire endpoint (`MYSQL_PROXY_*`), when it is on.
    pub mysql_proxy: Option<wire::WireSettings>,
    /// The GraphQL endpoints' introspection switch and limits.
    pub graphql: GraphqlSettings,
    /// Where the settings came from, for the startup log.
    pub source: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DatabaseConfig {
    Postgres(NetworkDatabase),
    MySql(NetworkDatabase),
    Sqlite { filename: PathBuf },
}

impl DatabaseConfig {
    /// The `DB_CLIENT` value this configuration stands for.
    pub fn client(&self) -> &'static str {
        match self {
            DatabaseConfig::Postgres(_) => "pg",
            DatabaseConfig::MySql(_) => "mysql",
            DatabaseConfig::Sqlite { .. } => "sqlite3",
        }
    }
}

#[derive(Clone, PartialEq, Eq)]
pub struct NetworkDatabase {
    pub host: String,
    pub port: u16,
    pub database: Option<String>,
    pub user: Option<String>,
    pub password: Option<String>,
    pub connection_string: Option<String>,
    pub pool_max: usize,
}

impl fmt::Debug for NetworkDatabase {
    // Passwords never reach a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NetworkDatabase")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("database", &self.database)
            .field("user", &self.user)
            .field("password", &self.password.as_ref().map(|_| "***"))
            .field(
                "connection_string",
                &self.connection_string.as_ref().map(|_| "***"),
            )
            .field("pool_max", &self.pool_max)
            .finish()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogLevel {
    Trace,
    Debug,
    Info,
    Warn,
    Error,
    Silent,
}

impl LogLevel {
    pub fn as_filter(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Silent => "off",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogStyle {
    Pretty,
    Json,
}

/// Any scalar a provider gives (TOML integers and booleans included), kept as text so that
/// validation below has one input form.
#[derive(Debug, Clone)]
struct Scalar(String);

impl<'de> Deserialize<'de> for Scalar {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Scalar;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }
            fn visit_str<E>(self, v: &str) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
            fn visit_f64<E>(self, v: f64) -> Result<Scalar, E> {
                Ok(Scalar(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// The merged settings before validation: what the user wrote, by setting name.
#[derive(Debug, Default, Deserialize)]
#[serde(transparent)]
struct Raw(BTreeMap<String, Scalar>);

/// Environment variables, taken verbatim. figment's own `Env` provider would parse
/// `DB_PASSWORD=007` into the number 7; a password must stay the string it is.
struct VerbatimEnv;

impl Provider for VerbatimEnv {
    fn metadata(&self) -> Metadata {
        Metadata::named("environment variable")
    }

    fn data(&self) -> Result<Map<Profile, Dict>, figment::Error> {
        let mut dict = Dict::new();
        for name in SETTINGS {
            if let Ok(value) = std::env::var(name) {
                dict.insert((*name).to_string(), Value::from(value));
            }
        }
        Ok(Profile::Default.collect(dict))
    }
}

impl Config {
    /// Loads and validates the configuration. `file` is `--config`; when it is `None`,
    /// `config/rectus.toml` is read if it exists.
    pub fn load(file: Option<&Path>) -> Result<Config, ConfigError> {
        let source = match file {
            Some(path) if !path.is_file() => {
                return Err(ConfigError(format!(
                    "config file {} does not exist",
                    path.display()
                )));
            }
            Some(path) => Some(path.to_path_buf()),
            None => Some(PathBuf::from(DEFAULT_CONFIG_FILE)).filter(|p| p.is_file()),
        };
        let mut figment = Figment::new();
        if let Some(path) = &source {
            figment = figment.merge(Toml::file_exact(path));
        }
        let raw: Raw = figment
            .merge(VerbatimEnv)
            .extract()
            .map_err(|e| figment_error(e, source.as_deref()))?;
        let mut config = validate(raw.0)?;
        config.source = source;
        Ok(config)
    }
}

fn figment_error(error: figment::Error, file: Option<&Path>) -> ConfigError {
    let file = file.map_or_else(
        || DEFAULT_CONFIG_FILE.to_string(),
        |p| p.display().to_string(),
    );
    match &error.kind {
        figment::error::Kind::Message(m) => ConfigError(format!(
            "{file}: {}",
            m.lines().next().unwrap_or("cannot be read")
        )),
        _ => ConfigError(format!(
            "{file}: {}",
            error.to_string().lines().next().unwrap_or("cannot be read")
        )),
    }
}

fn validate(mut raw: BTreeMap<String, Scalar>) -> Result<Config, ConfigError> {
    if let Some(unknown) = raw.keys().find(|k| !SETTINGS.contains(&k.as_str())) {
        return Err(ConfigError(format!(
            "{unknown} is not a rectus setting: see config/rectus.toml for the settings there are"
        )));
    }
    let secret_set_empty = raw.get("SECRET").is_some_and(|s| s.0.is_empty());
    // An empty value means "not set", except for passwords, where empty is a value.
    let mut take = |name: &str| -> Option<String> {
        let value = raw.remove(name).map(|s| s.0)?;
        (!value.is_empty() || name.ends_with("PASSWORD")).then_some(value)
    };

    let client = take("DB_CLIENT").unwrap_or_else(|| "sqlite3".to_string());
    let host = take("DB_HOST");
    // Directus's name for MySQL's socket file (knex's `socketPath`).
    let socket_path = take("DB_SOCKET_PATH");
    let port = take("DB_PORT");
    let database = take("DB_DATABASE");
    let user = take("DB_USER");
    let password = take("DB_PASSWORD");
    let filename = take("DB_FILENAME");
    let connection_string = take("DB_CONNECTION_STRING");
    let pool_max = match take("DB_POOL__MAX") {
        None => 10,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ConfigError(format!(
                    "DB_POOL__MAX={v} is not valid: use a number of connections from 1 to 1000"
                ))
            })?,
    };

    let network = |default_port: u16, client: &str| -> Result<NetworkDatabase, ConfigError> {
        if let Some(cs) = &connection_string {
            let ok = match client {
                "pg" => cs.starts_with("postgres://") || cs.starts_with("postgresql://"),
                _ => cs.starts_with("mysql://"),
            };
            if !ok {
                let scheme = if client == "pg" {
                    "postgres://"
                } else {
                    "mysql://"
                };
                return Err(ConfigError(format!(
                    "DB_CONNECTION_STRING must be a {scheme} URL when DB_CLIENT={client}"
                )));
            }
        } else if database.is_none() {
            return Err(ConfigError(format!(
                "DB_DATABASE is required when DB_CLIENT={client} (or give DB_CONNECTION_STRING)"
            )));
        }
        let port = match &port {
            None => default_port,
            Some(p) => p.parse::<u16>().ok().filter(|p| *p > 0).ok_or_else(|| {
                ConfigError(format!(
                    "DB_PORT={p} is not a valid port: use a number from 1 to 65535"
                ))
            })?,
        };
        let host = match (&socket_path, client) {
            (Some(path), "mysql") if path.starts_with('/') => Some(path.clone()),
            (Some(path), "mysql") => {
                return Err(ConfigError(format!(
                    "DB_SOCKET_PATH={path} is not a socket file: give its absolute path"
                )));
            }
            (Some(_), _) => {
                return Err(ConfigError(format!(
                    "DB_SOCKET_PATH is for DB_CLIENT=mysql: with DB_CLIENT={client}, set DB_HOST to the socket's directory"
                )));
            }
            (None, _) => host.clone(),
        };
        Ok(NetworkDatabase {
            host: host.unwrap_or_else(|| "127.0.0.1".to_string()),
            port,
            database: database.clone(),
            user: user.clone(),
            password: password.clone(),
            connection_string: connection_string.clone(),
            pool_max,
        })
    };

    let database = match client.as_str() {
        "pg" => DatabaseConfig::Postgres(network(5432, "pg")?),
        "mysql" => DatabaseConfig::MySql(network(3306, "mysql")?),
        "sqlite3" => {
            if connection_string.is_some() {
                return Err(ConfigError(
                    "DB_CONNECTION_STRING is not used with DB_CLIENT=sqlite3: use DB_FILENAME"
                        .to_string(),
                ));
            }
            DatabaseConfig::Sqlite {
                filename: PathBuf::from(filename.unwrap_or_else(|| "./data/rectus.db".into())),
            }
        }
        other => {
            return Err(ConfigError(format!(
                "DB_CLIENT={other} is not supported: use pg, mysql or sqlite3"
            )));
        }
    };

    let host = match take("HOST") {
        None => IpAddr::from([0, 0, 0, 0]),
        Some(h) if h == "localhost" => IpAddr::from([127, 0, 0, 1]),
        Some(h) => h.parse::<IpAddr>().map_err(|_| {
            ConfigError(format!(
                "HOST={h} is not an address to listen on: use an IP address such as 0.0.0.0 or 127.0.0.1"
            ))
        })?,
    };
    let port = match take("PORT") {
        None => 8055,
        Some(p) => p.parse::<u16>().map_err(|_| {
            ConfigError(format!(
                "PORT={p} is not a valid port: use a number from 0 (any free port) to 65535"
            ))
        })?,
    };
    let public_url = take("PUBLIC_URL").unwrap_or_else(|| "/".to_string());
    if !(public_url.starts_with('/')
        || public_url.starts_with("http://")
        || public_url.starts_with("https://"))
    {
        return Err(ConfigError(format!(
            "PUBLIC_URL={public_url} is not valid: use an http:// or https:// URL, or a path starting with /"
        )));
    }
    let log_level = match take("LOG_LEVEL").as_deref().unwrap_or("info") {
        "trace" => LogLevel::Trace,
        "debug" => LogLevel::Debug,
        "info" => LogLevel::Info,
        "warn" => LogLevel::Warn,
        "error" | "fatal" => LogLevel::Error,
        "silent" => LogLevel::Silent,
        other => {
            return Err(ConfigError(format!(
                "LOG_LEVEL={other} is not supported: use trace, debug, info, warn, error, fatal or silent"
            )));
        }
    };
    let log_style = match take("LOG_STYLE").as_deref().unwrap_or("pretty") {
        "pretty" => LogStyle::Pretty,
        "json" | "raw" => LogStyle::Json,
        other => {
            return Err(ConfigError(format!(
                "LOG_STYLE={other} is not supported: use pretty or json"
            )));
        }
    };
    let admin_email = take("ADMIN_EMAIL").unwrap_or_else(|| "admin@example.com".to_string());
    if !is_plausible_email(&admin_email) {
        return Err(ConfigError(format!(
            "ADMIN_EMAIL={admin_email} is not an e-mail address"
        )));
    }
    let admin_password = take("ADMIN_PASSWORD");
    if admin_password.as_deref() == Some("") {
        return Err(ConfigError(
            "ADMIN_PASSWORD is empty: set a password or leave it unset to have one generated"
                .to_string(),
        ));
    }
    let key = take("KEY").unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    if secret_set_empty {
        return Err(ConfigError(
            "SECRET is empty: set a long random value, or leave it unset to have one generated"
                .into(),
        ));
    }
    let (secret, secret_generated) = match take("SECRET") {
        Some(s) => (s, false),
        None => (random_secret(), true),
    };
    let auth = auth::auth_config(&mut take)?;
    let mut limit = |name: &str, default: i64, min: i64| -> Result<i64, ConfigError> {
        match take(name) {
            None => Ok(default),
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= min || *n == -1)
                .ok_or_else(|| {
                    ConfigError(format!(
                        "{name}={text} is not valid: use a whole number of 1 or more, or -1 for no limit"
                    ))
                }),
        }
    };
    let query_limit_default = limit("QUERY_LIMIT_DEFAULT", 100, 1)?;
    let query_limit_max = limit("QUERY_LIMIT_MAX", -1, 1)?;
    let pg_proxy = wire::pg_proxy(&mut take, matches!(database, DatabaseConfig::Postgres(_)))?;
    let mysql_proxy = wire::mysql_proxy(&mut take, matches!(database, DatabaseConfig::MySql(_)))?;
    let graphql = graphql::graphql(&mut take)?;

    Ok(Config {
        database,
        key,
        secret,
        secret_generated,
        admin_email,
        admin_password,
        host,
        port,
        public_url,
        log_level,
        log_style,
        auth,
        query_limit_default,
        query_limit_max,
        pg_proxy,
        mysql_proxy,
        graphql,
        source: None,
    })
}

/// `true` or `false`; `None` when the setting is not given.
fn flag(name: &str, value: Option<String>) -> Result<Option<bool>, ConfigError> {
    match value.as_deref() {
        None => Ok(None),
        Some("true") => Ok(Some(true)),
        Some("false") => Ok(Some(false)),
        Some(other) => Err(ConfigError(format!(
            "{name}={other} is not valid: use true or false"
        ))),
    }
}

/// Durations as Directus writes them (the `ms` package): `900` (milliseconds), `30s`,
/// `15m`, `12h`, `7d`, `2w`, `1y`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let amount: f64 = text[..digits_end].parse().ok()?;
    let millis = match text[digits_end..].trim() {
        "us" | "µs" => 0.001,
        "" | "ms" => 1.0,
        "s" | "sec" | "secs" | "second" | "seconds" => 1_000.0,
        "m" | "min" | "mins" | "minute" | "minutes" => 60_000.0,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600_000.0,
        "d" | "day" | "days" => 86_400_000.0,
        "w" | "week" | "weeks" => 604_800_000.0,
        "y" | "year" | "years" => 31_557_600_000.0,
        _ => return None,
    };
    let total = amount * millis;
    // In nanoseconds: a fraction of a millisecond is a valid duration (`0.15ms`, `150us`).
    (total.is_finite() && total >= 0.0).then(|| Duration::from_nanos((total * 1e6) as u64))
}

pub fn is_plausible_email(email: &str) -> bool {
    match email.split_once('@') {
        Some((local, domain)) => {
            !local.is_empty()
                && !domain.is_empty()
                && !domain.contains('@')
                && !email.chars().any(char::is_whitespace)
        }
        None => false,
    }
}

fn random_secret() -> String {
    use rand::Rng;
    let bytes: [u8; 32] = rand::rng().random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
