//! The SQL guard: statements received on a wire endpoint, checked against one caller's
//! permissions and rewritten from the parsed AST (never by splicing text) so that the
//! database only ever sees what the caller may see.
//!
//! Every reference to a user table becomes a derived table that selects only the readable
//! columns under the read permission's row predicate; writes get the write rules; anything
//! the guard does not understand is refused. Fail closed.

mod catalog;
mod columns;
mod expr;
mod fence;
mod functions;
mod mysql;
mod printed;
mod read;
mod relation;
mod row_checks;
mod session;
pub mod template;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_mysql;
#[cfg(test)]
mod tests_template;
mod write;

use sqlparser::ast::{Ident, ObjectName, ObjectNamePart, Statement};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;

use crate::access::ReadAccess;
use crate::{Collection, Dialect, Field};
pub use mysql::session::{guarded_sql_mode, reads_as_guard};
pub use row_checks::{Deferred, check_deferred};

/// SQLSTATE codes the guard answers with.
pub mod sqlstate {
    pub const INSUFFICIENT_PRIVILEGE: &str = "42501";
    pub const SYNTAX_ERROR: &str = "42601";
    pub const FEATURE_NOT_SUPPORTED: &str = "0A000";
}

/// A refused statement: the SQLSTATE and the message the client sees.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct GuardError {
    pub code: &'static str,
    pub message: String,
}

impl GuardError {
    pub fn denied(message: impl Into<String>) -> Self {
        GuardError {
            code: sqlstate::INSUFFICIENT_PRIVILEGE,
            message: message.into(),
        }
    }

    pub fn table(name: &str) -> Self {
        Self::denied(format!("permission denied for table {name}"))
    }

    pub fn column(column: &str, table: &str) -> Self {
        Self::denied(format!(
            "permission denied for column {column} of table {table}"
        ))
    }

    pub fn not_allowed(what: impl std::fmt::Display) -> Self {
        Self::denied(format!("rectus: {what} is not allowed"))
    }
}

pub type GuardResult<T> = Result<T, GuardError>;

/// What the guard checks against: the caller's read access (schema, permissions,
/// variables), the schema (PostgreSQL) or database (MySQL) user tables live in, and the
/// SQL dialect of the wire endpoint.
#[derive(Clone, Copy)]
pub struct GuardContext<'a> {
    pub access: ReadAccess<'a>,
    /// The upstream schema (`public`) or database: every table reference is qualified
    /// with it.
    pub schema_name: &'a str,
    /// Derived tables built before under the same permissions, when the caller keeps them.
    pub derived: Option<&'a DerivedCache>,
    /// `Postgres` or `MySql` (MySQL and MariaDB); SQLite has no wire endpoint.
    pub dialect: Dialect,
    /// Whether a write whose rules check values may take them from parameters, checked
    /// when the statement runs ([`Guarded::deferred`]); only for callers that check them.
    pub deferred_checks: bool,
}

impl<'a> GuardContext<'a> {
    fn mysql(&self) -> bool {
        self.dialect == Dialect::MySql
    }

    /// The name an identifier resolves to, for comparing: PostgreSQL folds unquoted names
    /// to lower case; MySQL compares column names without case (and the guard resolves
    /// table names the same way, printing the schema's own spelling).
    pub(crate) fn name(&self, ident: &Ident) -> String {
        if self.mysql() {
            ident.value.to_lowercase()
        } else {
            ident_name(ident)
        }
    }

    /// An identifier as the database names the object, for printing it quoted: PostgreSQL
    /// folds unquoted names; MySQL keeps them as written.
    pub(crate) fn spelled(&self, ident: &Ident) -> String {
        if self.mysql() {
            ident.value.clone()
        } else {
            ident_name(ident)
        }
    }

    /// The names of an object name's parts; a part that is not a plain identifier is
    /// refused.
    pub(crate) fn parts(&self, name: &ObjectName) -> GuardResult<Vec<String>> {
        name.0
            .iter()
            .map(|part| match part {
                ObjectNamePart::Identifier(ident) => Ok(self.name(ident)),
                ObjectNamePart::Function(_) => Err(GuardError::not_allowed("this object name")),
            })
            .collect()
    }

