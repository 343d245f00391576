//! The guard on a small schema: rewrites that must come out as expected, and the attack
//! file (`tests/data/guard/pg_refused.sql`), every statement of which must be refused.

use std::sync::Arc;

use serde_json::json;

use super::*;
use crate::filter::Variables;
use crate::filter::tests::collection;
use crate::schema::{FieldType, Relation, SchemaOverview};
use crate::{Accountability, Action, EffectivePermissions, PermissionRecord};

pub(super) fn schema() -> SchemaOverview {
    use FieldType::*;
    let orders = collection(
        "orders",
        &[
            ("id", Integer),
            ("customer", Integer),
            ("status", String),
            ("amount", Decimal),
            ("secret", String),
        ],
    );
    let customers = collection("customers", &[("id", Integer), ("name", String)]);
    let notes = collection("notes", &[("id", Integer), ("body", Text)]);
    SchemaOverview {
        collections: [
            ("orders".into(), orders),
            ("customers".into(), customers),
            ("notes".into(), notes),
        ]
        .into(),
        relations: vec![Relation::new("orders", "customer")],
    }
}

fn record(
    collection: &str,
    action: Action,
    fields: &[&str],
    rule: serde_json::Value,
) -> Arc<PermissionRecord> {
    Arc::new(PermissionRecord {
        policy: "p".into(),
        collection: collection.into(),
        action,
        permissions: Some(rule),
        validation: None,
        presets: None,
        fields: fields.iter().map(|f| f.to_string()).collect(),
    })
}

pub(super) fn permissions() -> EffectivePermissions {
    let mut create =
        (*record("orders", Action::Create, &["customer", "amount"], json!({}))).clone();
    create.validation = Some(json!({"amount": {"_gt": 0}}));
    create.presets = Some(json!({"status": "draft"}));
    let all = vec![
        record(
            "orders",
            Action::Read,
            &["id", "customer", "status", "amount"],
            json!({"status": {"_eq": "published"}}),
        ),
        record("customers", Action::Read, &["*"], json!({})),
        Arc::new(create),
        record(
            "orders",
            Action::Update,
            &["amount", "status"],
            json!({"status": {"_eq": "draft"}}),
        ),
        record("customers", Action::Update, &["name"], json!({})),
        record(
            "orders",
            Action::Delete,
            &["*"],
            json!({"status": {"_eq": "draft"}}),
        ),
    ];
    let mut who = Accountability::anonymous(None);
    who.policies = vec!["p".into()];
    EffectivePermissions::for_accountability(&who, &all)
}

/// Runs `f` with a context on the test schema and permissions: schema `public` on
/// PostgreSQL, database `mydb` on MySQL.
pub(super) fn with_context<T>(dialect: crate::Dialect, f: impl FnOnce(&GuardContext) -> T) -> T {
    let schema = schema();
    let permissions = permissions();
    let variables = Variables::default();
    let ctx = GuardContext {
        access: ReadAccess {
            schema: &schema,
            permissions: &permissions,
            variables: &variables,
        },
        schema_name: match dialect {
            crate::Dialect::MySql => "mydb",
            _ => "public",
        },
        derived: None,
        dialect,
        deferred_checks: false,
    };
    f(&ctx)
}

fn run(sql: &str) -> GuardResult<Vec<String>> {
    with_context(crate::Dialect::Postgres, |ctx| guard_pg(sql, ctx))
        .map(|g| g.into_iter().map(|g| g.sql).collect())
}

fn one(sql: &str) -> String {
    match run(sql) {
        Ok(mut out) if out.len() == 1 => out.remove(0),
        other => panic!("{sql}: {other:?}"),
    }
}

#[test]
fn a_table_becomes_its_guarded_derived_table() {
    assert_eq!(
        one("select * from orders where id = $1"),
        "SELECT * FROM (SELECT \"__rectus\".\"id\" AS \"id\", \"__rectus\".\"customer\" AS \"customer\", \"__rectus\".\"status\" AS \"status\", \"__rectus\".\"amount\" AS \"amount\" FROM \"public\".\"orders\" AS \"__rectus\" WHERE \"__rectus\".\"status\" = 'published') AS \"orders\" WHERE id = $1"
    );
}

