//! Statements sent as text (PostgreSQL's simple protocol, MySQL's `COM_QUERY`) carry their
//! values as literals, so the same read comes with a new text every time and its rewrite
//! cannot be kept by text. How the guard rewrites a read does not depend on the values of
//! its literals (only on where they stand), so a read is rewritten once in its *shape* —
//! the tokens with every literal replaced by a marker — and each text's literals are put
//! into that rewrite. Anything that is not a plain read, or whose shape does not parse, is
//! guarded as it is.

use std::borrow::Cow;

use sqlparser::ast::{Statement, Value};
use sqlparser::dialect::{MySqlDialect, PostgreSqlDialect};
use sqlparser::parser::Parser;
use sqlparser::tokenizer::{Token, Tokenizer, Whitespace};

use super::{GuardContext, GuardResult, StatementKind, guard_statement, mysql, printed};
use crate::Dialect;

/// Markers are parameters no text can hold (the tokenizer never reads a control character
/// into a parameter): `?\u{1}<n>\u{1}`.
pub(crate) const MARKER: &str = "?\u{1}";

/// A text's tokens with its literals taken out, and the key its shape is kept under.
pub struct Shape {
    pub key: String,
    tokens: Vec<Token>,
    literals: Vec<Value>,
    dialect: Dialect,
}

/// The rewrite of a shape: text parts with the literals' places between them.
pub struct Template {
    parts: Vec<String>,
    /// The literal each place takes, in the order of the places.
    order: Vec<usize>,
    /// Per literal, whether the database reads it the same as a parameter ([`Shape::bind`]).
    places: Vec<Place>,
}

/// Where a literal stands, as far as it decides whether a parameter may take its place.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Place {
    /// Anywhere else: positional `ORDER BY 1`, `LIMIT`, select lists, function arguments,
    /// typed literals. It stays a literal.
    Kept,
    /// An operand of arithmetic or a comparison: a number there is the same as a parameter
    /// of the number's own type; a string (of unknown type) would lose the type it takes
    /// from its context.
    Operand,
    /// Compared with a column (`=`, `<`, `IN`, `BETWEEN`, `LIKE`): a string takes the
    /// column's type as a parameter of unspecified type does.
    Compared,
}

/// A read as a prepared statement with parameters: the text with parameters where the
/// literals stood that read the same as parameters (PostgreSQL `$1..$n`, MySQL `?`), and
/// each parameter's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bound {
    pub sql: String,
    /// PostgreSQL: the parameters' types (0: left to the database). MySQL: all 0.
    pub types: Vec<u32>,
    /// PostgreSQL: the values in text format, for Bind. MySQL: the values as the literals
    /// [`Shape::fill`] prints, for `EXECUTE … USING` (MariaDB), which takes expressions.
    pub values: Vec<String>,
}

