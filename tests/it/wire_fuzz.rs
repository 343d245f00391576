//! Random statements through the real wire endpoints as a restricted user: whatever the
//! guard lets through and the database runs, no hidden value ever comes back. The hidden
//! column holds values no fragment can spell (`zq…`), so any answer holding one leaked.

use mysql_async::prelude::Queryable;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::json;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use crate::clerk::restricted_app;
use crate::support::Kind;

/// Select items, FROM lists, conditions and tails the statements are made of: plain ones,
/// and the printing traps (signs, quotes after backslashes, newlines before comment
/// starters), hidden columns and tables.
const ITEMS: &[&str] = &[
    "id",
    "status",
    "amount",
    "o.id",
    "c.name",
    "count(*)",
    "- -1",
    "- - -amount",
    "'x''y'",
    "'x\nid, secret FROM orders --'",
    "'/* x'",
    "lower(c.name)",
    "secret",
    "o.secret",
    "o.*",
    "*",
    "(SELECT max(id) FROM orders)",
    "coalesce(amount, 0)",
    r"'\'",
    r"'\'''",
    "\"secret\"",
    "amount * - -2",
];
const FROMS: &[&str] = &[
    "orders",
    "orders o",
    "customers c",
    "orders o JOIN customers c ON c.id = o.customer",
    "notes",
    "orders, customers",
    "(SELECT * FROM orders) o",
    "orders o LEFT JOIN notes n ON n.id = o.id",
];
const CONDITIONS: &[&str] = &[
    "",
    "WHERE id > 0",
    "WHERE status = 'published'",
    "WHERE secret = 'x'",
    "WHERE 1/(amount-20) > 0",
    "WHERE c.name LIKE '%a%'",
    "WHERE id IN (SELECT id FROM orders)",
    "WHERE EXISTS (SELECT 1 FROM orders WHERE secret IS NOT NULL)",
    "WHERE - -1 = 1",
    "WHERE status = 'x\n-- y'",
];
const TAILS: &[&str] = &[
    "",
    "ORDER BY 1",
    "LIMIT 2",
    "GROUP BY 1",
    "UNION ALL SELECT id FROM orders",
];
const FRAGMENTS: &[&str] = &[
    "(", ")", ",", "- -", "'", "\\", "--", "#", "/*", "*/", "\n", ";",
];

fn setup(kind: Kind) -> String {
    let serial = if kind == Kind::Postgres {
        "serial PRIMARY KEY"
    } else {
        "int AUTO_INCREMENT PRIMARY KEY"
    };
    format!(
        "CREATE TABLE customers (id {serial}, name varchar(100));
CREATE TABLE orders (id {serial}, customer int, status varchar(20), amount decimal(10,2), secret varchar(50));
CREATE TABLE notes (id {serial}, body text);
INSERT INTO customers (name) VALUES ('Ada'), ('Grace');
INSERT INTO orders (customer, status, amount, secret) VALUES (1, 'published', 10.50, 'zq-1'), (1, 'draft', 20.00, 'zq-2'), (2, 'published', 30.25, 'zq-3'), (2, 'draft', 40.00, 'zq-4');
INSERT INTO notes (body) VALUES ('zq-note')"
    )
}

/// The readers' permissions: published orders without `secret`, all customers, no notes.
fn permissions() -> Vec<serde_json::Value> {
    vec![
        json!({"collection": "orders", "action": "read", "fields": ["id", "customer", "status", "amount"], "permissions": {"status": {"_eq": "published"}}}),
        json!({"collection": "customers", "action": "read", "fields": ["*"], "permissions": {}}),
    ]
}

/// `count` random statements put together from the parts, some with a fragment inserted.
fn statements(count: usize) -> Vec<String> {
    let mut rng = StdRng::seed_from_u64(20261205);
    (0..count)
        .map(|_| {
            let mut pick = |list: &[&'static str]| list[rng.random_range(0..list.len())];
            let items: Vec<&str> = (0..3).map(|_| pick(ITEMS)).collect();
            let width = 1 + items[0].len() % 3;
            let sql = format!(
                "SELECT {} FROM {} {} {}",
                items[..width].join(", "),
                pick(FROMS),
                pick(CONDITIONS),
                pick(TAILS)
            );
            let fragment = pick(FRAGMENTS);
            let at = rng.random_range(0..sql.len());
            if rng.random_bool(0.3) && sql.is_char_boundary(at) {
                format!("{} {fragment} {}", &sql[..at], &sql[at..])
            } else {
                sql
            }
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn random_statements_leak_nothing_through_postgresql() {
    let (app, _) = restricted_app(
        Kind::Postgres,
        &setup(Kind::Postgres),
        "Reader",
        &permissions(),
    )
    .await;
    let config = format!(
        "host=127.0.0.1 port={} user=reader@example.com password=pw dbname={} sslmode=disable",
        app.server.pg_port(),
        app.db.name
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await.unwrap();
    tokio::spawn(connection);
    let mut ran = 0;
    for sql in statements(1200) {
        let Ok(messages) = client.simple_query(&sql).await else {
            continue;
        };
        ran += 1;
        for message in messages {
            if let SimpleQueryMessage::Row(row) = message {
                for i in 0..row.len() {
                    let cell = row.get(i).unwrap_or("");
                    assert!(!cell.contains("zq"), "{sql:?} returned {cell:?}");
                }
            }
        }
    }
    assert!(ran > 100, "only {ran} statements ran");
}

#[tokio::test(flavor = "multi_thread")]
async fn random_statements_leak_nothing_through_mysql() {
    let (app, _) = restricted_app(Kind::MySql, &setup(Kind::MySql), "Reader", &permissions()).await;
    let opts = mysql_async::OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(app.server.mysql_port())
        .user(Some("reader@example.com"))
        .pass(Some("pw"))
        .db_name(Some(app.db.name.clone()))
        .prefer_socket(false)
        .enable_cleartext_plugin(true);
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    let mut ran = 0;
    for sql in statements(1200) {
        let Ok(mut result) = conn.query_iter(sql.as_str()).await else {
            continue;
        };
        ran += 1;
        while !result.is_empty() {
            let Ok(rows) = result.collect::<mysql_async::Row>().await else {
                break;
            };
            for row in rows {
                for value in row.unwrap() {
                    let cell = match value {
                        mysql_async::Value::Bytes(b) => String::from_utf8_lossy(&b).into_owned(),
                        _ => String::new(),
                    };
                    assert!(!cell.contains("zq"), "{sql:?} returned {cell:?}");
                }
            }
        }
    }
    assert!(ran > 100, "only {ran} statements ran");
}