#[test]
fn a_predicate_that_can_fail_gets_the_fence() {
    let sql = one("select id from orders o where 1/(amount-100) = 1");
    assert!(sql.contains("OFFSET 0"), "{sql}");
    let sql = one("select id from orders o where amount > 100");
    assert!(!sql.contains("OFFSET"), "{sql}");
}

#[test]
fn cte_names_resolve_in_scope() {
    let sql = one(
        "with c as (select id from customers) select * from c join orders on orders.customer = c.id",
    );
    assert!(sql.contains("FROM c JOIN (SELECT"), "{sql}");
    assert!(sql.contains("\"public\".\"customers\""), "{sql}");
}

#[test]
fn hidden_columns_are_refused_by_name() {
    let e = run("select secret from orders").unwrap_err();
    assert_eq!(e.code, sqlstate::INSUFFICIENT_PRIVILEGE);
    assert_eq!(
        e.message,
        "permission denied for column secret of table orders"
    );
    let e = run("select o.id from orders o order by o.secret").unwrap_err();
    assert_eq!(
        e.message,
        "permission denied for column secret of table orders"
    );
    let e = run("select * from notes").unwrap_err();
    assert_eq!(e.message, "permission denied for table notes");
}

#[test]
fn functions_are_qualified_to_the_catalog() {
    let sql = one("select lower(name), count(*) from customers group by 1");
    assert!(sql.contains("pg_catalog.lower(name)"), "{sql}");
    assert!(sql.contains("pg_catalog.count(*)"), "{sql}");
}

#[test]
fn inserts_get_presets_and_validation() {
    let sql = one("insert into orders (customer, amount) values (1, 5)");
    assert!(
        sql.starts_with("INSERT INTO \"public\".\"orders\" (customer, amount, \"status\") VALUES (1, 5, 'draft')"),
        "{sql}"
    );
    let e = run("insert into orders (customer, amount) values (1, -5)").unwrap_err();
    assert_eq!(e.code, "23514");
    let e = run("insert into orders (customer, amount) values (1, (select 5))").unwrap_err();
    assert_eq!(e.code, sqlstate::INSUFFICIENT_PRIVILEGE);
}

#[test]
fn updates_and_deletes_reach_only_permitted_rows() {
    let sql = one("update orders set amount = amount + 1 where customer = 3");
    assert!(
        sql.contains("WHERE \"orders\".\"id\" IN (SELECT \"__rectus_key\" FROM (SELECT"),
        "{sql}"
    );
    assert!(sql.contains("\"orders\".\"status\" = 'draft'"), "{sql}");
    let sql = one("delete from orders o where amount < 3");
    assert!(sql.contains("\"o\".\"status\" = 'draft'"), "{sql}");
    assert!(run("update orders set status = 'published' where id = 1").is_err());
}

/// Text the server could read differently from the parser never reaches it: the guard
/// prints its own AST, so a Unicode-escaped identifier becomes plain tokens.
#[test]
fn text_is_printed_from_the_ast() {
    let sql = one("select U&\"\\0073ecret\" from orders");
    assert!(!sql.contains("U&\""), "{sql}");
    let sql = one("select id from orders -- trailing comment\n where status = 'a'");
    assert!(!sql.contains("--"), "{sql}");
}

/// A sign before a negative value would print as `--`, a comment to the end of the line:
/// with a newline in a string after it, the database would read the rest of the string as
/// SQL the guard never saw. Signs are printed apart, and nothing with a comment goes out.
#[test]
fn printing_never_makes_a_comment() {
    let sql = one("select - -1 as a, 'x\nid, secret from orders --' from orders");
    assert!(
        sql.starts_with("SELECT -(-1) AS a, 'x\nid, secret from orders --' FROM (SELECT"),
        "{sql}"
    );
    assert_eq!(one("select - - - 1"), "SELECT -(-(-1))");
    assert_eq!(one("select 1 - -1"), "SELECT 1 - -1");
}

/// Nested comments: whatever the parser makes of them, no statement that names a hidden
/// column comes out.
#[test]
fn nested_comments_hide_nothing() {
    for sql in [
        "/* /* */ select secret from orders */",
        "/* /* */ select secret from orders",
        "select id from orders /* /* */ , secret */",
    ] {
        if let Ok(out) = run(sql) {
            assert!(
                out.iter().all(|s| !s.contains("secret")),
                "{sql} -> {out:?}"
            );
        }
    }
}

