//! The permission data every request needs — roles, access rows, policies, permission rows —
//! read from the database once and cached (moka). Every change rectus makes to those tables
//! invalidates it; a short time-to-live bounds how long another instance's change takes.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use rectus_policies::accountability::{AccessModel, AccessRecord, PolicyRecord, RoleRecord};
use rectus_policies::filter::Variables;
use rectus_policies::{Accountability, Action, EffectivePermissions, PermissionRecord};
use sea_query::{Expr, ExprTrait, Query};
use serde_json::Value as Json;

use crate::db::{Database, DbError, DialectExt, Row};

/// Tables whose change invalidates the caches.
pub const AUTHZ_TABLES: &[&str] = &[
    "directus_users",
    "directus_roles",
    "directus_access",
    "directus_policies",
    "directus_permissions",
];

const SNAPSHOT_TTL: Duration = Duration::from_secs(10);

pub struct Snapshot {
    pub model: AccessModel,
    pub permissions: Vec<Arc<PermissionRecord>>,
    /// Callers resolved from this snapshot. Resolving one walks the access model and every
    /// rule's JSON (for the `$CURRENT_USER`/`$CURRENT_ROLE` fields it names, which it then
    /// reads from the database) — 2–3% of the server's CPU for a read by key — so it
    /// happens once per caller and snapshot; a new snapshot starts empty, which is how
    /// these follow every change to users, roles and permissions.
    callers: std::sync::RwLock<HashMap<CallerKey, Arc<Caller>>>,
}

/// Who a resolved caller is: the user, their role, and the address policies' IP lists
/// are checked against.
type CallerKey = (Option<String>, Option<String>, Option<IpAddr>);

/// Callers kept per snapshot at most; the set starts again empty when full, so callers
/// from many addresses cannot grow it without bound.
const CALLERS_KEPT: usize = 4096;

pub struct Authz {
    db: Database,
    cache: moka::future::Cache<(), Arc<Snapshot>>,
    /// The role and status of users who presented a signed token, so that a request does
    /// not read `directus_users` every time; dropped with the snapshot.
    users: moka::future::Cache<String, Option<UserStatus>>,
    /// The users behind static tokens seen lately (a token no user has is not kept), so
    /// that a service account's request does not read `directus_users` first; dropped with
    /// the snapshot.
    tokens: moka::future::Cache<String, UserStatus>,
    /// Bumped whenever permissions may have changed, for those who keep derived state.
    generation: std::sync::atomic::AtomicU64,
}

/// What a request needs to know of a user behind a verified token.
#[derive(Debug, Clone)]
pub struct UserStatus {
    pub id: String,
    pub role: Option<String>,
    pub status: String,
}

/// Who is asking, with what they may do, for one request.
#[derive(Debug, Clone)]
pub struct Caller {
    pub accountability: Accountability,
    pub permissions: EffectivePermissions,
    pub variables: Variables,
}

impl Caller {
    pub fn is_admin(&self) -> bool {
        self.accountability.admin
    }

    /// Full access without a user, for the server's own work.
    pub fn system() -> Caller {
        Caller {
            accountability: Accountability {
                admin: true,
                app: true,
                ..Accountability::anonymous(None)
            },
            permissions: EffectivePermissions::admin(),
            variables: Variables::default(),
        }
    }
}

