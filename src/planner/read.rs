//! A read of items as ONE SQL statement: the caller's row permission, their filter and
//! search, sort, limit and offset, and per item a JSON object built by the database with
//! each field as the caller may see it. The meta counts are their own statements.

use rectus_policies::filter::{
    self, FieldCondition, Filter, FilterError, Operand, Operator, ParseOptions, SqlContext,
};
use rectus_policies::value::{Scalar, coerce};
use rectus_policies::{Action, Collection, Dialect, FieldType, SchemaOverview};
use sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query as Sql, SelectStatement,
};
use serde_json::Value as Json;

use super::access::ReadAccess;
use super::query::Query;
use crate::db::{DialectExt, Stmt, json};
use crate::error::{ApiError, ErrorCode};
use crate::services::authz::Caller;

/// Everything a plan depends on.
pub struct PlanContext<'a> {
    pub schema: &'a SchemaOverview,
    pub dialect: Dialect,
    pub caller: &'a Caller,
    /// `QUERY_LIMIT_DEFAULT`.
    pub default_limit: i64,
    /// `QUERY_LIMIT_MAX`; `-1`: none.
    pub max_limit: i64,
}

/// Lists of at most this many items come from PostgreSQL as one JSON array: the database
/// aggregates them cheaper than it sends a row per item, and rectus reads one value instead
/// of decoding each row. Longer ones (exports with `limit=-1`) stay a row per item, clear
/// of PostgreSQL's 1 GB limit on one value.
const ARRAY_MOST: i64 = 1000;

#[derive(Clone)]
pub struct ReadPlan {
    /// Rows of one column `__json`: one JSON object per item, or with `data_is_array` one
    /// row whose `__json` is the array of them all.
    pub data: Stmt,
    pub data_is_array: bool,
    pub total_count: Option<Stmt>,
    pub filter_count: Option<Stmt>,
    /// A read by key of the rows' own columns under a permission on their own columns: its
    /// work is bounded by the keys, so it may share a connection with other such reads
    /// ([`crate::db::Database::query_small`]).
    pub small: bool,
    /// Keys of the answer's items whose values are PostgreSQL's JSON timestamps, to be put
    /// in Directus's form: [`ReadPlan::finish`].
    pub timestamps: std::sync::Arc<[String]>,
}

impl ReadPlan {
    /// The JSON text the data statement answered, as Directus gives it.
    pub fn finish(&self, json: String) -> String {
        crate::db::timestamps::directus_timestamps(json, &self.timestamps)
    }
}

pub fn filter_error(e: FilterError) -> ApiError {
    match e {
        FilterError::Invalid { .. } => ApiError::new(ErrorCode::InvalidQuery, e.to_string()),
        FilterError::Forbidden { .. } => ApiError::new(ErrorCode::Forbidden, e.to_string()),
    }
}

pub fn forbidden_field(collection: &str, field: &str) -> ApiError {
    filter_error(FilterError::Forbidden {
        collection: collection.to_string(),
        field: field.to_string(),
    })
}

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidQuery,
        format!("Invalid query. {}", message.into()),
    )
}

/// The collection, if it exists and the caller may read it at all.
pub fn readable<'s>(
    schema: &'s SchemaOverview,
    caller: &Caller,
    name: &str,
) -> Result<&'s Collection, ApiError> {
    match schema.collection(name) {
        Some(c) if caller.permissions.rules(name, Action::Read).is_some() => Ok(c),
        _ => Err(ApiError::forbidden()),
    }
}

/// `search`: text fields contain the term (case-insensitively); numeric fields equal it when
/// it is a number, uuid fields when it is a uuid. Only fields the caller may read.
pub(super) fn search_filter(collection: &Collection, access: &ReadAccess, term: &str) -> Filter {
    use rectus_policies::filter::FieldAccess;
    let mut parts = Vec::new();
    for field in collection.fields.values() {
        if field.is_alias()
            || !field.searchable
            || field.has_special("conceal")
            || !access.can_read(&collection.collection, &field.field)
        {
            continue;
        }
        let condition = |operator, operand| {
            Filter::Field(FieldCondition {
                field: field.field.clone(),
                field_type: field.kind,
                function: None,
                operator,
                operand,
            })
        };
        match field.kind {
            FieldType::String | FieldType::Text | FieldType::Csv => {
                parts.push(condition(
                    Operator::IContains,
                    Operand::Value(Scalar::Text(term.to_string())),
                ));
            }
            t if t.is_numeric() => {
                if let Ok(v) = coerce(&Json::String(term.to_string()), t) {
                    parts.push(condition(Operator::Eq, Operand::Value(v)));
                }
            }
            FieldType::Uuid => {
                if let Ok(v) = coerce(&Json::String(term.to_string()), FieldType::Uuid) {
                    parts.push(condition(Operator::Eq, Operand::Value(v)));
                }
            }
            _ => {}
        }
    }
    Filter::Any(parts)
}

