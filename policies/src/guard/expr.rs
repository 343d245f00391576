//! Expressions: every node kind is checked (functions and casts against the allow-lists,
//! column references against the readable columns, subqueries walked with the same guard).
//! Node kinds the guard does not know are refused.

use sqlparser::ast::{
    AccessExpr, BinaryOperator, Expr, Function, FunctionArg, FunctionArgExpr,
    FunctionArgumentClause, FunctionArguments, Ident, ObjectName, ObjectNamePart, Subscript,
    UnaryOperator, Value, WindowType,
};

use super::functions;
use super::read::Walker;
use super::{GuardContext, GuardError, GuardResult};

/// Checks a function name (possibly `pg_catalog.`-qualified) against the allow-list.
pub fn check_function_name(ctx: &GuardContext, parts: &[String]) -> GuardResult<()> {
    if ctx.dialect == crate::Dialect::MySql {
        return super::mysql::functions::check_function(parts);
    }
    let name = match parts {
        [name] => name,
        [schema, name] if schema == "pg_catalog" => name,
        _ => {
            return Err(GuardError::not_allowed(format!(
                "function {}",
                parts.join(".")
            )));
        }
    };
    if functions::allowed_function(name) {
        Ok(())
    } else {
        Err(GuardError::not_allowed(format!("function {name}")))
    }
}

