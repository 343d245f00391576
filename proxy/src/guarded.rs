//! What guarded sessions of both endpoints share: the user's permissions as last loaded,
//! and the guard's answers cached per statement text and permission set.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rectus_policies::guard::template::Bound;
use rectus_policies::guard::{
    Deferred, GuardContext, GuardError, Guarded, StatementKind, check_deferred, guard, template,
};
use rectus_policies::{Dialect, ReadAccess};

use crate::{Access, Directory, Identity};

/// A session's copy of its user's permissions: asked for again when the server says they
/// may have changed, and at least every second (rules can name `$NOW`, and changes made
/// straight in the database reach the server's own cache on a timer).
#[derive(Default)]
pub(crate) struct SessionAccess {
    held: Option<(u64, Instant, Arc<Access>)>,
}

const ACCESS_REFRESH: Duration = Duration::from_secs(1);

impl SessionAccess {
    pub(crate) async fn get<D: Directory>(
        &mut self,
        directory: &D,
        identity: &Identity,
    ) -> Result<Arc<Access>, GuardError> {
        let generation = directory.generation();
        if let Some((held_generation, at, access)) = &self.held
            && *held_generation == generation
            && at.elapsed() < ACCESS_REFRESH
        {
            return Ok(access.clone());
        }
        match directory.access(identity).await {
            Ok(access) => {
                self.held = Some((generation, Instant::now(), access.clone()));
                Ok(access)
            }
            Err(crate::AccessError::Inactive) => Err(GuardError::denied(
                "rectus: the user of this session is no longer active",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load permissions for a wire session");
                Err(GuardError::denied("rectus: permissions are unavailable"))
            }
        }
    }

    /// Whether the user of an admin session still is an active admin (checked as often as
    /// permissions are loaded): a suspended or demoted admin's passthrough session ends.
    pub(crate) async fn still_admin<D: Directory>(
        &mut self,
        directory: &D,
        identity: &Identity,
    ) -> bool {
        match self.get(directory, identity).await {
            Ok(access) => access.permissions.is_admin(),
            Err(_) => false,
        }
    }

    /// The server's generation of the permissions last used.
    pub(crate) fn generation(&self) -> Option<u64> {
        self.held.as_ref().map(|(g, _, _)| *g)
    }
}

/// Where a session's statements are guarded: the endpoint's cache, the schema (or
/// database) user tables live in, and the dialect.
pub(crate) struct Guarding<'a> {
    pub cache: &'a GuardCache,
    pub templates: &'a TemplateCache,
    pub schema_name: &'a str,
    pub dialect: Dialect,
}

impl Guarding<'_> {
    fn context<'c>(&'c self, access: &'c Access, deferred_checks: bool) -> GuardContext<'c> {
        GuardContext {
            access: ReadAccess {
                schema: &access.schema,
                permissions: &access.permissions,
                variables: &access.variables,
            },
            schema_name: self.schema_name,
            derived: Some(&access.derived),
            dialect: self.dialect,
            deferred_checks,
        }
    }

    /// The guard's answer for `sql` under the user's current permissions. Prepared
    /// statements are cached per text and permission set. Texts sent as queries mostly carry
    /// their values as literals, so their texts rarely repeat: reads are rewritten once per
    /// shape (literals taken out) and permission set, and filled with each text's literals.
    pub(crate) async fn guard<D: Directory>(
        &self,
        directory: &D,
        access: &mut SessionAccess,
        identity: &Identity,
        sql: &str,
        prepared: bool,
    ) -> Result<Vec<Guarded>, GuardError> {
        if !prepared {
            return match self
                .guard_text(directory, access, identity, sql, false)
                .await?
            {
                TextAnswer::Statements(list) => Ok(list),
                // Not asked for.
                TextAnswer::Bound(..) => {
                    Err(GuardError::denied("rectus could not guard the statement"))
                }
            };
        }
        let access = access.get(directory, identity).await?;
        // Prepared statements may leave rule checks to their parameters: both endpoints
        // check them when the statement runs.
        let ctx = self.context(&access, prepared);
        let answer = self
            .cache
            .get_with((access.id, sql.to_string()), || Arc::new(guard(sql, &ctx)));
        (*answer).clone()
    }

    /// The guard's answer for a text sent as a query; with `bind`, a read that has a
    /// template and literals that can be parameters comes as [`Bound`] for the extended
    /// protocol, its text printed only if asked for ([`Filler`]).
    pub(crate) async fn guard_text<D: Directory>(
        &self,
        directory: &D,
        access: &mut SessionAccess,
        identity: &Identity,
        sql: &str,
        bind: bool,
    ) -> Result<TextAnswer, GuardError> {
        let access = access.get(directory, identity).await?;
        let ctx = self.context(&access, false);
        let whole = |sql| guard(sql, &ctx).map(TextAnswer::Statements);
        let Some(shape) = template::shape(sql, self.dialect) else {
            return whole(sql);
        };
        let kept = self.templates.get_with((access.id, shape.key.clone()), || {
            Arc::new(template::template(&shape, &ctx))
        });
        let Some(template) = kept.as_ref().as_ref() else {
            return whole(sql);
        };
        // A MySQL read of what the session's last statement did goes as text: run as a
        // prepared statement, the `PREPARE` before it would be that statement, and on a
        // shared connection another session's statements would be.
        let bind = bind && !(self.dialect == Dialect::MySql && reads_own_results(&shape.key));
        if let Some(bound) = bind.then(|| shape.bind(template)).flatten() {
            return Ok(TextAnswer::Bound(
                bound,
                Filler {
                    shape,
                    template: kept,
                },
            ));
        }
        match shape.fill(template) {
            Some(filled) => Ok(TextAnswer::Statements(vec![read(filled)])),
            None => whole(sql),
        }
    }

    /// An admin session's text as a read for a shared connection: its own text with the
    /// literals that read the same as parameters bound ([`template::template_as_is`]), or
    /// printed whole when none can be. `None` when the guard does not read it as one plain
    /// read.
    pub(crate) async fn admin_read<D: Directory>(
        &self,
        directory: &D,
        access: &mut SessionAccess,
        identity: &Identity,
        sql: &str,
    ) -> Option<Bound> {
        // On MySQL what the session's last statement did, and its `sql_mode` (shared
        // connections run the guarded sessions' one), read otherwise on another connection;
        // the guard refuses user variables and the other session variables that could.
        if self.dialect == Dialect::MySql && (reads_own_results(sql) || names(sql, &["sql_mode"])) {
            return None;
        }
        let access = access.get(directory, identity).await.ok()?;
        let shape = template::shape(sql, self.dialect)?;
        // Kept apart from rewrites: a permission set has one or the other, but a key that
        // says which costs nothing.
        let key = format!("\u{3}{}", shape.key);
        let kept = self.templates.get_with((access.id, key), || {
            Arc::new(template::template_as_is(
                &shape,
                &self.context(&access, false),
            ))
        });
        let template = kept.as_ref().as_ref()?;
        shape.bind(template).or_else(|| {
            Some(Bound {
                sql: shape.fill(template)?,
                types: Vec::new(),
                values: Vec::new(),
            })
        })
    }

    /// Checks what a prepared write left to its parameters, with their values, under the
    /// user's current permissions.
    pub(crate) async fn check<D: Directory>(
        &self,
        directory: &D,
        access: &mut SessionAccess,
        identity: &Identity,
        deferred: &Deferred,
        parameters: &[serde_json::Value],
    ) -> Result<(), GuardError> {
        let access = access.get(directory, identity).await?;
        check_deferred(deferred, parameters, &self.context(&access, true))
    }
}

