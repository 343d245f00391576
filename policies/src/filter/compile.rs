//! A [`Filter`] to a sea-query [`Condition`] for one dialect. Values are always bound.
//! Relational parts become subqueries (`fk IN (SELECT pk ...)`, `pk IN (SELECT fk ...)`),
//! so the outer query keeps one row per item; the read permission of a related collection
//! can be added inside each subquery through [`RelatedRows`].

use std::cell::Cell;
use std::rc::Rc;

use sea_query::{Condition, Expr, ExprTrait, Func, LikeExpr, Query, SelectStatement};

use super::{
    DateFunction, FieldCondition, Filter, FilterError, Operand, Operator, Quantifier, TextMatch,
};
use crate::dialect::Dialect;
use crate::schema::{FieldType, SchemaOverview};
use crate::value::Scalar;

/// The condition rows of a related collection must also meet when a filter reaches them
/// (the caller's read permission there). `alias` is the name the subquery gives the table.
pub trait RelatedRows {
    fn condition(
        &self,
        collection: &str,
        alias: &str,
        ctx: &SqlContext,
    ) -> Result<Option<Condition>, FilterError>;
}

/// The condition under which a field's value may be seen, when the caller sees it only on
/// some items (Directus's "case when"). Filters compare such a field as NULL elsewhere, so
/// they cannot probe values the caller may not read.
pub trait FieldGuard {
    fn guard(&self, collection: &str, field: &str) -> Option<Filter>;
}

pub struct SqlContext<'a> {
    pub schema: &'a SchemaOverview,
    pub dialect: Dialect,
    pub related_rows: Option<&'a dyn RelatedRows>,
    pub field_guard: Option<&'a dyn FieldGuard>,
    next_alias: Rc<Cell<u32>>,
}

impl<'a> SqlContext<'a> {
    pub fn new(schema: &'a SchemaOverview, dialect: Dialect) -> Self {
        SqlContext {
            schema,
            dialect,
            related_rows: None,
            field_guard: None,
            next_alias: Rc::new(Cell::new(0)),
        }
    }

    pub fn with_field_guard(mut self, guard: &'a dyn FieldGuard) -> Self {
        self.field_guard = Some(guard);
        self
    }

    /// The same schema and dialect without the caller's hooks, for trusted filters
    /// (permission rules); aliases stay unique across both.
    pub fn trusted(&self) -> SqlContext<'a> {
        SqlContext {
            schema: self.schema,
            dialect: self.dialect,
            related_rows: None,
            field_guard: None,
            next_alias: self.next_alias.clone(),
        }
    }

    /// `collection.field` of the table named `table`, as the caller may see it: the column,
    /// or `CASE WHEN <visible> THEN column END`.
    pub fn column(&self, collection: &str, table: &str, field: &str) -> Result<Expr, FilterError> {
        let column = col(table, field);
        let Some(guard) = self.field_guard.and_then(|g| g.guard(collection, field)) else {
            return Ok(column);
        };
        let visible = to_condition(&guard, collection, table, &self.trusted())?;
        Ok(Expr::case(visible, column).finally(Expr::null()).into())
    }

    pub fn with_related_rows(mut self, related_rows: &'a dyn RelatedRows) -> Self {
        self.related_rows = Some(related_rows);
        self
    }

    /// A table alias unique within the statement being built.
    pub fn alias(&self) -> String {
        let n = self.next_alias.get() + 1;
        self.next_alias.set(n);
        format!("__f{n}")
    }
}

fn col(table: &str, field: &str) -> Expr {
    Expr::col((table.to_string(), field.to_string()))
}

fn never() -> Condition {
    Condition::any()
}

fn always() -> Condition {
    Condition::all()
}