/// The primary key value `key` as the key field's type; `None` when it cannot be one.
pub fn key_value(collection: &Collection, key: &Json) -> Option<Scalar> {
    let pk = collection.primary_key_field()?;
    let key = match (pk.kind.is_integer(), key) {
        (true, Json::String(s)) => Json::String(s.trim().to_string()),
        _ => key.clone(),
    };
    coerce(&key, pk.kind).ok().filter(|s| *s != Scalar::Null)
}

pub fn key_condition(collection: &Collection, keys: &[Scalar]) -> Condition {
    let pk = Expr::col((
        collection.collection.clone(),
        collection.primary_key.clone(),
    ));
    Condition::all().add(pk.is_in(keys.iter().map(|k| Expr::val(k.to_sea()))))
}

/// The conditions every read of `collection` by the caller carries: their row permission
/// and, when given, their filter, search and keys.
pub struct Conditions {
    pub permission: Condition,
    pub user: Condition,
}

pub fn conditions(
    ctx: &PlanContext,
    collection: &Collection,
    query: &Query,
    keys: Option<&[Scalar]>,
) -> Result<Conditions, ApiError> {
    let access = super::access::read_access(ctx.schema, ctx.caller);
    let name = collection.collection.as_str();
    let sql = sql_context(ctx, &access);
    let permission = match access.item_filter(name).map_err(rule_error)? {
        None => Condition::all(),
        Some(rows) => {
            filter::to_condition(&rows, name, name, &sql.trusted()).map_err(rule_error)?
        }
    };
    let mut user = Condition::all();
    if let Some(json) = &query.filter {
        let parsed = filter::parse(
            name,
            json,
            &ParseOptions {
                schema: ctx.schema,
                variables: &ctx.caller.variables,
                allow_regex: false,
                access: if ctx.caller.is_admin() {
                    None
                } else {
                    Some(&access)
                },
                root: "filter",
            },
        )
        .map_err(filter_error)?;
        user = user.add(filter::to_condition(&parsed, name, name, &sql).map_err(filter_error)?);
    }
    if let Some(term) = query.search.as_deref().filter(|t| !t.is_empty()) {
        let parsed = search_filter(collection, &access, term);
        user = user.add(filter::to_condition(&parsed, name, name, &sql).map_err(filter_error)?);
    }
    if let Some(keys) = keys {
        user = user.add(key_condition(collection, keys));
    }
    Ok(Conditions { permission, user })
}

/// How the caller's filters become SQL: related rows and fields under their permissions.
fn sql_context<'a>(ctx: &PlanContext<'a>, access: &'a ReadAccess<'a>) -> SqlContext<'a> {
    SqlContext::new(ctx.schema, ctx.dialect)
        .with_related_rows(access)
        .with_field_guard(access)
}

/// A permission rule that cannot be used grants nothing; the caller only learns "forbidden".
pub(super) fn rule_error(e: FilterError) -> ApiError {
    tracing::warn!(error = %e, "a permission rule cannot be applied");
    ApiError::forbidden()
}

