//! `information_schema` and the `SHOW`/`DESCRIBE` statements for MySQL clients that may not
//! read the real catalog: `SCHEMATA`, `TABLES`, `PARTITIONS` and `COLUMNS` hold only the
//! configured database, the tables the user may read and their readable columns
//! (statistics blanked), `TRIGGERS` and `FILES` nothing;
//! `SHOW DATABASES`, `SHOW [FULL] TABLES`, `SHOW [FULL] COLUMNS` and `DESCRIBE` become
//! queries over those rows. Any other system table is refused.

use sea_query::{
    Alias, Asterisk, Condition, Expr, ExprTrait, Order, Query as SeaQuery, SelectStatement,
};
use sqlparser::ast::{ObjectName, ShowCreateObject, Statement};
use sqlparser::ast::{ShowStatementFilter, ShowStatementFilterPosition, ShowStatementOptions};

use super::super::catalog::readable_fields;
use super::super::relation;
use super::super::{GuardContext, GuardError, GuardResult};
use crate::Collection;

/// `information_schema.TABLES` columns MySQL and MariaDB share; `None` keeps the value,
/// `Some` replaces it (row counts and sizes of rows the user may not see, timestamps of
/// writes they did not make).
const TABLES: &[(&str, Option<&str>)] = &[
    ("TABLE_CATALOG", None),
    ("TABLE_SCHEMA", None),
    ("TABLE_NAME", None),
    ("TABLE_TYPE", None),
    ("ENGINE", None),
    ("VERSION", None),
    ("ROW_FORMAT", None),
    ("TABLE_ROWS", Some("NULL")),
    ("AVG_ROW_LENGTH", Some("NULL")),
    ("DATA_LENGTH", Some("NULL")),
    ("MAX_DATA_LENGTH", Some("NULL")),
    ("INDEX_LENGTH", Some("NULL")),
    ("DATA_FREE", Some("NULL")),
    ("AUTO_INCREMENT", Some("NULL")),
    ("CREATE_TIME", None),
    ("UPDATE_TIME", Some("NULL")),
    ("CHECK_TIME", Some("NULL")),
    ("TABLE_COLLATION", None),
    ("CHECKSUM", Some("NULL")),
    ("CREATE_OPTIONS", None),
    ("TABLE_COMMENT", None),
];

const COLUMNS: &[(&str, Option<&str>)] = &[
    ("TABLE_CATALOG", None),
    ("TABLE_SCHEMA", None),
    ("TABLE_NAME", None),
    ("COLUMN_NAME", None),
    ("ORDINAL_POSITION", None),
    ("COLUMN_DEFAULT", None),
    ("IS_NULLABLE", None),
    ("DATA_TYPE", None),
    ("CHARACTER_MAXIMUM_LENGTH", None),
    ("CHARACTER_OCTET_LENGTH", None),
    ("NUMERIC_PRECISION", None),
    ("NUMERIC_SCALE", None),
    ("DATETIME_PRECISION", None),
    ("CHARACTER_SET_NAME", None),
    ("COLLATION_NAME", None),
    ("COLUMN_TYPE", None),
    ("COLUMN_KEY", None),
    ("EXTRA", None),
    ("PRIVILEGES", Some("'select'")),
    ("COLUMN_COMMENT", None),
    // An expression may name columns the user cannot read.
    ("GENERATION_EXPRESSION", Some("''")),
];

/// `information_schema.PARTITIONS`: one row per table (or partition) of the readable tables;
/// statistics blanked as in `TABLES`, and the partitioning expressions and bounds, which
/// may name hidden columns or hold their values.
const PARTITIONS: &[(&str, Option<&str>)] = &[
    ("TABLE_CATALOG", None),
    ("TABLE_SCHEMA", None),
    ("TABLE_NAME", None),
    ("PARTITION_NAME", None),
    ("SUBPARTITION_NAME", None),
    ("PARTITION_ORDINAL_POSITION", None),
    ("SUBPARTITION_ORDINAL_POSITION", None),
    ("PARTITION_METHOD", None),
    ("SUBPARTITION_METHOD", None),
    ("PARTITION_EXPRESSION", Some("NULL")),
    ("SUBPARTITION_EXPRESSION", Some("NULL")),
    ("PARTITION_DESCRIPTION", Some("NULL")),
    ("TABLE_ROWS", Some("NULL")),
    ("AVG_ROW_LENGTH", Some("NULL")),
    ("DATA_LENGTH", Some("NULL")),
    ("MAX_DATA_LENGTH", Some("NULL")),
    ("INDEX_LENGTH", Some("NULL")),
    ("DATA_FREE", Some("NULL")),
    ("CREATE_TIME", None),
    ("UPDATE_TIME", Some("NULL")),
    ("CHECK_TIME", Some("NULL")),
    ("CHECKSUM", Some("NULL")),
    ("PARTITION_COMMENT", None),
    ("NODEGROUP", None),
    ("TABLESPACE_NAME", None),
];