/// The shape of `sql`, or `None` when the text cannot have one (it does not tokenize,
/// holds parameters of its own, or, on MySQL, an executable comment).
pub fn shape(sql: &str, dialect: Dialect) -> Option<Shape> {
    let tokens = match dialect {
        Dialect::MySql => {
            // Text the server reads otherwise than the tokenizer (an executable comment, a
            // `\a`) is guarded whole, as the server reads it.
            if !matches!(mysql::lexical::unwrap(sql), Ok(Cow::Borrowed(_))) {
                return None;
            }
            Tokenizer::new(&MySqlDialect {}, sql).tokenize().ok()?
        }
        _ => Tokenizer::new(&PostgreSqlDialect {}, sql).tokenize().ok()?,
    };
    let mut key = String::with_capacity(sql.len() + 16);
    let mut literals = Vec::new();
    let mut shaped = Vec::with_capacity(tokens.len());
    for token in tokens {
        let literal = match &token {
            Token::Number(n, long) => Some(Value::Number(n.clone(), *long)),
            Token::SingleQuotedString(s) => Some(Value::SingleQuotedString(s.clone())),
            Token::NationalStringLiteral(s) => Some(Value::NationalStringLiteral(s.clone())),
            Token::EscapedStringLiteral(s) => Some(Value::EscapedStringLiteral(s.clone())),
            Token::HexStringLiteral(s) => Some(Value::HexStringLiteral(s.clone())),
            Token::DoubleQuotedString(s) if dialect == Dialect::MySql => {
                Some(Value::DoubleQuotedString(s.clone()))
            }
            Token::Placeholder(_) => return None,
            _ => None,
        };
        match (literal, &token) {
            (Some(value), _) => {
                shaped.push(Token::Placeholder(format!(
                    "{MARKER}{}\u{1}",
                    literals.len()
                )));
                literals.push(value);
                key.push('\u{1}');
            }
            (
                None,
                Token::Whitespace(Whitespace::Space | Whitespace::Newline | Whitespace::Tab),
            ) => {
                key.push(' ');
            }
            (None, Token::Word(word)) => {
                key.push(word.quote_style.unwrap_or(' '));
                key.push_str(&word.value);
                key.push('\u{2}');
                shaped.push(token);
            }
            (None, other) => {
                key.push_str(&other.to_string());
                key.push('\u{2}');
                shaped.push(token);
            }
        }
    }
    Some(Shape {
        key,
        tokens: shaped,
        literals,
        dialect,
    })
}

/// The rewrite of `shape` under `ctx`, when it is one read statement the guard lets through
/// with every marker in its output once.
pub fn template(shape: &Shape, ctx: &GuardContext) -> Option<Template> {
    checked_read(shape, ctx, false)
}

/// The shape's own text as a template, when the guard under `ctx` reads it as one plain
/// read: for sessions whose statements run as they are (admins), whose reads need no
/// rewrite, only the knowledge that they read and change nothing. Printed from the shape's
/// parse, with identifiers quoted as the guard quotes them.
pub fn template_as_is(shape: &Shape, ctx: &GuardContext) -> Option<Template> {
    checked_read(shape, ctx, true)
}

/// The template of a shape the guard lets through as one read with nothing left to its
/// parameters, split out of the shape's own text (`as_is`) or the guard's rewrite.
fn checked_read(shape: &Shape, ctx: &GuardContext, as_is: bool) -> Option<Template> {
    let parse = || -> GuardResult<Vec<Statement>> {
        let parser = match shape.dialect {
            Dialect::MySql => Parser::new(&MySqlDialect {}),
            _ => Parser::new(&PostgreSqlDialect {}),
        };
        parser
            .with_tokens(shape.tokens.clone())
            .parse_statements()
            .map_err(|_| super::GuardError::not_allowed("this shape"))
    };
    let mut statements = parse().ok()?;
    if statements.len() != 1 || !matches!(statements[0], Statement::Query(_)) {
        return None;
    }
    let statement = statements.remove(0);
    let mut places = places(&statement, shape.literals.len());
    keep_matched(&statement, &mut places);
    if shape.dialect == Dialect::MySql {
        keep_in_select_lists(&statement, &mut places);
    }
    let again = || {
        parse()?
            .into_iter()
            .next()
            .ok_or_else(|| super::GuardError::denied(""))
    };
    let own = if as_is {
        // Printed as the guard prints its rewrites, for the sessions it sets up.
        let mut own = statement.clone();
        printed::separate_signs(&mut own);
        if shape.dialect == Dialect::MySql {
            super::mysql::print::prepare(&mut own);
        }
        printed::quote_safely(&mut own, shape.dialect).ok()?;
        Some(own.to_string())
    } else {
        None
    };
    let guarded = guard_statement(statement, ctx, again).ok()?;
    if guarded.kind != StatementKind::Read || guarded.deferred.is_some() {
        return None;
    }
    split(&own.unwrap_or(guarded.sql), places)
}