pub fn plan_read(
    ctx: &PlanContext,
    collection_name: &str,
    query: &Query,
    keys: Option<&[Scalar]>,
) -> Result<ReadPlan, ApiError> {
    let collection = readable(ctx.schema, ctx.caller, collection_name)?;
    let access = super::access::read_access(ctx.schema, ctx.caller);
    let name = collection.collection.as_str();
    let sql = sql_context(ctx, &access);
    let builder = super::fields::Builder {
        dialect: ctx.dialect,
        access: &access,
        sql: &sql,
        nested_limit: (ctx.default_limit >= 0).then_some(ctx.default_limit as u64),
    };
    let Conditions { permission, user } = conditions(ctx, collection, query, keys)?;

    let mut select = Sql::select();
    select
        .from(name.to_string())
        .cond_where(permission.clone())
        .cond_where(user.clone());
    let mut data_is_array = false;
    let mut small = false;
    let mut timestamps = Vec::new();
    if query.aggregate.is_empty() && query.group_by.is_empty() {
        let tree = super::tree::tree(ctx.schema, &access, collection, &query.fields, &query.alias)?;
        small = keys.is_some()
            && query.filter.is_none()
            && query.search.is_none()
            && query.sort.is_empty()
            && query.deep.is_none()
            && own_columns(&tree)
            && local_rule(&access, name);
        let (pairs, native) = builder.top_pairs(&tree, name, query.deep.as_ref())?;
        timestamps = native;
        let sort = sort_order(&builder, collection, &query.sort)?;
        for (expr, direction) in sort.iter().cloned() {
            select.order_by_expr(expr, direction);
        }
        let limit = page(&mut select, ctx, query, keys.map(<[Scalar]>::len));
        small &= !limit.cut;
        if limit.cut {
            // The page is cut first and only its rows become JSON: the databases otherwise
            // build the JSON of every matching row before sorting them.
            select.column((Alias::new(name), Asterisk));
            let mut outer = Sql::select();
            outer.from_subquery(select, Alias::new(name));
            let short = limit.rows.is_some_and(|n| n <= ARRAY_MOST);
            let array = match (keys, short) {
                (None, true) => json::object_array_text(ctx.dialect, &pairs, outer.clone()),
                _ => None,
            };
            match array {
                Some(array) => {
                    select = array;
                    data_is_array = true;
                }
                None => {
                    for (expr, direction) in sort {
                        outer.order_by_expr(expr, direction);
                    }
                    select = json::object_rows(ctx.dialect, pairs, outer);
                }
            }
        } else {
            select = json::object_rows(ctx.dialect, pairs, select);
        }
    } else {
        super::aggregate::aggregate(&mut select, &builder, collection, query)?;
        page(&mut select, ctx, query, keys.map(<[Scalar]>::len));
    }

    let count = |with_user: bool| -> Result<Stmt, ApiError> {
        let mut s = Sql::select();
        s.expr_as(Expr::cust("COUNT(*)"), "count")
            .from(name.to_string())
            .cond_where(permission.clone());
        if with_user {
            s.cond_where(user.clone());
        }
        ctx.dialect.build(&s).map_err(ApiError::from)
    };
    Ok(ReadPlan {
        data: ctx.dialect.build(&select)?,
        data_is_array,
        total_count: query
            .wants_meta("total_count")
            .then(|| count(false))
            .transpose()?,
        filter_count: query
            .wants_meta("filter_count")
            .then(|| count(true))
            .transpose()?,
        small,
        timestamps: timestamps.into(),
    })
}

/// Whether a read selects only its rows' own columns (no relation, count or alias).
fn own_columns(tree: &super::tree::Tree) -> bool {
    tree.selected.iter().all(|(_, s)| {
        matches!(
            s,
            super::tree::Selected::Column(_) | super::tree::Selected::Date { .. }
        )
    })
}

/// Whether the caller's read rule on `collection` looks at its own columns only.
fn local_rule(access: &super::access::ReadAccess, collection: &str) -> bool {
    access
        .item_filter(collection)
        .is_ok_and(|rule| rule.is_none_or(|f| f.is_local()))
}