impl Authz {
    pub fn new(db: Database) -> Self {
        Authz {
            db,
            cache: moka::future::Cache::builder()
                .max_capacity(1)
                .time_to_live(SNAPSHOT_TTL)
                .build(),
            users: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SNAPSHOT_TTL)
                .build(),
            tokens: moka::future::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(SNAPSHOT_TTL)
                .build(),
            generation: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// The user `id` from the cache, or from `load` on a miss (one load for all the
    /// requests that miss at once). A value loaded while the users changed answers its
    /// requests but is not kept: it may be a suspended user's old row.
    pub async fn user<F>(
        &self,
        id: &str,
        load: impl FnOnce() -> F,
    ) -> Result<Option<UserStatus>, DbError>
    where
        F: std::future::Future<Output = Result<Option<UserStatus>, DbError>>,
    {
        self.coalesced(&self.users, id, load).await
    }

    /// `cache`'s value for `key`, or `load`'s on a miss, one load for all the requests that
    /// miss at once. A value loaded while the permission tables changed answers its
    /// requests but is not kept: it may come from before the change, and the change's
    /// [`Self::invalidate`] emptied the cache before the load stored it.
    ///
    /// Every request passes here, nearly always to a hit. The load and moka's loading
    /// future are made and boxed only on a miss: held inline, the request's future carried
    /// them, and copying them as it was built was 1–3% of a simple read's CPU (perf; one
    /// order by key, side by side: 0.028–0.029 → 0.026 ms of CPU per request).
    async fn coalesced<K, Q, V, F>(
        &self,
        cache: &moka::future::Cache<K, V>,
        key: &Q,
        load: impl FnOnce() -> F,
    ) -> Result<V, DbError>
    where
        K: std::borrow::Borrow<Q> + std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        Q: ToOwned<Owned = K> + std::hash::Hash + Eq + ?Sized,
        V: Clone + Send + Sync + 'static,
        F: std::future::Future<Output = Result<V, DbError>>,
    {
        if let Some(value) = cache.get(key).await {
            return Ok(value);
        }
        Box::pin(self.load_coalesced(cache, key.to_owned(), load())).await
    }

    async fn load_coalesced<K, V>(
        &self,
        cache: &moka::future::Cache<K, V>,
        key: K,
        load: impl std::future::Future<Output = Result<V, DbError>>,
    ) -> Result<V, DbError>
    where
        K: std::hash::Hash + Eq + Clone + Send + Sync + 'static,
        V: Clone + Send + Sync + 'static,
    {
        let before = self.generation();
        let value =
            cache
                .try_get_with(key.clone(), load)
                .await
                .map_err(|e| match Arc::try_unwrap(e) {
                    Ok(e) => e,
                    Err(shared) => DbError::Decode(shared.to_string()),
                })?;
        if self.generation() != before {
            cache.invalidate(&key).await;
        }
        Ok(value)
    }

    /// The user whose static token is `token`, from the cache or from `load`.
    pub async fn user_by_token<F>(
        &self,
        token: &str,
        load: impl FnOnce() -> F,
    ) -> Result<Option<UserStatus>, DbError>
    where
        F: std::future::Future<Output = Result<Option<UserStatus>, DbError>>,
    {
        if let Some(user) = self.tokens.get(token).await {
            return Ok(Some(user));
        }
        let before = self.generation();
        let user = Box::pin(load()).await?;
        if let Some(user) = &user {
            keep_unless_changed(&self.tokens, &self.generation, before, token, user).await;
        }
        Ok(user)
    }

    pub async fn snapshot(&self) -> Result<Arc<Snapshot>, DbError> {
        self.coalesced(&self.cache, &(), || async {
            load(&self.db).await.map(Arc::new)
        })
        .await
    }

    pub fn invalidate(&self) {
        use std::sync::atomic::Ordering;
        // Before the caches are emptied: a load that raced the change and stored its value
        // after they were emptied finds the generation moved when it checks (`user`,
        // [`keep_unless_changed`]). And after: state derived from the old snapshot by one
        // who read the generation in between is never kept under the final one.
        self.generation.fetch_add(1, Ordering::Release);
        self.cache.invalidate_all();
        self.users.invalidate_all();
        self.tokens.invalidate_all();
        self.generation.fetch_add(1, Ordering::Release);
    }

    pub fn generation(&self) -> u64 {
        self.generation.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Resolves the caller: `user` is `(id, role)` of an authenticated, active user. Their
    /// `$NOW` is the time of this call.
    pub async fn caller(
        &self,
        user: Option<(&str, Option<&str>)>,
        ip: Option<IpAddr>,
    ) -> Result<Caller, DbError> {
        let snapshot = self.snapshot().await?;
        let key: CallerKey = (
            user.map(|(id, _)| id.to_string()),
            user.and_then(|(_, role)| role.map(str::to_string)),
            ip,
        );
        // Every critical section leaves the map whole, so a poisoned lock is still usable.
        let kept = snapshot
            .callers
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&key)
            .cloned();
        let resolved = match kept {
            Some(resolved) => resolved,
            None => {
                // Boxed, as in `coalesced`: taken once per caller and snapshot.
                let resolved = Arc::new(Box::pin(self.resolve(&snapshot, user, ip)).await?);
                let mut callers = snapshot
                    .callers
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner);
                if callers.len() >= CALLERS_KEPT {
                    callers.clear();
                }
                callers.insert(key, resolved.clone());
                resolved
            }
        };
        let mut caller = (*resolved).clone();
        caller.variables.now = chrono::Utc::now();
        caller.variables.clock_read = Default::default();
        Ok(caller)
    }