/// Literals in expressions the database matches with each other stay literals: two
/// parameters never match. In a grouped or `DISTINCT` query that is everything but its
/// `WHERE` and `FROM` (the select list against `GROUP BY` and `HAVING`, `DISTINCT` against
/// `ORDER BY`; MySQL's `ONLY_FULL_GROUP_BY` matches the same way), and in an aggregate
/// with `DISTINCT` its arguments (against its `ORDER BY`). A `WHERE` is read row by row
/// before any grouping and matched with nothing; nested queries are judged on their own.
fn keep_matched(statement: &Statement, places: &mut [Place]) {
    use sqlparser::ast::{
        DuplicateTreatment, Expr, FunctionArguments, GroupByExpr, Query, SetExpr, Visit, Visitor,
    };
    use std::ops::ControlFlow;

    fn grouped(body: &SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => {
                select.distinct.is_some()
                    || select.having.is_some()
                    || match &select.group_by {
                        GroupByExpr::All(_) => true,
                        GroupByExpr::Expressions(list, modifiers) => {
                            !list.is_empty() || !modifiers.is_empty()
                        }
                    }
            }
            SetExpr::SetOperation { left, right, .. } => grouped(left) || grouped(right),
            // Nested queries are visited on their own.
            _ => false,
        }
    }
    struct Matched<'p>(&'p mut [Place]);
    impl Visitor for Matched<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if grouped(&query.body) {
                each_select(&query.body, &mut |select| {
                    let mut matched = select.clone();
                    matched.selection = None;
                    matched.from.clear();
                    keep_in(&matched, self.0);
                });
                if let Some(order_by) = &query.order_by {
                    keep_in(order_by, self.0);
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_expr(&mut self, expr: &Expr) -> ControlFlow<()> {
            if let Expr::Function(f) = expr
                && let FunctionArguments::List(list) = &f.args
                && matches!(list.duplicate_treatment, Some(DuplicateTreatment::Distinct))
            {
                keep_in(expr, self.0);
            }
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Matched(places));
}

/// The [`Place`] of each literal of a parsed shape, by its marker.
fn places(statement: &Statement, count: usize) -> Vec<Place> {
    use sqlparser::ast::{BinaryOperator as Op, Expr, UnaryOperator, visit_expressions};
    use std::ops::ControlFlow;

    fn column(e: &Expr) -> bool {
        matches!(e, Expr::Identifier(_) | Expr::CompoundIdentifier(_))
    }
    let mut places = vec![Place::Kept; count];
    let mut set = |e: &Expr, place: Place| {
        if let Some(slot) = marker_of(e).and_then(|i| places.get_mut(i)) {
            *slot = place;
        }
    };
    let compared = |subject: &Expr| {
        if column(subject) {
            Place::Compared
        } else {
            Place::Operand
        }
    };
    let _ = visit_expressions(statement, |e: &Expr| {
        match e {
            Expr::BinaryOp { left, op, right } => {
                let comparison = matches!(
                    op,
                    Op::Eq | Op::NotEq | Op::Lt | Op::LtEq | Op::Gt | Op::GtEq
                );
                let arithmetic = matches!(
                    op,
                    Op::Plus | Op::Minus | Op::Multiply | Op::Divide | Op::Modulo
                );
                if comparison {
                    set(left, compared(right));
                    set(right, compared(left));
                } else if arithmetic {
                    set(left, Place::Operand);
                    set(right, Place::Operand);
                }
            }
            Expr::UnaryOp {
                op: UnaryOperator::Minus | UnaryOperator::Plus,
                expr,
            } => set(expr, Place::Operand),
            Expr::InList { expr, list, .. } => {
                let place = compared(expr);
                list.iter().for_each(|item| set(item, place));
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                let place = compared(expr);
                set(low, place);
                set(high, place);
            }
            Expr::Like {
                expr,
                pattern,
                escape_char: None,
                any: false,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char: None,
                any: false,
                ..
            } if column(expr) => set(pattern, Place::Compared),
            _ => {}
        }
        ControlFlow::<()>::Continue(())
    });
    places
}

/// MySQL describes a select-list column by its expression: its name (the expression's
/// text, without an alias) and its length and decimals (from a literal's own digits, where
/// a parameter gets its type's). A literal in one (at any depth: a derived table's columns
/// are the outer query's) stays a literal, or a column would be named `? * id` instead of
/// `2 * id`, or described wider than the text's.
fn keep_in_select_lists(statement: &Statement, places: &mut [Place]) {
    use sqlparser::ast::{Query, Visit, Visitor};
    use std::ops::ControlFlow;

    struct Named<'p>(&'p mut [Place]);
    impl Visitor for Named<'_> {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            each_select(&query.body, &mut |select| {
                for item in &select.projection {
                    keep_in(item, self.0);
                }
            });
            ControlFlow::Continue(())
        }
    }
    let _ = statement.visit(&mut Named(places));
}