/// The read-back of an item being created, for a statement that writes it in a CTE named
/// like its collection (`WITH "orders" AS (INSERT … RETURNING *)`), which shadows the table:
/// the JSON [`plan_read`] gives for that key, from the new row. `None` when the read reaches
/// more than the row's own columns (relations, counts, a relational permission rule, a
/// filter or search), as those would see the shadowing CTE too; such reads run after the
/// write, as do reads that fail to plan (they fail there the same way).
pub fn plan_created_read(
    ctx: &PlanContext,
    collection_name: &str,
    query: &Query,
) -> Option<SelectStatement> {
    let unfoldable = query.filter.is_some()
        || query.search.is_some()
        || query.deep.is_some()
        || query.export.is_some()
        || !query.aggregate.is_empty()
        || !query.group_by.is_empty()
        || !query.alias.is_empty()
        || query.offset.is_some_and(|o| o > 0)
        || query.page.is_some_and(|p| p > 1)
        || collection_name.starts_with("__");
    if unfoldable {
        return None;
    }
    let collection = readable(ctx.schema, ctx.caller, collection_name).ok()?;
    // The statement answers the key and `__json` side by side.
    if collection.primary_key == "__json" {
        return None;
    }
    let access = super::access::read_access(ctx.schema, ctx.caller);
    let name = collection.collection.as_str();
    if !local_rule(&access, name) {
        return None;
    }
    let tree =
        super::tree::tree(ctx.schema, &access, collection, &query.fields, &query.alias).ok()?;
    if !own_columns(&tree) {
        return None;
    }
    let sql = sql_context(ctx, &access);
    let builder = super::fields::Builder {
        dialect: ctx.dialect,
        access: &access,
        sql: &sql,
        nested_limit: None,
    };
    let pairs = builder.pairs(&tree, name, None).ok()?;
    let permission = conditions(ctx, collection, query, None).ok()?.permission;
    let mut select = Sql::select();
    select
        .expr_as(json::object(ctx.dialect, pairs), "__json")
        .from(name.to_string())
        .cond_where(permission);
    Some(select)
}

/// The sort of a read: the query's (or the collection's sort field, or its key), and the
/// key after it so that items with equal sort values keep one order across pages.
fn sort_order(
    builder: &super::fields::Builder,
    collection: &Collection,
    sort: &[String],
) -> Result<Vec<(Expr, Order)>, ApiError> {
    let name = collection.collection.as_str();
    let default = [collection
        .sort_field
        .clone()
        .unwrap_or_else(|| collection.primary_key.clone())];
    let sort: &[String] = if sort.is_empty() { &default } else { sort };
    let mut order = Vec::with_capacity(sort.len() + 1);
    for entry in sort {
        let (path, direction) = match entry.strip_prefix('-') {
            Some(f) => (f, Order::Desc),
            None => (entry.as_str(), Order::Asc),
        };
        order.push((builder.sort_expr(collection, name, path)?, direction));
    }
    if !sort
        .iter()
        .any(|s| s.trim_start_matches('-') == collection.primary_key)
    {
        order.push((
            Expr::col((name.to_string(), collection.primary_key.clone())),
            Order::Asc,
        ));
    }
    Ok(order)
}

/// What [`page`] did to a statement.
struct Cut {
    /// A LIMIT or an OFFSET was added.
    cut: bool,
    /// At most this many rows come out.
    rows: Option<i64>,
}

/// Adds the limit (the query's, the default or the number of keys, under the maximum) and
/// the offset (from `page` when given).
fn page(
    select: &mut SelectStatement,
    ctx: &PlanContext,
    query: &Query,
    keys: Option<usize>,
) -> Cut {
    let mut limit = match (keys, query.limit) {
        (Some(n), None) => Some(n as i64),
        (_, None) => (ctx.default_limit >= 0).then_some(ctx.default_limit),
        (_, Some(-1)) => None,
        (_, Some(l)) => Some(l),
    };
    if ctx.max_limit >= 0 {
        limit = Some(limit.map_or(ctx.max_limit, |l| Ord::min(l, ctx.max_limit)));
    }
    let offset = match (query.page, limit) {
        (Some(p), Some(l)) => (p - 1).saturating_mul(l),
        _ => query.offset.unwrap_or(0),
    };
    // Keys read from the first row on with room for all of them need no LIMIT: their
    // condition already bounds the rows, and without the cut the item is read in one flat
    // SELECT (a read by key is the commonest read there is).
    if let Some(n) = keys
        && offset <= 0
        && limit.is_some_and(|l| l >= n as i64)
    {
        return Cut {
            cut: false,
            rows: Some(n as i64),
        };
    }
    match limit {
        Some(l) => {
            select.limit(Ord::max(l, 0) as u64);
        }
        // MySQL and SQLite need a LIMIT before an OFFSET.
        None if offset > 0 && ctx.dialect != Dialect::Postgres => {
            select.limit(i64::MAX as u64);
        }
        None => {}
    }
    if offset > 0 {
        select.offset(offset as u64);
    }
    Cut {
        cut: limit.is_some() || offset > 0,
        rows: limit,
    }
}
