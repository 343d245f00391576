//! MySQL's allow-lists: built-in functions without side effects, the types a value may be
//! cast to, and the system variables a guarded client may read. User variables (`@x`) are
//! refused everywhere: they carry values and SQL text between statements the guard checks
//! one at a time.

use sqlparser::ast::Ident;

use super::super::read::Walker;
use super::super::{GuardError, GuardResult};

/// Built-in functions callable through the guard (lower case). Nothing that sleeps, locks,
/// reads files, reveals the server's identity or runs SQL text.
const FUNCTIONS: &[&str] = &[
    // aggregates
    "count",
    "sum",
    "avg",
    "min",
    "max",
    "group_concat",
    "json_arrayagg",
    "json_objectagg",
    "bit_and",
    "bit_or",
    "bit_xor",
    "std",
    "stddev",
    "stddev_pop",
    "stddev_samp",
    "variance",
    "var_pop",
    "var_samp",
    // window functions
    "row_number",
    "rank",
    "dense_rank",
    "percent_rank",
    "cume_dist",
    "ntile",
    "lag",
    "lead",
    "first_value",
    "last_value",
    "nth_value",
    // conditional
    "coalesce",
    "ifnull",
    "nullif",
    "if",
    "greatest",
    "least",
    "isnull",
    "interval",
    // math
    "abs",
    "ceil",
    "ceiling",
    "floor",
    "round",
    "truncate",
    "sqrt",
    "pow",
    "power",
    "mod",
    "sign",
    "exp",
    "ln",
    "log",
    "log2",
    "log10",
    "pi",
    "degrees",
    "radians",
    "rand",
    "sin",
    "cos",
    "tan",
    "asin",
    "acos",
    "atan",
    "atan2",
    "cot",
    "conv",
    "crc32",
    "div",
    // strings
    "lower",
    "upper",
    "lcase",
    "ucase",
    "length",
    "char_length",
    "character_length",
    "octet_length",
    "bit_length",
    "substr",
    "substring",
    "substring_index",
    "mid",
    "trim",
    "ltrim",
    "rtrim",
    "replace",
    "concat",
    "concat_ws",
    "left",
    "right",
    "lpad",
    "rpad",
    "locate",
    "instr",
    "position",
    "reverse",
    "repeat",
    "space",
    "md5",
    "sha1",
    "sha",
    "sha2",
    "hex",
    "unhex",
    "ascii",
    "ord",
    "char",
    "field",
    "find_in_set",
    "elt",
    "format",
    "insert",
    "strcmp",
    "soundex",
    "quote",
    "bin",
    "oct",
    "to_base64",
    "from_base64",
    "regexp_like",
    "regexp_replace",
    "regexp_instr",
    "regexp_substr",
    // date and time
    "now",
    "curdate",
    "current_date",
    "curtime",
    "current_time",
    "current_timestamp",
    "localtime",
    "localtimestamp",
    "sysdate",
    "utc_date",
    "utc_time",
    "utc_timestamp",
    "date",
    "time",
    "timestamp",
    "year",
    "month",
    "day",
    "dayofmonth",
    "dayofweek",
    "dayofyear",
    "hour",
    "minute",
    "second",
    "microsecond",
    "week",
    "weekday",
    "weekofyear",
    "yearweek",
    "quarter",
    "monthname",
    "dayname",
    "date_format",
    "time_format",
    "date_add",
    "date_sub",
    "adddate",
    "subdate",
    "addtime",
    "subtime",
    "datediff",
    "timediff",
    "timestampdiff",
    "timestampadd",
    "str_to_date",
    "from_unixtime",
    "unix_timestamp",
    "last_day",
    "makedate",
    "maketime",
    "extract",
    "convert_tz",
    "time_to_sec",
    "sec_to_time",
    "to_days",
    "from_days",
    "to_seconds",
    "period_add",
    "period_diff",
    "get_format",
    // json
    "json_extract",
    "json_unquote",
    "json_object",
    "json_array",
    "json_contains",
    "json_contains_path",
    "json_length",
    "json_keys",
    "json_type",
    "json_valid",
    "json_depth",
    "json_search",
    "json_set",
    "json_insert",
    "json_replace",
    "json_remove",
    "json_merge",
    "json_merge_patch",
    "json_merge_preserve",
    "json_quote",
    "json_value",
    "json_overlaps",
    "json_pretty",
    "json_compact",
    "json_array_append",
    "json_array_insert",
    // identifiers and session values that say nothing about the server
    "uuid",
    "database",
    "schema",
    "version",
    "last_insert_id",
    "row_count",
    "found_rows",
    "bin_to_uuid",
    "uuid_to_bin",
    "inet_aton",
    "inet_ntoa",
    "inet6_aton",
    "inet6_ntoa",
];

/// Checks a function name: one part (a name qualified with a database would call a stored
/// function), on the allow-list.
pub fn check_function(parts: &[String]) -> GuardResult<()> {
    match parts {
        [name] if FUNCTIONS.contains(&name.as_str()) => Ok(()),
        _ => Err(GuardError::not_allowed(format!(
            "function {}",
            parts.join(".")
        ))),
    }
}

