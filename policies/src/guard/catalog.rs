//! Virtual system catalogs, so that psql's `\dt`, `\d table` and `\l` work for users who may
//! not read the real ones: `pg_class`, `pg_namespace` and `pg_attribute` hold only the tables
//! and readable columns the user may see (statistics, owners and privileges blanked), a few
//! harmless catalogs are read as they are, and the others psql looks at are empty. Any other
//! catalog is refused.

use sea_query::{Alias, Condition, Expr, ExprTrait, PostgresQueryBuilder, Query as SeaQuery};

use super::{GuardContext, GuardResult};
use crate::{Action, Collection};

/// Whether a schema (PostgreSQL) or database (MySQL) name is the server's own.
pub fn system_schema(ctx: &GuardContext, name: &str) -> bool {
    match ctx.dialect {
        crate::Dialect::MySql => matches!(
            name,
            "information_schema" | "mysql" | "performance_schema" | "sys"
        ),
        _ => matches!(name, "pg_catalog" | "information_schema"),
    }
}

/// Catalogs read as they are: they describe the server's built-in objects, no data.
const AS_IS: &[&str] = &["pg_am", "pg_collation", "pg_language"];

/// Catalogs psql consults that the user sees empty.
const EMPTY: &[&str] = &[
    "pg_policy",
    "pg_statistic_ext",
    "pg_publication",
    "pg_publication_namespace",
    "pg_publication_rel",
    "pg_inherits",
    "pg_trigger",
    "pg_rewrite",
    "pg_description",
    "pg_partitioned_table",
    "pg_foreign_table",
    "pg_sequence",
    "pg_extension",
    "pg_event_trigger",
    "pg_roles",
];

/// `pg_class` columns (PostgreSQL 12 to 17) with what the user may not learn blanked:
/// statistics (row counts of rows they cannot see), owner and privileges.
const PG_CLASS: &[(&str, Option<&str>)] = &[
    ("oid", None),
    ("relname", None),
    ("relnamespace", None),
    ("reltype", None),
    ("reloftype", None),
    ("relowner", Some("0::oid")),
    ("relam", None),
    ("relfilenode", Some("0::oid")),
    ("reltablespace", None),
    ("relpages", Some("0")),
    ("reltuples", Some("0::real")),
    ("relallvisible", Some("0")),
    ("reltoastrelid", Some("0::oid")),
    ("relhasindex", None),
    ("relisshared", None),
    ("relpersistence", None),
    ("relkind", None),
    ("relnatts", None),
    // Replaced by the count of the check constraints the user may see: `visible_checks`.
    ("relchecks", None),
    ("relhasrules", Some("false")),
    ("relhastriggers", Some("false")),
    ("relhassubclass", Some("false")),
    ("relrowsecurity", Some("false")),
    ("relforcerowsecurity", Some("false")),
    ("relispopulated", None),
    ("relreplident", None),
    ("relispartition", None),
    ("relrewrite", None),
    ("relfrozenxid", None),
    ("relminmxid", None),
    ("relacl", Some("NULL::aclitem[]")),
    ("reloptions", None),
    ("relpartbound", None),
];

const PG_ATTRIBUTE: &[&str] = &[
    "attrelid",
    "attname",
    "atttypid",
    "attlen",
    "attnum",
    "attndims",
    "atttypmod",
    "attbyval",
    "attalign",
    "attstorage",
    "attnotnull",
    "attidentity",
    "attgenerated",
    "attisdropped",
    "attislocal",
    "attinhcount",
    "attcollation",
];