/// Views answered with no rows (their columns as the server has them): triggers, whose
/// bodies may name hidden columns, and tablespace files, which name tables.
const EMPTY: &[(&str, &str)] = &[("triggers", "TRIGGERS"), ("files", "FILES")];

const SCHEMATA: &[(&str, Option<&str>)] = &[
    ("CATALOG_NAME", None),
    ("SCHEMA_NAME", None),
    ("DEFAULT_CHARACTER_SET_NAME", None),
    ("DEFAULT_COLLATION_NAME", None),
    ("SQL_PATH", None),
];

/// The SQL of a virtual `information_schema` table (lower-case name), `None` for tables
/// that are refused.
pub fn virtual_table(ctx: &GuardContext, name: &str) -> GuardResult<Option<String>> {
    let select = match name {
        "schemata" => schemata(ctx),
        "tables" => tables(ctx),
        "columns" => columns(ctx, None),
        "partitions" => partitions(ctx),
        other => match EMPTY.iter().find(|(name, _)| *name == other) {
            Some((_, view)) => empty(view),
            None => return Ok(None),
        },
    };
    Ok(Some(relation::print(ctx, &select)))
}

/// The tables the user may read (at least one readable column), in name order.
fn readable<'a>(ctx: &GuardContext<'a>) -> Vec<&'a Collection> {
    let mut tables: Vec<&Collection> = ctx
        .access
        .schema
        .user_collections()
        .filter(|c| !c.collection.starts_with("directus_"))
        .filter(|c| !readable_fields(ctx, c).is_empty())
        .collect();
    tables.sort_by(|a, b| a.collection.cmp(&b.collection));
    tables
}

fn select_from(table: &str, columns: &[(&'static str, Option<&'static str>)]) -> SelectStatement {
    let mut select = SeaQuery::select();
    for (column, replacement) in columns {
        match replacement {
            None => select.expr_as(Expr::col(Alias::new(*column)), Alias::new(*column)),
            Some(value) => select.expr_as(Expr::cust(*value), Alias::new(*column)),
        };
    }
    select.from((Alias::new("information_schema"), Alias::new(table)));
    select
}

fn schemata(ctx: &GuardContext) -> SelectStatement {
    let mut select = select_from("SCHEMATA", SCHEMATA);
    select.and_where(Expr::col(Alias::new("SCHEMA_NAME")).eq(ctx.schema_name));
    select
}

fn tables(ctx: &GuardContext) -> SelectStatement {
    of_readable_tables(ctx, select_from("TABLES", TABLES))
}

fn partitions(ctx: &GuardContext) -> SelectStatement {
    of_readable_tables(ctx, select_from("PARTITIONS", PARTITIONS))
}

/// `select` (of a view with `TABLE_SCHEMA` and `TABLE_NAME`) limited to the readable tables.
fn of_readable_tables(ctx: &GuardContext, mut select: SelectStatement) -> SelectStatement {
    let names: Vec<String> = readable(ctx)
        .into_iter()
        .map(|c| c.collection.clone())
        .collect();
    select
        .and_where(Expr::col(Alias::new("TABLE_SCHEMA")).eq(ctx.schema_name))
        .and_where(Expr::col(Alias::new("TABLE_NAME")).is_in(names));
    select
}

fn empty(view: &str) -> SelectStatement {
    let mut select = SeaQuery::select();
    select
        .column(Asterisk)
        .from((Alias::new("information_schema"), Alias::new(view)))
        .and_where(Expr::cust("FALSE"));
    select
}

