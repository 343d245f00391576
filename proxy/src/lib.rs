//! rectus-proxy: the SQL wire endpoints. Every statement a non-admin client sends is checked
//! and rewritten by the SQL guard in `rectus-policies` before it reaches the database; admin
//! sessions are forwarded as they are.

mod endpoint;
mod guarded;
mod lines;
mod slow;
use guarded::{GuardCache, TemplateCache, guard_cache, template_cache};
pub mod mysql;
pub mod pg;
mod tls;
mod watchdog;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use rectus_policies::filter::Variables;
use rectus_policies::guard::DerivedCache;
use rectus_policies::{EffectivePermissions, SchemaOverview};

pub use endpoint::{EndpointSettings, ProxyError, UpstreamConfig, UpstreamError};
pub use rectus_policies as policies;
pub use tls::TlsError;

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
    /// The database that holds the users cannot be reached: the client hears a connection
    /// error it may retry, not an internal one.
    #[error("{0}")]
    Unavailable(String),
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

    /// Checks a proof of a static token instead of the token itself (the scramble of
    /// MySQL's `mysql_native_password`): the active user whose token `proves` accepts.
    fn login_token_proof(
        &self,
        proves: &(dyn Fn(&str) -> bool + Send + Sync),
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
