//! The walk over a query: resolves every table reference the way PostgreSQL would (CTE
//! names shadow tables, unqualified names live in the configured schema), replaces user
//! tables by their guarded derived tables, and checks every expression. Anything it does not
//! know is refused.

use sqlparser::ast::{
    Distinct, GroupByExpr, Join, JoinConstraint, JoinOperator, LimitClause, NamedWindowExpr,
    ObjectName, OrderByKind, Query, Select, SelectItem, SelectItemQualifiedWildcardKind, SetExpr,
    TableAlias, TableFactor, TableWithJoins, WildcardAdditionalOptions,
};

use super::relation;
use super::{GuardContext, GuardError, GuardResult};
use crate::Collection;

/// A FROM item the walk has seen, for resolving column references.
#[derive(Debug, Clone)]
pub(super) enum Source {
    /// A guarded user table: its columns are known.
    Table { alias: String, collection: String },
    /// A derived table, CTE or function: its columns are whatever it produces.
    Opaque { alias: Option<String> },
    /// The table a write changes, read directly: only its readable columns may be named.
    Raw { alias: String, collection: String },
    /// A virtual system catalog: its columns hold only what the user may see.
    Catalog { alias: String },
}

pub(crate) struct Walker<'c, 'a> {
    pub ctx: &'c GuardContext<'a>,
    fence: bool,
    /// Set when a predicate could run on rows outside a row filter unless fenced.
    pub needs_fence: bool,
    /// Rule checks a write leaves to the statement's parameters.
    pub deferred: Option<super::Deferred>,
    /// CTE names in scope, innermost last.
    ctes: Vec<String>,
    /// FROM items of the enclosing queries, innermost last.
    pub(super) scopes: Vec<Vec<Source>>,
}

impl<'c, 'a> Walker<'c, 'a> {
    pub fn new(ctx: &'c GuardContext<'a>, fence: bool) -> Self {
        Walker {
            ctx,
            fence,
            needs_fence: false,
            deferred: None,
            ctes: Vec::new(),
            scopes: Vec::new(),
        }
    }

    pub fn fence(&self) -> bool {
        self.fence
    }

    pub fn query(&mut self, query: &mut Query) -> GuardResult<()> {
        if !query.locks.is_empty() {
            return Err(GuardError::not_allowed("SELECT ... FOR UPDATE/SHARE"));
        }
        if query.for_clause.is_some()
            || query.settings.is_some()
            || query.format_clause.is_some()
            || !query.pipe_operators.is_empty()
        {
            return Err(GuardError::not_allowed("this query clause"));
        }
        let mark = self.ctes.len();
        if let Some(with) = &mut query.with {
            for cte in &mut with.cte_tables {
                if cte.from.is_some() {
                    return Err(GuardError::not_allowed("this WITH clause"));
                }
                let name = self.ctx.name(&cte.alias.name);
                // A CTE may not take the name of a table: a reference the database resolves
                // outside the CTE's scope would otherwise reach the table unguarded.
                if name.starts_with("pg_") || self.ctx.collection(&name).is_some() {
                    return Err(GuardError::not_allowed(format!(
                        "a WITH query named like a table ({name})"
                    )));
                }
                if with.recursive {
                    self.ctes.push(name.clone());
                }
                self.query(&mut cte.query)?;
                if !with.recursive {
                    self.ctes.push(name);
                }
            }
        }
        let result = self.query_body(query);
        self.ctes.truncate(mark);
        result
    }

    fn query_body(&mut self, query: &mut Query) -> GuardResult<()> {
        // ORDER BY may name the body's FROM items (PostgreSQL allows it for a plain SELECT).
        let scope = self.set_expr(&mut query.body)?;
        self.scopes.push(scope);
        let result = self.query_tail(query);
        self.scopes.pop();
        result
    }

