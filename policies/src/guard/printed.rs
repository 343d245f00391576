//! Printing the guard's output so the database reads exactly what was checked. The guard
//! prints from the AST, and sqlparser's printer has habits that would change the meaning:
//!
//! - it writes a quote inside a quoted string or identifier once, not twice, when a
//!   backslash comes before it or another quote after it (`\'` stays `\'`): for databases
//!   where a backslash is just a character (PostgreSQL with standard_conforming_strings,
//!   MySQL with NO_BACKSLASH_ESCAPES) that ends the string early and lets the rest of the
//!   value run as SQL. Such strings are printed another way (PostgreSQL: `E'...'`, which
//!   escapes every quote and backslash; MySQL: the other quote character), identifiers and
//!   strings that cannot be are refused;
//! - it writes a sign before a negative value as `--1`, a comment: signs are parenthesised.
//!
//! Last, every printed statement is scanned, reading quotes as the database reads them, and
//! refused if it holds a comment: there is none in an AST.

use std::ops::ControlFlow;

use sqlparser::ast::{
    Expr, Ident, Statement, UnaryOperator, Value, ValueWithSpan, VisitMut, VisitorMut,
    visit_expressions_mut,
};

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

/// Rewrites the quoted strings and identifiers of `statement` that sqlparser would print
/// wrongly; refuses the statement when one cannot be printed right.
pub fn quote_safely(statement: &mut Statement, dialect: Dialect) -> GuardResult<()> {
    struct Quoting {
        dialect: Dialect,
        failed: bool,
    }
    impl VisitorMut for Quoting {
        type Break = ();
        fn pre_visit_value(&mut self, value: &mut ValueWithSpan) -> ControlFlow<()> {
            match safe_value(&value.value, self.dialect) {
                Some(Some(safe)) => value.value = safe,
                Some(None) => {}
                None => {
                    self.failed = true;
                    return ControlFlow::Break(());
                }
            }
            ControlFlow::Continue(())
        }
        fn pre_visit_ident(&mut self, ident: &mut Ident) -> ControlFlow<()> {
            if let Some(quote) = ident.quote_style
                && !prints_right(&ident.value, quote)
            {
                self.failed = true;
                return ControlFlow::Break(());
            }
            ControlFlow::Continue(())
        }
    }
    let mut quoting = Quoting {
        dialect,
        failed: false,
    };
    let _ = statement.visit(&mut quoting);
    if quoting.failed {
        return Err(GuardError::not_allowed(
            "this quoted text (rectus cannot print it so that the database reads it as checked)",
        ));
    }
    Ok(())
}

/// How `value` must be printed: `Some(None)` as it is, `Some(Some(v))` as `v`, `None` not
/// at all.
pub fn safe_value(value: &Value, dialect: Dialect) -> Option<Option<Value>> {
    let fine = Some(None);
    match (value, dialect) {
        (Value::SingleQuotedString(s) | Value::NationalStringLiteral(s), Dialect::Postgres)
            if !prints_right(s, '\'') =>
        {
            Some(Some(Value::EscapedStringLiteral(s.clone())))
        }
        (Value::SingleQuotedString(s), Dialect::MySql) => {
            if prints_right(s, '\'') {
                fine
            } else if prints_right(s, '"') {
                Some(Some(Value::DoubleQuotedString(s.clone())))
            } else {
                None
            }
        }
        (Value::DoubleQuotedString(s), Dialect::MySql) => {
            if prints_right(s, '"') {
                fine
            } else if prints_right(s, '\'') {
                Some(Some(Value::SingleQuotedString(s.clone())))
            } else {
                None
            }
        }
        (Value::NationalStringLiteral(s), Dialect::MySql) => prints_right(s, '\'').then_some(None),
        _ => fine,
    }
}

/// Whether sqlparser prints `text` between `quote`s so that doubling is the only escape
/// needed: it must hold no quote after a backslash and no two quotes in a row.
fn prints_right(text: &str, quote: char) -> bool {
    let mut previous = None;
    for c in text.chars() {
        if c == quote && (previous == Some('\\') || previous == Some(quote)) {
            return false;
        }
        previous = Some(c);
    }
    true
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

#[cfg(test)]
mod quoting_tests {
    use super::*;

    #[test]
    fn quotes_after_backslashes_and_in_pairs_are_printed_another_way() {
        assert!(prints_right("it's", '\''));
        assert!(!prints_right("\\'", '\''));
        assert!(!prints_right("a''b", '\''));
        let pg = |s: &str| safe_value(&Value::SingleQuotedString(s.into()), Dialect::Postgres);
        assert_eq!(pg("plain"), Some(None));
        assert_eq!(
            pg("\\' UNION SELECT secret FROM orders --").map(|v| v.map(|v| v.to_string())),
            Some(Some(
                "E'\\\\\\' UNION SELECT secret FROM orders --'".to_string()
            ))
        );
        let my = |s: &str| safe_value(&Value::SingleQuotedString(s.into()), Dialect::MySql);
        assert_eq!(
            my("\\' x").map(|v| v.map(|v| v.to_string())),
            Some(Some("\"\\' x\"".to_string()))
        );
        assert_eq!(my("\\' and \\\""), None);
    }
}
