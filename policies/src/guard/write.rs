//! INSERT, UPDATE and DELETE under the write rules: only permitted columns, presets,
//! validation and the create rule checked on literal rows, the row predicates of the read
//! and write permissions on the rows a statement may change, RETURNING of readable columns.
//! What cannot be checked before it runs is refused.

use sea_query::{Alias, Query as SeaQuery};
use serde_json::{Map, Value as Json};
use sqlparser::ast::{
    AssignmentTarget, Delete, Expr, FromTable, Ident, Insert, ObjectName, ObjectNamePart,
    OnConflictAction, OnInsert, SelectItem, SetExpr, TableFactor, TableObject, Update, Value,
    ValueWithSpan,
};

use super::read::{Source, Walker};
use super::relation::{self, KEY};
use super::row_checks::{
    Deferred, Slot, check_item, check_validation, item_of, json_literal, literal_json, needs_check,
    options, rule_fields,
};
use super::{GuardError, GuardResult};
use crate::filter::{self, ParseOptions, SqlContext};
use crate::permissions::Rules;
use crate::{Action, Collection};

pub fn insert(w: &mut Walker, insert: &mut Insert) -> GuardResult<()> {
    if insert.or.is_some()
        || insert.ignore
        || insert.overwrite
        || insert.partitioned.is_some()
        || !insert.after_columns.is_empty()
        || insert.replace_into
        || insert.priority.is_some()
        || insert.insert_alias.is_some()
        || insert.settings.is_some()
        || insert.format_clause.is_some()
        || insert.multi_table_insert_type.is_some()
        || insert.output.is_some()
        || !insert.assignments.is_empty()
        || insert.table_alias.is_some()
        || !insert.optimizer_hints.is_empty()
    {
        return Err(GuardError::not_allowed("this form of INSERT"));
    }
    let TableObject::TableName(name) = &insert.table else {
        return Err(GuardError::not_allowed("INSERT into a function"));
    };
    let (collection, rules) = writable(w, name, Action::Create)?;
    let table = collection.collection.as_str();
    if insert.columns.is_empty() {
        return Err(GuardError::not_allowed(format!(
            "INSERT into {table} without a column list"
        )));
    }
    let mut columns = Vec::with_capacity(insert.columns.len());
    for column in &insert.columns {
        let parts = w.ctx.parts(column)?;
        let [name] = parts.as_slice() else {
            return Err(GuardError::not_allowed("a qualified INSERT column"));
        };
        let field = match w.ctx.field(collection, name) {
            Some(f) if !f.is_alias() && rules.field_allowed(&f.field) => f.field.clone(),
            _ => return Err(GuardError::column(name, table)),
        };
        if columns.contains(&field) {
            return Err(GuardError::not_allowed(format!(
                "column {field} named twice"
            )));
        }
        columns.push(field);
    }
    let presets: Vec<(String, Json)> = rules
        .presets()
        .into_iter()
        .filter(|(k, _)| !columns.contains(k) && collection.field(k).is_some_and(|f| !f.is_alias()))
        .collect();
    let options = rule_options(w);
    let checked = needs_check(&rules, table, Action::Create, &options)?;
    let Some(source) = &mut insert.source else {
        return Err(GuardError::not_allowed("INSERT ... DEFAULT VALUES"));
    };
    let plain_values = source.with.is_none()
        && source.order_by.is_none()
        && source.limit_clause.is_none()
        && matches!(*source.body, SetExpr::Values(_));
    if plain_values {
        let SetExpr::Values(values) = source.body.as_mut() else {
            return Err(GuardError::not_allowed("this INSERT source"));
        };
        // MySQL's `?` count in the order they stand, PostgreSQL's `$n` by their number; in
        // an INSERT whose values are checked, each is a whole value of a row (anything
        // computed is refused).
        let mut parameters = 0;
        let mut deferred = Vec::new();
        for row in &mut values.rows {
            if row.len() != columns.len() {
                return Err(GuardError::not_allowed("a VALUES row of another width"));
            }
            for value in row.iter_mut() {
                w.expr(value)?;
            }
            for (_, preset) in &presets {
                row.push(json_literal(preset));
            }
            if checked {
                let mut slots = Vec::with_capacity(row.len());
                for (column, value) in columns.iter().zip(row.iter()) {
                    let slot = match value {
                        Expr::Value(ValueWithSpan {
                            value: Value::Placeholder(p),
                            ..
                        }) if w.ctx.deferred_checks => {
                            let index = match p.strip_prefix('$') {
                                Some(n) => n
                                    .parse::<usize>()
                                    .ok()
                                    .and_then(|n| n.checked_sub(1))
                                    .ok_or_else(|| {
                                    GuardError::not_allowed(format!("the parameter {p}"))
                                })?,
                                None => parameters,
                            };
                            parameters = parameters.max(index + 1);
                            Slot::Parameter(index)
                        }
                        _ => Slot::Value(literal_json(value)?),
                    };
                    slots.push((column.clone(), slot));
                }
                for (k, v) in &presets {
                    slots.push((k.clone(), Slot::Value(v.clone())));
                }
                if slots.iter().any(|(_, s)| matches!(s, Slot::Parameter(_))) {
                    deferred.push(slots);
                } else {
                    check_item(&rules, table, &Json::Object(item_of(slots, &[])), &options)?;
                }
            }
        }
        if !deferred.is_empty() {
            w.deferred = Some(Deferred {
                table: table.to_string(),
                rows: deferred,
                parameters,
            });
        }
    } else {
        if checked || !presets.is_empty() {
            return Err(GuardError::not_allowed(format!(
                "INSERT ... SELECT into {table} (its permission has rules on the values)"
            )));
        }
        w.query(source)?;
    }
    for (k, _) in &presets {
        insert
            .columns
            .push(ObjectName(vec![ObjectNamePart::Identifier(
                w.ctx.quoted(k),
            )]));
    }
    match &insert.on {
        None => {}
        Some(OnInsert::OnConflict(conflict))
            if matches!(conflict.action, OnConflictAction::DoNothing) => {}
        Some(_) => return Err(GuardError::not_allowed("INSERT ... ON CONFLICT DO UPDATE")),
    }
    if let Some(items) = &mut insert.returning {
        returning(w, collection, table, items)?;
    }
    insert.table = TableObject::TableName(qualified(w, table));
    Ok(())
}

