//! What a guarded session keeps about its statements: the user's permissions as last
//! loaded, and the prepared statements with the permissions they were guarded under.

use std::collections::HashMap;

use bytes::BytesMut;
use rectus_policies::guard::{GuardError, Guarded};

use super::Shared;
use super::frame::cstr;
pub(super) use crate::guarded::SessionAccess;
use crate::{Directory, Identity};

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
        access.get(&*shared.directory, identity).await?;
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

/// The guard's answer for `sql` under the user's current permissions (PostgreSQL).
pub(super) async fn guarded<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
    prepared: bool,
) -> Result<Vec<Guarded>, GuardError> {
    let guarding = crate::guarded::Guarding {
        cache: &shared.guarded,
        templates: &shared.templates,
        schema_name: &shared.config.schema_name,
        dialect: rectus_policies::Dialect::Postgres,
    };
    guarding
        .guard(&*shared.directory, access, identity, sql, prepared)
        .await
}