#[test]
fn session_statements() {
    assert_eq!(one("begin"), "BEGIN");
    assert_eq!(
        one("set application_name = 'x'"),
        "SET application_name = 'x'"
    );
    assert!(run("set search_path = evil").is_err());
    assert!(run("set role postgres").is_err());
    assert!(run("reset all").is_err());
}

/// psql's `\\dt` and the first queries of `\\d orders` pass, over virtual catalogs that hold
/// only what the user may see.
#[test]
fn psql_catalog_queries_read_virtual_catalogs() {
    let dt = "SELECT n.nspname as \"Schema\", c.relname as \"Name\", CASE c.relkind WHEN 'r' THEN 'table' END as \"Type\", pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\" FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam WHERE c.relkind IN ('r','p','') AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema' AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 1,2;";
    let sql = one(dt);
    assert!(
        sql.contains("CAST('\"public\".\"orders\"' AS REGCLASS)"),
        "{sql}"
    );
    assert!(
        sql.contains("CAST('\"public\".\"customers\"' AS REGCLASS)"),
        "{sql}"
    );
    assert!(!sql.contains("notes"), "{sql}");
    let d = "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.relname OPERATOR(pg_catalog.~) '^(orders)$' COLLATE pg_catalog.default AND pg_catalog.pg_table_is_visible(c.oid) ORDER BY 2, 3;";
    one(d);
    let columns = "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), a.attnotnull, (SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type t WHERE c.oid = a.attcollation AND t.oid = a.atttypid AND a.attcollation <> t.typcollation) AS attcollation, a.attidentity, a.attgenerated FROM pg_catalog.pg_attribute a WHERE a.attrelid = '30414' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum;";
    let sql = one(columns);
    assert!(!sql.contains("'secret'"), "{sql}");
    assert!(sql.contains("'status'"), "{sql}");
    // Object-id functions only on the catalog's own rows.
    assert!(run("SELECT pg_catalog.pg_get_userbyid(10)").is_err());
    assert!(run("SELECT pg_get_indexdef(x) FROM pg_class, (VALUES (1)) v(x)").is_err());
    assert!(run("SELECT 12345::regclass").is_err());
    assert!(run("SELECT * FROM pg_catalog.pg_authid").is_err());
}

/// `information_schema` as BI tools read it: the schema, the visible tables and their
/// readable columns only.
#[test]
fn information_schema_holds_only_what_the_user_may_read() {
    let tables =
        one("select table_name from information_schema.tables where table_schema = 'public'");
    assert!(
        tables.contains("'customers'") && tables.contains("'orders'"),
        "{tables}"
    );
    assert!(!tables.contains("notes"), "{tables}");
    let columns = one(
        "select column_name, data_type from information_schema.columns c where c.table_name = 'orders'",
    );
    assert!(
        columns.contains("'status'") && !columns.contains("secret"),
        "{columns}"
    );
    let schemata = one("select schema_name, schema_owner from information_schema.schemata");
    assert!(
        schemata.contains("NULL::name AS \"schema_owner\""),
        "{schemata}"
    );
    assert!(run("select * from information_schema.routines").is_err());
}

/// Every statement of the attack file is refused. Statements are separated by lines that
/// hold only `--;`; lines starting with `#` are comments.
#[test]
fn the_attack_file_is_refused() {
    let text = include_str!("../../../tests/data/guard/pg_refused.sql");
    let mut count = 0;
    for statement in text.split("\n--;\n") {
        let sql: String = statement
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        if sql.trim().is_empty() {
            continue;
        }
        count += 1;
        if let Ok(out) = run(&sql) {
            panic!("not refused: {sql}\n-> {out:?}");
        }
    }
    assert!(count > 30, "{count} statements");
}

mod fuzz {
    //! Random statements built from SQL fragments (and random mutations of real ones): the
    //! guard never panics, whatever it lets through parses again, and no rewrite reaches a
    //! table or column the caller may not read.

    use proptest::prelude::*;
    use sqlparser::dialect::PostgreSqlDialect;
    use sqlparser::parser::Parser;

    use super::run;