    async fn resolve(
        &self,
        snapshot: &Snapshot,
        user: Option<(&str, Option<&str>)>,
        ip: Option<IpAddr>,
    ) -> Result<Caller, DbError> {
        let accountability = snapshot.model.accountability(user, ip);
        let permissions =
            EffectivePermissions::for_accountability(&accountability, &snapshot.permissions);
        let variables = self.variables(&accountability, &permissions).await?;
        Ok(Caller {
            accountability,
            permissions,
            variables,
        })
    }

    /// The dynamic variables of the caller; the user's and role's fields are read only when
    /// a permission rule refers to them.
    async fn variables(
        &self,
        accountability: &Accountability,
        permissions: &EffectivePermissions,
    ) -> Result<Variables, DbError> {
        let mut variables = Variables {
            user: accountability.user.clone(),
            role: accountability.role.clone(),
            roles: accountability.roles.clone(),
            policies: accountability.policies.clone(),
            ..Variables::default()
        };
        let wanted = |prefix: &str| -> Vec<String> {
            let mut fields: Vec<String> = permissions
                .records()
                .flat_map(|r| [&r.permissions, &r.validation, &r.presets])
                .flatten()
                .flat_map(|json| Variables::referenced_fields(json, prefix))
                .collect();
            fields.sort();
            fields.dedup();
            fields
        };
        let user_fields = wanted("$CURRENT_USER.");
        let role_fields = wanted("$CURRENT_ROLE.");
        if let Some(user) = &accountability.user {
            variables.user_fields = self.fields_of("directus_users", user, &user_fields).await?;
        }
        if let Some(role) = &accountability.role {
            variables.role_fields = self.fields_of("directus_roles", role, &role_fields).await?;
        }
        Ok(variables)
    }

    /// The named columns of one row, as JSON values; names that are not simple columns of
    /// the table are left out (they resolve to no value).
    async fn fields_of(
        &self,
        table: &str,
        id: &str,
        fields: &[String],
    ) -> Result<std::collections::BTreeMap<String, Json>, DbError> {
        let spec = crate::db::migrations::system_table(table);
        let columns: Vec<&String> = fields
            .iter()
            .filter(|f| spec.is_some_and(|t| t.column(f).is_some()))
            .collect();
        if columns.is_empty() {
            return Ok(Default::default());
        }
        let select = Query::select()
            .columns(columns.iter().map(|c| c.to_string()))
            .from(table.to_string())
            .and_where(Expr::col("id").eq(id))
            .to_owned();
        let row = self
            .db
            .query_opt(&self.db.dialect().build(&select)?)
            .await?;
        let Some(row) = row else {
            return Ok(Default::default());
        };
        Ok(columns
            .into_iter()
            .map(|c| {
                (
                    c.clone(),
                    row.value(c)
                        .map(crate::db::DbValue::to_json)
                        .unwrap_or(Json::Null),
                )
            })
            .collect())
    }

    /// Whether the caller may perform `action` on `collection` at all.
    pub fn allows(caller: &Caller, collection: &str, action: Action) -> bool {
        caller.permissions.rules(collection, action).is_some()
    }
}

/// Keeps what a load read under `key`, unless `changes` (a counter bumped after every change
/// to what such loads read) moved since `before`, read when the load started: a load that
/// overlapped a change (a token replaced, a session ended) may have read the old row, so it
/// answers its own request but is not kept.
pub async fn keep_unless_changed<V: Clone + Send + Sync + 'static>(
    cache: &moka::future::Cache<String, V>,
    changes: &std::sync::atomic::AtomicU64,
    before: u64,
    key: &str,
    value: &V,
) {
    use std::sync::atomic::Ordering;
    if changes.load(Ordering::Acquire) != before {
        return;
    }
    cache.insert(key.to_string(), value.clone()).await;
    // A change between the check and the insert found nothing to drop.
    if changes.load(Ordering::Acquire) != before {
        cache.invalidate(key).await;
    }
}

