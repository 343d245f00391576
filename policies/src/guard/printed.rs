//! The last check on what the guard sends: its output is printed from the AST, so no
//! comment can be in it. A comment there means the printer joined two tokens into a comment
//! starter (`- -1` prints as `--1`) and the database would read something else than what
//! was checked; such a statement is refused. The scan reads quotes the way the database
//! reads the guard's output (PostgreSQL with standard_conforming_strings, MySQL with
//! NO_BACKSLASH_ESCAPES and without ANSI_QUOTES).

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, UnaryOperator, Value, visit_expressions_mut};

use super::{GuardError, GuardResult};
use crate::Dialect;

/// Parenthesises a sign before an expression that prints starting with a minus, so the
/// two never touch (`- -1` would print as the comment `--1`).
pub fn separate_signs(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::UnaryOp { expr, .. } = e
            && starts_with_minus(expr)
        {
            let inner = std::mem::replace(expr.as_mut(), Expr::Value(Value::Null.into()));
            **expr = Expr::Nested(Box::new(inner));
        }
        ControlFlow::<()>::Continue(())
    });
}

fn starts_with_minus(e: &Expr) -> bool {
    match e {
        Expr::UnaryOp {
            op: UnaryOperator::Minus,
            ..
        } => true,
        Expr::Value(v) => matches!(&v.value, Value::Number(n, _) if n.starts_with('-')),
        _ => false,
    }
}

/// Refuses `sql` when it holds a comment outside quotes.
pub fn check(sql: &str, dialect: Dialect) -> GuardResult<()> {
    let found = match dialect {
        Dialect::MySql => mysql_comment(sql.as_bytes()),
        _ => pg_comment(sql.as_bytes()),
    };
    if found {
        return Err(GuardError::not_allowed(
            "this statement (rectus cannot print it so that the database reads it as checked)",
        ));
    }
    Ok(())
}

fn pg_comment(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'-' if b.get(i + 1) == Some(&b'-') => return true,
            b'/' if b.get(i + 1) == Some(&b'*') => return true,
            b'\'' => {
                let escapes =
                    i > 0 && matches!(b[i - 1], b'e' | b'E') && (i < 2 || !is_ident(b[i - 2]));
                i = skip(b, i + 1, b'\'', escapes);
            }
            b'"' => i = skip(b, i + 1, b'"', false),
            b'$' if i == 0 || !is_ident(b[i - 1]) => i = skip_dollar(b, i),
            _ => i += 1,
        }
    }
    false
}

fn mysql_comment(b: &[u8]) -> bool {
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'#' => return true,
            b'-' if b.get(i + 1) == Some(&b'-')
                && b.get(i + 2)
                    .is_none_or(|c| c.is_ascii_whitespace() || *c < 32) =>
            {
                return true;
            }
            b'/' if b.get(i + 1) == Some(&b'*') => return true,
            quote @ (b'\'' | b'"' | b'`') => i = skip(b, i + 1, quote, false),
            _ => i += 1,
        }
    }
    false
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// The index after the closing quote; a doubled quote is part of the text, and with
/// `escapes` a backslash takes the next byte.
fn skip(b: &[u8], mut i: usize, quote: u8, escapes: bool) -> usize {
    while i < b.len() {
        match b[i] {
            b'\\' if escapes => i += 2,
            c if c == quote => {
                if b.get(i + 1) == Some(&quote) {
                    i += 2;
                } else {
                    return i + 1;
                }
            }
            _ => i += 1,
        }
    }
    b.len()
}

/// A dollar-quoted string (`$tag$ ... $tag$`), or a lone `$` (a parameter such as `$1`).
fn skip_dollar(b: &[u8], i: usize) -> usize {
    let tag_end = b[i + 1..]
        .iter()
        .position(|&c| !(c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80))
        .map(|n| i + 1 + n);
    match tag_end {
        Some(end) if b[end] == b'$' && !b[i + 1..end].first().is_some_and(u8::is_ascii_digit) => {
            let tag = &b[i..=end];
            match b[end + 1..].windows(tag.len()).position(|w| w == tag) {
                Some(at) => end + 1 + at + tag.len(),
                None => b.len(),
            }
        }
        _ => i + 1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comments_outside_quotes_are_found() {
        for sql in [
            "SELECT --1, 'x'",
            "SELECT 1 /* x */",
            "SELECT 'a''' -- x",
            "SELECT E'\\'' --",
            "SELECT $a$ -- $a$ --",
            "SELECT \"a\"\"b\" --",
        ] {
            assert!(check(sql, Dialect::Postgres).is_err(), "{sql}");
        }
        for sql in [
            "SELECT '--', \"--\", E'\\' --', $$ -- $$, $t$ /* $t$, $1 - -1",
            "SELECT 'it''s', U&'\\0041'",
            "SELECT date'x', e.x FROM t e WHERE e.y = '--'",
        ] {
            assert!(check(sql, Dialect::Postgres).is_ok(), "{sql}");
        }
        for sql in [
            "SELECT 1 # x",
            "SELECT 1 -- x",
            "SELECT 1 /* x */",
            "SELECT '\\' -- '",
        ] {
            assert!(check(sql, Dialect::MySql).is_err(), "{sql}");
        }
        for sql in ["SELECT --1", "SELECT '#', \"-- \", `/*`", "SELECT 'a\\', 1"] {
            assert!(check(sql, Dialect::MySql).is_ok(), "{sql}");
        }
    }
}