/// Every marker in `node` stays a literal.
fn keep_in(node: &impl sqlparser::ast::Visit, places: &mut [Place]) {
    let _ = sqlparser::ast::visit_expressions(node, |e: &sqlparser::ast::Expr| {
        if let Some(slot) = marker_of(e).and_then(|i| places.get_mut(i)) {
            *slot = Place::Kept;
        }
        std::ops::ControlFlow::<()>::Continue(())
    });
}

/// The `SELECT`s of a query's body (through set operations; nested queries are visited on
/// their own).
fn each_select(body: &sqlparser::ast::SetExpr, f: &mut impl FnMut(&sqlparser::ast::Select)) {
    use sqlparser::ast::SetExpr;
    match body {
        SetExpr::Select(select) => f(select),
        SetExpr::SetOperation { left, right, .. } => {
            each_select(left, f);
            each_select(right, f);
        }
        _ => {}
    }
}

/// The literal a marker stands for.
fn marker_of(e: &sqlparser::ast::Expr) -> Option<usize> {
    match e {
        sqlparser::ast::Expr::Value(v) => match &v.value {
            Value::Placeholder(p) => p.strip_prefix(MARKER)?.strip_suffix('\u{1}')?.parse().ok(),
            _ => None,
        },
        _ => None,
    }
}

/// The text between the markers of `sql`, and which literal each marker stands for; `None`
/// unless each of the `count` markers is there exactly once.
fn split(sql: &str, places: Vec<Place>) -> Option<Template> {
    let count = places.len();
    let mut parts = Vec::with_capacity(count + 1);
    let mut order = Vec::with_capacity(count);
    let mut seen = vec![false; count];
    let mut rest = sql;
    while let Some(at) = rest.find(MARKER) {
        parts.push(rest[..at].to_string());
        let after = &rest[at + MARKER.len()..];
        let end = after.find('\u{1}')?;
        let index: usize = after[..end].parse().ok()?;
        if index >= count || std::mem::replace(&mut seen[index], true) {
            return None;
        }
        order.push(index);
        rest = &after[end + 1..];
    }
    parts.push(rest.to_string());
    seen.iter().all(|s| *s).then_some(Template {
        parts,
        order,
        places,
    })
}