pub fn update(w: &mut Walker, update: &mut Update) -> GuardResult<()> {
    if update.from.is_some()
        || update.output.is_some()
        || update.or.is_some()
        || !update.order_by.is_empty()
        || update.limit.is_some()
        || !update.table.joins.is_empty()
        || !update.optimizer_hints.is_empty()
    {
        return Err(GuardError::not_allowed("this form of UPDATE"));
    }
    let (name, alias) = target(&mut update.table.relation)?;
    let (collection, rules) = writable(w, &name, Action::Update)?;
    let table = collection.collection.as_str();
    let options = rule_options(w);
    let guarded_fields = rule_fields(&rules);
    let checked = needs_check(&rules, table, Action::Update, &options)?;
    let mut payload = Map::new();
    let as_name = alias.unwrap_or_else(|| w.ctx.quoted(table));
    w.scopes.push(vec![Source::Raw {
        alias: w.ctx.name(&as_name),
        collection: table.to_string(),
    }]);
    let result = (|| {
        for assignment in &mut update.assignments {
            let AssignmentTarget::ColumnName(column) = &assignment.target else {
                return Err(GuardError::not_allowed("a tuple assignment"));
            };
            let parts = w.ctx.parts(column)?;
            let [name] = parts.as_slice() else {
                return Err(GuardError::not_allowed("a qualified SET column"));
            };
            let field = match w.ctx.field(collection, name) {
                Some(f) if !f.is_alias() && rules.field_allowed(&f.field) => &f.field,
                _ => return Err(GuardError::column(name, table)),
            };
            // A row may not leave the rows the caller may update: columns the rule looks at
            // cannot be changed over the wire.
            if guarded_fields.contains(field) {
                return Err(GuardError::denied(format!(
                    "rectus: column {field} of table {table} decides which rows you may update; change it through the API"
                )));
            }
            w.expr(&mut assignment.value)?;
            if checked {
                payload.insert(field.clone(), literal_json(&assignment.value)?);
            }
        }
        if let Some(items) = &mut update.returning {
            returning_items(w, collection, items)?;
        }
        Ok(())
    })();
    w.scopes.pop();
    result?;
    if checked {
        check_validation(&rules, table, &Json::Object(payload), &options)?;
    }
    let user = update.selection.take();
    update.selection = Some(row_condition(w, collection, &as_name, user, &rules)?);
    if let TableFactor::Table { name, .. } = &mut update.table.relation {
        *name = qualified(w, table);
    }
    Ok(())
}