/// `COLUMNS` of every readable table, or of one.
fn columns(ctx: &GuardContext, only: Option<&Collection>) -> SelectStatement {
    let tables = match only {
        Some(c) => vec![c],
        None => readable(ctx),
    };
    let mut any = Condition::any();
    for table in tables {
        let names = readable_fields(ctx, table);
        any = any.add(
            Expr::col(Alias::new("TABLE_NAME"))
                .eq(table.collection.as_str())
                .and(Expr::col(Alias::new("COLUMN_NAME")).is_in(names)),
        );
    }
    let mut select = select_from("COLUMNS", COLUMNS);
    select
        .and_where(Expr::col(Alias::new("TABLE_SCHEMA")).eq(ctx.schema_name))
        .cond_where(any);
    select
}

const NO_OPTIONS: ShowStatementOptions = ShowStatementOptions {
    show_in: None,
    starts_with: None,
    limit: None,
    limit_from: None,
    filter_position: None,
};

/// `SHOW INDEX FROM t` (also `INDEXES`, `KEYS`, `IN`) and `SHOW TABLE STATUS`, read from the
/// words the parser gives for them; `None` for any other word list.
pub fn show_words(
    ctx: &GuardContext,
    words: &[sqlparser::ast::Ident],
) -> GuardResult<Option<String>> {
    let lower: Vec<String> = words.iter().map(|w| w.value.to_lowercase()).collect();
    let mut select = SeaQuery::select();
    match lower
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["index" | "indexes" | "keys", "from" | "in", _] => {
            let name = ObjectName::from(vec![words[2].clone()]);
            let collection = table(ctx, &name)?;
            indexes(ctx, &mut select, collection);
        }
        ["table", "status"] => {
            table_status(&mut select);
            select.from_subquery(tables(ctx), Alias::new("catalog"));
        }
        _ => return Ok(None),
    }
    printed(ctx, &select).map(Some)
}

/// `SHOW INDEX FROM t`: the indexes whose columns are all readable.
fn indexes(ctx: &GuardContext, select: &mut SelectStatement, collection: &Collection) {
    let readable = readable_fields(ctx, collection);
    let of_table = || {
        Condition::all()
            .add(Expr::col(Alias::new("TABLE_SCHEMA")).eq(ctx.schema_name))
            .add(Expr::col(Alias::new("TABLE_NAME")).eq(collection.collection.as_str()))
    };
    let mut hiding = SeaQuery::select();
    hiding
        .column(Alias::new("INDEX_NAME"))
        .from((Alias::new("information_schema"), Alias::new("STATISTICS")))
        .cond_where(
            of_table().add(
                Condition::any()
                    .add(Expr::col(Alias::new("COLUMN_NAME")).is_null())
                    .add(Expr::col(Alias::new("COLUMN_NAME")).is_not_in(readable)),
            ),
        );
    for (from, to) in [
        ("TABLE_NAME", "Table"),
        ("NON_UNIQUE", "Non_unique"),
        ("INDEX_NAME", "Key_name"),
        ("SEQ_IN_INDEX", "Seq_in_index"),
        ("COLUMN_NAME", "Column_name"),
        ("COLLATION", "Collation"),
        ("SUB_PART", "Sub_part"),
        ("PACKED", "Packed"),
        ("NULLABLE", "Null"),
        ("INDEX_TYPE", "Index_type"),
        ("COMMENT", "Comment"),
        ("INDEX_COMMENT", "Index_comment"),
    ] {
        select.expr_as(Expr::col(Alias::new(from)), Alias::new(to));
    }
    select
        .from((Alias::new("information_schema"), Alias::new("STATISTICS")))
        .cond_where(of_table().add(Expr::col(Alias::new("INDEX_NAME")).not_in_subquery(hiding)))
        .order_by_expr(
            Expr::col(Alias::new("INDEX_NAME")).ne("PRIMARY"),
            Order::Asc,
        )
        .order_by(Alias::new("INDEX_NAME"), Order::Asc)
        .order_by(Alias::new("SEQ_IN_INDEX"), Order::Asc);
}

