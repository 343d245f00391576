//! The fence: whether a statement's conditions could fail or have effects on rows outside
//! the row filters (then its derived tables get the fence, which keeps the database from
//! running those conditions before the filters), decided by looking at the statement before
//! the walk so each statement is rewritten once.

use sqlparser::ast::{BinaryOperator, Expr, UnaryOperator};

/// Whether a predicate can neither fail nor have an effect, whatever row it runs on:
/// comparisons of columns, literals and parameters joined by AND/OR/NOT. Such predicates
/// may run before the row filter (and let the database use its indexes); anything else
/// gets the fence.
pub fn leakproof(e: &Expr) -> bool {
    if constant(e) {
        return true;
    }
    match e {
        Expr::Identifier(_) | Expr::CompoundIdentifier(_) => true,
        Expr::Value(_) => true,
        Expr::Nested(inner)
        | Expr::IsNull(inner)
        | Expr::IsNotNull(inner)
        | Expr::IsTrue(inner)
        | Expr::IsFalse(inner)
        | Expr::IsNotTrue(inner)
        | Expr::IsNotFalse(inner) => leakproof(inner),
        Expr::UnaryOp {
            op: UnaryOperator::Not,
            expr,
        } => leakproof(expr),
        Expr::BinaryOp { left, op, right } => {
            matches!(
                op,
                BinaryOperator::Eq
                    | BinaryOperator::NotEq
                    | BinaryOperator::Lt
                    | BinaryOperator::LtEq
                    | BinaryOperator::Gt
                    | BinaryOperator::GtEq
                    | BinaryOperator::And
                    | BinaryOperator::Or
            ) && leakproof(left)
                && leakproof(right)
        }
        Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => leakproof(a) && leakproof(b),
        Expr::InList { expr, list, .. } => leakproof(expr) && list.iter().all(leakproof),
        Expr::Between {
            expr, low, high, ..
        } => leakproof(expr) && leakproof(low) && leakproof(high),
        _ => false,
    }
}

/// Whether any condition of the statement (WHERE, HAVING, JOIN ... ON, in any query or
/// subquery, and the conditions of UPDATE and DELETE) is not [`leakproof`].
pub fn needs_fence(statement: &sqlparser::ast::Statement) -> bool {
    use sqlparser::ast::{
        JoinConstraint, JoinOperator, Query, SetExpr, Statement, TableFactor, TableWithJoins,
        Visit, Visitor,
    };
    use std::ops::ControlFlow;

    fn from_leaks(from: &TableWithJoins) -> bool {
        let nested = match &from.relation {
            TableFactor::NestedJoin {
                table_with_joins, ..
            } => from_leaks(table_with_joins),
            _ => false,
        };
        nested
            || from.joins.iter().any(|j| {
                let on = match &j.join_operator {
                    JoinOperator::Join(JoinConstraint::On(e))
                    | JoinOperator::Inner(JoinConstraint::On(e))
                    | JoinOperator::Left(JoinConstraint::On(e))
                    | JoinOperator::LeftOuter(JoinConstraint::On(e))
                    | JoinOperator::Right(JoinConstraint::On(e))
                    | JoinOperator::RightOuter(JoinConstraint::On(e))
                    | JoinOperator::FullOuter(JoinConstraint::On(e))
                    | JoinOperator::CrossJoin(JoinConstraint::On(e)) => !leakproof(e),
                    _ => false,
                };
                let nested = match &j.relation {
                    TableFactor::NestedJoin {
                        table_with_joins, ..
                    } => from_leaks(table_with_joins),
                    _ => false,
                };
                on || nested
            })
    }

    fn body_leaks(body: &SetExpr) -> bool {
        match body {
            SetExpr::Select(select) => {
                select.selection.as_ref().is_some_and(|e| !leakproof(e))
                    || select.having.as_ref().is_some_and(|e| !leakproof(e))
                    || select.from.iter().any(from_leaks)
            }
            SetExpr::SetOperation { left, right, .. } => body_leaks(left) || body_leaks(right),
            _ => false,
        }
    }

    struct Finder;

    impl Visitor for Finder {
        type Break = ();
        fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
            if body_leaks(&query.body) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
        fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
            let condition = match statement {
                Statement::Update(u) => u.selection.as_ref(),
                Statement::Delete(d) => d.selection.as_ref(),
                _ => None,
            };
            if condition.is_some_and(|e| !leakproof(e)) {
                ControlFlow::Break(())
            } else {
                ControlFlow::Continue(())
            }
        }
    }
    statement.visit(&mut Finder).is_break()
}

/// An expression that reads no row: whatever it does, it does the same on every row, so
/// it tells nothing about rows the caller may not see.
fn constant(e: &Expr) -> bool {
    use sqlparser::ast::Visit;
    use std::ops::ControlFlow;
    let found = e.visit(&mut ColumnFinder);
    struct ColumnFinder;
    impl sqlparser::ast::Visitor for ColumnFinder {
        type Break = ();
        fn pre_visit_expr(&mut self, e: &Expr) -> ControlFlow<()> {
            match e {
                Expr::Identifier(_)
                | Expr::CompoundIdentifier(_)
                | Expr::Subquery(_)
                | Expr::Exists { .. }
                | Expr::InSubquery { .. }
                | Expr::Wildcard(_)
                | Expr::QualifiedWildcard(..) => ControlFlow::Break(()),
                _ => ControlFlow::Continue(()),
            }
        }
        fn pre_visit_query(&mut self, _: &sqlparser::ast::Query) -> ControlFlow<()> {
            ControlFlow::Break(())
        }
    }
    found.is_continue()
}
