//! `aggregate` and `groupBy`: one statement that groups the caller's rows and lets the
//! database build each group's JSON, shaped as Directus answers (`{"count": 3}` for `*`,
//! `{"sum": {"amount": "20.75"}}` per field, group-by fields as plain keys).

use rectus_policies::filter::{FieldAccess, date_part};
use rectus_policies::{Collection, FieldType};
use sea_query::{Expr, Order, SelectStatement};

use super::fields::Builder;
use super::query::Query;
use super::read::{forbidden_field, invalid};
use super::tree::{Selected, function_field, split_function};
use crate::db::json;
use crate::error::ApiError;

/// One `groupBy` entry: its output key, its SQL and its JSON value.
struct Group {
    names: [String; 2],
    expr: Expr,
    value: Expr,
}

/// Adds the grouping, the aggregate JSON object as `__json` and the group order to
/// `select`, which already reads the collection under the caller's conditions.
pub fn aggregate(
    select: &mut SelectStatement,
    builder: &Builder,
    collection: &Collection,
    query: &Query,
) -> Result<(), ApiError> {
    let groups = query
        .group_by
        .iter()
        .map(|g| group(builder, collection, g))
        .collect::<Result<Vec<_>, _>>()?;
    let mut pairs: Vec<(String, Expr)> = groups
        .iter()
        .map(|g| (g.names[1].clone(), g.value.clone()))
        .collect();
    for (function, fields) in &query.aggregate {
        let mut per_field = Vec::new();
        for field in fields {
            let value = aggregate_value(builder, collection, function, field)?;
            if field == "*" || function == "countAll" {
                pairs.push((function.clone(), value));
            } else {
                per_field.push((field.clone(), value));
            }
        }
        if !per_field.is_empty() {
            pairs.push((
                function.clone(),
                json::aggregate_object_json(builder.dialect, per_field),
            ));
        }
    }
    select.expr_as(json::aggregate_object(builder.dialect, pairs), "__json");
    for g in &groups {
        select.add_group_by([g.expr.clone()]);
    }
    let sort = if query.sort.is_empty() {
        query.group_by.clone()
    } else {
        query.sort.clone()
    };
    for entry in &sort {
        let (name, direction) = match entry.strip_prefix('-') {
            Some(n) => (n, Order::Desc),
            None => (entry.as_str(), Order::Asc),
        };
        let g = groups
            .iter()
            .find(|g| g.names.iter().any(|n| n == name))
            .ok_or_else(|| {
                invalid(format!(
                    "\"sort\": \"{name}\" is not one of the \"groupBy\" fields."
                ))
            })?;
        select.order_by_expr(g.expr.clone(), direction);
    }
    Ok(())
}

fn group(builder: &Builder, collection: &Collection, entry: &str) -> Result<Group, ApiError> {
    let name = collection.collection.as_str();
    let table = name;
    if split_function(entry).is_some() {
        return match function_field(builder.sql.schema, builder.access, collection, entry)? {
            Selected::Date {
                key,
                field,
                function,
            } => {
                let column = builder
                    .sql
                    .column(name, table, &field.field)
                    .map_err(|_| forbidden_field(name, &field.field))?;
                let expr = date_part(builder.dialect, function, column);
                Ok(Group {
                    names: [entry.to_string(), key],
                    value: expr.clone(),
                    expr,
                })
            }
            _ => Err(invalid(format!("\"groupBy\" cannot group by \"{entry}\"."))),
        };
    }
    let field = collection
        .field(entry)
        .filter(|f| builder.access.can_read(name, &f.field))
        .ok_or_else(|| forbidden_field(name, entry))?;
    if field.is_alias() {
        return Err(invalid(format!("\"groupBy\" cannot group by \"{entry}\".")));
    }
    if field.has_special("conceal") || field.kind == FieldType::Hash {
        return Err(forbidden_field(name, entry));
    }
    let column = Expr::col((table.to_string(), field.field.clone()));
    Ok(Group {
        names: [entry.to_string(), entry.to_string()],
        value: json::value(builder.dialect, field.kind, false, column.clone()),
        expr: column,
    })
}

/// The JSON-ready SQL of `function(field)`, refusing fields the caller may not read and
/// functions that make no sense for the field's type.
fn aggregate_value(
    builder: &Builder,
    collection: &Collection,
    function: &str,
    field: &str,
) -> Result<Expr, ApiError> {
    let name = collection.collection.as_str();
    let dialect = builder.dialect;
    let typed = |expr: Expr, kind: FieldType| {
        json::value(
            dialect,
            json::aggregate_type(dialect, function, kind),
            false,
            expr,
        )
    };
    if function == "countAll" || (field == "*" && function == "count") {
        return Ok(typed(Expr::cust("COUNT(*)"), FieldType::Integer));
    }
    if field == "*" {
        return Err(invalid(format!(
            "\"aggregate[{function}]\" needs a field, not \"*\"."
        )));
    }
    let f = collection
        .field(field)
        .filter(|f| builder.access.can_read(name, &f.field))
        .ok_or_else(|| forbidden_field(name, field))?;
    let hidden = f.has_special("conceal") || f.kind == FieldType::Hash;
    if f.is_alias() || (hidden && function != "count") {
        return Err(invalid(format!(
            "\"aggregate[{function}]\" cannot be applied to \"{field}\"."
        )));
    }
    let fits = match function {
        "count" => true,
        "countDistinct" => !matches!(f.kind, FieldType::Json),
        "sum" | "sumDistinct" | "avg" | "avgDistinct" => f.kind.is_numeric(),
        _ => !matches!(
            f.kind,
            FieldType::Boolean
                | FieldType::Json
                | FieldType::Uuid
                | FieldType::Binary
                | FieldType::Csv
                | FieldType::Unknown
        ),
    };
    if !fits {
        return Err(invalid(format!(
            "\"aggregate[{function}]\" cannot be applied to \"{field}\" of type {}.",
            f.kind.as_str()
        )));
    }
    let column = Expr::col((name.to_string(), f.field.clone()));
    let sql = match function {
        "count" => "COUNT(?)",
        "countDistinct" => "COUNT(DISTINCT ?)",
        "sum" => "SUM(?)",
        "sumDistinct" => "SUM(DISTINCT ?)",
        "avg" => "AVG(?)",
        "avgDistinct" => "AVG(DISTINCT ?)",
        "min" => "MIN(?)",
        _ => "MAX(?)",
    };
    let sql = match dialect {
        rectus_policies::Dialect::Postgres => sql.replace('?', "$1"),
        _ => sql.to_string(),
    };
    Ok(typed(Expr::cust_with_exprs(sql, [column]), f.kind))
}