impl Template {
    /// The length of its text.
    pub fn len(&self) -> usize {
        self.parts.iter().map(String::len).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl Shape {
    /// The text's own rewrite: `template` with its literals in place, checked as every
    /// printed statement is.
    pub fn fill(&self, template: &Template) -> Option<String> {
        let mut out =
            String::with_capacity(template.parts.iter().map(String::len).sum::<usize>() + 64);
        for (i, part) in template.parts.iter().enumerate() {
            out.push_str(part);
            if let Some(&literal) = template.order.get(i) {
                self.print_literal(literal, &mut out)?;
            }
        }
        printed::check(&out, self.dialect).ok()?;
        Some(out)
    }

    fn print_literal(&self, literal: usize, out: &mut String) -> Option<()> {
        let value = self.literals.get(literal)?;
        match printed::safe_value(value, self.dialect)? {
            Some(safe) => out.push_str(&safe.to_string()),
            None => out.push_str(&value.to_string()),
        }
        Some(())
    }

    /// The text's rewrite as a prepared statement: literals whose place and kind let a
    /// parameter read the same become parameters, the rest are printed as [`Self::fill`]
    /// prints them. `None` when no literal can be a parameter. On PostgreSQL numbers take
    /// the type PostgreSQL gives the literal (integer, bigint or numeric by its digits) and
    /// plain quoted strings compared with a column are left for the database to type from
    /// the column. On MySQL the parameters are given as the literals themselves
    /// (`EXECUTE … USING 5, 'x'`), so a parameter takes the literal's own type.
    pub fn bind(&self, template: &Template) -> Option<Bound> {
        let mysql = self.dialect == Dialect::MySql;
        let mut sql =
            String::with_capacity(template.parts.iter().map(String::len).sum::<usize>() + 16);
        let mut types = Vec::new();
        let mut values = Vec::new();
        for (i, part) in template.parts.iter().enumerate() {
            sql.push_str(part);
            let Some(&literal) = template.order.get(i) else {
                continue;
            };
            let place = template.places.get(literal).copied().unwrap_or(Place::Kept);
            let (oid, value) = match (place, self.literals.get(literal)?) {
                (Place::Operand | Place::Compared, Value::Number(n, false)) => {
                    match number_type(n) {
                        Some(_) if mysql => (0, n.clone()),
                        Some(oid) => (oid, n.clone()),
                        None => {
                            self.print_literal(literal, &mut sql)?;
                            continue;
                        }
                    }
                }
                (Place::Compared, Value::SingleQuotedString(s)) if !s.contains('\0') => {
                    if mysql {
                        let mut printed = String::with_capacity(s.len() + 2);
                        self.print_literal(literal, &mut printed)?;
                        (0, printed)
                    } else {
                        (0, s.clone())
                    }
                }
                _ => {
                    self.print_literal(literal, &mut sql)?;
                    continue;
                }
            };
            types.push(oid);
            values.push(value);
            if mysql {
                sql.push('?');
            } else {
                sql.push('$');
                sql.push_str(&types.len().to_string());
            }
        }
        if types.is_empty() {
            return None;
        }
        printed::check(&sql, self.dialect).ok()?;
        Some(Bound { sql, types, values })
    }
}

/// The type PostgreSQL gives a numeric literal: `integer` when it fits, then `bigint`, else
/// `numeric`; with a point or an exponent always `numeric`. `None` for forms left as
/// literals (hexadecimal, underscores).
fn number_type(n: &str) -> Option<u32> {
    const INT4: u32 = 23;
    const INT8: u32 = 20;
    const NUMERIC: u32 = 1700;
    if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) {
        return Some(if n.parse::<i32>().is_ok() {
            INT4
        } else if n.parse::<i64>().is_ok() {
            INT8
        } else {
            NUMERIC
        });
    }
    let (mantissa, exponent) = match n.find(['e', 'E']) {
        Some(at) => (&n[..at], Some(&n[at + 1..])),
        None => (n, None),
    };
    let mut halves = mantissa.splitn(2, '.');
    let whole = halves.next().unwrap_or("");
    let fraction = halves.next().unwrap_or("");
    let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    let mantissa_ok =
        digits(whole) && digits(fraction) && !(whole.is_empty() && fraction.is_empty());
    let exponent_ok = exponent.is_none_or(|e| {
        let e = e.strip_prefix(['+', '-']).unwrap_or(e);
        !e.is_empty() && digits(e)
    });
    (mantissa_ok && exponent_ok).then_some(NUMERIC)
}
