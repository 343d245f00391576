//! The last pass over a guarded MySQL statement before it is printed for a session with
//! `NO_BACKSLASH_ESCAPES`: there `LIKE` has no escape character unless it names one, so
//! every `LIKE` gets MySQL's default (`\`) spelled out and keeps the meaning the client and
//! the permission filters gave it.

use std::ops::ControlFlow;

use sqlparser::ast::{Expr, Statement, Value, visit_expressions_mut};

pub fn prepare(statement: &mut Statement) {
    let _ = visit_expressions_mut(statement, |e| {
        if let Expr::Like {
            escape_char: escape @ None,
            ..
        } = e
        {
            *escape = Some(Box::new(Expr::Value(
                Value::SingleQuotedString("\\".into()).into(),
            )));
        }
        ControlFlow::<()>::Continue(())
    });
}
