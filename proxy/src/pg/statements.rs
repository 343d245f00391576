//! What a guarded session keeps about its statements: the user's permissions as last
//! loaded, and the prepared statements with the permissions they were guarded under.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rectus_policies::ReadAccess;
use rectus_policies::guard::{GuardContext, GuardError, Guarded, guard_pg};

use super::frame::cstr;
use super::{Access, Directory, Identity, Shared};

/// A session's copy of its user's permissions: asked for again when the server says they
/// may have changed, and at least every second (rules can name `$NOW`, and changes made
/// straight in the database reach the server's own cache on a timer).
#[derive(Default)]
pub(super) struct SessionAccess {
    held: Option<(u64, Instant, Arc<Access>)>,
}

const ACCESS_REFRESH: Duration = Duration::from_secs(1);

impl SessionAccess {
    pub(super) async fn get<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        identity: &Identity,
    ) -> Result<Arc<Access>, GuardError> {
        let generation = shared.directory.generation();
        if let Some((held_generation, at, access)) = &self.held
            && *held_generation == generation
            && at.elapsed() < ACCESS_REFRESH
        {
            return Ok(access.clone());
        }
        match shared.directory.access(identity).await {
            Ok(access) => {
                self.held = Some((generation, Instant::now(), access.clone()));
                Ok(access)
            }
            Err(super::AccessError::Inactive) => Err(GuardError::denied(
                "rectus: the user of this session is no longer active",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load permissions for a wire session");
                Err(GuardError::denied("rectus: permissions are unavailable"))
            }
        }
    }

    /// The server's generation of the permissions last used.
    pub(super) fn generation(&self) -> Option<u64> {
        self.held.as_ref().map(|(g, _, _)| *g)
    }
}

/// The prepared statements of a session and the generation of the permissions they were
/// guarded under: a statement guarded before permissions or the schema changed is guarded
/// again before it runs and refused if its rewrite would differ (SQL-level ones, whose text
/// is not kept, are refused).
#[derive(Default)]
pub(super) struct Prepared {
    /// Protocol-level: name -> (text, rewrite, generation).
    pub(super) protocol: HashMap<String, (String, String, u64)>,
    /// SQL-level (`PREPARE name`): name -> generation.
    sql: HashMap<String, u64>,
}

impl Prepared {
    pub(super) fn sql_level(
        &mut self,
        list: Vec<Guarded>,
        generation: u64,
    ) -> Result<Vec<Guarded>, GuardError> {
        use rectus_policies::guard::PreparedName;
        for g in &list {
            match &g.prepared {
                Some(PreparedName::Runs(name))
                    if self.sql.get(name).is_some_and(|p| *p != generation) =>
                {
                    return Err(changed(name));
                }
                Some(PreparedName::Defines(name)) => {
                    self.sql.insert(name.clone(), generation);
                }
                _ => {}
            }
        }
        Ok(list)
    }

    pub(super) async fn recheck<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        access: &mut SessionAccess,
        identity: &Identity,
        statement: &str,
    ) -> Result<(), GuardError> {
        let Some((text, rewrite, generation)) = self.protocol.get(statement).cloned() else {
            return Ok(());
        };
        access.get(shared, identity).await?;
        let current = access.generation().unwrap_or(generation);
        if current == generation {
            return Ok(());
        }
        let again = guarded(shared, access, identity, &text, true).await?;
        match again.as_slice() {
            [g] if g.sql == rewrite => {
                self.protocol
                    .insert(statement.to_string(), (text, rewrite, current));
                Ok(())
            }
            _ => {
                self.protocol.remove(statement);
                Err(changed(statement))
            }
        }
    }
}

fn changed(name: &str) -> GuardError {
    GuardError::denied(format!(
        "rectus: prepared statement \"{name}\" was prepared under permissions that have changed; prepare it again"
    ))
}

/// The statement name of a Bind frame (after the portal name).
pub(super) fn bind_statement(frame: &[u8]) -> String {
    let mut body = BytesMut::from(&frame[5..]);
    let _portal = cstr(&mut body);
    cstr(&mut body).unwrap_or_default()
}

/// The guard's answer for `sql` under the user's current permissions. Prepared statements
/// are cached per text and permission set; simple queries mostly carry their values as
/// literals, so their texts rarely repeat and are not kept.
pub(super) async fn guarded<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
    prepared: bool,
) -> Result<Vec<Guarded>, GuardError> {
    let access = access.get(shared, identity).await?;
    let run = || {
        let ctx = GuardContext {
            access: ReadAccess {
                schema: &access.schema,
                permissions: &access.permissions,
                variables: &access.variables,
            },
            schema_name: &shared.config.schema_name,
            derived: Some(&access.derived),
            dialect: rectus_policies::Dialect::Postgres,
        };
        guard_pg(sql, &ctx)
    };
    if !prepared {
        return run();
    }
    let answer = shared
        .guarded
        .get_with((access.id, sql.to_string()), || Arc::new(run()));
    (*answer).clone()
}