/// `SHOW TABLE STATUS` over the virtual `TABLES` (statistics blanked).
fn table_status(select: &mut SelectStatement) {
    for (from, to) in [
        ("TABLE_NAME", "Name"),
        ("ENGINE", "Engine"),
        ("VERSION", "Version"),
        ("ROW_FORMAT", "Row_format"),
        ("TABLE_ROWS", "Rows"),
        ("AVG_ROW_LENGTH", "Avg_row_length"),
        ("DATA_LENGTH", "Data_length"),
        ("MAX_DATA_LENGTH", "Max_data_length"),
        ("INDEX_LENGTH", "Index_length"),
        ("DATA_FREE", "Data_free"),
        ("AUTO_INCREMENT", "Auto_increment"),
        ("CREATE_TIME", "Create_time"),
        ("UPDATE_TIME", "Update_time"),
        ("CHECK_TIME", "Check_time"),
        ("TABLE_COLLATION", "Collation"),
        ("CHECKSUM", "Checksum"),
        ("CREATE_OPTIONS", "Create_options"),
        ("TABLE_COMMENT", "Comment"),
    ] {
        select.expr_as(Expr::col(Alias::new(from)), Alias::new(to));
    }
    select.order_by(Alias::new("TABLE_NAME"), Order::Asc);
}

/// Printed by sea-query, then parsed and printed again so the text follows the guard's
/// quoting rules like every other statement it sends.
fn printed(ctx: &GuardContext, select: &SelectStatement) -> GuardResult<String> {
    let query = relation::parse_query(ctx, &relation::print(ctx, select))?;
    let mut statement = Statement::Query(query);
    super::print::prepare(&mut statement);
    super::super::printed::quote_safely(&mut statement, ctx.dialect)?;
    Ok(statement.to_string())
}

/// `SHOW DATABASES`, `SHOW [FULL] TABLES`, `SHOW [FULL] COLUMNS FROM t` and `DESCRIBE t`,
/// as the SQL of a query over the virtual catalog.
pub fn show(ctx: &GuardContext, statement: &Statement) -> GuardResult<String> {
    let mut select = SeaQuery::select();
    let (from, options) = match statement {
        Statement::ShowDatabases { show_options, .. }
        | Statement::ShowSchemas { show_options, .. } => {
            no_scope(show_options)?;
            select.expr_as(Expr::col(Alias::new("SCHEMA_NAME")), Alias::new("Database"));
            like(&mut select, "SCHEMA_NAME", show_options)?;
            (schemata(ctx), show_options)
        }
        Statement::ShowTables {
            full,
            extended: false,
            external: false,
            terse: false,
            history: false,
            show_options,
        } => {
            if let Some(name) = show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
            {
                super::session::database(ctx, name)?;
            }
            let heading = format!("Tables_in_{}", ctx.schema_name);
            select.expr_as(Expr::col(Alias::new("TABLE_NAME")), Alias::new(heading));
            if *full {
                select.expr_as(
                    Expr::col(Alias::new("TABLE_TYPE")),
                    Alias::new("Table_type"),
                );
            }
            like(&mut select, "TABLE_NAME", show_options)?;
            select.order_by(Alias::new("TABLE_NAME"), Order::Asc);
            (tables(ctx), show_options)
        }
        Statement::ShowColumns {
            extended: false,
            full,
            show_options,
        } => {
            let name = show_options
                .show_in
                .as_ref()
                .and_then(|i| i.parent_name.as_ref())
                .ok_or_else(|| GuardError::not_allowed("SHOW COLUMNS without a table"))?;
            let collection = table(ctx, name)?;
            describe(&mut select, *full);
            like(&mut select, "COLUMN_NAME", show_options)?;
            (columns(ctx, Some(collection)), show_options)
        }
        Statement::ShowCreate {
            obj_type: ShowCreateObject::Table,
            obj_name,
        } => {
            let collection = table(ctx, obj_name)?;
            create_table(&mut select, &collection.collection);
            (columns(ctx, Some(collection)), &NO_OPTIONS)
        }
        Statement::ExplainTable {
            hive_format: None,
            table_name,
            ..
        } => {
            let collection = table(ctx, table_name)?;
            describe(&mut select, false);
            (columns(ctx, Some(collection)), &NO_OPTIONS)
        }
        _ => return Err(GuardError::not_allowed("this SHOW statement")),
    };
    if options.limit.is_some() || options.limit_from.is_some() || options.starts_with.is_some() {
        return Err(GuardError::not_allowed("this SHOW clause"));
    }
    select.from_subquery(from, Alias::new("catalog"));
    printed(ctx, &select)
}