/// Types a value may be cast or converted to.
pub fn allowed_type(printed: &str) -> bool {
    let base = printed
        .trim()
        .split('(')
        .next()
        .unwrap_or("")
        .trim()
        .to_lowercase();
    matches!(
        base.as_str(),
        "signed"
            | "unsigned"
            | "signed integer"
            | "unsigned integer"
            | "int"
            | "integer"
            | "bigint"
            | "char"
            | "nchar"
            | "varchar"
            | "binary"
            | "date"
            | "datetime"
            | "time"
            | "timestamp"
            | "year"
            | "decimal"
            | "numeric"
            | "double"
            | "float"
            | "real"
            | "json"
    )
}

/// System variables a guarded client may read (`@@x`, `@@session.x`): what drivers ask at
/// connect and what describes the session; nothing that names the server's host, files,
/// users or replication.
const READABLE_VARIABLES: &[&str] = &[
    "version",
    "version_comment",
    "version_compile_os",
    "version_compile_machine",
    "protocol_version",
    "max_allowed_packet",
    "net_buffer_length",
    "wait_timeout",
    "interactive_timeout",
    "net_write_timeout",
    "net_read_timeout",
    "autocommit",
    "time_zone",
    "system_time_zone",
    "timestamp",
    "sql_mode",
    "character_set_client",
    "character_set_connection",
    "character_set_results",
    "character_set_server",
    "character_set_database",
    "character_set_system",
    "collation_connection",
    "collation_server",
    "collation_database",
    "tx_isolation",
    "transaction_isolation",
    "tx_read_only",
    "transaction_read_only",
    "in_transaction",
    "lower_case_table_names",
    "auto_increment_increment",
    "auto_increment_offset",
    "license",
    "sql_select_limit",
    "sql_safe_updates",
    "max_join_size",
    "sql_auto_is_null",
    "sql_notes",
    "sql_warnings",
    "div_precision_increment",
    "group_concat_max_len",
    "lc_time_names",
    "max_execution_time",
    "max_statement_time",
    "identity",
    "last_insert_id",
    "default_storage_engine",
    "storage_engine",
    "explicit_defaults_for_timestamp",
    "performance_schema",
    "query_cache_size",
    "query_cache_type",
];

/// Variables drivers read at connect that tell about the database server itself: answered
/// as NULL (`@@socket`: mysql_async would reconnect through the database's own socket;
/// `@@init_connect`: Connector/J reads it, and it holds the server's own SQL).
pub fn answered_as_null(ident: &Ident) -> bool {
    ident.quote_style.is_none()
        && matches!(
            ident.value.to_lowercase().as_str(),
            "@@socket" | "@@init_connect"
        )
}

/// The variable a `@@name` or `@@scope.name` reference reads, if it is readable; `None` for
/// references that are no system variable.
pub fn system_variable(parts: &[&str]) -> Option<GuardResult<()>> {
    let first = parts.first()?;
    let name = first.strip_prefix("@@")?;
    let name = match (name.to_lowercase().as_str(), parts) {
        ("session" | "local", [_, var]) => var.to_lowercase(),
        (_, [_, _]) => return Some(Err(GuardError::not_allowed("global system variables"))),
        (plain, [_]) => plain.to_string(),
        _ => return Some(Err(GuardError::not_allowed("this variable reference"))),
    };
    Some(if READABLE_VARIABLES.contains(&name.as_str()) {
        Ok(())
    } else {
        Err(GuardError::not_allowed(format!("reading @@{name}")))
    })
}

/// An unquoted identifier: a system variable, a user variable (refused), a session
/// keyword that names the upstream user (refused), or a column.
pub fn identifier(w: &Walker, ident: &Ident) -> GuardResult<()> {
    if ident.quote_style.is_none() {
        if let Some(checked) = system_variable(&[ident.value.as_str()]) {
            return checked;
        }
        if ident.value.starts_with('@') {
            return Err(GuardError::not_allowed("user variables (@name)"));
        }
        let lower = ident.value.to_lowercase();
        if matches!(
            lower.as_str(),
            "current_user" | "current_role" | "session_user"
        ) {
            return Err(GuardError::not_allowed(lower.to_uppercase()));
        }
    }
    w.unqualified_column(&ident.value.to_lowercase())
}

/// `a.b` where `a` is a variable (`@@session.autocommit`): `Some` with the verdict.
pub fn qualified_variable(parts: &[Ident]) -> Option<GuardResult<()>> {
    let first = parts.first()?;
    if first.quote_style.is_some() || !first.value.starts_with('@') {
        return None;
    }
    let names: Vec<&str> = parts.iter().map(|p| p.value.as_str()).collect();
    Some(
        system_variable(&names)
            .unwrap_or_else(|| Err(GuardError::not_allowed("user variables (@name)"))),
    )
}