/// Whether MySQL text names what the session's own statements left behind (the last id
/// inserted, the rows the last statement changed or found). By name anywhere in the text: a
/// table or column of such a name merely has its reads sent as text.
fn reads_own_results(sql: &str) -> bool {
    names(
        sql,
        &["last_insert_id", "row_count", "found_rows", "identity"],
    )
}

/// Whether `sql` holds any of `names` (ASCII, in any case) anywhere.
fn names(sql: &str, names: &[&str]) -> bool {
    names.iter().any(|name| {
        sql.as_bytes()
            .windows(name.len())
            .any(|w| w.eq_ignore_ascii_case(name.as_bytes()))
    })
}

/// The guard's answer for a text sent as a query.
pub(crate) enum TextAnswer {
    Statements(Vec<Guarded>),
    /// A templated read with parameters, and how to print it as text.
    Bound(Bound, Filler),
}

/// A templated read's text, printed only when the extended protocol cannot take it.
pub(crate) struct Filler {
    shape: template::Shape,
    template: Arc<Option<template::Template>>,
}

impl Filler {
    /// The read as text; `None` when it cannot be printed (then the text is guarded as it
    /// is).
    pub(crate) fn read(&self) -> Option<Guarded> {
        let template = self.template.as_ref().as_ref()?;
        self.shape.fill(template).map(read)
    }
}

/// A templated read filled with its literals.
fn read(sql: String) -> Guarded {
    Guarded {
        sql,
        kind: StatementKind::Read,
        prepared: None,
        deferred: None,
    }
}

pub(crate) type GuardCache =
    moka::sync::Cache<(u64, String), Arc<Result<Vec<Guarded>, GuardError>>>;

/// Rewrites of read shapes per permission set (`None`: the shape has none, the text is
/// guarded as it is).
pub(crate) type TemplateCache =
    moka::sync::Cache<(u64, String), Arc<Option<rectus_policies::guard::template::Template>>>;

/// How many bytes of statement text each cache of an endpoint keeps at most.
const CACHE_BYTES: u64 = 16 * 1024 * 1024;

fn weight(key: &(u64, String), text: usize) -> u32 {
    u32::try_from(key.1.len() + text).unwrap_or(u32::MAX)
}

pub(crate) fn guard_cache() -> GuardCache {
    moka::sync::Cache::builder()
        .max_capacity(CACHE_BYTES)
        .weigher(|key, answer: &Arc<Result<Vec<Guarded>, GuardError>>| {
            let text = match answer.as_ref() {
                Ok(list) => list.iter().map(|g| g.sql.len()).sum(),
                Err(e) => e.message.len(),
            };
            weight(key, text)
        })
        .build()
}

pub(crate) fn template_cache() -> TemplateCache {
    moka::sync::Cache::builder()
        .max_capacity(CACHE_BYTES)
        .weigher(
            |key, template: &Arc<Option<rectus_policies::guard::template::Template>>| {
                weight(key, template.as_ref().as_ref().map_or(0, |t| t.len()))
            },
        )
        .build()
}
