//! What a guarded session keeps about its statements: the user's permissions as last
//! loaded, and the prepared statements with the permissions they were guarded under.

use std::collections::HashMap;

use bytes::BytesMut;
use pgwire::messages::extendedquery::Bind;
use rectus_policies::guard::{Deferred, GuardError, Guarded};

use super::Shared;
use super::frame::cstr;
pub(super) use crate::guarded::SessionAccess;
use crate::{Directory, Identity};

/// A protocol-level prepared statement as the guard left it.
#[derive(Clone)]
pub(super) struct Statement {
    pub(super) text: String,
    /// Shared with the reads sent on the shared connections ([`super::shared`]).
    pub(super) rewrite: std::sync::Arc<str>,
    /// A read with nothing deferred: it may go to a shared connection.
    pub(super) shareable: bool,
    /// The generation of the permissions it was guarded under.
    pub(super) generation: u64,
    /// What the rules check in its parameters when it runs.
    pub(super) deferred: Option<Deferred>,
    /// Parameter types the client gave in Parse (0: left to the database).
    pub(super) types: Vec<u32>,
}

/// The prepared statements of a session and the generation of the permissions they were
/// guarded under: a statement guarded before permissions or the schema changed is guarded
/// again before it runs and refused if its rewrite would differ (SQL-level ones, whose text
/// is not kept, are refused).
#[derive(Default)]
pub(super) struct Prepared {
    /// Protocol-level statements by name.
    pub(super) protocol: HashMap<String, Statement>,
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
        name: &str,
    ) -> Result<(), GuardError> {
        let Some(generation) = self.protocol.get(name).map(|s| s.generation) else {
            return Ok(());
        };
        access.get(&*shared.directory, identity).await?;
        let current = access.generation().unwrap_or(generation);
        if current == generation {
            return Ok(());
        }
        // Only a statement to guard again is copied (this runs before every Bind).
        let Some(statement) = self.protocol.get(name).cloned() else {
            return Ok(());
        };
        let again = guarded(shared, access, identity, &statement.text, true).await?;
        match again.as_slice() {
            [g] if *g.sql == *statement.rewrite && g.deferred == statement.deferred => {
                let statement = Statement {
                    generation: current,
                    ..statement
                };
                self.protocol.insert(name.to_string(), statement);
                Ok(())
            }
            _ => {
                self.protocol.remove(name);
                Err(changed(name))
            }
        }
    }

    /// What a prepared write leaves to its parameters is checked with the values a Bind
    /// gives them, read by the types from Parse or the database's ParameterDescription.
    pub(super) async fn check_bind<D: Directory>(
        &self,
        shared: &Shared<D>,
        access: &mut SessionAccess,
        identity: &Identity,
        name: &str,
        frame: &[u8],
        described: &std::sync::Mutex<HashMap<String, Vec<u32>>>,
    ) -> Result<(), GuardError> {
        let Some(statement) = self.protocol.get(name) else {
            return Ok(());
        };
        let Some(deferred) = &statement.deferred else {
            return Ok(());
        };
        let unreadable = || GuardError::not_allowed("parameters rectus cannot read");
        let mut bytes = BytesMut::from(frame);
        let bind: Bind = super::frame::decode(&mut bytes).map_err(|_| unreadable())?;
        let inferred = crate::lock(described).get(name).cloned();
        let types: Vec<u32> = (0..bind.parameters.len())
            .map(|i| match statement.types.get(i) {
                Some(&oid) if oid != 0 => oid,
                _ => inferred
                    .as_ref()
                    .and_then(|t| t.get(i))
                    .copied()
                    .unwrap_or(0),
            })
            .collect();
        let values = super::params::decode(&bind.parameters, &bind.parameter_format_codes, &types)
            .ok_or_else(unreadable)?;
        guarding(shared)
            .check(&*shared.directory, access, identity, deferred, &values)
            .await
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
    guarding(shared)
        .guard(&*shared.directory, access, identity, sql, prepared)
        .await
}

/// The guard's answer for a text sent as a query; with `bind`, a templated read comes with
/// its parameters for the extended protocol.
pub(super) async fn guarded_text<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
    bind: bool,
) -> Result<crate::guarded::TextAnswer, GuardError> {
    guarding(shared)
        .guard_text(&*shared.directory, access, identity, sql, bind)
        .await
}

/// An admin session's text as a read for a shared connection ([`super::admin_reads`]).
pub(super) async fn admin_text_read<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
) -> Option<rectus_policies::guard::template::Bound> {
    guarding(shared)
        .admin_read(&*shared.directory, access, identity, sql)
        .await
}

fn guarding<D>(shared: &Shared<D>) -> crate::guarded::Guarding<'_> {
    crate::guarded::Guarding {
        cache: &shared.guarded,
        templates: &shared.templates,
        schema_name: &shared.config.schema_name,
        dialect: rectus_policies::Dialect::Postgres,
    }
}
