//! MySQL statements that touch no table: transaction control, an allow-list of session
//! variables, `SET NAMES` in UTF-8, `SHOW WARNINGS`, `USE` of the configured database, and
//! the `SHOW`/`DESCRIBE` statements answered from the schema and permissions. `sql_mode`
//! is set with the modes that change how text is read left out; character sets other than
//! UTF-8, global scope and user variables are refused.

use sqlparser::ast::{
    ContextModifier, Expr, LockTable, LockTableType, ObjectName, Set, Statement, Use, Value,
};

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
    // How SHOW CREATE TABLE quotes names (rectus writes that answer itself).
    "sql_quote_show_create",
    // Values checked by `result_charset` and `optimizer_switch`.
    "character_set_results",
    "optimizer_switch",
];

/// What `character_set_results` may be: a UTF-8 set, or `binary` (the bytes as stored), as
/// `mysqldump` asks for; results are all a session's text that this changes.
const RESULT_CHARSETS: &[&str] = &["utf8mb4", "utf8", "utf8mb3", "binary"];

/// `optimizer_switch` flags a session may turn on and off (`mysqldump` turns semijoins off
/// around its tablespace query); others could change how the guard's fences are planned.
const OPTIMIZER_FLAGS: &[&str] = &["semijoin"];

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
        Statement::UnlockTables => done(statement.to_string(), StatementKind::Unlock),
        Statement::LockTables { tables } => {
            done(lock_tables(ctx, tables)?, StatementKind::LockSnapshot)
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

/// `LOCK TABLES t READ [LOCAL], …` of tables the user may read, as a guarded session runs
/// it: a reader holding table locks could hold up every writer, so the reads that follow
/// see one consistent snapshot instead (what `mysqldump` locks for), and the session cannot
/// write until `UNLOCK TABLES`, as under a read lock. Write locks are refused.
fn lock_tables(ctx: &GuardContext, tables: &[LockTable]) -> GuardResult<String> {
    for lock in tables {
        if !matches!(lock.lock_type, LockTableType::Read { .. }) {
            return Err(GuardError::not_allowed("LOCK TABLES … WRITE"));
        }
        catalog::table(ctx, &ObjectName::from(vec![lock.table.clone()]))?;
    }
    Ok("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY".into())
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
            if let Some(mode) = sql_mode(ctx, *scope, variable, value)? {
                return Ok(format!("SET SESSION sql_mode = '{mode}'"));
            }
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

/// The session variable a SET names (in lower case, as [`GuardContext::name`] reads it).
fn variable_name(
    ctx: &GuardContext,
    scope: Option<ContextModifier>,
    variable: &ObjectName,
) -> GuardResult<String> {
    if matches!(scope, Some(ContextModifier::Global)) {
        return Err(GuardError::not_allowed("changing global variables"));
    }
    match ctx.parts(variable)?.as_slice() {
        [scope, name] if matches!(scope.as_str(), "@@session" | "@@local") => Ok(name.clone()),
        [name] if name.starts_with("@@") => Ok(name.trim_start_matches("@@").to_string()),
        [name] if name.starts_with('@') => Err(GuardError::not_allowed("user variables (@name)")),
        [name] => Ok(name.clone()),
        _ => Err(GuardError::not_allowed("changing this variable")),
    }
}

/// The `sql_mode` to set for `SET sql_mode = '...'`: the modes asked for, less those that
/// would make the server read the guard's output otherwise ([`guarded_sql_mode`]).
fn sql_mode(
    ctx: &GuardContext,
    scope: Option<ContextModifier>,
    variable: &ObjectName,
    value: &Expr,
) -> GuardResult<Option<String>> {
    if variable_name(ctx, scope, variable)? != "sql_mode" {
        return Ok(None);
    }
    match quoted(value) {
        Some(mode) => Ok(Some(guarded_sql_mode(mode))),
        None => Err(GuardError::not_allowed(
            "sql_mode other than a list of modes",
        )),
    }
}

/// `mode` as guarded sessions run it: the guard prints statements for a server that reads
/// double quotes as strings, backslashes as plain characters and function names followed
/// by their parenthesis, so `ANSI_QUOTES`, `IGNORE_SPACE` and the combination modes that
/// hold them are left out and `NO_BACKSLASH_ESCAPES` is added. Anything but a plain mode
/// name is left out too.
pub fn guarded_sql_mode(mode: &str) -> String {
    let mut modes: Vec<&str> = mode_names(mode)
        .filter(|m| !DROPPED.contains(&m.to_uppercase().as_str()))
        .filter(|m| is_plain(m))
        .collect();
    modes.push("NO_BACKSLASH_ESCAPES");
    modes.join(",")
}

/// Whether a server in `mode` reads text as the guard does: nothing in it is one that
/// [`guarded_sql_mode`] leaves out. A statement printed for a guarded session then reads
/// there as its text reads on a connection in `mode` (an admin's own).
pub fn reads_as_guard(mode: &str) -> bool {
    mode_names(mode).all(|m| is_plain(m) && !DROPPED.contains(&m.to_uppercase().as_str()))
}

/// Modes that change how text is read.
const DROPPED: &[&str] = &[
    "ANSI_QUOTES",
    "IGNORE_SPACE",
    "ANSI",
    "ORACLE",
    "MSSQL",
    "DB2",
    "POSTGRESQL",
    "MAXDB",
    "NO_BACKSLASH_ESCAPES",
];

fn mode_names(mode: &str) -> impl Iterator<Item = &str> {
    mode.split(',').map(str::trim).filter(|m| !m.is_empty())
}

fn is_plain(mode: &str) -> bool {
    mode.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn assignment(
    ctx: &GuardContext,
    scope: Option<ContextModifier>,
    variable: &ObjectName,
    value: &Expr,
) -> GuardResult<()> {
    let name = variable_name(ctx, scope, variable)?;
    if !SETTABLE.contains(&name.as_str()) {
        return Err(GuardError::not_allowed(format!(
            "changing the variable {name}"
        )));
    }
    match name.as_str() {
        "character_set_results" => return result_charset(value),
        "optimizer_switch" => return optimizer_switch(value),
        _ => {}
    }
    match value {
        Expr::Value(v) if !matches!(v.value, Value::Placeholder(_)) => Ok(()),
        Expr::Identifier(i) if !i.value.starts_with('@') => Ok(()),
        Expr::UnaryOp { expr, .. } if matches!(**expr, Expr::Value(_)) => Ok(()),
        _ => Err(GuardError::not_allowed("a computed value here")),
    }
}

/// The text of a string literal.
fn quoted(value: &Expr) -> Option<&str> {
    match value {
        Expr::Value(v) => match &v.value {
            Value::SingleQuotedString(s) | Value::DoubleQuotedString(s) => Some(s),
            _ => None,
        },
        _ => None,
    }
}

/// The text of a string literal or bare word.
fn word(value: &Expr) -> Option<&str> {
    match value {
        Expr::Identifier(i) if i.quote_style.is_none() => Some(&i.value),
        other => quoted(other),
    }
}

fn result_charset(value: &Expr) -> GuardResult<()> {
    let null = matches!(value, Expr::Value(v) if v.value == Value::Null);
    match word(value) {
        Some(name) if RESULT_CHARSETS.contains(&name.to_lowercase().as_str()) => Ok(()),
        _ if null => Ok(()),
        _ => Err(GuardError::not_allowed(format!(
            "the result character set {value}"
        ))),
    }
}

fn optimizer_switch(value: &Expr) -> GuardResult<()> {
    let Some(text) = word(value) else {
        return Err(GuardError::not_allowed("a computed value here"));
    };
    let allowed = |setting: &str| match setting.trim().split_once('=') {
        Some((flag, state)) => {
            OPTIMIZER_FLAGS.contains(&flag.trim().to_lowercase().as_str())
                && matches!(
                    state.trim().to_lowercase().as_str(),
                    "on" | "off" | "default"
                )
        }
        None => setting.trim().eq_ignore_ascii_case("default"),
    };
    if text.split(',').all(allowed) {
        Ok(())
    } else {
        Err(GuardError::not_allowed(format!(
            "optimizer_switch = {value}"
        )))
    }
}

/// `START TRANSACTION WITH CONSISTENT SNAPSHOT` (`mysqldump --single-transaction`), which
/// the parser does not read: the statement as printed, when `sql` is exactly that.
pub fn consistent_snapshot(sql: &str) -> Option<Guarded> {
    let words: Vec<String> = sql
        .trim()
        .trim_end_matches(';')
        .split(|c: char| c.is_ascii_whitespace() || c == ',')
        .filter(|w| !w.is_empty())
        .map(str::to_uppercase)
        .collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let rest =
        words.strip_prefix(&["START", "TRANSACTION", "WITH", "CONSISTENT", "SNAPSHOT"][..])?;
    let access = match rest {
        [] => "",
        ["READ", "ONLY"] => ", READ ONLY",
        ["READ", "WRITE"] => ", READ WRITE",
        _ => return None,
    };
    Some(Guarded {
        sql: format!("START TRANSACTION WITH CONSISTENT SNAPSHOT{access}"),
        kind: StatementKind::Transaction,
        prepared: None,
        deferred: None,
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn guarded_sql_mode_reads_text_one_way() {
        assert_eq!(
            super::guarded_sql_mode(
                "STRICT_TRANS_TABLES,ANSI_QUOTES,IGNORE_SPACE,ANSI,NO_ENGINE_SUBSTITUTION"
            ),
            "STRICT_TRANS_TABLES,NO_ENGINE_SUBSTITUTION,NO_BACKSLASH_ESCAPES"
        );
        assert_eq!(super::guarded_sql_mode(""), "NO_BACKSLASH_ESCAPES");
        assert_eq!(
            super::guarded_sql_mode("no_backslash_escapes, x'; DROP"),
            "NO_BACKSLASH_ESCAPES"
        );
    }

    #[test]
    fn only_modes_that_keep_text_as_the_guard_reads_it_read_as_the_guard() {
        let mariadb = "STRICT_TRANS_TABLES,ERROR_FOR_DIVISION_BY_ZERO,NO_AUTO_CREATE_USER,NO_ENGINE_SUBSTITUTION";
        assert!(super::reads_as_guard(mariadb));
        assert!(super::reads_as_guard(""));
        for mode in [
            "STRICT_TRANS_TABLES,ANSI_QUOTES",
            "no_backslash_escapes",
            "ansi",
            "PIPES_AS_CONCAT,x'y",
        ] {
            assert!(!super::reads_as_guard(mode), "{mode}");
        }
    }
}
