//! Logins, refresh-token rotation, logout, and turning a presented token into a user.
//! A wrong e-mail and a wrong password are indistinguishable, in the answer and in time:
//! an unknown e-mail is checked against a dummy hash, and every login lasts at least
//! `LOGIN_STALL_TIME`. Repeated failures for one e-mail are throttled, per e-mail.

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use sea_query::{Expr, ExprTrait, Query};

use super::authz::{Authz, UserStatus, keep_unless_changed};
use crate::auth::jwt::{Claims, ISSUER, JwtKeys, TokenError};
use crate::auth::password::{self, generate_password};
use crate::auth::tokens::{new_refresh_token, stored_form};
use crate::config::Config;
use crate::db::{Database, DbError, DialectExt};

/// Failures for one e-mail before further attempts wait.
const FREE_FAILURES: u32 = 5;
/// The longest wait between attempts for one e-mail.
const MAX_BACKOFF: Duration = Duration::from_secs(300);

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("Invalid user credentials.")]
    InvalidCredentials,
    #[error("Invalid token.")]
    InvalidToken,
    #[error("Token expired.")]
    TokenExpired,
    #[error("User suspended.")]
    UserSuspended,
    #[error("Too many requests, retry later.")]
    TooManyAttempts,
    #[error(transparent)]
    Db(#[from] DbError),
    #[error("{0}")]
    Internal(String),
}

