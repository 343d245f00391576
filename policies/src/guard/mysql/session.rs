//! MySQL statements that touch no table: transaction control, an allow-list of session
//! variables, `SET NAMES` in UTF-8, `SHOW WARNINGS`, `USE` of the configured database, and
//! the `SHOW`/`DESCRIBE` statements answered from the schema and permissions. `sql_mode`,
//! character sets other than UTF-8, global scope and user variables are refused.

use sqlparser::ast::{ContextModifier, Expr, ObjectName, Set, Statement, Use, Value};

use super::super::{GuardContext, GuardError, GuardResult, Guarded, StatementKind};
use super::catalog;

/// Session variables a guarded client may set. Nothing that changes how text is read
/// (`sql_mode`, character sets), how writes are checked (`foreign_key_checks`), what is
/// logged, or the protocol's own answers (`session_track_*`).
const SETTABLE: &[&str] = &[
    "autocommit",
    "time_zone",
    "sql_select_limit",
    "sql_safe_updates",
    "max_join_size",
    "transaction_isolation",
    "tx_isolation",
    "transaction_read_only",
    "tx_read_only",
    "net_write_timeout",
    "net_read_timeout",
    "wait_timeout",
    "interactive_timeout",
    "lc_time_names",
    "group_concat_max_len",
    "max_execution_time",
    "max_statement_time",
    "div_precision_increment",
    "sql_notes",
    "sql_warnings",
];

/// `Some` when the statement is a session or catalog statement (checked, printed); `None`
/// when it reads or writes data.
pub fn guard(statement: &Statement, ctx: &GuardContext) -> GuardResult<Option<Guarded>> {
    let done = |sql: String, kind| {
        Ok(Some(Guarded {
            sql,
            kind,
            prepared: None,
            deferred: None,
        }))
    };
    match statement {
        Statement::StartTransaction {
            statements,
            exception,
            ..
        } => {
            if !statements.is_empty() || exception.is_some() {
                return Err(GuardError::not_allowed("a BEGIN ... END block"));
            }
            done(statement.to_string(), StatementKind::Transaction)
        }
        Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => {
            done(statement.to_string(), StatementKind::Transaction)
        }
        Statement::Set(set) => done(set_statement(ctx, set)?, StatementKind::Session),
        // Not even SHOW WARNINGS: MySQL reports conversion warnings with the converted
        // values, which could come from rows outside the row filter.
        // The parser reads other SHOW statements as a list of words (and drops what is no
        // word): only the exact forms of SHOW INDEX and SHOW TABLE STATUS are answered.
        Statement::ShowVariable { variable } => match catalog::show_words(ctx, variable)? {
            Some(sql) => done(sql, StatementKind::Read),
            None => {
                let name = variable
                    .iter()
                    .map(|i| i.value.to_uppercase())
                    .collect::<Vec<_>>()
                    .join(" ");
                Err(GuardError::not_allowed(format!("SHOW {name}")))
            }
        },
        Statement::Use(Use::Object(name) | Use::Database(name) | Use::Schema(name)) => {
            database(ctx, name)?;
            done(
                format!("USE {}", ctx.quoted(ctx.schema_name)),
                StatementKind::Session,
            )
        }
        Statement::ShowTables { .. }
        | Statement::ShowColumns { .. }
        | Statement::ShowDatabases { .. }
        | Statement::ShowSchemas { .. }
        | Statement::ShowCreate { .. }
        | Statement::ExplainTable { .. } => {
            done(catalog::show(ctx, statement)?, StatementKind::Read)
        }
        _ => Ok(None),
    }
}

/// A database name the session may use: only the configured one.
pub fn database(ctx: &GuardContext, name: &ObjectName) -> GuardResult<()> {
    match ctx.parts(name)?.as_slice() {
        [db] if ctx.is_schema(db) => Ok(()),
        _ => Err(GuardError::denied(format!(
            "rectus: only the database {} is served here",
            ctx.schema_name
        ))),
    }
}

/// A character set a guarded session may name: the UTF-8 ones (text is checked as UTF-8).
pub fn charset(name: &str) -> GuardResult<()> {
    match name.to_lowercase().as_str() {
        "utf8mb4" | "utf8" | "utf8mb3" => Ok(()),
        other => Err(GuardError::not_allowed(format!(
            "the character set {other}"
        ))),
    }
}

fn set_statement(ctx: &GuardContext, set: &Set) -> GuardResult<String> {
    match set {
        Set::SingleAssignment {
            scope,
            hivevar: false,
            variable,
            values,
        } => {
            let [value] = values.as_slice() else {
                return Err(GuardError::not_allowed("this SET"));
            };
            assignment(ctx, *scope, variable, value)?;
            Ok(Statement::Set(set.clone()).to_string())
        }
        Set::MultipleAssignments { assignments } => {
            for a in assignments {
                assignment(ctx, a.scope, &a.name, &a.value)?;
            }
            Ok(Statement::Set(set.clone()).to_string())
        }
        // Printed by hand: the parser keeps a collation as raw text.
        Set::SetNames {
            charset_name,
            collation_name,
        } => {
            charset(&charset_name.value)?;
            let mut sql = format!("SET NAMES {}", charset_name.value.to_lowercase());
            if let Some(collation) = collation_name {
                let plain = collation
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !plain || !collation.to_lowercase().starts_with("utf8") {
                    return Err(GuardError::not_allowed(format!(
                        "the collation {collation}"
                    )));
                }
                sql.push_str(&format!(" COLLATE {collation}"));
            }
            Ok(sql)
        }
        Set::SetTransaction {
            snapshot: None,
            session: false,
            ..
        } => Ok(Statement::Set(set.clone()).to_string()),
        _ => Err(GuardError::not_allowed(format!("{set}"))),
    }
}

fn assignment(
    ctx: &GuardContext,
    scope: Option<ContextModifier>,
    variable: &ObjectName,
    value: &Expr,
) -> GuardResult<()> {
    if matches!(scope, Some(ContextModifier::Global)) {
        return Err(GuardError::not_allowed("changing global variables"));
    }
    let parts = ctx.parts(variable)?;
    let name = match parts.as_slice() {
        [scope, name] if matches!(scope.as_str(), "@@session" | "@@local") => name.clone(),
        [name] if name.starts_with("@@") => name.trim_start_matches("@@").to_string(),
        [name] if name.starts_with('@') => {
            return Err(GuardError::not_allowed("user variables (@name)"));
        }
        [name] => name.clone(),
        _ => return Err(GuardError::not_allowed("changing this variable")),
    };
    if !SETTABLE.contains(&name.as_str()) {
        return Err(GuardError::not_allowed(format!(
            "changing the variable {name}"
        )));
    }
    match value {
        Expr::Value(v) if !matches!(v.value, Value::Placeholder(_)) => Ok(()),
        Expr::Identifier(i) if !i.value.starts_with('@') => Ok(()),
        Expr::UnaryOp { expr, .. } if matches!(**expr, Expr::Value(_)) => Ok(()),
        _ => Err(GuardError::not_allowed("a computed value here")),
    }
}