    fn query_tail(&mut self, query: &mut Query) -> GuardResult<()> {
        if let Some(order_by) = &mut query.order_by {
            if order_by.interpolate.is_some() {
                return Err(GuardError::not_allowed("ORDER BY ... INTERPOLATE"));
            }
            match &mut order_by.kind {
                OrderByKind::Expressions(items) => {
                    for item in items {
                        if item.with_fill.is_some() {
                            return Err(GuardError::not_allowed("ORDER BY ... WITH FILL"));
                        }
                        self.expr(&mut item.expr)?;
                    }
                }
                OrderByKind::All(_) => return Err(GuardError::not_allowed("ORDER BY ALL")),
            }
        }
        match &mut query.limit_clause {
            None => {}
            Some(LimitClause::LimitOffset {
                limit,
                offset,
                limit_by,
            }) => {
                if !limit_by.is_empty() {
                    return Err(GuardError::not_allowed("LIMIT BY"));
                }
                if let Some(limit) = limit {
                    self.expr(limit)?;
                }
                if let Some(offset) = offset {
                    self.expr(&mut offset.value)?;
                }
            }
            Some(LimitClause::OffsetCommaLimit { offset, limit }) => {
                self.expr(offset)?;
                self.expr(limit)?;
            }
        }
        if let Some(fetch) = &mut query.fetch
            && let Some(quantity) = &mut fetch.quantity
        {
            self.expr(quantity)?;
        }
        Ok(())
    }

    /// Walks a query body; returns the FROM items of a plain SELECT (for its ORDER BY).
    fn set_expr(&mut self, body: &mut SetExpr) -> GuardResult<Vec<Source>> {
        match body {
            SetExpr::Select(select) => self.select(select),
            SetExpr::Query(query) => self.query(query).map(|()| Vec::new()),
            SetExpr::SetOperation { left, right, .. } => {
                self.set_expr(left)?;
                self.set_expr(right)?;
                Ok(Vec::new())
            }
            SetExpr::Values(values) => {
                for row in &mut values.rows {
                    for value in row.iter_mut() {
                        self.expr(value)?;
                    }
                }
                Ok(Vec::new())
            }
            SetExpr::Insert(_) | SetExpr::Update(_) | SetExpr::Delete(_) | SetExpr::Merge(_) => {
                Err(GuardError::not_allowed(
                    "a data-modifying statement inside a query",
                ))
            }
            SetExpr::Table(_) => Err(GuardError::not_allowed("TABLE (use SELECT * FROM)")),
        }
    }

    fn select(&mut self, select: &mut Select) -> GuardResult<Vec<Source>> {
        if select.top.is_some()
            || select.into.is_some()
            || !select.lateral_views.is_empty()
            || select.prewhere.is_some()
            || !select.connect_by.is_empty()
            || !select.cluster_by.is_empty()
            || !select.distribute_by.is_empty()
            || !select.sort_by.is_empty()
            || select.qualify.is_some()
            || select.value_table_mode.is_some()
            || select.exclude.is_some()
            || !select.optimizer_hints.is_empty()
            // MySQL's modifiers (SQL_NO_CACHE, SQL_CALC_FOUND_ROWS, STRAIGHT_JOIN, ...) only
            // steer how the guarded query runs.
            || (select.select_modifiers.is_some() && self.ctx.dialect != crate::Dialect::MySql)
        {
            return Err(GuardError::not_allowed("this SELECT clause"));
        }
        self.scopes.push(Vec::new());
        let result = self.select_parts(select);
        let scope = self.scopes.pop().unwrap_or_default();
        result.map(|()| scope)
    }

    fn select_parts(&mut self, select: &mut Select) -> GuardResult<()> {
        for from in &mut select.from {
            self.table_with_joins(from)?;
        }
        if let Some(Distinct::On(exprs)) = &mut select.distinct {
            for e in exprs {
                self.expr(e)?;
            }
        }
        for item in &mut select.projection {
            self.select_item(item)?;
        }
        if let Some(selection) = &mut select.selection {
            self.predicate(selection)?;
        }
        match &mut select.group_by {
            GroupByExpr::Expressions(exprs, modifiers) => {
                if !modifiers.is_empty() {
                    return Err(GuardError::not_allowed("GROUP BY modifiers"));
                }
                for e in exprs {
                    self.expr(e)?;
                }
            }
            GroupByExpr::All(_) => return Err(GuardError::not_allowed("GROUP BY ALL")),
        }
        if let Some(having) = &mut select.having {
            self.predicate(having)?;
        }
        for window in &mut select.named_window {
            if let NamedWindowExpr::WindowSpec(spec) = &mut window.1 {
                self.window_spec(spec)?;
            }
        }
        Ok(())
    }