/// The SQL of the virtual catalog `name` (a `pg_catalog` relation), or `None` when the
/// relation is refused.
pub fn virtual_catalog(ctx: &GuardContext, name: &str, fence: bool) -> GuardResult<Option<String>> {
    let table = (Alias::new("pg_catalog"), Alias::new(name));
    let mut select = SeaQuery::select();
    let visible = visible_tables(ctx);
    match name {
        "pg_class" => {
            for (column, replacement) in PG_CLASS {
                match (*column, replacement) {
                    ("relchecks", _) => select.expr_as(
                        Expr::SubQuery(None, Box::new(visible_checks(ctx, &visible).into()))
                            .cast_as(Alias::new("int2")),
                        Alias::new(*column),
                    ),
                    (_, None) => select.column(Alias::new(*column)),
                    (_, Some(sql)) => select.expr_as(Expr::cust(*sql), Alias::new(*column)),
                };
            }
            select.from(table).cond_where(
                Condition::any()
                    .add(
                        Expr::col(Alias::new("oid"))
                            .is_in(visible.iter().map(|c| regclass(ctx, c))),
                    )
                    .add(Expr::col(Alias::new("oid")).in_subquery(visible_indexes(ctx, &visible))),
            );
        }
        "pg_namespace" => {
            select
                .columns([Alias::new("oid"), Alias::new("nspname")])
                .expr_as(Expr::cust("0::oid"), Alias::new("nspowner"))
                .expr_as(Expr::cust("NULL::aclitem[]"), Alias::new("nspacl"))
                .from(table)
                .and_where(Expr::col(Alias::new("nspname")).is_in([
                    ctx.schema_name,
                    "pg_catalog",
                    "information_schema",
                ]));
        }
        "pg_attribute" => {
            select
                .columns(PG_ATTRIBUTE.iter().map(|c| Alias::new(*c)))
                // A generated column's expression could name hidden columns: not shown.
                .expr_as(
                    Expr::cust("CASE WHEN attgenerated = '' THEN atthasdef ELSE false END"),
                    Alias::new("atthasdef"),
                )
                .expr_as(Expr::cust("false"), Alias::new("atthasmissing"))
                .expr_as(Expr::cust("NULL::aclitem[]"), Alias::new("attacl"))
                .from(table);
            select.cond_where(readable_columns(ctx, &visible, None));
        }
        // Indexes (and their primary key and unique constraints) on readable columns only,
        // without expressions or predicates, which could name hidden ones.
        "pg_index" => {
            select.column(sea_query::Asterisk).from(table).and_where(
                Expr::col(Alias::new("indexrelid")).in_subquery(visible_indexes(ctx, &visible)),
            );
        }
        // Primary key and unique constraints of visible indexes; check constraints on
        // readable columns only (their expressions name the columns in `conkey`); foreign
        // keys between readable columns of visible tables.
        "pg_constraint" => {
            let keys = Condition::all()
                .add(Expr::col(Alias::new("contype")).is_in(["p", "u"]))
                .add(Expr::col(Alias::new("conindid")).in_subquery(visible_indexes(ctx, &visible)));
            let own_keys = own_keys_readable(ctx, &visible);
            let checks = Condition::all()
                .add(Expr::col(Alias::new("contype")).eq("c"))
                .add(own_keys.clone());
            let foreign = Condition::all()
                .add(Expr::col(Alias::new("contype")).eq("f"))
                .add(own_keys)
                .add(readable_keys(
                    ctx,
                    &visible,
                    "pg_constraint.confrelid",
                    "pg_constraint.confkey",
                ));
            select
                .column(sea_query::Asterisk)
                .from(table)
                .cond_where(Condition::any().add(keys).add(checks).add(foreign));
        }
        // Defaults of readable, not generated columns.
        "pg_attrdef" => {
            let columns = SeaQuery::select()
                .columns([Alias::new("attrelid"), Alias::new("attnum")])
                .from((Alias::new("pg_catalog"), Alias::new("pg_attribute")))
                .cond_where(readable_columns(ctx, &visible, None))
                .and_where(Expr::col(Alias::new("attgenerated")).eq(""))
                .to_owned();
            select.column(sea_query::Asterisk).from(table).and_where(
                Expr::tuple([
                    Expr::col(Alias::new("adrelid")),
                    Expr::col(Alias::new("adnum")),
                ])
                .in_subquery(columns),
            );
        }
        // Built-in types only: every table has a row type named after it.
        "pg_type" => {
            select.column(sea_query::Asterisk).from(table).and_where(
                Expr::col(Alias::new("typnamespace"))
                    .eq(Expr::val("pg_catalog").cast_as(Alias::new("regnamespace"))),
            );
        }
        "pg_database" => {
            select
                .column(sea_query::Asterisk)
                .from(table)
                .and_where(Expr::col(Alias::new("datname")).eq(Expr::cust("current_database()")));
        }
        _ if AS_IS.contains(&name) => {
            select.column(sea_query::Asterisk).from(table);
        }
        _ if EMPTY.contains(&name) => {
            select
                .column(sea_query::Asterisk)
                .from(table)
                .and_where(Expr::cust("false"));
        }
        _ => return Ok(None),
    }
    if fence {
        select.offset(0);
    }
    Ok(Some(select.to_string(PostgresQueryBuilder)))
}

