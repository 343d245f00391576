//! What the SQL wire endpoints ask of the server: logins (e-mail and password, or a token
//! as the password) and a user's current permissions, cached per user until the data model
//! or the permissions change.

use std::sync::Arc;
use std::time::Duration;

use rectus_policies::SchemaOverview;
use rectus_proxy::{Access, AccessError, Directory, Identity, LoginError};

use crate::db::DbError;
use crate::http::AppState;
use crate::services::auth::AuthError;
use crate::services::authz::Snapshot;

/// Permissions are read again at least this often, so `$NOW` in rules stays current.
const ACCESS_TTL: Duration = Duration::from_secs(5);

type Cached = (Arc<Snapshot>, Arc<SchemaOverview>, Arc<Access>);

pub struct WireDirectory {
    state: AppState,
    access: moka::future::Cache<String, Arc<Cached>>,
}

impl WireDirectory {
    pub fn new(state: AppState) -> Self {
        WireDirectory {
            state,
            access: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ACCESS_TTL)
                .build(),
        }
    }

    async fn identity(&self, id: &str, role: Option<&str>) -> Result<Identity, LoginError> {
        let caller = self
            .state
            .authz
            .caller(Some((id, role)), None)
            .await
            .map_err(login_error)?;
        Ok(Identity {
            user: id.to_string(),
            role: role.map(str::to_string),
            admin: caller.accountability.admin,
        })
    }
}

/// A login the database could not answer: unreachable (or no connection free in time) is
/// a connection error for the client; anything else an internal one.
fn login_error(e: DbError) -> LoginError {
    match e {
        DbError::Connect(_) | DbError::Timeout => LoginError::Unavailable(e.to_string()),
        e => LoginError::Internal(e.to_string()),
    }
}

impl Directory for WireDirectory {
    fn generation(&self) -> u64 {
        self.state.generation()
    }

    async fn login(&self, user: &str, password: &str) -> Result<Identity, LoginError> {
        // Service accounts: any user name, a static token as the password. Tried first: as
        // a failed password for the name, every token login would count towards the name's
        // login throttle, and a service connecting a few times in a row (a pool, pgbench)
        // would find its logins refused, and a user's own logins throttled when their
        // e-mail is the name.
        match self.state.auth.authenticate(password).await {
            Ok(found) => return self.identity(&found.id, found.role.as_deref()).await,
            Err(AuthError::Db(e)) => return Err(login_error(e)),
            Err(_) => {}
        }
        match self.state.auth.verify_login(user, password).await {
            Ok(found) => self.identity(&found.id, found.role.as_deref()).await,
            Err(
                AuthError::InvalidCredentials
                | AuthError::UserSuspended
                | AuthError::TooManyAttempts,
            ) => Err(LoginError::Invalid),
            Err(AuthError::Db(e)) => Err(login_error(e)),
            Err(e) => Err(LoginError::Internal(e.to_string())),
        }
    }