pub fn delete(w: &mut Walker, delete: &mut Delete) -> GuardResult<()> {
    if !delete.tables.is_empty()
        || delete.using.is_some()
        || delete.output.is_some()
        || !delete.order_by.is_empty()
        || delete.limit.is_some()
        || !delete.optimizer_hints.is_empty()
    {
        return Err(GuardError::not_allowed("this form of DELETE"));
    }
    let from = match &mut delete.from {
        FromTable::WithFromKeyword(from) | FromTable::WithoutKeyword(from) => from,
    };
    let [twj] = from.as_mut_slice() else {
        return Err(GuardError::not_allowed("DELETE from several tables"));
    };
    if !twj.joins.is_empty() {
        return Err(GuardError::not_allowed("DELETE with a join"));
    }
    let (name, alias) = target(&mut twj.relation)?;
    let (collection, rules) = writable(w, &name, Action::Delete)?;
    let table = collection.collection.as_str();
    let as_name = alias.unwrap_or_else(|| w.ctx.quoted(table));
    if let Some(items) = &mut delete.returning {
        w.scopes.push(vec![Source::Raw {
            alias: w.ctx.name(&as_name),
            collection: table.to_string(),
        }]);
        let result = returning_items(w, collection, items);
        w.scopes.pop();
        result?;
    }
    let user = delete.selection.take();
    delete.selection = Some(row_condition(w, collection, &as_name, user, &rules)?);
    if let TableFactor::Table { name, .. } = &mut twj.relation {
        *name = qualified(w, table);
    }
    Ok(())
}

/// The table a write names and the rules of `action` on it.
fn writable<'a>(
    w: &Walker<'_, 'a>,
    name: &ObjectName,
    action: Action,
) -> GuardResult<(&'a Collection, Rules<'a>)> {
    let parts = w.ctx.parts(name)?;
    let collection = w.user_table(&parts)?;
    let rules = w
        .ctx
        .access
        .permissions
        .rules(&collection.collection, action)
        .ok_or_else(|| GuardError::table(&collection.collection))?;
    Ok((collection, rules))
}

/// The plain table an UPDATE or DELETE names, and its alias.
fn target(factor: &mut TableFactor) -> GuardResult<(ObjectName, Option<Ident>)> {
    match factor {
        TableFactor::Table {
            name,
            alias,
            args: None,
            with_hints,
            version: None,
            with_ordinality: false,
            partitions,
            json_path: None,
            sample: None,
            index_hints,
        } if with_hints.is_empty() && partitions.is_empty() && index_hints.is_empty() => {
            if alias.as_ref().is_some_and(|a| !a.columns.is_empty()) {
                return Err(GuardError::not_allowed("column aliases on a written table"));
            }
            Ok((name.clone(), alias.as_ref().map(|a| a.name.clone())))
        }
        _ => Err(GuardError::not_allowed("writing this kind of table")),
    }
}

