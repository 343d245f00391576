//! The filter compiler checked against its own in-memory evaluation: random filters run as
//! SQL on real PostgreSQL, MariaDB and SQLite must select exactly the rows `filter::matches`
//! selects. String values come from a small lowercase alphabet, because MariaDB's default
//! collation compares case-insensitively (as Directus on MariaDB does too).

use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rectus::db::{Database, DbValue, DialectExt, Stmt};
use rectus_policies::SchemaOverview;
use rectus_policies::filter::{self, ParseOptions, SqlContext, Variables};
use sea_query::{Order, Query};
use serde_json::{Value as Json, json};

use crate::support::{ALL_KINDS, Kind, TestDb};

const OWNERS: &[(i64, &str)] = &[(1, "ann"), (2, "bob"), (3, "")];

struct Row {
    id: i64,
    name: Option<String>,
    n: Option<i64>,
    price: Option<String>,
    flag: Option<bool>,
    at: Option<String>,
    owner: Option<i64>,
}

fn rows() -> Vec<Row> {
    // A fixed pseudo-random table: every column has NULLs, ties and edge values.
    let names = [
        Some("a"),
        Some("ab"),
        Some("b"),
        Some(""),
        None,
        Some("ba"),
        Some("abc"),
        Some("c"),
    ];
    let prices = [
        Some("1.50"),
        Some("0.00"),
        None,
        Some("10.25"),
        Some("-3.10"),
    ];
    (1..=40)
        .map(|i: i64| Row {
            id: i,
            name: names[(i as usize * 7) % names.len()].map(String::from),
            n: if i % 9 == 0 {
                None
            } else {
                Some((i * 13) % 11 - 5)
            },
            price: prices[(i as usize * 3) % prices.len()].map(String::from),
            flag: match i % 3 {
                0 => None,
                1 => Some(true),
                _ => Some(false),
            },
            at: if i % 7 == 0 {
                None
            } else {
                Some(format!(
                    "2024-0{}-{:02}T{:02}:30:00",
                    1 + i % 3,
                    1 + i % 27,
                    i % 24
                ))
            },
            owner: if i % 5 == 0 { None } else { Some(1 + i % 3) },
        })
        .collect()
}

fn ddl(kind: Kind) -> &'static str {
    match kind {
        Kind::Postgres => {
            "CREATE TABLE owners (id integer PRIMARY KEY, name varchar(20));\n\
             CREATE TABLE items (id integer PRIMARY KEY, name varchar(20), n integer, price numeric(8,2), flag boolean, at timestamp, owner integer REFERENCES owners(id))"
        }
        Kind::MySql => {
            "CREATE TABLE owners (id int PRIMARY KEY, name varchar(20));\n\
             CREATE TABLE items (id int PRIMARY KEY, name varchar(20), n int, price decimal(8,2), flag tinyint(1), at datetime, owner int, FOREIGN KEY (owner) REFERENCES owners(id))"
        }
        Kind::Sqlite => {
            "CREATE TABLE owners (id integer PRIMARY KEY, name varchar(20));\n\
             CREATE TABLE items (id integer PRIMARY KEY, name varchar(20), n integer, price decimal(8,2), flag boolean, at datetime, owner integer REFERENCES owners(id))"
        }
    }
}

async fn load(db: &TestDb) -> Database {
    db.exec(ddl(db.kind)).await;
    let database = db.connect().await;
    for (id, name) in OWNERS {
        let insert = Query::insert()
            .into_table("owners")
            .columns(["id", "name"])
            .values_panic([(*id).into(), (*name).into()])
            .to_owned();
        database
            .execute(&database.dialect().build(&insert).unwrap())
            .await
            .unwrap();
    }
    for row in rows() {
        let stmt = Stmt {
            sql: match db.kind {
                Kind::Postgres => "INSERT INTO items VALUES ($1, $2, $3, $4, $5, $6, $7)",
                _ => "INSERT INTO items VALUES (?, ?, ?, ?, ?, ?, ?)",
            }
            .to_string(),
            values: vec![
                DbValue::Int(row.id),
                row.name.clone().into(),
                row.n.into(),
                row.price.clone().map_or(DbValue::Null, DbValue::Decimal),
                row.flag.into(),
                row.at
                    .as_deref()
                    .and_then(rectus_policies::value::parse_datetime)
                    .map_or(DbValue::Null, DbValue::DateTime),
                row.owner.into(),
            ],
        };
        database.execute(&stmt).await.unwrap();
    }
    database
}

/// The items as the in-memory evaluation sees them, the owner nested.
fn items_json() -> Vec<(i64, Json)> {
    rows()
        .into_iter()
        .map(|r| {
            let owner = r.owner.map_or(Json::Null, |o| {
                let name = OWNERS.iter().find(|(id, _)| *id == o).map(|(_, n)| *n);
                json!({"id": o, "name": name})
            });
            (
                r.id,
                json!({"id": r.id, "name": r.name, "n": r.n, "price": r.price, "flag": r.flag,
                       "at": r.at, "owner": owner}),
            )
        })
        .collect()
}