    async fn login_token_proof(
        &self,
        proves: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<Identity, LoginError> {
        match self.state.auth.verify_token_proof(proves).await {
            Ok(found) => self.identity(&found.id, found.role.as_deref()).await,
            Err(AuthError::Db(e)) => Err(login_error(e)),
            Err(_) => Err(LoginError::Invalid),
        }
    }

    async fn access(&self, identity: &Identity) -> Result<Arc<Access>, AccessError> {
        let internal = |e: &dyn std::fmt::Display| AccessError::Internal(e.to_string());
        let snapshot = self
            .state
            .authz
            .snapshot()
            .await
            .map_err(|e| internal(&e))?;
        let schema = self.state.schema();
        if let Some(cached) = self.access.get(&identity.user).await
            && Arc::ptr_eq(&cached.0, &snapshot)
            && Arc::ptr_eq(&cached.1, &schema)
        {
            return Ok(cached.2.clone());
        }
        // A session lasts only while its user stays active, as a token would.
        let user = self
            .state
            .auth
            .active_user(&identity.user)
            .await
            .map_err(|e| internal(&e))?
            .ok_or(AccessError::Inactive)?;
        let caller = self
            .state
            .authz
            .caller(Some((&user.id, user.role.as_deref())), None)
            .await
            .map_err(|e| internal(&e))?;
        let access = Arc::new(Access::new(
            schema.clone(),
            caller.permissions,
            caller.variables,
        ));
        self.access
            .insert(
                identity.user.clone(),
                Arc::new((snapshot, schema, access.clone())),
            )
            .await;
        Ok(access)
    }
}

/// The upstream the endpoint connects to: the configured PostgreSQL database and user.
pub fn upstream(
    db: &crate::config::NetworkDatabase,
) -> Result<rectus_proxy::UpstreamConfig, String> {
    if let Some(url) = &db.connection_string {
        let parsed: tokio_postgres::Config = url
            .parse()
            .map_err(|_| "DB_CONNECTION_STRING cannot be read as a PostgreSQL URL".to_string())?;
        let host = parsed
            .get_hosts()
            .first()
            .map(|h| match h {
                tokio_postgres::config::Host::Tcp(h) => h.clone(),
                tokio_postgres::config::Host::Unix(dir) => dir.to_string_lossy().into_owned(),
            })
            .unwrap_or_else(|| "127.0.0.1".into());
        return Ok(rectus_proxy::UpstreamConfig {
            host,
            port: parsed.get_ports().first().copied().unwrap_or(5432),
            user: parsed.get_user().unwrap_or("postgres").to_string(),
            password: parsed
                .get_password()
                .map(|p| String::from_utf8_lossy(p).into_owned()),
            database: parsed.get_dbname().unwrap_or("postgres").to_string(),
        });
    }
    Ok(rectus_proxy::UpstreamConfig {
        host: db.host.clone(),
        port: db.port,
        user: db.user.clone().unwrap_or_else(|| "postgres".into()),
        password: db.password.clone(),
        database: db.database.clone().unwrap_or_else(|| "postgres".into()),
    })
}

/// The schema the server's tables live in (the database user's current schema).
pub async fn current_schema(db: &crate::db::Database) -> Result<String, crate::db::DbError> {
    let row = db
        .query_opt(&crate::db::Stmt::new("SELECT current_schema() AS s"))
        .await?;
    Ok(row
        .and_then(|r| r.value("s").ok().map(|v| v.to_json()))
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| "public".into()))
}

/// The upstream the MySQL endpoint connects to: the configured MySQL or MariaDB database
/// and user.
pub fn mysql_upstream(
    db: &crate::config::NetworkDatabase,
) -> Result<rectus_proxy::UpstreamConfig, String> {
    if let Some(url) = &db.connection_string {
        let opts = mysql_async::Opts::from_url(url)
            .map_err(|_| "DB_CONNECTION_STRING cannot be read as a MySQL URL".to_string())?;
        return Ok(rectus_proxy::UpstreamConfig {
            host: opts.ip_or_hostname().to_string(),
            port: opts.tcp_port(),
            user: opts.user().unwrap_or("root").to_string(),
            password: opts.pass().map(str::to_string),
            database: opts
                .db_name()
                .ok_or("DB_CONNECTION_STRING names no database")?
                .to_string(),
        });
    }
    Ok(rectus_proxy::UpstreamConfig {
        host: db.host.clone(),
        port: db.port,
        user: db.user.clone().unwrap_or_else(|| "root".into()),
        password: db.password.clone(),
        database: db.database.clone().ok_or("DB_DATABASE is required")?,
    })
}

#[cfg(test)]
mod tests {
    use super::upstream;
    use crate::config::NetworkDatabase;

    fn with_url(url: &str) -> NetworkDatabase {
        NetworkDatabase {
            host: "127.0.0.1".into(),
            port: 5432,
            database: None,
            user: None,
            password: None,
            connection_string: Some(url.into()),
            pool_max: 1,
        }
    }

    #[test]
    fn a_connection_string_names_the_endpoints_upstream() {
        let tcp = upstream(&with_url("postgres://ada:pw@db.example:6543/app")).unwrap();
        assert_eq!((tcp.host.as_str(), tcp.port), ("db.example", 6543));
        assert_eq!((tcp.user.as_str(), tcp.database.as_str()), ("ada", "app"));
        assert_eq!(tcp.password.as_deref(), Some("pw"));
        // A socket directory as libpq takes it, in the query string.
        let socket = upstream(&with_url(
            "postgresql://postgres@/app?host=/var/run/postgresql",
        ))
        .unwrap();
        assert_eq!(socket.host, "/var/run/postgresql");
        assert_eq!(socket.port, 5432);
    }
}
