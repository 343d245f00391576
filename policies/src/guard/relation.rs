//! A user table as the caller may see it: a derived table of the readable columns under the
//! read permission's row predicate, compiled by the same filter compiler as the REST API.

use sea_query::{Alias, Expr, MysqlQueryBuilder, PostgresQueryBuilder, Query as SeaQuery};
use sqlparser::ast::{Query, Statement};

use super::{GuardContext, GuardError, GuardResult};
use crate::filter::{self, SqlContext};
use crate::{Action, Collection, Dialect};

/// The table's own alias inside the derived table; nothing of the caller's reaches in there.
pub const INNER: &str = "__rectus";

/// The name a guarded statement gives the primary key when it needs it for a write but the
/// caller may not read it.
pub const KEY: &str = "__rectus_key";

/// The derived table for `collection`. `fence` keeps the database from moving the caller's
/// predicates below the row predicate (on PostgreSQL `OFFSET 0` stops subquery pull-up and
/// qual pushdown; MySQL and MariaDB neither merge a derived table with a `LIMIT` into the
/// outer query nor push conditions into it); `with_key` adds the primary key as [`KEY`]
/// for writes.
pub fn derived(
    ctx: &GuardContext,
    collection: &Collection,
    fence: bool,
    with_key: bool,
) -> GuardResult<Box<Query>> {
    let key = (collection.collection.clone(), fence, with_key);
    cached_as(ctx, key, || build(ctx, collection, fence, with_key))
}

/// A derived table of the guard's own (a virtual catalog) under `name`, built once per
/// permission set.
pub fn cached(
    ctx: &GuardContext,
    name: &str,
    fence: bool,
    make: impl FnOnce() -> GuardResult<Box<Query>>,
) -> GuardResult<Box<Query>> {
    cached_as(ctx, (name.to_string(), fence, false), make)
}

fn cached_as(
    ctx: &GuardContext,
    key: (String, bool, bool),
    make: impl FnOnce() -> GuardResult<Box<Query>>,
) -> GuardResult<Box<Query>> {
    let Some(cache) = ctx.derived else {
        return make();
    };
    let cached = match cache.0.lock() {
        Ok(map) => map.get(&key).cloned(),
        Err(poisoned) => poisoned.into_inner().get(&key).cloned(),
    };
    if let Some(query) = cached {
        return Ok(query);
    }
    let query = make()?;
    match cache.0.lock() {
        Ok(mut map) => map.insert(key, query.clone()),
        Err(poisoned) => poisoned.into_inner().insert(key, query.clone()),
    };
    Ok(query)
}

fn build(
    ctx: &GuardContext,
    collection: &Collection,
    fence: bool,
    with_key: bool,
) -> GuardResult<Box<Query>> {
    let name = collection.collection.as_str();
    let access = &ctx.access;
    let rules = access
        .permissions
        .rules(name, Action::Read)
        .ok_or_else(|| GuardError::table(name))?;
    let sql = SqlContext::new(access.schema, ctx.dialect)
        .with_related_rows(access)
        .with_field_guard(access);
    let mut select = SeaQuery::select();
    select.from_as(
        (Alias::new(ctx.schema_name), Alias::new(name)),
        Alias::new(INNER),
    );
    let mut any = false;
    // In the table's own column order, so `SELECT *` lists them as the table does.
    let mut fields: Vec<&crate::Field> = collection.fields.values().collect();
    fields.sort_by_key(|f| f.position);
    for field in fields {
        if field.is_alias() || !rules.field_allowed(&field.field) {
            continue;
        }
        let column = sql
            .column(name, INNER, &field.field)
            .map_err(|_| GuardError::table(name))?;
        select.expr_as(column, Alias::new(field.field.as_str()));
        any = true;
    }
    if with_key {
        let pk = collection
            .primary_key_field()
            .ok_or_else(|| GuardError::not_allowed(format!("writing {name} (no primary key)")))?;
        select.expr_as(
            Expr::col((Alias::new(INNER), Alias::new(pk.field.as_str()))),
            Alias::new(KEY),
        );
        any = true;
    }
    if !any {
        return Err(GuardError::table(name));
    }
    if let Some(rows) = access
        .item_filter(name)
        .map_err(|_| GuardError::table(name))?
    {
        let condition = filter::to_condition(&rows, name, INNER, &sql.trusted())
            .map_err(|_| GuardError::table(name))?;
        select.cond_where(condition);
    }
    if fence {
        match ctx.dialect {
            Dialect::MySql => select.limit(u64::MAX),
            _ => select.offset(0),
        };
    }
    parse_query(ctx, &print(ctx, &select))
}

/// SQL built with sea-query, printed in the context's dialect.
pub fn print(ctx: &GuardContext, statement: &sea_query::SelectStatement) -> String {
    match ctx.dialect {
        Dialect::MySql => statement.to_string(MysqlQueryBuilder),
        _ => statement.to_string(PostgresQueryBuilder),
    }
}

/// Parses SQL the guard itself generated.
pub fn parse_query(ctx: &GuardContext, text: &str) -> GuardResult<Box<Query>> {
    match ctx.parse(text) {
        Ok(mut statements) if statements.len() == 1 => match statements.remove(0) {
            Statement::Query(query) => Ok(query),
            _ => Err(internal(text)),
        },
        _ => Err(internal(text)),
    }
}

fn internal(text: &str) -> GuardError {
    GuardError::denied(format!(
        "rectus could not build the guarded statement ({} characters)",
        text.len()
    ))
}
