//! The checks of a write's values against the rules: validation and the create rule on
//! literal rows, and on a prepared INSERT's rows once its parameters' values are known.

use serde_json::{Map, Value as Json};
use sqlparser::ast::{Expr, Value, ValueWithSpan};

use super::{GuardError, GuardResult};
use crate::Action;
use crate::filter::{self, ParseOptions};
use crate::permissions::Rules;

/// Options for reading the permission rules (trusted; `_regex` allowed in validation).
pub(super) fn options<'a>(ctx: &super::GuardContext<'a>) -> ParseOptions<'a> {
    ParseOptions {
        schema: ctx.access.schema,
        variables: ctx.access.variables,
        allow_regex: true,
        access: None,
        root: "permissions",
    }
}

/// Whether values must be checked against the rules (a validation rule, or for creates an
/// item rule) before the write.
pub(super) fn needs_check(
    rules: &Rules,
    table: &str,
    action: Action,
    options: &ParseOptions,
) -> GuardResult<bool> {
    if rules.is_admin() {
        return Ok(false);
    }
    let validation = rules.has_validation();
    let item_rule = action == Action::Create
        && rules
            .item_filter(table, options)
            .map_err(|_| GuardError::table(table))?
            .is_some();
    Ok(validation || item_rule)
}

pub(super) fn check_item(
    rules: &Rules,
    table: &str,
    item: &Json,
    options: &ParseOptions,
) -> GuardResult<()> {
    check_validation(rules, table, item, options)?;
    if let Some(allowed) = rules
        .item_filter(table, options)
        .map_err(|_| GuardError::table(table))?
        && !filter::matches(&allowed, item)
    {
        return Err(GuardError::denied(format!(
            "rectus: the new row is outside what you may create in {table}"
        )));
    }
    Ok(())
}

pub(super) fn check_validation(
    rules: &Rules,
    table: &str,
    item: &Json,
    options: &ParseOptions,
) -> GuardResult<()> {
    rules
        .validate(table, item, options)
        .map_err(|outcome| match outcome {
            crate::permissions::ValidationOutcome::Failed(e) => GuardError {
                code: "23514",
                message: format!(
                    "rectus: validation failed for field \"{}\" of {table}",
                    e.field
                ),
            },
            crate::permissions::ValidationOutcome::Rule(_) => GuardError::table(table),
        })
}

/// The fields the rules' item filters look at (first level: a relational condition names
/// its many-to-one field).
pub(super) fn rule_fields(rules: &Rules) -> Vec<String> {
    let mut fields = Vec::new();
    for json in rules.filters() {
        collect_fields(json, &mut fields);
    }
    fields
}

fn collect_fields(json: &Json, out: &mut Vec<String>) {
    match json {
        Json::Object(map) => {
            for (k, v) in map {
                if k == "_and" || k == "_or" {
                    collect_fields(v, out);
                } else if !k.starts_with('_') {
                    let field = k.split('(').next_back().unwrap_or(k).trim_end_matches(')');
                    out.push(field.to_string());
                }
            }
        }
        Json::Array(items) => items.iter().for_each(|i| collect_fields(i, out)),
        _ => {}
    }
}

/// The rows of an INSERT whose values the rules check, where some come from parameters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Deferred {
    pub(super) table: String,
    pub(super) rows: Vec<Vec<(String, Slot)>>,
    /// How many parameters the checks read (the statement may take more).
    pub(super) parameters: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Slot {
    /// The statement's parameter at this position (0 first).
    Parameter(usize),
    Value(Json),
}

impl Deferred {
    pub fn parameters(&self) -> usize {
        self.parameters
    }
}

pub(super) fn item_of(slots: Vec<(String, Slot)>, parameters: &[Json]) -> Map<String, Json> {
    slots
        .into_iter()
        .map(|(column, slot)| {
            let value = match slot {
                Slot::Value(v) => v,
                Slot::Parameter(i) => parameters.get(i).cloned().unwrap_or(Json::Null),
            };
            (column, value)
        })
        .collect()
}

/// Checks the rows of a prepared INSERT with the values of its parameters, under the
/// caller's current rules, as the guard checks literal rows.
pub fn check_deferred(
    deferred: &Deferred,
    parameters: &[Json],
    ctx: &super::GuardContext,
) -> GuardResult<()> {
    if parameters.len() < deferred.parameters {
        return Err(GuardError::not_allowed(
            "running it with another number of parameters",
        ));
    }
    let table = deferred.table.as_str();
    let rules = ctx
        .access
        .permissions
        .rules(table, Action::Create)
        .ok_or_else(|| GuardError::table(table))?;
    let options = options(ctx);
    for row in &deferred.rows {
        let item = Json::Object(item_of(row.clone(), parameters));
        check_item(&rules, table, &item, &options)?;
    }
    Ok(())
}

/// A literal of the statement as the JSON value the rules compare.
pub(super) fn literal_json(e: &Expr) -> GuardResult<Json> {
    let not_literal = || {
        GuardError::not_allowed(
            "a computed value where the permission checks values (use literals)",
        )
    };
    match e {
        Expr::Value(ValueWithSpan { value, .. }) => match value {
            Value::Number(n, _) => n
                .parse::<serde_json::Number>()
                .map(Json::Number)
                .map_err(|_| not_literal()),
            Value::SingleQuotedString(s)
            | Value::EscapedStringLiteral(s)
            | Value::UnicodeStringLiteral(s) => Ok(Json::String(s.clone())),
            Value::DollarQuotedString(s) => Ok(Json::String(s.value.clone())),
            Value::Boolean(b) => Ok(Json::Bool(*b)),
            Value::Null => Ok(Json::Null),
            _ => Err(not_literal()),
        },
        Expr::UnaryOp {
            op: sqlparser::ast::UnaryOperator::Minus,
            expr,
        } => match literal_json(expr)? {
            Json::Number(n) => format!("-{n}")
                .parse::<serde_json::Number>()
                .map(Json::Number)
                .map_err(|_| not_literal()),
            _ => Err(not_literal()),
        },
        _ => Err(not_literal()),
    }
}

/// A preset value as a literal.
pub(super) fn json_literal(value: &Json) -> Expr {
    let v = match value {
        Json::Null => Value::Null,
        Json::Bool(b) => Value::Boolean(*b),
        Json::Number(n) => Value::Number(n.to_string(), false),
        Json::String(s) => Value::SingleQuotedString(s.clone()),
        other => Value::SingleQuotedString(other.to_string()),
    };
    Expr::Value(v.into())
}