/// The SQL of a virtual `information_schema` view, or `None` when the view is refused:
/// `schemata` (the configured schema, no owner), `tables` (the visible tables) and
/// `columns` (their readable columns; generated ones, whose expressions could name hidden
/// columns, are left out).
pub fn information_schema(
    ctx: &GuardContext,
    name: &str,
    fence: bool,
) -> GuardResult<Option<String>> {
    let view = (Alias::new("information_schema"), Alias::new(name));
    let visible = visible_tables(ctx);
    let mut select = SeaQuery::select();
    let in_schema = |column: &str| Expr::col(Alias::new(column)).eq(ctx.schema_name);
    match name {
        "schemata" => {
            for column in [
                "catalog_name",
                "schema_name",
                "default_character_set_catalog",
                "default_character_set_schema",
                "default_character_set_name",
                "sql_path",
            ] {
                select.column(Alias::new(column));
            }
            select
                .expr_as(Expr::cust("NULL::name"), Alias::new("schema_owner"))
                .from(view)
                .and_where(in_schema("schema_name"));
        }
        "tables" => {
            let names: Vec<&str> = visible.iter().map(|c| c.collection.as_str()).collect();
            select
                .column(sea_query::Asterisk)
                .from(view)
                .and_where(in_schema("table_schema"))
                .and_where(Expr::col(Alias::new("table_name")).is_in(names));
        }
        "columns" => {
            let mut any = Condition::any();
            for collection in &visible {
                any = any.add(
                    Expr::col(Alias::new("table_name"))
                        .eq(collection.collection.as_str())
                        .and(
                            Expr::col(Alias::new("column_name"))
                                .is_in(readable_fields(ctx, collection)),
                        ),
                );
            }
            select
                .column(sea_query::Asterisk)
                .from(view)
                .and_where(in_schema("table_schema"))
                .and_where(Expr::col(Alias::new("is_generated")).ne("ALWAYS"))
                .cond_where(any);
        }
        _ => return Ok(None),
    }
    if fence {
        select.offset(0);
    }
    Ok(Some(select.to_string(PostgresQueryBuilder)))
}

/// The columns of `collection` the caller may read (none without a read permission).
pub(super) fn readable_fields<'c>(ctx: &GuardContext, collection: &'c Collection) -> Vec<&'c str> {
    let Some(rules) = ctx
        .access
        .permissions
        .rules(&collection.collection, Action::Read)
    else {
        return Vec::new();
    };
    collection
        .fields
        .values()
        .filter(|f| !f.is_alias() && rules.field_allowed(&f.field))
        .map(|f| f.field.as_str())
        .collect()
}

/// `attrelid`/`attname` (of `table` when given) naming a readable column of a visible table.
fn readable_columns(ctx: &GuardContext, visible: &[&Collection], table: Option<&str>) -> Condition {
    let col = |name: &str| match table {
        Some(t) => Expr::col((Alias::new(t), Alias::new(name))),
        None => Expr::col(Alias::new(name)),
    };
    let mut any = Condition::any();
    for collection in visible {
        let readable = readable_fields(ctx, collection);
        if readable.is_empty() {
            continue;
        }
        any = any.add(
            Condition::all()
                .add(col("attrelid").eq(regclass(ctx, collection)))
                .add(col("attname").is_in(readable)),
        );
    }
    any
}