    pub(super) fn select_item(&mut self, item: &mut SelectItem) -> GuardResult<()> {
        // A variable answered as NULL keeps its name as the column's.
        if let SelectItem::UnnamedExpr(sqlparser::ast::Expr::Identifier(ident)) = item
            && self.ctx.dialect == crate::Dialect::MySql
            && super::mysql::functions::answered_as_null(ident)
        {
            *item = SelectItem::ExprWithAlias {
                expr: sqlparser::ast::Expr::Identifier(ident.clone()),
                alias: self.ctx.quoted(&ident.value),
            };
        }
        match item {
            SelectItem::UnnamedExpr(e) | SelectItem::ExprWithAlias { expr: e, .. } => self.expr(e),
            SelectItem::Wildcard(options) => plain_wildcard(options),
            SelectItem::QualifiedWildcard(kind, options) => {
                plain_wildcard(options)?;
                match kind {
                    SelectItemQualifiedWildcardKind::ObjectName(name) => {
                        if name.0.len() > 1 {
                            return Err(GuardError::not_allowed("a schema-qualified wildcard"));
                        }
                        Ok(())
                    }
                    SelectItemQualifiedWildcardKind::Expr(e) => self.expr(e),
                }
            }
            SelectItem::ExprWithAliases { .. } => Err(GuardError::not_allowed("this select item")),
        }
    }

    /// A WHERE, ON or HAVING condition: besides the usual checks, one that could fail or
    /// have effects on rows it should not see asks for the fence.
    pub(super) fn predicate(&mut self, e: &mut sqlparser::ast::Expr) -> GuardResult<()> {
        if !super::fence::leakproof(e) {
            self.needs_fence = true;
        }
        self.expr(e)
    }

    fn table_with_joins(&mut self, twj: &mut TableWithJoins) -> GuardResult<()> {
        self.table_factor(&mut twj.relation)?;
        for join in &mut twj.joins {
            self.join(join)?;
        }
        Ok(())
    }

    fn join(&mut self, join: &mut Join) -> GuardResult<()> {
        if join.global {
            return Err(GuardError::not_allowed("GLOBAL JOIN"));
        }
        self.table_factor(&mut join.relation)?;
        let constraint = match &mut join.join_operator {
            JoinOperator::Join(c)
            | JoinOperator::Inner(c)
            | JoinOperator::Left(c)
            | JoinOperator::LeftOuter(c)
            | JoinOperator::Right(c)
            | JoinOperator::RightOuter(c)
            | JoinOperator::FullOuter(c)
            | JoinOperator::CrossJoin(c) => c,
            _ => return Err(GuardError::not_allowed("this kind of JOIN")),
        };
        match constraint {
            JoinConstraint::On(e) => self.predicate(e),
            JoinConstraint::Using(columns) => {
                for column in columns.iter() {
                    let parts = self.ctx.parts(column)?;
                    if parts.len() != 1 {
                        return Err(GuardError::not_allowed("a qualified USING column"));
                    }
                    self.unqualified_column(&parts[0])?;
                }
                Ok(())
            }
            JoinConstraint::Natural | JoinConstraint::None => Ok(()),
        }
    }

