//! Statements that touch no table: transaction control, an allow-list of session settings,
//! and prepared-statement bookkeeping. Identity, search path and text-reading settings are
//! refused.

use sqlparser::ast::{Expr, Reset, Set, Statement, Value};

use super::functions;
use super::{GuardContext, GuardError, GuardResult, Guarded, PreparedName, StatementKind};

/// `Some` when the statement is a session statement (allowed and printed back); `None` when
/// it reads or writes data and goes to the data walk.
pub fn guard(statement: &Statement, ctx: &GuardContext) -> GuardResult<Option<Guarded>> {
    let kind = match statement {
        Statement::StartTransaction {
            statements,
            exception,
            ..
        } => {
            if !statements.is_empty() || exception.is_some() {
                return Err(GuardError::not_allowed("a BEGIN ... END block"));
            }
            StatementKind::Transaction
        }
        Statement::Commit { .. }
        | Statement::Rollback { .. }
        | Statement::Savepoint { .. }
        | Statement::ReleaseSavepoint { .. } => StatementKind::Transaction,
        Statement::Set(set) => {
            set_statement(ctx, set)?;
            StatementKind::Session
        }
        Statement::ShowVariable { variable } => {
            let name = variable
                .iter()
                .map(|i| i.value.to_lowercase())
                .collect::<Vec<_>>()
                .join(" ");
            if !functions::showable(&name) {
                return Err(GuardError::not_allowed(format!("SHOW {name}")));
            }
            StatementKind::Session
        }
        Statement::Reset(reset) => match &reset.reset {
            Reset::ConfigurationParameter(name) => {
                setting(&ctx.parts(name)?.join("."))?;
                StatementKind::Session
            }
            _ => return Err(GuardError::not_allowed("RESET of this setting")),
        },
        Statement::Deallocate { .. } => StatementKind::Session,
        Statement::Execute {
            name: Some(_),
            parameters,
            immediate: false,
            into,
            using,
            output: false,
            default: false,
            ..
        } => {
            if !into.is_empty() || !using.is_empty() {
                return Err(GuardError::not_allowed("EXECUTE ... INTO/USING"));
            }
            // A statement prepared by this session was guarded when it was prepared; its
            // arguments must be plain values.
            for p in parameters {
                literal(p)?;
            }
            StatementKind::Session
        }
        _ => return Ok(None),
    };
    let prepared = match statement {
        Statement::Execute {
            name: Some(name), ..
        } => Some(PreparedName::Runs(ctx.parts(name)?.join("."))),
        _ => None,
    };
    Ok(Some(Guarded {
        sql: statement.to_string(),
        kind,
        prepared,
        deferred: None,
    }))
}

fn set_statement(ctx: &GuardContext, set: &Set) -> GuardResult<()> {
    match set {
        Set::SingleAssignment {
            hivevar: false,
            variable,
            values,
            ..
        } => {
            setting(&ctx.parts(variable)?.join("."))?;
            values.iter().try_for_each(literal)
        }
        Set::SetTimeZone { value, .. } => literal(value),
        Set::SetTransaction { snapshot: None, .. } => Ok(()),
        _ => Err(GuardError::not_allowed(format!("{set}"))),
    }
}

fn setting(name: &str) -> GuardResult<()> {
    if functions::settable(name) {
        Ok(())
    } else {
        Err(GuardError::not_allowed(format!(
            "changing the setting {name}"
        )))
    }
}

/// A setting's value or a prepared statement's argument: a literal, a bare word
/// (`SET datestyle = ISO`), or a signed number.
fn literal(e: &Expr) -> GuardResult<()> {
    match e {
        Expr::Value(v) if !matches!(v.value, Value::Placeholder(_)) => Ok(()),
        Expr::Identifier(_) => Ok(()),
        Expr::UnaryOp { expr, .. } if matches!(**expr, Expr::Value(_)) => Ok(()),
        _ => Err(GuardError::not_allowed("a computed value here")),
    }
}