    /// An identifier quoted the dialect's way.
    pub(crate) fn quoted(&self, name: &str) -> Ident {
        Ident::with_quote(if self.mysql() { '`' } else { '"' }, name)
    }

    /// Whether a resolved name is the configured schema (or database).
    pub(crate) fn is_schema(&self, name: &str) -> bool {
        if self.mysql() {
            name.eq_ignore_ascii_case(self.schema_name)
        } else {
            name == self.schema_name
        }
    }

    /// The collection a resolved table name names.
    pub(crate) fn collection(&self, name: &str) -> Option<&'a Collection> {
        let schema = self.access.schema;
        schema.collection(name).or_else(|| {
            self.mysql().then(|| {
                schema
                    .collections
                    .values()
                    .find(|c| c.collection.eq_ignore_ascii_case(name))
            })?
        })
    }

    /// The field of `collection` a resolved column name names.
    pub(crate) fn field<'c>(&self, collection: &'c Collection, name: &str) -> Option<&'c Field> {
        collection.field(name).or_else(|| {
            self.mysql().then(|| {
                collection
                    .fields
                    .values()
                    .find(|f| f.field.eq_ignore_ascii_case(name))
            })?
        })
    }

    fn parse(&self, sql: &str) -> GuardResult<Vec<Statement>> {
        let parsed = if self.mysql() {
            Parser::parse_sql(&MySqlDialect {}, sql)
        } else {
            Parser::parse_sql(&PostgreSqlDialect {}, sql)
        };
        parsed.map_err(|e| GuardError {
            code: sqlstate::SYNTAX_ERROR,
            message: format!("rectus could not parse the statement: {e}"),
        })
    }
}

/// The derived tables of one permission set, by collection and form; building one compiles
/// the permission filter, so a caller that guards many statements keeps them.
#[derive(Default)]
pub struct DerivedCache(
    std::sync::Mutex<std::collections::HashMap<(String, bool, bool), Box<sqlparser::ast::Query>>>,
);

/// What a guarded statement does, for the wire endpoint's bookkeeping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    Read,
    Write,
    Transaction,
    Session,
    /// MySQL's `LOCK TABLES … READ`, rewritten to start a read-only transaction on a
    /// consistent snapshot: the session ends it at the next `UNLOCK TABLES` ([`Self::Unlock`])
    /// and forgets it at the next transaction statement.
    LockSnapshot,
    /// `UNLOCK TABLES`: ends the snapshot a [`Self::LockSnapshot`] began, when there is one
    /// (`COMMIT`), and otherwise unlocks nothing.
    Unlock,
}

/// One statement of the input, rewritten.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Guarded {
    pub sql: String,
    pub kind: StatementKind,
    /// The SQL-level prepared statement this statement defines or runs, so a session can
    /// tell when one was guarded under permissions that have changed since.
    pub prepared: Option<PreparedName>,
    /// Values the rules must check that only the statement's parameters will give: the
    /// caller checks them ([`check_deferred`]) every time the statement runs.
    pub deferred: Option<Deferred>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PreparedName {
    /// `PREPARE name AS ...`
    Defines(String),
    /// `EXECUTE name`
    Runs(String),
}

/// Parses `sql` in the context's dialect and returns each statement checked and
/// rewritten, in order. One refused statement refuses the whole input, so nothing of it
/// runs.
pub fn guard(sql: &str, ctx: &GuardContext) -> GuardResult<Vec<Guarded>> {
    let read;
    let sql = if ctx.mysql() {
        read = mysql::lexical::unwrap(sql)?;
        if let Some(begin) = mysql::session::consistent_snapshot(&read) {
            return Ok(vec![begin]);
        }
        read.as_ref()
    } else {
        sql
    };
    let statements = ctx.parse(sql)?;
    statements
        .into_iter()
        .enumerate()
        .map(|(i, statement)| guard_statement(statement, ctx, || nth(ctx, sql, i)))
        .collect()
}

/// [`guard`] for a PostgreSQL context.
pub fn guard_pg(sql: &str, ctx: &GuardContext) -> GuardResult<Vec<Guarded>> {
    guard(sql, ctx)
}