fn leaf() -> impl Strategy<Value = Json> {
    let text = prop::sample::select(vec!["", "a", "b", "ab", "ba", "c", "abc", "z"]);
    let int = -6i64..7;
    let price = prop::sample::select(vec!["-3.1", "0", "1.5", "1.50", "2", "10.25"]);
    let moment = prop::sample::select(vec![
        "2024-01-05T10:30:00",
        "2024-02-01T00:00:00",
        "2024-02-10T05:30:00Z",
        "2024-03-15T12:00:00",
    ]);
    let flag = any::<bool>();
    prop_oneof![
        (
            prop::sample::select(vec![
                "_eq",
                "_neq",
                "_lt",
                "_lte",
                "_gt",
                "_gte",
                "_contains",
                "_ncontains",
                "_starts_with",
                "_nstarts_with",
                "_ends_with",
                "_nends_with",
                "_icontains",
                "_istarts_with",
                "_niends_with"
            ]),
            text.clone()
        )
            .prop_map(|(op, v)| json!({"name": {op: v}})),
        (
            prop::sample::select(vec!["_in", "_nin"]),
            prop::collection::vec(text, 1..3)
        )
            .prop_map(|(op, v)| json!({"name": {op: v}})),
        (
            prop::sample::select(vec!["_eq", "_neq", "_lt", "_lte", "_gt", "_gte"]),
            int.clone()
        )
            .prop_map(|(op, v)| json!({"n": {op: v}})),
        (
            prop::sample::select(vec!["_in", "_nin"]),
            prop::collection::vec(int.clone(), 1..4)
        )
            .prop_map(|(op, v)| json!({"n": {op: v}})),
        (
            prop::sample::select(vec!["_between", "_nbetween"]),
            int.clone(),
            int
        )
            .prop_map(|(op, a, b)| json!({"n": {op: [a.min(b), a.max(b)]}})),
        (
            prop::sample::select(vec!["_eq", "_lt", "_gte", "_neq"]),
            price
        )
            .prop_map(|(op, v)| json!({"price": {op: v}})),
        (prop::sample::select(vec!["_eq", "_neq"]), flag)
            .prop_map(|(op, v)| json!({"flag": {op: v}})),
        (prop::sample::select(vec!["_lt", "_gte", "_eq"]), moment)
            .prop_map(|(op, v)| json!({"at": {op: v}})),
        (
            prop::sample::select(vec!["year(at)", "month(at)", "day(at)", "hour(at)"]),
            0i64..30
        )
            .prop_map(|(f, v)| json!({f: {"_eq": v}})),
        (
            prop::sample::select(vec!["name", "n", "price", "flag", "at", "owner"]),
            prop::sample::select(vec!["_null", "_nnull", "_empty", "_nempty"]),
            any::<bool>()
        )
            .prop_map(|(f, op, v)| json!({f: {op: v}})),
        (
            prop::sample::select(vec!["_eq", "_neq", "_contains"]),
            prop::sample::select(vec!["ann", "bob", "", "b"])
        )
            .prop_map(|(op, v)| json!({"owner": {"name": {op: v}}})),
    ]
}

fn filter_strategy() -> impl Strategy<Value = Json> {
    leaf().prop_recursive(3, 12, 3, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..3).prop_map(|v| json!({"_and": v})),
            prop::collection::vec(inner, 0..3).prop_map(|v| json!({"_or": v})),
        ]
    })
}

async fn ids_from_sql(
    database: &Database,
    schema: &SchemaOverview,
    parsed: &filter::Filter,
) -> Vec<i64> {
    let ctx = SqlContext::new(schema, database.dialect());
    let condition = filter::to_condition(parsed, "items", "items", &ctx).expect("compiles");
    let select = Query::select()
        .column("id")
        .from("items")
        .cond_where(condition)
        .order_by("id", Order::Asc)
        .to_owned();
    let stmt = database.dialect().build(&select).unwrap();
    database
        .query(&stmt)
        .await
        .unwrap_or_else(|e| panic!("{}: {e}", stmt.sql))
        .iter()
        .map(|r| r.get::<i64>("id").unwrap())
        .collect()
}

#[test]
fn compiled_filters_select_what_in_memory_evaluation_selects() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (dbs, databases, schema) = rt.block_on(async {
        let mut dbs = Vec::new();
        let mut databases = Vec::new();
        for kind in ALL_KINDS {
            let db = TestDb::new(kind).await;
            databases.push(load(&db).await);
            dbs.push(db);
        }
        let schema = rectus::db::introspect::introspect(&databases[0])
            .await
            .unwrap();
        (dbs, databases, schema)
    });
    let items = items_json();
    let variables = Variables::default();
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    runner
        .run(&filter_strategy(), |filter| {
            let parsed = filter::parse(
                "items",
                &filter,
                &ParseOptions {
                    schema: &schema,
                    variables: &variables,
                    allow_regex: false,
                    access: None,
                    root: "filter",
                },
            )
            .unwrap_or_else(|e| panic!("{filter}: {e}"));
            let expected: Vec<i64> = items
                .iter()
                .filter(|(_, item)| filter::matches(&parsed, item))
                .map(|(id, _)| *id)
                .collect();
            for (database, db) in databases.iter().zip(&dbs) {
                let got = rt.block_on(ids_from_sql(database, &schema, &parsed));
                prop_assert_eq!(&got, &expected, "{:?} disagrees on {}", db.kind, filter);
            }
            Ok(())
        })
        .unwrap();
    rt.block_on(async {
        for d in databases {
            d.close().await;
        }
    });
    drop(dbs);
}