/// `SHOW CREATE TABLE`: the table's definition as far as the user may read it, written
/// from its readable columns (types, nullability, defaults, extras) and primary key.
fn create_table(select: &mut SelectStatement, table: &str) {
    let quoted = format!("`{}`", table.replace('`', "``"));
    select.expr_as(Expr::val(table), Alias::new("Table"));
    select.expr_as(
        Expr::cust_with_values(
            "CONCAT('CREATE TABLE ', ?, ' (\\n', \
             GROUP_CONCAT(CONCAT('  `', REPLACE(COLUMN_NAME, '`', '``'), '` ', COLUMN_TYPE, \
               IF(IS_NULLABLE = 'NO', ' NOT NULL', ''), \
               IF(COLUMN_DEFAULT IS NULL, '', CONCAT(' DEFAULT ', COLUMN_DEFAULT)), \
               IF(EXTRA = '', '', CONCAT(' ', EXTRA))) \
             ORDER BY ORDINAL_POSITION SEPARATOR ',\\n'), \
             IFNULL(CONCAT(',\\n  PRIMARY KEY (', GROUP_CONCAT(IF(COLUMN_KEY = 'PRI', \
               CONCAT('`', REPLACE(COLUMN_NAME, '`', '``'), '`'), NULL) \
               ORDER BY ORDINAL_POSITION SEPARATOR ', '), ')'), ''), \
             '\\n)')",
            [quoted],
        ),
        Alias::new("Create Table"),
    );
}

fn describe(select: &mut SelectStatement, full: bool) {
    let mut column = |from: &str, to: &str| {
        select.expr_as(Expr::col(Alias::new(from)), Alias::new(to));
    };
    column("COLUMN_NAME", "Field");
    column("COLUMN_TYPE", "Type");
    if full {
        column("COLLATION_NAME", "Collation");
    }
    column("IS_NULLABLE", "Null");
    column("COLUMN_KEY", "Key");
    column("COLUMN_DEFAULT", "Default");
    column("EXTRA", "Extra");
    if full {
        column("PRIVILEGES", "Privileges");
        column("COLUMN_COMMENT", "Comment");
    }
    select.order_by(Alias::new("ORDINAL_POSITION"), Order::Asc);
}

/// The table a statement names (`SHOW COLUMNS`, `DESCRIBE`, `LOCK TABLES`): one the user
/// may read.
pub(super) fn table<'a>(ctx: &GuardContext<'a>, name: &ObjectName) -> GuardResult<&'a Collection> {
    let parts = ctx.parts(name)?;
    let table = match parts.as_slice() {
        [table] => table,
        [db, table] if ctx.is_schema(db) => table,
        _ => return Err(GuardError::table(&parts.join("."))),
    };
    match ctx.collection(table) {
        Some(c) if readable(ctx).iter().any(|r| r.collection == c.collection) => Ok(c),
        _ => Err(GuardError::table(table)),
    }
}

fn no_scope(options: &ShowStatementOptions) -> GuardResult<()> {
    if options.show_in.is_some() {
        return Err(GuardError::not_allowed("this SHOW clause"));
    }
    Ok(())
}

/// `LIKE 'pattern'` on the listed names; `WHERE` is refused.
fn like(
    select: &mut SelectStatement,
    column: &str,
    options: &ShowStatementOptions,
) -> GuardResult<()> {
    let filter = match &options.filter_position {
        None => return Ok(()),
        Some(ShowStatementFilterPosition::Infix(f) | ShowStatementFilterPosition::Suffix(f)) => f,
    };
    match filter {
        ShowStatementFilter::Like(pattern) => {
            select.and_where(Expr::col(Alias::new(column)).like(pattern.as_str()));
            Ok(())
        }
        _ => Err(GuardError::not_allowed("SHOW ... WHERE")),
    }
}
