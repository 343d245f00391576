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
}

/// The shape of `sql`, or `None` when the text cannot have one (it does not tokenize,
/// holds parameters of its own, or, on MySQL, an executable comment).
pub fn shape(sql: &str, dialect: Dialect) -> Option<Shape> {
    let tokens = match dialect {
        Dialect::MySql => {
            // Text with an executable comment is guarded whole, as the server reads it.
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
    let again = || {
        parse()?
            .into_iter()
            .next()
            .ok_or_else(|| super::GuardError::denied(""))
    };
    let guarded = guard_statement(statement, ctx, again).ok()?;
    if guarded.kind != StatementKind::Read {
        return None;
    }
    split(&guarded.sql, shape.literals.len())
}

/// The text between the markers of `sql`, and which literal each marker stands for; `None`
/// unless each of the `count` markers is there exactly once.
fn split(sql: &str, count: usize) -> Option<Template> {
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
    seen.iter().all(|s| *s).then_some(Template { parts, order })
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
                let value = self.literals.get(literal)?;
                match printed::safe_value(value, self.dialect)? {
                    Some(safe) => out.push_str(&safe.to_string()),
                    None => out.push_str(&value.to_string()),
                }
            }
        }
        printed::check(&out, self.dialect).ok()?;
        Some(out)
    }
}