    const FRAGMENTS: &[&str] = &[
        "SELECT",
        "*",
        "id",
        "secret",
        "status",
        "amount",
        "customer",
        "name",
        "body",
        "FROM",
        "orders",
        "customers",
        "notes",
        "public.orders",
        "pg_catalog.pg_class",
        "o",
        "c",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "=",
        "<>",
        "<",
        "+",
        "-",
        "/",
        "||",
        "(",
        ")",
        ",",
        ";",
        "1",
        "0",
        "'x'",
        "'a''b'",
        "E'\\\\'",
        "$$d$$",
        "$1",
        "NULL",
        "TRUE",
        "JOIN",
        "ON",
        "USING",
        "NATURAL",
        "LEFT",
        "UNION",
        "ALL",
        "EXCEPT",
        "WITH",
        "AS",
        "RECURSIVE",
        "ORDER BY",
        "GROUP BY",
        "HAVING",
        "LIMIT",
        "OFFSET",
        "EXISTS",
        "IN",
        "LATERAL",
        "count(*)",
        "lower(name)",
        "pg_sleep(1)",
        "row_to_json(o)",
        "o.*",
        "::text",
        "::regclass",
        "INSERT INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "RETURNING",
        "/* c */",
        "-- c\n",
        "\"secret\"",
        "- -",
        "'x\n--'",
        "U&\"\\0073ecret\"",
        "CASE WHEN",
        "THEN",
        "ELSE",
        "END",
        "BETWEEN",
        "LIKE",
        "ILIKE",
        "COPY",
        "PREPARE p AS",
        "EXECUTE p",
        "EXPLAIN",
        "BEGIN",
        "COMMIT",
        "SET search_path = x",
        "OPERATOR(pg_catalog.+)",
        "FOR UPDATE",
    ];

    const SEEDS: &[&str] = &[
        "select o.id, c.name from orders o join customers c on c.id = o.customer where o.amount > 3",
        "with x as (select id from orders) select * from x where id in (select id from customers)",
        "update orders set amount = amount + 1 where id = 2 returning id",
        "insert into orders (customer, amount) values (1, 5), (2, 6)",
        "select count(*), status from orders group by status having count(*) > 1 order by 2",
        "delete from orders where id = (select max(id) from orders)",
    ];

    /// The look-ahead that decides the fence sees every condition the walk treats as one.
    fn fence_agrees(sql: &str) {
        let Ok(statements) = Parser::parse_sql(&PostgreSqlDialect {}, sql) else {
            return;
        };
        super::with_context(crate::Dialect::Postgres, |ctx| {
            for statement in statements {
                let mut walked = statement.clone();
                let mut walker = super::super::read::Walker::new(ctx, false);
                if super::super::data_statement(&mut walked, &mut walker).is_ok()
                    && walker.needs_fence
                {
                    assert!(
                        super::super::fence::needs_fence(&statement),
                        "the look-ahead missed a condition: {sql}"
                    );
                }
            }
        });
    }

    /// Rewrites must parse and must not name what the caller may not read.
    fn check(sql: &str) {
        fence_agrees(sql);
        let Ok(out) = run(sql) else { return };
        for statement in out {
            // What goes out reads back as itself: printing made no token the database
            // would read differently (a comment, a merged operator).
            let again = Parser::parse_sql(&PostgreSqlDialect {}, &statement)
                .unwrap_or_else(|e| panic!("rewrite does not parse: {sql:?} -> {statement}: {e}"));
            let printed: Vec<String> = again.iter().map(|s| s.to_string()).collect();
            assert_eq!(printed, std::slice::from_ref(&statement), "{sql:?}");
            assert!(
                !statement.contains("\"public\".\"notes\""),
                "{sql:?} -> {statement}"
            );
            assert!(
                !statement.contains("\"__rectus\".\"secret\""),
                "{sql:?} -> {statement}"
            );
            assert!(!statement.contains("pg_authid"), "{sql:?} -> {statement}");
            assert!(!statement.contains("pg_stat"), "{sql:?} -> {statement}");
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn fragments(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 1..24)) {
            check(&parts.join(" "));
        }

        #[test]
        fn mutations(
            seed in proptest::sample::select(SEEDS),
            at in 0usize..200,
            cut in 0usize..6,
            insert in proptest::sample::select(FRAGMENTS),
        ) {
            let chars: Vec<char> = seed.chars().collect();
            let at = at.min(chars.len());
            let end = (at + cut).min(chars.len());
            let mutated: String = chars[..at]
                .iter()
                .chain(insert.chars().collect::<Vec<_>>().iter())
                .chain(chars[end..].iter())
                .collect();
            check(&mutated);
        }
    }
}