/// `SELECT indexrelid` of the indexes on visible tables that cover readable columns only and
/// have no expressions or predicates.
fn visible_indexes(ctx: &GuardContext, visible: &[&Collection]) -> sea_query::SelectStatement {
    let hidden_key = SeaQuery::select()
        .expr(Expr::val(1))
        .from_as(
            (Alias::new("pg_catalog"), Alias::new("pg_attribute")),
            Alias::new("a"),
        )
        .and_where(Expr::cust(
            "a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)",
        ))
        .cond_where(readable_columns(ctx, visible, Some("a")).not())
        .to_owned();
    SeaQuery::select()
        .column((Alias::new("i"), Alias::new("indexrelid")))
        .from_as(
            (Alias::new("pg_catalog"), Alias::new("pg_index")),
            Alias::new("i"),
        )
        .and_where(
            Expr::col((Alias::new("i"), Alias::new("indrelid")))
                .is_in(visible.iter().map(|c| regclass(ctx, c))),
        )
        .and_where(Expr::cust("i.indexprs IS NULL AND i.indpred IS NULL"))
        .and_where(Expr::exists(hidden_key).not())
        .to_owned()
}

/// The relation `relation` (a column reference) is a visible table and none of its columns
/// numbered in `keys` (an `int2[]` column reference) is hidden. Both are the catalog's own
/// column names, never the user's text.
fn readable_keys(
    ctx: &GuardContext,
    visible: &[&Collection],
    relation: &'static str,
    keys: &'static str,
) -> Condition {
    let hidden_key = SeaQuery::select()
        .expr(Expr::val(1))
        .from_as(
            (Alias::new("pg_catalog"), Alias::new("pg_attribute")),
            Alias::new("a"),
        )
        .and_where(Expr::cust(format!(
            "a.attrelid = {relation} AND a.attnum = ANY ({keys})"
        )))
        .cond_where(readable_columns(ctx, visible, Some("a")).not())
        .to_owned();
    Condition::all()
        .add(Expr::cust(relation).is_in(visible.iter().map(|c| regclass(ctx, c))))
        .add(Expr::exists(hidden_key).not())
}

/// `SELECT count(*)` of the check constraints of the `pg_class` row at hand that the user may
/// see (psql asks for them only when `relchecks` says there are some).
fn visible_checks(ctx: &GuardContext, visible: &[&Collection]) -> sea_query::SelectStatement {
    SeaQuery::select()
        .expr(Expr::cust("count(*)"))
        .from((Alias::new("pg_catalog"), Alias::new("pg_constraint")))
        .and_where(Expr::cust("pg_constraint.conrelid = pg_class.oid"))
        .and_where(Expr::col((Alias::new("pg_constraint"), Alias::new("contype"))).eq("c"))
        .cond_where(own_keys_readable(ctx, visible))
        .to_owned()
}

/// [`readable_keys`] of a `pg_constraint` row's own table and columns.
fn own_keys_readable(ctx: &GuardContext, visible: &[&Collection]) -> Condition {
    readable_keys(
        ctx,
        visible,
        "pg_constraint.conrelid",
        "pg_constraint.conkey",
    )
}

/// The user tables the caller may read.
fn visible_tables<'a>(ctx: &GuardContext<'a>) -> Vec<&'a Collection> {
    ctx.access
        .schema
        .user_collections()
        .filter(|c| {
            !c.collection.starts_with("directus_")
                && ctx
                    .access
                    .permissions
                    .rules(&c.collection, Action::Read)
                    .is_some()
        })
        .collect()
}

/// `'"schema"."table"'::regclass`: the table's oid, looked up by the database.
fn regclass(ctx: &GuardContext, collection: &Collection) -> Expr {
    let quote = |s: &str| format!("\"{}\"", s.replace('"', "\"\""));
    let qualified = format!(
        "{}.{}",
        quote(ctx.schema_name),
        quote(&collection.collection)
    );
    Expr::val(qualified).cast_as(Alias::new("regclass"))
}