    fn table_factor(&mut self, factor: &mut TableFactor) -> GuardResult<()> {
        match factor {
            TableFactor::Table {
                name,
                alias,
                args,
                with_hints,
                version,
                with_ordinality,
                partitions,
                json_path,
                sample,
                index_hints,
            } => {
                if !with_hints.is_empty()
                    || version.is_some()
                    || !partitions.is_empty()
                    || json_path.is_some()
                    || sample.is_some()
                    || !index_hints.is_empty()
                {
                    return Err(GuardError::not_allowed("this table clause"));
                }
                if let Some(args) = args {
                    // A function in FROM (`generate_series(1, 3)`).
                    let parts = self.ctx.parts(name)?;
                    super::expr::check_function_name(self.ctx, &parts)?;
                    for arg in &mut args.args {
                        self.function_arg(arg)?;
                    }
                    if args.settings.is_some() {
                        return Err(GuardError::not_allowed("table function settings"));
                    }
                    let alias = alias.as_ref().map(|a| self.ctx.name(&a.name));
                    self.add_source(Source::Opaque {
                        alias: alias.or_else(|| parts.last().cloned()),
                    });
                    return Ok(());
                }
                if *with_ordinality {
                    return Err(GuardError::not_allowed("WITH ORDINALITY on a table"));
                }
                let replacement = self.table_reference(name, alias.take())?;
                *factor = replacement;
                Ok(())
            }
            TableFactor::Derived {
                subquery,
                alias,
                sample,
                ..
            } => {
                if sample.is_some() {
                    return Err(GuardError::not_allowed("TABLESAMPLE"));
                }
                self.query(subquery)?;
                self.add_source(Source::Opaque {
                    alias: alias.as_ref().map(|a| self.ctx.name(&a.name)),
                });
                Ok(())
            }
            TableFactor::Function {
                name, args, alias, ..
            } => {
                let parts = self.ctx.parts(name)?;
                super::expr::check_function_name(self.ctx, &parts)?;
                for arg in args {
                    self.function_arg(arg)?;
                }
                let alias = alias.as_ref().map(|a| self.ctx.name(&a.name));
                self.add_source(Source::Opaque { alias });
                Ok(())
            }
            TableFactor::UNNEST {
                array_exprs, alias, ..
            } => {
                for e in array_exprs {
                    self.expr(e)?;
                }
                let alias = alias.as_ref().map(|a| self.ctx.name(&a.name));
                self.add_source(Source::Opaque { alias });
                Ok(())
            }
            TableFactor::NestedJoin {
                table_with_joins,
                alias,
            } => {
                if alias.is_some() {
                    return Err(GuardError::not_allowed("an aliased join"));
                }
                self.table_with_joins(table_with_joins)
            }
            _ => Err(GuardError::not_allowed("this FROM item")),
        }
    }

    pub(super) fn add_source(&mut self, source: Source) {
        if let Some(scope) = self.scopes.last_mut() {
            scope.push(source);
        }
    }

    /// Resolves a table name: a CTE in scope stays as it is; a user table becomes its
    /// guarded derived table under the name the query gave it.
    fn table_reference(
        &mut self,
        name: &ObjectName,
        alias: Option<TableAlias>,
    ) -> GuardResult<TableFactor> {
        let parts = self.ctx.parts(name)?;
        // MySQL's `FROM DUAL` names no table.
        let dual = self.ctx.dialect == crate::Dialect::MySql
            && parts == ["dual"]
            && self.ctx.collection("dual").is_none();
        if dual || (parts.len() == 1 && self.ctes.contains(&parts[0])) {
            let alias_name = alias.as_ref().map(|a| self.ctx.name(&a.name));
            self.add_source(Source::Opaque {
                alias: alias_name.or_else(|| Some(parts[0].clone())),
            });
            return Ok(TableFactor::Table {
                name: name.clone(),
                alias,
                args: None,
                with_hints: vec![],
                version: None,
                with_ordinality: false,
                partitions: vec![],
                json_path: None,
                sample: None,
                index_hints: vec![],
            });
        }
        if let Some((schema, catalog)) = self.catalog_name(&parts) {
            // A NUL byte keeps catalog keys apart from any collection name.
            let key = format!("\0{schema}.{catalog}");
            let subquery = relation::cached(self.ctx, &key, self.fence, || {
                let sql = match (self.ctx.dialect, schema) {
                    (crate::Dialect::MySql, _) => {
                        super::mysql::catalog::virtual_table(self.ctx, catalog)?
                    }
                    (_, "information_schema") => {
                        super::catalog::information_schema(self.ctx, catalog, self.fence)?
                    }
                    _ => super::catalog::virtual_catalog(self.ctx, catalog, self.fence)?,
                };
                match sql {
                    Some(sql) => relation::parse_query(self.ctx, &sql),
                    None => Err(GuardError::not_allowed("reading the system catalogs")),
                }
            })?;
            let alias = alias.unwrap_or_else(|| TableAlias {
                explicit: true,
                name: self.ctx.quoted(catalog),
                columns: vec![],
                at: None,
            });
            self.add_source(Source::Catalog {
                alias: self.ctx.name(&alias.name),
            });
            return Ok(TableFactor::Derived {
                lateral: false,
                subquery,
                alias: Some(alias),
                sample: None,
            });
        }
        let collection = self.user_table(&parts)?;
        let subquery = relation::derived(self.ctx, collection, self.fence, false)?;
        let alias = alias.unwrap_or_else(|| TableAlias {
            explicit: true,
            name: self.ctx.quoted(&collection.collection),
            columns: vec![],
            at: None,
        });
        self.add_source(Source::Table {
            alias: self.ctx.name(&alias.name),
            collection: collection.collection.clone(),
        });
        Ok(TableFactor::Derived {
            lateral: false,
            subquery,
            alias: Some(alias),
            sample: None,
        })
    }