fn text_list(value: Option<String>) -> Vec<String> {
    value
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// A JSON column: documents on PostgreSQL, text elsewhere. An unreadable document counts as
/// absent, which for a permission row means the row is skipped below.
fn json_column(row: &Row, column: &str) -> Result<Option<Json>, ()> {
    match row.get::<Option<Json>>(column) {
        Ok(v) => Ok(v.filter(|v| !v.is_null())),
        Err(_) => Err(()),
    }
}

async fn load(db: &Database) -> Result<Snapshot, DbError> {
    let dialect = db.dialect();
    let roles = db
        .query(
            &dialect.build(
                &Query::select()
                    .columns(["id", "parent"])
                    .from("directus_roles")
                    .to_owned(),
            )?,
        )
        .await?
        .iter()
        .map(|r| {
            Ok(RoleRecord {
                id: r.get("id")?,
                parent: r.get("parent")?,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let access = db
        .query(
            &dialect.build(
                &Query::select()
                    .columns(["role", "user", "policy", "sort"])
                    .from("directus_access")
                    .to_owned(),
            )?,
        )
        .await?
        .iter()
        .map(|r| {
            Ok(AccessRecord {
                role: r.get("role")?,
                user: r.get("user")?,
                policy: r.get("policy")?,
                sort: r.get("sort")?,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let policies = db
        .query(
            &dialect.build(
                &Query::select()
                    .columns(["id", "admin_access", "app_access", "ip_access"])
                    .from("directus_policies")
                    .to_owned(),
            )?,
        )
        .await?
        .iter()
        .map(|r| {
            Ok(PolicyRecord {
                id: r.get("id")?,
                admin_access: r.get("admin_access")?,
                app_access: r.get("app_access")?,
                ip_access: text_list(r.get("ip_access")?),
            })
        })
        .collect::<Result<_, DbError>>()?;
    let mut permissions = Vec::new();
    for r in db
        .query(
            &dialect.build(
                &Query::select()
                    .columns([
                        "collection",
                        "action",
                        "permissions",
                        "validation",
                        "presets",
                        "fields",
                        "policy",
                    ])
                    .from("directus_permissions")
                    .to_owned(),
            )?,
        )
        .await?
    {
        let action: String = r.get("action")?;
        let collection: String = r.get("collection")?;
        let (Some(action), Ok(filter), Ok(validation), Ok(presets)) = (
            Action::parse(&action),
            json_column(&r, "permissions"),
            json_column(&r, "validation"),
            json_column(&r, "presets"),
        ) else {
            // Fail closed: a row rectus cannot read grants nothing.
            tracing::warn!(%collection, %action, "a permission row cannot be read and is ignored");
            continue;
        };
        permissions.push(Arc::new(PermissionRecord {
            policy: r.get("policy")?,
            collection,
            action,
            permissions: filter,
            validation,
            presets,
            fields: text_list(r.get("fields")?),
        }));
    }
    Ok(Snapshot {
        model: AccessModel {
            roles,
            access,
            policies,
        },
        permissions,
        callers: Default::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::DatabaseConfig;

    fn active(status: &str) -> UserStatus {
        UserStatus {
            id: "u1".into(),
            role: None,
            status: status.into(),
        }
    }

    /// An `Authz` over an empty SQLite database, with the directory that holds it.
    async fn sqlite_authz() -> (tempfile::TempDir, Authz) {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = DatabaseConfig::Sqlite {
            filename: dir.path().join("authz.db"),
        };
        let db = Database::connect(&config).await.expect("sqlite");
        (dir, Authz::new(db))
    }

    /// A user read before a suspension and cached after the caches were emptied would stay
    /// active for the cache's lifetime.
    #[tokio::test]
    async fn a_user_loaded_across_an_invalidate_is_not_kept() {
        let (_dir, authz) = sqlite_authz().await;
        let authz = Arc::new(authz);
        let (started, load_started) = tokio::sync::oneshot::channel::<()>();
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let racing = authz.clone();
        let request = tokio::spawn(async move {
            racing
                .user("u1", || async move {
                    let _ = started.send(());
                    let _ = released.await;
                    Ok(Some(active("active")))
                })
                .await
        });
        load_started.await.expect("load started");
        authz.invalidate();
        release.send(()).expect("release");
        let answered = request.await.expect("task").expect("user");
        assert_eq!(answered.map(|u| u.status).as_deref(), Some("active"));

        let next = authz
            .user("u1", || async { Ok(Some(active("suspended"))) })
            .await
            .expect("user");
        assert_eq!(next.map(|u| u.status).as_deref(), Some("suspended"));
    }

    #[tokio::test]
    async fn a_kept_user_is_answered_without_making_its_load() {
        let (_dir, authz) = sqlite_authz().await;
        let first = authz
            .user("u1", || async { Ok(Some(active("active"))) })
            .await
            .expect("user");
        assert_eq!(first.map(|u| u.status).as_deref(), Some("active"));
        let made = std::cell::Cell::new(false);
        let kept = authz
            .user("u1", || {
                made.set(true);
                async { Ok(Some(active("suspended"))) }
            })
            .await
            .expect("user");
        assert_eq!(kept.map(|u| u.status).as_deref(), Some("active"));
        assert!(!made.get(), "a hit made the load");
    }
}