/// Compiles `filter`, a filter on `collection`, whose table is named `table` in the
/// statement (the table name or an alias).
pub fn to_condition(
    filter: &Filter,
    collection: &str,
    table: &str,
    ctx: &SqlContext,
) -> Result<Condition, FilterError> {
    Ok(match filter {
        Filter::All(parts) => {
            let mut c = Condition::all();
            for p in parts {
                c = c.add(to_condition(p, collection, table, ctx)?);
            }
            c
        }
        Filter::Any(parts) => {
            let mut c = Condition::any();
            for p in parts {
                c = c.add(to_condition(p, collection, table, ctx)?);
            }
            c
        }
        Filter::Field(condition) => field_condition(condition, collection, table, ctx)?,
        Filter::ManyToOne {
            field,
            related,
            filter,
        } => {
            let alias = ctx.alias();
            let pk = primary_key(ctx, related)?;
            let mut select = Query::select();
            select
                .column((alias.clone(), pk))
                .from_as(related.clone(), alias.clone());
            restrict(&mut select, filter, related, &alias, ctx)?;
            Condition::all().add(ctx.column(collection, table, field)?.in_subquery(select))
        }
        Filter::OneToMany {
            related,
            foreign_key,
            quantifier,
            filter,
            ..
        } => {
            let alias = ctx.alias();
            let mut select = Query::select();
            let key = ctx.column(related, &alias, foreign_key)?;
            select
                .expr(key.clone())
                .from_as(related.clone(), alias.clone())
                .and_where(key.is_not_null());
            restrict(&mut select, filter, related, &alias, ctx)?;
            let pk = col(table, &primary_key(ctx, collection)?);
            Condition::all().add(match quantifier {
                Quantifier::Some => pk.in_subquery(select),
                Quantifier::None => pk.not_in_subquery(select),
            })
        }
        Filter::Count {
            related,
            foreign_key,
            operator,
            operand,
            ..
        } => {
            let alias = ctx.alias();
            let mut select = Query::select();
            select
                .expr(Expr::cust("COUNT(*)"))
                .from_as(related.clone(), alias.clone())
                .and_where(
                    col(&alias, foreign_key)
                        .equals((table.to_string(), primary_key(ctx, collection)?)),
                );
            restrict(&mut select, &Filter::All(vec![]), related, &alias, ctx)?;
            let count = Expr::SubQuery(None, Box::new(select.into()));
            compare(count, FieldType::Integer, *operator, operand, ctx)?
        }
    })
}

fn primary_key(ctx: &SqlContext, collection: &str) -> Result<String, FilterError> {
    ctx.schema
        .collection(collection)
        .map(|c| c.primary_key.clone())
        .ok_or_else(|| FilterError::Forbidden {
            collection: collection.to_string(),
            field: String::new(),
        })
}

/// Adds the sub-filter and the related collection's own row condition to a subquery.
fn restrict(
    select: &mut SelectStatement,
    filter: &Filter,
    related: &str,
    alias: &str,
    ctx: &SqlContext,
) -> Result<(), FilterError> {
    select.cond_where(to_condition(filter, related, alias, ctx)?);
    if let Some(rows) = ctx.related_rows
        && let Some(condition) = rows.condition(related, alias, ctx)?
    {
        select.cond_where(condition);
    }
    Ok(())
}

/// The expression a condition compares: the column, or a date part of it.
fn subject(column: Expr, condition: &FieldCondition, dialect: Dialect) -> Expr {
    match condition.function {
        Some(function) => date_part(dialect, function, column),
        None => column,
    }
}