/// The rows an UPDATE or DELETE may change: those the caller may read and that match their
/// own condition (`key IN (SELECT key FROM <guarded table> WHERE <condition>)`, so the
/// condition sees only readable columns and rows), and that the write permission admits.
fn row_condition(
    w: &mut Walker,
    collection: &Collection,
    as_name: &Ident,
    user: Option<Expr>,
    rules: &Rules,
) -> GuardResult<Expr> {
    let table = collection.collection.as_str();
    let pk = collection
        .primary_key_field()
        .ok_or_else(|| GuardError::not_allowed(format!("writing {table} (no primary key)")))?;
    let mut keys = SeaQuery::select();
    keys.column(Alias::new(KEY)).from_subquery(
        SeaQuery::select().expr(sea_query::Expr::val(1)).to_owned(),
        Alias::new(w.ctx.spelled(as_name)),
    );
    let mut keys = relation::parse_query(w.ctx, &relation::print(w.ctx, &keys))?;
    let derived = relation::derived(w.ctx, collection, w.fence(), true)?;
    let sqlparser::ast::SetExpr::Select(select) = keys.body.as_mut() else {
        return Err(GuardError::not_allowed("this write"));
    };
    if let Some(from) = select.from.first_mut()
        && let TableFactor::Derived { subquery, .. } = &mut from.relation
    {
        *subquery = derived;
    }
    if let Some(mut condition) = user {
        w.scopes.push(vec![Source::Table {
            alias: w.ctx.name(as_name),
            collection: table.to_string(),
        }]);
        let result = w.predicate(&mut condition);
        w.scopes.pop();
        result?;
        select.selection = Some(condition);
    }
    let mut parts = vec![Expr::InSubquery {
        expr: Box::new(Expr::CompoundIdentifier(vec![
            as_name.clone(),
            w.ctx.quoted(&pk.field),
        ])),
        subquery: keys,
        negated: false,
    }];
    let options = rule_options(w);
    if let Some(allowed) = rules
        .item_filter(table, &options)
        .map_err(|_| GuardError::table(table))?
    {
        let ctx = SqlContext::new(w.ctx.access.schema, w.ctx.dialect);
        let condition = filter::to_condition(&allowed, table, &w.ctx.spelled(as_name), &ctx)
            .map_err(|_| GuardError::table(table))?;
        let probe = SeaQuery::select()
            .expr(sea_query::Expr::val(1))
            .cond_where(condition)
            .to_owned();
        let probe = relation::parse_query(w.ctx, &relation::print(w.ctx, &probe))?;
        if let SetExpr::Select(select) = *probe.body
            && let Some(selection) = select.selection
        {
            parts.push(Expr::Nested(Box::new(selection)));
        }
    }
    Ok(parts
        .into_iter()
        .reduce(|a, b| Expr::BinaryOp {
            left: Box::new(a),
            op: sqlparser::ast::BinaryOperator::And,
            right: Box::new(b),
        })
        .unwrap_or(Expr::Value(Value::Boolean(false).into())))
}

/// RETURNING of an INSERT: the new rows as the caller may read them.
fn returning(
    w: &mut Walker,
    collection: &Collection,
    table: &str,
    items: &mut Vec<SelectItem>,
) -> GuardResult<()> {
    w.scopes.push(vec![Source::Raw {
        alias: table.to_string(),
        collection: table.to_string(),
    }]);
    let result = returning_items(w, collection, items);
    w.scopes.pop();
    result
}

/// RETURNING reads the written row directly, so it is allowed only where every row the
/// caller writes is one they may read, and `*` becomes the readable columns.
fn returning_items(
    w: &mut Walker,
    collection: &Collection,
    items: &mut Vec<SelectItem>,
) -> GuardResult<()> {
    let table = collection.collection.as_str();
    let read = w
        .ctx
        .access
        .permissions
        .rules(table, Action::Read)
        .ok_or_else(|| GuardError::table(table))?;
    let all_rows = w
        .ctx
        .access
        .item_filter(table)
        .map_err(|_| GuardError::table(table))?
        .is_none();
    let every_field_always = collection
        .fields
        .values()
        .filter(|f| !f.is_alias() && read.field_allowed(&f.field))
        .all(|f| {
            matches!(
                read.visibility(table, &f.field, &rule_options(w)),
                Ok(crate::Visibility::Always)
            )
        });
    if !all_rows || !every_field_always {
        return Err(GuardError::not_allowed(format!(
            "RETURNING from {table} (you may read only some of its rows)"
        )));
    }
    let mut expanded = Vec::with_capacity(items.len());
    for item in items.drain(..) {
        match item {
            SelectItem::Wildcard(_) => {
                let mut fields: Vec<&crate::Field> = collection.fields.values().collect();
                fields.sort_by_key(|f| f.position);
                for field in fields {
                    if !field.is_alias() && read.field_allowed(&field.field) {
                        expanded.push(SelectItem::UnnamedExpr(Expr::Identifier(
                            w.ctx.quoted(&field.field),
                        )));
                    }
                }
            }
            SelectItem::QualifiedWildcard(..) => {
                return Err(GuardError::not_allowed("a qualified wildcard in RETURNING"));
            }
            mut other => {
                w.select_item(&mut other)?;
                expanded.push(other);
            }
        }
    }
    *items = expanded;
    Ok(())
}

fn rule_options<'a>(w: &Walker<'_, 'a>) -> ParseOptions<'a> {
    options(w.ctx)
}

fn qualified(w: &Walker, table: &str) -> ObjectName {
    ObjectName(vec![
        ObjectNamePart::Identifier(w.ctx.quoted(w.ctx.schema_name)),
        ObjectNamePart::Identifier(w.ctx.quoted(table)),
    ])
}