impl Walker<'_, '_> {
    pub fn expr(&mut self, e: &mut Expr) -> GuardResult<()> {
        match e {
            Expr::Identifier(ident)
                if self.mysql() && super::mysql::functions::answered_as_null(ident) =>
            {
                *e = Expr::Value(Value::Null.into());
                Ok(())
            }
            Expr::Identifier(ident) => self.identifier(ident),
            Expr::CompoundIdentifier(parts)
                if self.mysql()
                    && let Some(verdict) = super::mysql::functions::qualified_variable(parts) =>
            {
                verdict
            }
            Expr::CompoundIdentifier(parts) => match parts.as_slice() {
                [qualifier, column] => {
                    self.qualified_column(&self.ctx.name(qualifier), &self.ctx.name(column))
                }
                _ => Err(GuardError::not_allowed(
                    "a column reference with more than two parts",
                )),
            },
            Expr::Value(v) => value(self.ctx, &v.value),
            Expr::Nested(inner)
            | Expr::IsFalse(inner)
            | Expr::IsNotFalse(inner)
            | Expr::IsTrue(inner)
            | Expr::IsNotTrue(inner)
            | Expr::IsNull(inner)
            | Expr::IsNotNull(inner)
            | Expr::IsUnknown(inner)
            | Expr::IsNotUnknown(inner) => self.expr(inner),
            Expr::IsDistinctFrom(a, b) | Expr::IsNotDistinctFrom(a, b) => {
                self.expr(a)?;
                self.expr(b)
            }
            Expr::InList { expr, list, .. } => {
                self.expr(expr)?;
                list.iter_mut().try_for_each(|item| self.expr(item))
            }
            Expr::InSubquery { expr, subquery, .. } => {
                self.expr(expr)?;
                self.query(subquery)
            }
            Expr::Between {
                expr, low, high, ..
            } => {
                self.expr(expr)?;
                self.expr(low)?;
                self.expr(high)
            }
            Expr::BinaryOp { left, op, right } => {
                binary_operator(self.ctx, op)?;
                self.expr(left)?;
                self.expr(right)
            }
            Expr::Like {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::ILike {
                expr,
                pattern,
                escape_char,
                ..
            }
            | Expr::SimilarTo {
                expr,
                pattern,
                escape_char,
                ..
            } => {
                self.expr(expr)?;
                self.expr(pattern)?;
                if let Some(escape) = escape_char {
                    self.expr(escape)?;
                }
                Ok(())
            }
            Expr::AnyOp {
                left,
                compare_op,
                right,
                ..
            }
            | Expr::AllOp {
                left,
                compare_op,
                right,
            } => {
                binary_operator(self.ctx, compare_op)?;
                self.expr(left)?;
                self.expr(right)
            }
            Expr::UnaryOp { op, expr } => match op {
                UnaryOperator::Plus | UnaryOperator::Minus | UnaryOperator::Not => self.expr(expr),
                UnaryOperator::PGAbs | UnaryOperator::PGSquareRoot | UnaryOperator::PGCubeRoot
                    if !self.mysql() =>
                {
                    self.expr(expr)
                }
                UnaryOperator::BangNot | UnaryOperator::BitwiseNot if self.mysql() => {
                    self.expr(expr)
                }
                _ => Err(GuardError::not_allowed(format!("operator {op}"))),
            },
            Expr::Cast {
                expr,
                data_type,
                format,
                ..
            } => {
                let printed = data_type.to_string();
                let object =
                    !self.mysql() && functions::object_type(&printed) && self.catalog_column(expr);
                if format.is_some() || !(self.allowed_type(&printed) || object) {
                    return Err(GuardError::not_allowed(format!("a cast to {data_type}")));
                }
                self.expr(expr)
            }
            Expr::Convert {
                is_try: false,
                expr,
                data_type,
                charset,
                target_before_value: false,
                styles,
            } if self.mysql() && styles.is_empty() => {
                if let Some(data_type) = data_type
                    && !self.allowed_type(&data_type.to_string())
                {
                    return Err(GuardError::not_allowed(format!("a cast to {data_type}")));
                }
                if let Some(charset) = charset {
                    super::mysql::session::charset(&self.ctx.parts(charset)?.join("."))?;
                }
                self.expr(expr)
            }
            Expr::RLike { expr, pattern, .. } if self.mysql() => {
                self.expr(expr)?;
                self.expr(pattern)
            }
            Expr::Collate { expr, .. } => self.expr(expr),
            Expr::TypedString(typed) => {
                if !self.allowed_type(&typed.data_type.to_string()) {
                    return Err(GuardError::not_allowed(format!(
                        "a literal of type {}",
                        typed.data_type
                    )));
                }
                value(self.ctx, &typed.value.value)
            }
            Expr::AtTimeZone {
                timestamp,
                time_zone,
            } => {
                self.expr(timestamp)?;
                self.expr(time_zone)
            }
            Expr::Extract { expr, .. } | Expr::Ceil { expr, .. } | Expr::Floor { expr, .. } => {
                self.expr(expr)
            }
            Expr::Position { expr, r#in } => {
                self.expr(expr)?;
                self.expr(r#in)
            }
            Expr::Substring {
                expr,
                substring_from,
                substring_for,
                ..
            } => {
                self.expr(expr)?;
                for part in [substring_from, substring_for].into_iter().flatten() {
                    self.expr(part)?;
                }
                Ok(())
            }
            Expr::Trim {
                expr,
                trim_what,
                trim_characters,
                ..
            } => {
                self.expr(expr)?;
                if let Some(what) = trim_what {
                    self.expr(what)?;
                }
                for c in trim_characters.iter_mut().flatten() {
                    self.expr(c)?;
                }
                Ok(())
            }
            Expr::Overlay {
                expr,
                overlay_what,
                overlay_from,
                overlay_for,
            } => {
                self.expr(expr)?;
                self.expr(overlay_what)?;
                self.expr(overlay_from)?;
                if let Some(f) = overlay_for {
                    self.expr(f)?;
                }
                Ok(())
            }
            Expr::Function(function) => self.function(function),
            Expr::Case {
                operand,
                conditions,
                else_result,
                ..
            } => {
                if let Some(operand) = operand {
                    self.expr(operand)?;
                }
                for when in conditions {
                    self.expr(&mut when.condition)?;
                    self.expr(&mut when.result)?;
                }
                if let Some(e) = else_result {
                    self.expr(e)?;
                }
                Ok(())
            }
            Expr::Exists { subquery, .. } | Expr::Subquery(subquery) => self.query(subquery),
            Expr::Tuple(items) => items.iter_mut().try_for_each(|item| self.expr(item)),
            Expr::Array(array) => array.elem.iter_mut().try_for_each(|item| self.expr(item)),
            Expr::Interval(interval) => self.expr(&mut interval.value),
            Expr::CompoundFieldAccess { root, access_chain } => {
                self.expr(root)?;
                for access in access_chain {
                    match access {
                        AccessExpr::Subscript(Subscript::Index { index }) => self.expr(index)?,
                        AccessExpr::Subscript(Subscript::Slice {
                            lower_bound,
                            upper_bound,
                            stride,
                        }) => {
                            for part in [lower_bound, upper_bound, stride].into_iter().flatten() {
                                self.expr(part)?;
                            }
                        }
                        // `(composite).field` could name a column of a whole-row value.
                        AccessExpr::Dot(_) => {
                            return Err(GuardError::not_allowed("field access on a value"));
                        }
                    }
                }
                Ok(())
            }
            other => Err(GuardError::not_allowed(format!(
                "the expression {}",
                short(&other.to_string())
            ))),
        }
    }

    fn mysql(&self) -> bool {
        self.ctx.dialect == crate::Dialect::MySql
    }

    fn allowed_type(&self, printed: &str) -> bool {
        if self.mysql() {
            super::mysql::functions::allowed_type(printed)
        } else {
            functions::allowed_type(printed)
        }
    }

    fn identifier(&self, ident: &Ident) -> GuardResult<()> {
        if self.ctx.dialect == crate::Dialect::MySql {
            return super::mysql::functions::identifier(self, ident);
        }
        let name = self.ctx.name(ident);
        if ident.quote_style.is_none() && functions::session_keyword(&name) {
            return Err(GuardError::not_allowed(name.to_uppercase()));
        }
        self.unqualified_column(&name)
    }

    pub(super) fn function(&mut self, function: &mut Function) -> GuardResult<()> {
        if self.ctx.dialect == crate::Dialect::MySql {
            check_function_name(self.ctx, &self.ctx.parts(&function.name)?)?;
            return self.function_body(function);
        }
        let parts = self.ctx.parts(&function.name)?;
        if parts.len() == 1 && functions::session_keyword(&parts[0]) {
            return Err(GuardError::not_allowed(parts[0].to_uppercase()));
        }
        let name = parts.last().cloned().unwrap_or_default();
        let schema_ok = parts.len() == 1 || (parts.len() == 2 && parts[0] == "pg_catalog");
        if schema_ok && functions::object_function(&name) {
            let first = match &function.args {
                FunctionArguments::List(list) => list.args.first(),
                _ => None,
            };
            let on_catalog = matches!(
                first,
                Some(FunctionArg::Unnamed(FunctionArgExpr::Expr(e))) if self.catalog_column(e)
            );
            if !on_catalog {
                return Err(GuardError::not_allowed(format!(
                    "function {name} on anything but the catalog's own rows"
                )));
            }
        } else if !(schema_ok && functions::catalog_function(&name)) {
            check_function_name(self.ctx, &parts)?;
        }
        // Qualify allow-listed functions so no same-named function elsewhere on the
        // upstream's search path can stand in for the built-in.
        if parts.len() == 1
            && !functions::is_keyword_function(&name)
            && matches!(function.args, FunctionArguments::List(_))
        {
            function.name = ObjectName(vec![
                ObjectNamePart::Identifier(Ident::new("pg_catalog")),
                ObjectNamePart::Identifier(Ident::new(name)),
            ]);
        }
        self.function_body(function)
    }

    /// A function's arguments, clauses and window, once its name passed.
    fn function_body(&mut self, function: &mut Function) -> GuardResult<()> {
        if function.uses_odbc_syntax || function.null_treatment.is_some() {
            return Err(GuardError::not_allowed("this function syntax"));
        }
        self.function_arguments(&mut function.parameters)?;
        self.function_arguments(&mut function.args)?;
        for item in &mut function.within_group {
            self.expr(&mut item.expr)?;
        }
        if let Some(filter) = &mut function.filter {
            self.expr(filter)?;
        }
        match &mut function.over {
            Some(WindowType::WindowSpec(spec)) => self.window_spec(spec)?,
            Some(WindowType::NamedWindow(_)) | None => {}
        }
        Ok(())
    }

    fn function_arguments(&mut self, args: &mut FunctionArguments) -> GuardResult<()> {
        match args {
            FunctionArguments::None => Ok(()),
            FunctionArguments::Subquery(query) => self.query(query),
            FunctionArguments::List(list) => {
                for arg in &mut list.args {
                    self.function_arg(arg)?;
                }
                for clause in &mut list.clauses {
                    match clause {
                        FunctionArgumentClause::OrderBy(items) => {
                            for item in items {
                                self.expr(&mut item.expr)?;
                            }
                        }
                        FunctionArgumentClause::Limit(e) => self.expr(e)?,
                        FunctionArgumentClause::IgnoreOrRespectNulls(_) => {}
                        _ => return Err(GuardError::not_allowed("this function argument clause")),
                    }
                }
                Ok(())
            }
        }
    }

    pub(super) fn function_arg(&mut self, arg: &mut FunctionArg) -> GuardResult<()> {
        let arg = match arg {
            FunctionArg::Unnamed(arg) => arg,
            FunctionArg::Named { arg, .. } => arg,
            FunctionArg::ExprNamed { .. } => {
                return Err(GuardError::not_allowed("this named argument"));
            }
        };
        match arg {
            FunctionArgExpr::Expr(e) => self.expr(e),
            // `count(*)`, `count(t.*)`: whole rows of guarded tables.
            FunctionArgExpr::Wildcard | FunctionArgExpr::QualifiedWildcard(_) => Ok(()),
            FunctionArgExpr::WildcardWithOptions(_) => {
                Err(GuardError::not_allowed("wildcard options"))
            }
        }
    }
}

fn value(ctx: &GuardContext, v: &Value) -> GuardResult<()> {
    match v {
        // MySQL reads double quotes as a string (ANSI_QUOTES is never on for a guarded
        // session); PostgreSQL never makes this value.
        Value::DoubleQuotedString(_) if ctx.dialect == crate::Dialect::MySql => Ok(()),
        // MySQL's only parameter is `?`; the parser reads `@`x`` as a placeholder too.
        Value::Placeholder(p)
            if ctx.dialect == crate::Dialect::MySql
                && p != "?"
                && !p.starts_with(super::template::MARKER) =>
        {
            Err(GuardError::not_allowed("user variables (@name)"))
        }
        Value::Number(..)
        | Value::SingleQuotedString(_)
        | Value::DollarQuotedString(_)
        | Value::EscapedStringLiteral(_)
        | Value::UnicodeStringLiteral(_)
        | Value::NationalStringLiteral(_)
        | Value::HexStringLiteral(_)
        | Value::Boolean(_)
        | Value::Null
        | Value::Placeholder(_) => Ok(()),
        other => Err(GuardError::not_allowed(format!("the literal {other}"))),
    }
}

/// The dialect's built-in operators; a custom `OPERATOR(schema.op)` could run any function,
/// and MySQL's `:=` assigns user variables.
fn binary_operator(ctx: &GuardContext, op: &BinaryOperator) -> GuardResult<()> {
    match op {
        BinaryOperator::Assignment => Err(GuardError::not_allowed("assigning variables (:=)")),
        BinaryOperator::PGCustomBinaryOperator(_) if ctx.dialect == crate::Dialect::MySql => {
            Err(GuardError::not_allowed(format!("operator {op}")))
        }
        BinaryOperator::PGCustomBinaryOperator(parts)
            if functions::catalog_operator(
                &parts.iter().map(|p| p.to_lowercase()).collect::<Vec<_>>(),
            ) =>
        {
            Ok(())
        }
        BinaryOperator::PGCustomBinaryOperator(_) => {
            Err(GuardError::not_allowed(format!("operator {op}")))
        }
        _ => Ok(()),
    }
}

fn short(text: &str) -> String {
    let mut s: String = text.chars().take(40).collect();
    if text.chars().count() > 40 {
        s.push('…');
    }
    s
}
