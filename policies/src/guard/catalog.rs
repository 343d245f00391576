//! Virtual system catalogs, so that psql's `\dt`, `\d table` and `\l` work for users who may
//! not read the real ones: `pg_class`, `pg_namespace` and `pg_attribute` hold only the tables
//! and readable columns the user may see (statistics, owners and privileges blanked), a few
//! harmless catalogs are read as they are, and the others psql looks at are empty. Any other
//! catalog is refused.

use sea_query::{Alias, Condition, Expr, ExprTrait, PostgresQueryBuilder, Query as SeaQuery};

use super::{GuardContext, GuardResult};
use crate::{Action, Collection};

/// Catalogs read as they are: they describe the server's built-in objects, no data.
const AS_IS: &[&str] = &["pg_am", "pg_collation", "pg_language"];

/// Catalogs psql consults that the user sees empty.
const EMPTY: &[&str] = &[
    "pg_index",
    "pg_constraint",
    "pg_attrdef",
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
    ("relhasindex", Some("false")),
    ("relisshared", None),
    ("relpersistence", None),
    ("relkind", None),
    ("relnatts", None),
    ("relchecks", Some("0::int2")),
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
                match replacement {
                    None => select.column(Alias::new(*column)),
                    Some(sql) => select.expr_as(Expr::cust(*sql), Alias::new(*column)),
                };
            }
            select.from(table).and_where(
                Expr::col(Alias::new("oid")).is_in(visible.iter().map(|c| regclass(ctx, c))),
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
                .expr_as(Expr::cust("false"), Alias::new("atthasdef"))
                .expr_as(Expr::cust("false"), Alias::new("atthasmissing"))
                .expr_as(Expr::cust("NULL::aclitem[]"), Alias::new("attacl"))
                .from(table);
            let mut any = Condition::any();
            for collection in &visible {
                let Some(rules) = ctx
                    .access
                    .permissions
                    .rules(&collection.collection, Action::Read)
                else {
                    continue;
                };
                let readable = rules.allowed_fields(collection);
                let readable: Vec<&str> = readable
                    .into_iter()
                    .filter(|f| collection.field(f).is_some_and(|f| !f.is_alias()))
                    .collect();
                any = any.add(
                    Condition::all()
                        .add(Expr::col(Alias::new("attrelid")).eq(regclass(ctx, collection)))
                        .add(Expr::col(Alias::new("attname")).is_in(readable)),
                );
            }
            select.cond_where(any);
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