/// Statement `i` of `sql`, parsed again.
fn nth(ctx: &GuardContext, sql: &str, i: usize) -> GuardResult<Statement> {
    ctx.parse(sql)?
        .into_iter()
        .nth(i)
        .ok_or_else(|| GuardError::denied("rectus could not guard the statement"))
}

fn guard_statement(
    mut statement: Statement,
    ctx: &GuardContext,
    again: impl FnOnce() -> GuardResult<Statement>,
) -> GuardResult<Guarded> {
    printed::quote_safely(&mut statement, ctx.dialect)?;
    let session = if ctx.mysql() {
        mysql::session::guard(&statement, ctx)?
    } else {
        session::guard(&statement, ctx)?
    };
    if let Some(done) = session {
        printed::check(&done.sql, ctx.dialect)?;
        return Ok(done);
    }
    let prepared = match &statement {
        Statement::Prepare { .. } if ctx.mysql() => {
            return Err(GuardError::not_allowed("PREPARE (use the binary protocol)"));
        }
        Statement::Prepare { name, .. } => Some(PreparedName::Defines(ident_name(name))),
        _ => None,
    };
    // Whether the row filters need the fence is known before the walk, so the statement is
    // rewritten once; should the walk meet a predicate the look-ahead missed, it is parsed
    // again and rewritten with the fence.
    let fence = fence::needs_fence(&statement);
    let (mut rewritten, missed) = rewrite(statement, ctx, fence)?;
    if missed {
        (rewritten, _) = rewrite(again()?, ctx, true)?;
    }
    printed::check(&rewritten.sql, ctx.dialect)?;
    Ok(Guarded {
        prepared,
        ..rewritten
    })
}

/// Rewrites a data statement; the flag says whether it needs the fence it was not given.
fn rewrite(
    mut statement: Statement,
    ctx: &GuardContext,
    fence: bool,
) -> GuardResult<(Guarded, bool)> {
    let mut walker = read::Walker::new(ctx, fence);
    let kind = data_statement(&mut statement, &mut walker)?;
    printed::separate_signs(&mut statement);
    if ctx.mysql() {
        mysql::print::prepare(&mut statement);
    }
    printed::quote_safely(&mut statement, ctx.dialect)?;
    let guarded = Guarded {
        sql: statement.to_string(),
        kind,
        prepared: None,
        deferred: walker.deferred.take(),
    };
    Ok((guarded, !fence && walker.needs_fence))
}

/// Guards a statement that reads or writes table data (also inside EXPLAIN and PREPARE).
fn data_statement(
    statement: &mut Statement,
    walker: &mut read::Walker,
) -> GuardResult<StatementKind> {
    match statement {
        Statement::Query(query) => {
            walker.query(query)?;
            Ok(StatementKind::Read)
        }
        Statement::Insert(insert) => {
            write::insert(walker, insert)?;
            Ok(StatementKind::Write)
        }
        Statement::Update(update) => {
            write::update(walker, update)?;
            Ok(StatementKind::Write)
        }
        Statement::Delete(delete) => {
            write::delete(walker, delete)?;
            Ok(StatementKind::Write)
        }
        Statement::Explain {
            statement: inner,
            options,
            ..
        } => {
            if options.as_ref().is_some_and(|o| !o.is_empty()) {
                return Err(GuardError::not_allowed("EXPLAIN with options"));
            }
            data_statement(inner, walker)?;
            Ok(StatementKind::Read)
        }
        Statement::Prepare {
            statement: inner, ..
        } => {
            data_statement(inner, walker)?;
            Ok(StatementKind::Session)
        }
        other => Err(GuardError::not_allowed(statement_name(other))),
    }
}

/// The statement's leading words, for messages.
fn statement_name(statement: &Statement) -> String {
    let text = statement.to_string();
    let words: Vec<&str> = text.split_whitespace().take(2).collect();
    words.join(" ").to_uppercase()
}

/// PostgreSQL's reading of an identifier: unquoted names fold to lower case.
pub(crate) fn ident_name(ident: &Ident) -> String {
    if ident.quote_style.is_some() {
        ident.value.clone()
    } else {
        ident.value.to_lowercase()
    }
}