impl From<TokenError> for AuthError {
    fn from(e: TokenError) -> Self {
        match e {
            TokenError::Expired => AuthError::TokenExpired,
            TokenError::Invalid => AuthError::InvalidToken,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginMode {
    Json,
    Cookie,
    Session,
}

impl LoginMode {
    pub fn parse(mode: Option<&str>) -> Option<LoginMode> {
        match mode {
            None | Some("json") => Some(LoginMode::Json),
            Some("cookie") => Some(LoginMode::Cookie),
            Some("session") => Some(LoginMode::Session),
            Some(_) => None,
        }
    }
}

/// Tokens handed out by a login or a refresh.
#[derive(Debug, Clone)]
pub struct Issued {
    pub access_token: String,
    /// Lifetime of the access token, in milliseconds (Directus's `expires`).
    pub expires_ms: u64,
    pub refresh_token: String,
    pub mode: LoginMode,
}

/// Where a login or refresh comes from, kept on the session.
#[derive(Debug, Clone, Default)]
pub struct Origin {
    pub ip: Option<IpAddr>,
    pub user_agent: Option<String>,
    pub origin: Option<String>,
}

/// An authenticated, active user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    pub id: String,
    pub role: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct Failures {
    count: u32,
    last: Instant,
}

pub struct AuthService {
    db: Database,
    config: Arc<Config>,
    keys: JwtKeys,
    authz: Arc<Authz>,
    failures: moka::sync::Cache<String, Failures>,
    /// The users of live sessions (by the stored form of their token) that session-mode
    /// requests named lately, so that such a request (the Studio's) does not read
    /// `directus_sessions` first. Dropped at logout and rotation; another instance's logout
    /// takes up to [`SESSIONS_KEPT_FOR`] to apply here.
    sessions: moka::future::Cache<String, String>,
    /// Bumped at every logout and rotation, so a session read while one happened is not kept.
    session_changes: std::sync::atomic::AtomicU64,
}

const SESSIONS_KEPT_FOR: Duration = Duration::from_secs(10);

/// A hash of a random password, verified when the e-mail is unknown so that the answer
/// takes as long as for a known e-mail. Made once, like any hash: off the async workers and
/// under the bound on hashes at once.
async fn dummy_hash() -> Result<&'static str, AuthError> {
    static HASH: tokio::sync::OnceCell<String> = tokio::sync::OnceCell::const_new();
    HASH.get_or_try_init(|| password::hash(generate_password()))
        .await
        .map(String::as_str)
        .map_err(|e| AuthError::Internal(e.to_string()))
}

fn now() -> DateTime<Utc> {
    Utc::now()
}

fn expires_in(ttl: Duration) -> DateTime<Utc> {
    now() + chrono::Duration::from_std(ttl).unwrap_or(chrono::Duration::days(7))
}

struct UserRow {
    id: String,
    role: Option<String>,
    status: String,
    password: Option<String>,
}

impl AuthService {
    pub fn new(db: Database, config: Arc<Config>, authz: Arc<Authz>) -> Self {
        let keys = JwtKeys::new(&config.secret);
        AuthService {
            db,
            config,
            keys,
            authz,
            failures: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_idle(Duration::from_secs(900))
                .build(),
            sessions: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SESSIONS_KEPT_FOR)
                .build(),
            session_changes: std::sync::atomic::AtomicU64::new(0),
        }
    }

    pub fn keys(&self) -> &JwtKeys {
        &self.keys
    }

    async fn user_where(&self, column: &str, value: &str) -> Result<Option<UserRow>, DbError> {
        let select = Query::select()
            .columns(["id", "role", "status", "password"])
            .from("directus_users")
            .and_where(Expr::col(column.to_string()).eq(value))
            .limit(1)
            .to_owned();
        let row = self
            .db
            .query_opt(&self.db.dialect().build(&select)?)
            .await?;
        row.map(|r| {
            Ok(UserRow {
                id: r.get("id")?,
                role: r.get("role")?,
                status: r.get("status")?,
                password: r.get("password")?,
            })
        })
        .transpose()
    }

    fn throttled(&self, email: &str) -> bool {
        let Some(f) = self.failures.get(email) else {
            return false;
        };
        if f.count < FREE_FAILURES {
            return false;
        }
        let exponent = Ord::min(f.count - FREE_FAILURES, 16);
        let wait = Ord::min(Duration::from_secs(1u64 << exponent), MAX_BACKOFF);
        f.last.elapsed() < wait
    }

    fn record_failure(&self, email: &str) {
        let count = self.failures.get(email).map_or(0, |f| f.count) + 1;
        self.failures.insert(
            email.to_string(),
            Failures {
                count,
                last: Instant::now(),
            },
        );
    }

    pub async fn login(
        &self,
        email: &str,
        password: &str,
        mode: LoginMode,
        origin: Origin,
    ) -> Result<Issued, AuthError> {
        let user = self.verify_login(email, password).await?;
        self.issue(&user, mode, origin).await
    }

    /// Checks an e-mail and password as a login does (throttle, the same time whether the
    /// user exists or not) without starting a session; the SQL endpoints log in with it.
    pub async fn verify_login(&self, email: &str, password: &str) -> Result<AuthUser, AuthError> {
        let started = Instant::now();
        let email = email.trim().to_lowercase();
        let outcome = self.check_credentials(&email, password).await;
        match &outcome {
            Ok(_) => self.failures.invalidate(&email),
            Err(AuthError::InvalidCredentials | AuthError::UserSuspended) => {
                self.record_failure(&email)
            }
            Err(_) => {}
        }
        if let Some(rest) = self.config.auth.login_stall.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        outcome
    }

    /// The active user whose static token passes `proves`, checked as a login is (the same
    /// least time, found or not). The SQL endpoints use it for MySQL's
    /// `mysql_native_password`, whose scramble proves a token without sending it.
    pub async fn verify_token_proof(
        &self,
        proves: &(dyn Fn(&str) -> bool + Send + Sync),
    ) -> Result<AuthUser, AuthError> {
        let started = Instant::now();
        let select = Query::select()
            .columns(["id", "role", "token"])
            .from("directus_users")
            .and_where(Expr::col("token").is_not_null())
            .and_where(Expr::col("status").eq("active"))
            .to_owned();
        let rows = self.db.query(&self.db.dialect().build(&select)?).await;
        let mut found = None;
        for row in rows? {
            let token: Option<String> = row.get("token")?;
            if token.as_deref().is_some_and(|t| !t.is_empty() && proves(t)) {
                found = Some(AuthUser {
                    id: row.get("id")?,
                    role: row.get("role")?,
                });
                break;
            }
        }
        if let Some(rest) = self.config.auth.login_stall.checked_sub(started.elapsed()) {
            tokio::time::sleep(rest).await;
        }
        found.ok_or(AuthError::InvalidCredentials)
    }

    async fn check_credentials(&self, email: &str, password: &str) -> Result<AuthUser, AuthError> {
        if self.throttled(email) {
            return Err(AuthError::TooManyAttempts);
        }
        let user = if email.is_empty() {
            None
        } else {
            self.user_where("email", email).await?
        };
        let hash = match user.as_ref().and_then(|u| u.password.clone()) {
            Some(hash) => hash,
            None => dummy_hash().await?.to_string(),
        };
        let password = password.to_string();
        let matches = password::verify(hash, password)
            .await
            .map_err(|e| AuthError::Internal(e.to_string()))?;
        match user {
            Some(u) if matches && u.password.is_some() => match u.status.as_str() {
                "active" => Ok(AuthUser {
                    id: u.id,
                    role: u.role,
                }),
                "suspended" => Err(AuthError::UserSuspended),
                _ => Err(AuthError::InvalidCredentials),
            },
            _ => Err(AuthError::InvalidCredentials),
        }
    }

    async fn access_token(
        &self,
        user: &AuthUser,
        session: Option<&str>,
        ttl: Duration,
    ) -> Result<(String, u64), AuthError> {
        let caller = self
            .authz
            .caller(Some((&user.id, user.role.as_deref())), None)
            .await?;
        let iat = now().timestamp();
        let claims = Claims {
            id: user.id.clone(),
            role: user.role.clone(),
            app_access: caller.accountability.app,
            admin_access: caller.accountability.admin,
            session: session.map(str::to_string),
            iat,
            exp: iat + ttl.as_secs() as i64,
            iss: ISSUER.into(),
        };
        Ok((self.keys.sign(&claims)?, ttl.as_millis() as u64))
    }

    async fn issue(
        &self,
        user: &AuthUser,
        mode: LoginMode,
        origin: Origin,
    ) -> Result<Issued, AuthError> {
        let refresh_token = new_refresh_token();
        let ttl = self.session_ttl(mode);
        let insert = Query::insert()
            .into_table("directus_sessions")
            .columns(["token", "user", "expires", "ip", "user_agent", "origin"])
            .values_panic([
                stored_form(&refresh_token).into(),
                user.id.clone().into(),
                expires_in(ttl).into(),
                origin.ip.map(|ip| ip.to_string()).into(),
                origin.user_agent.into(),
                origin.origin.into(),
            ])
            .to_owned();
        let dialect = self.db.dialect();
        let mut conn = self.db.acquire().await?;
        // Expired sessions go whenever a new one comes.
        let cleanup = Query::delete()
            .from_table("directus_sessions")
            .and_where(Expr::col("expires").lt(now()))
            .to_owned();
        conn.execute(&dialect.build(&cleanup)?).await?;
        conn.execute(&dialect.build(&insert)?).await?;
        drop(conn);
        self.tokens(user, mode, refresh_token).await
    }

    fn session_ttl(&self, mode: LoginMode) -> Duration {
        match mode {
            LoginMode::Session => self.config.auth.session_ttl,
            _ => self.config.auth.refresh_token_ttl,
        }
    }

    async fn tokens(
        &self,
        user: &AuthUser,
        mode: LoginMode,
        refresh_token: String,
    ) -> Result<Issued, AuthError> {
        let (access_token, expires_ms) = match mode {
            LoginMode::Session => {
                self.access_token(user, Some(&refresh_token), self.config.auth.session_ttl)
                    .await?
            }
            _ => {
                self.access_token(user, None, self.config.auth.access_token_ttl)
                    .await?
            }
        };
        Ok(Issued {
            access_token,
            expires_ms,
            refresh_token,
            mode,
        })
    }

    /// The user of a live session, found by its refresh token.
    async fn session_user(&self, refresh_token: &str) -> Result<AuthUser, AuthError> {
        let select = Query::select()
            .column(("s", "user"))
            .from_as("directus_sessions", "s")
            .and_where(Expr::col(("s", "token")).eq(stored_form(refresh_token)))
            .and_where(Expr::col(("s", "expires")).gt(now()))
            .to_owned();
        let row = self
            .db
            .query_opt(&self.db.dialect().build(&select)?)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        let Some(user_id) = row.get::<Option<String>>("user")? else {
            return Err(AuthError::InvalidCredentials);
        };
        let user = self
            .user_where("id", &user_id)
            .await?
            .ok_or(AuthError::InvalidCredentials)?;
        if user.status != "active" {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(AuthUser {
            id: user.id,
            role: user.role,
        })
    }

    /// The user id of a live session, for a request that names it; the user's own status is
    /// checked by the caller.
    async fn live_session_user(&self, refresh_token: &str) -> Result<String, AuthError> {
        let stored = stored_form(refresh_token);
        if let Some(user) = self.sessions.get(&stored).await {
            return Ok(user);
        }
        let before = self
            .session_changes
            .load(std::sync::atomic::Ordering::Acquire);
        let user = self.session_user(refresh_token).await?.id;
        keep_unless_changed(
            &self.sessions,
            &self.session_changes,
            before,
            &stored,
            &user,
        )
        .await;
        Ok(user)
    }

    /// A session that ends or changes its token stops being kept.
    async fn session_changed(&self, refresh_token: &str) {
        self.session_changes
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        self.sessions.invalidate(&stored_form(refresh_token)).await;
    }

    /// Exchanges a refresh token for new tokens; the old refresh token stops working.
    pub async fn refresh(&self, refresh_token: &str, mode: LoginMode) -> Result<Issued, AuthError> {
        let user = self.session_user(refresh_token).await?;
        let next = new_refresh_token();
        let update = Query::update()
            .table("directus_sessions")
            .value("token", stored_form(&next))
            .value("expires", expires_in(self.session_ttl(mode)))
            .and_where(Expr::col("token").eq(stored_form(refresh_token)))
            .to_owned();
        let result = self.db.execute(&self.db.dialect().build(&update)?).await?;
        self.session_changed(refresh_token).await;
        if result.rows_affected != 1 {
            // Another request rotated it first.
            return Err(AuthError::InvalidCredentials);
        }
        self.tokens(&user, mode, next).await
    }

    /// The refresh token a session-mode cookie carries (its JWT may have expired).
    pub fn session_refresh_token(&self, session_jwt: &str) -> Option<String> {
        self.keys.verify_ignoring_expiry(session_jwt).ok()?.session
    }

    pub async fn logout(&self, refresh_token: &str) -> Result<(), AuthError> {
        let delete = Query::delete()
            .from_table("directus_sessions")
            .and_where(Expr::col("token").eq(stored_form(refresh_token)))
            .to_owned();
        let result = self.db.execute(&self.db.dialect().build(&delete)?).await?;
        self.session_changed(refresh_token).await;
        if result.rows_affected == 0 {
            return Err(AuthError::InvalidCredentials);
        }
        Ok(())
    }

    /// A user's id, role and status, from the cache the permission tables' writes clear.
    async fn user_status(&self, id: &str) -> Result<Option<UserStatus>, AuthError> {
        Ok(self.authz.user(id, || self.status_where("id", id)).await?)
    }

    /// The id, role and status of the user whose `column` is `value`, read now.
    async fn status_where(&self, column: &str, value: &str) -> Result<Option<UserStatus>, DbError> {
        let user = self.user_where(column, value).await?;
        Ok(user.map(|u| UserStatus {
            id: u.id,
            role: u.role,
            status: u.status,
        }))
    }

    /// The user `id` while they are active (not suspended, deleted or archived).
    pub async fn active_user(&self, id: &str) -> Result<Option<AuthUser>, AuthError> {
        Ok(self
            .user_status(id)
            .await?
            .filter(|u| u.status == "active")
            .map(|u| AuthUser {
                id: u.id,
                role: u.role,
            }))
    }

    /// The user a presented token stands for: an access token (JWT) or a static token.
    pub async fn authenticate(&self, token: &str) -> Result<AuthUser, AuthError> {
        let user = if let Some(claims) = self.keys.verify_access(token) {
            let claims = claims?;
            if let Some(session) = &claims.session {
                // Session tokens die with their session (logout, expiry).
                if self.live_session_user(session).await? != claims.id {
                    return Err(AuthError::InvalidToken);
                }
            }
            self.user_status(&claims.id).await?
        } else {
            self.authz
                .user_by_token(token, || self.status_where("token", token))
                .await?
        };
        match user {
            Some(u) if u.status == "active" => Ok(AuthUser {
                id: u.id,
                role: u.role,
            }),
            _ => Err(AuthError::InvalidCredentials),
        }
    }
}