    /// The user collection a (possibly schema-qualified) table name names. Catalogs, other
    /// schemas, system collections and tables the caller cannot read are refused alike.
    pub(super) fn user_table(&self, parts: &[String]) -> GuardResult<&'a Collection> {
        let table = match parts {
            [table] => table,
            [schema, table] if self.ctx.is_schema(schema) => table,
            [schema, _] if super::catalog::system_schema(self.ctx, schema) => {
                return Err(GuardError::not_allowed("reading the system catalogs"));
            }
            _ => return Err(GuardError::table(&parts.join("."))),
        };
        match self.ctx.collection(table) {
            Some(collection)
                if !collection.collection.starts_with("directus_")
                    && self
                        .ctx
                        .access
                        .permissions
                        .rules(&collection.collection, crate::Action::Read)
                        .is_some() =>
            {
                Ok(collection)
            }
            _ if table.starts_with("pg_") => {
                Err(GuardError::not_allowed("reading the system catalogs"))
            }
            _ => Err(GuardError::table(table)),
        }
    }

    pub(super) fn window_spec(&mut self, spec: &mut sqlparser::ast::WindowSpec) -> GuardResult<()> {
        for e in &mut spec.partition_by {
            self.expr(e)?;
        }
        for item in &mut spec.order_by {
            self.expr(&mut item.expr)?;
        }
        if let Some(frame) = &mut spec.window_frame {
            for bound in [Some(&mut frame.start_bound), frame.end_bound.as_mut()]
                .into_iter()
                .flatten()
            {
                use sqlparser::ast::WindowFrameBound;
                if let WindowFrameBound::Preceding(Some(e)) | WindowFrameBound::Following(Some(e)) =
                    bound
                {
                    self.expr(e)?;
                }
            }
        }
        Ok(())
    }
}

impl Walker<'_, '_> {
    /// The system relation a table name names, if it names one, with its schema.
    /// PostgreSQL: `pg_catalog.x`, an unqualified `pg_x` that is no user table (`pg_catalog`
    /// comes first on every search path), or `information_schema.x`. MySQL:
    /// `information_schema.x`.
    fn catalog_name<'p>(&self, parts: &'p [String]) -> Option<(&'static str, &'p str)> {
        match parts {
            [schema, name] if schema == "information_schema" => Some(("information_schema", name)),
            _ if self.ctx.dialect == crate::Dialect::MySql => None,
            [catalog, name] if catalog == "pg_catalog" => Some(("pg_catalog", name)),
            [name] if name.starts_with("pg_") && self.ctx.collection(name).is_none() => {
                Some(("pg_catalog", name))
            }
            _ => None,
        }
    }
}

fn plain_wildcard(options: &WildcardAdditionalOptions) -> GuardResult<()> {
    if options.opt_ilike.is_some()
        || options.opt_exclude.is_some()
        || options.opt_except.is_some()
        || options.opt_replace.is_some()
        || options.opt_rename.is_some()
        || options.opt_alias.is_some()
    {
        return Err(GuardError::not_allowed("wildcard options"));
    }
    Ok(())
}