/// A date part of a column, as a whole number, in the dialect's own functions.
pub fn date_part(dialect: Dialect, function: DateFunction, column: Expr) -> Expr {
    let template: &'static str = match (dialect, function) {
        (Dialect::Postgres, DateFunction::Year) => "CAST(EXTRACT(YEAR FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Month) => "CAST(EXTRACT(MONTH FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Week) => "CAST(EXTRACT(WEEK FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Day) => "CAST(EXTRACT(DAY FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Weekday) => "CAST(EXTRACT(DOW FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Hour) => "CAST(EXTRACT(HOUR FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Minute) => "CAST(EXTRACT(MINUTE FROM $1) AS INTEGER)",
        (Dialect::Postgres, DateFunction::Second) => "CAST(EXTRACT(SECOND FROM $1) AS INTEGER)",
        (Dialect::MySql, DateFunction::Year) => "YEAR(?)",
        (Dialect::MySql, DateFunction::Month) => "MONTH(?)",
        (Dialect::MySql, DateFunction::Week) => "WEEK(?, 3)",
        (Dialect::MySql, DateFunction::Day) => "DAYOFMONTH(?)",
        (Dialect::MySql, DateFunction::Weekday) => "(DAYOFWEEK(?) - 1)",
        (Dialect::MySql, DateFunction::Hour) => "HOUR(?)",
        (Dialect::MySql, DateFunction::Minute) => "MINUTE(?)",
        (Dialect::MySql, DateFunction::Second) => "SECOND(?)",
        (Dialect::Sqlite, DateFunction::Year) => "CAST(strftime('%Y', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Month) => "CAST(strftime('%m', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Week) => "CAST(strftime('%V', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Day) => "CAST(strftime('%d', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Weekday) => "CAST(strftime('%w', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Hour) => "CAST(strftime('%H', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Minute) => "CAST(strftime('%M', ?) AS INTEGER)",
        (Dialect::Sqlite, DateFunction::Second) => "CAST(strftime('%S', ?) AS INTEGER)",
    };
    Expr::cust_with_exprs(template, [column])
}

fn field_condition(
    condition: &FieldCondition,
    collection: &str,
    table: &str,
    ctx: &SqlContext,
) -> Result<Condition, FilterError> {
    let column = subject(
        ctx.column(collection, table, &condition.field)?,
        condition,
        ctx.dialect,
    );
    let value_type = if condition.function.is_some() {
        FieldType::Integer
    } else {
        condition.field_type
    };
    if let Some((negated, insensitive, kind)) = condition.operator.text_match() {
        let Operand::Value(Scalar::Text(needle)) = &condition.operand else {
            return Ok(never());
        };
        let present = column.clone().is_not_null();
        let matched = text_match(column, needle, insensitive, kind, ctx.dialect);
        // Parenthesised by hand: under MySQL's HIGH_NOT_PRECEDENCE, `NOT a = b` would mean
        // `(NOT a) = b`.
        let template = match ctx.dialect {
            Dialect::Postgres => "NOT ($1)",
            Dialect::MySql | Dialect::Sqlite => "NOT (?)",
        };
        // A missing value neither matches nor fails to match, as in SQL's three values.
        return Ok(if negated {
            Condition::all()
                .add(present)
                .add(Expr::cust_with_exprs(template, [matched]))
        } else {
            Condition::all().add(matched)
        });
    }
    compare(
        column,
        value_type,
        condition.operator,
        &condition.operand,
        ctx,
    )
}

/// SQLite keeps dates and times as text in more than one layout; comparing through its date
/// functions makes `2024-01-01 10:00:00` equal `2024-01-01 10:00:00.000`.
fn normalised(expr: Expr, value_type: FieldType, dialect: Dialect) -> Expr {
    if dialect != Dialect::Sqlite {
        return expr;
    }
    match value_type {
        FieldType::DateTime | FieldType::Timestamp => Expr::cust_with_exprs("julianday(?)", [expr]),
        FieldType::Date => Expr::cust_with_exprs("date(?)", [expr]),
        FieldType::Time => Expr::cust_with_exprs("time(?)", [expr]),
        _ => expr,
    }
}

fn value(scalar: &Scalar, value_type: FieldType, dialect: Dialect) -> Expr {
    normalised(Expr::val(scalar.to_sea()), value_type, dialect)
}

fn compare(
    subject: Expr,
    value_type: FieldType,
    operator: Operator,
    operand: &Operand,
    ctx: &SqlContext,
) -> Result<Condition, FilterError> {
    let dialect = ctx.dialect;
    let textual = matches!(
        value_type,
        FieldType::String | FieldType::Text | FieldType::Csv | FieldType::Hash | FieldType::Unknown
    );
    let raw = subject.clone();
    let lhs = normalised(subject, value_type, dialect);
    let one = |c: Expr| Condition::all().add(c);
    Ok(match (operator, operand) {
        (_, Operand::Unknown) => never(),
        (Operator::Null, Operand::Flag(true)) => one(raw.is_null()),
        (Operator::NNull, Operand::Flag(true)) => one(raw.is_not_null()),
        (Operator::Empty, Operand::Flag(true)) if textual => {
            Condition::any().add(raw.clone().is_null()).add(raw.eq(""))
        }
        (Operator::Empty, Operand::Flag(true)) => one(raw.is_null()),
        (Operator::NEmpty, Operand::Flag(true)) if textual => Condition::all()
            .add(raw.clone().is_not_null())
            .add(raw.ne("")),
        (Operator::NEmpty, Operand::Flag(true)) => one(raw.is_not_null()),
        (
            Operator::Null | Operator::NNull | Operator::Empty | Operator::NEmpty,
            Operand::Flag(false),
        ) => always(),
        (Operator::Eq, Operand::Value(Scalar::Null)) => one(raw.is_null()),
        (Operator::Neq, Operand::Value(Scalar::Null)) => one(raw.is_not_null()),
        (Operator::Eq, Operand::Value(v)) => one(lhs.eq(value(v, value_type, dialect))),
        (Operator::Neq, Operand::Value(v)) => one(lhs.ne(value(v, value_type, dialect))),
        (Operator::Lt, Operand::Value(v)) => one(lhs.lt(value(v, value_type, dialect))),
        (Operator::Lte, Operand::Value(v)) => one(lhs.lte(value(v, value_type, dialect))),
        (Operator::Gt, Operand::Value(v)) => one(lhs.gt(value(v, value_type, dialect))),
        (Operator::Gte, Operand::Value(v)) => one(lhs.gte(value(v, value_type, dialect))),
        (Operator::In, Operand::List(list)) if list.is_empty() => never(),
        (Operator::Nin, Operand::List(list)) if list.is_empty() => one(raw.is_not_null()),
        (Operator::In, Operand::List(list)) => {
            one(lhs.is_in(list.iter().map(|v| value(v, value_type, dialect))))
        }
        (Operator::Nin, Operand::List(list)) => {
            one(lhs.is_not_in(list.iter().map(|v| value(v, value_type, dialect))))
        }
        (Operator::Between, Operand::List(list)) if list.len() == 2 => one(lhs.between(
            value(&list[0], value_type, dialect),
            value(&list[1], value_type, dialect),
        )),
        (Operator::NBetween, Operand::List(list)) if list.len() == 2 => one(lhs.not_between(
            value(&list[0], value_type, dialect),
            value(&list[1], value_type, dialect),
        )),
        (op, _) => {
            return Err(FilterError::Invalid {
                path: "filter".into(),
                message: format!("{} cannot be used in a query", op.name()),
            });
        }
    })
}

/// `%`, `_` and the escape character itself match literally.
fn like_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    for c in text.chars() {
        if matches!(c, '\\' | '%' | '_') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

fn text_match(
    column: Expr,
    needle: &str,
    insensitive: bool,
    kind: TextMatch,
    dialect: Dialect,
) -> Expr {
    if kind == TextMatch::Suffix && needle.is_empty() {
        return column.is_not_null();
    }
    let pattern = |needle: &str| {
        let escaped = like_escape(needle);
        let text = match kind {
            TextMatch::Anywhere => format!("%{escaped}%"),
            TextMatch::Prefix => format!("{escaped}%"),
            TextMatch::Suffix => format!("%{escaped}"),
        };
        LikeExpr::new(text).escape('\\')
    };
    if insensitive {
        return Expr::expr(Func::lower(column)).like(pattern(&needle.to_lowercase()));
    }
    match dialect {
        Dialect::Postgres => column.like(pattern(needle)),
        // The collations MySQL tables use compare case-insensitively; bytes do not.
        Dialect::MySql => {
            Expr::cust_with_exprs("CAST(? AS BINARY)", [column]).like(pattern(needle))
        }
        // SQLite's LIKE ignores ASCII case; instr and substr do not.
        Dialect::Sqlite => match kind {
            TextMatch::Anywhere => {
                Expr::cust_with_exprs("instr(?, ?)", [column, Expr::val(needle.to_string())]).gt(0)
            }
            TextMatch::Prefix => Expr::cust_with_exprs(
                "substr(?, 1, ?)",
                [column, Expr::val(needle.chars().count() as i64)],
            )
            .eq(needle.to_string()),
            TextMatch::Suffix => Expr::cust_with_exprs(
                "substr(?, ?)",
                [column, Expr::val(-(needle.chars().count() as i64))],
            )
            .eq(needle.to_string()),
        },
    }
}
