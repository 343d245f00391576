//! The PostgreSQL wire endpoint with real clients (tokio-postgres, psql) against a real
//! PostgreSQL: admin passthrough identical to a direct connection, restricted users seeing
//! exactly what `GET /items` shows them, refusals with SQLSTATE 42501 that abort
//! transactions like any failed statement, and every statement of the attack file refused.

use serde_json::{Value, json};
use tokio_postgres::{Client, NoTls, SimpleQueryMessage};

use crate::clerk::{
    clerk_permissions, clerk_reads_drafts, patch_user, restricted_app, same_as_api, second_admin,
    suspend,
};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind};

pub(crate) const SETUP: &str = "
CREATE TABLE customers (id serial PRIMARY KEY, name varchar(100));
CREATE TABLE orders (id serial PRIMARY KEY, customer integer REFERENCES customers(id), status varchar(20), amount numeric(10,2), secret varchar(50));
CREATE TABLE notes (id serial PRIMARY KEY, body text);
INSERT INTO customers (name) VALUES ('Ada'), ('Grace');
INSERT INTO orders (customer, status, amount, secret) VALUES (1, 'published', 10.50, 's1'), (1, 'draft', 20.00, 's2'), (2, 'published', 30.25, 's3'), (2, 'draft', 40.00, 's4');
INSERT INTO notes (body) VALUES ('hidden');
CREATE INDEX orders_status_index ON orders (status);
CREATE INDEX orders_secret_index ON orders (secret)
";

/// rectus with the endpoint open to plain connections (tokio-postgres without TLS), and a
/// restricted user with the permissions of the guard's unit tests.
pub(crate) async fn start() -> (App, String, String) {
    let (app, token) = restricted_app(Kind::Postgres, SETUP, "Clerk", &clerk_permissions()).await;
    (app, token, "clerk@example.com".to_string())
}

pub(crate) async fn connect(
    app: &App,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let config = format!(
        "host=127.0.0.1 port={} user={user} password={password} dbname={} sslmode=disable",
        app.server.pg_port(),
        app.db.name
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

pub(crate) async fn direct(app: &App) -> Client {
    let config = format!(
        "host=127.0.0.1 port=5432 user=postgres dbname={}",
        app.db.name
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("direct connection");
    tokio::spawn(connection);
    client
}

/// Rows of a simple query as text, with the column names.
pub(crate) async fn simple(
    client: &Client,
    sql: &str,
) -> Result<(Vec<String>, Vec<Vec<Option<String>>>), tokio_postgres::Error> {
    let mut columns = Vec::new();
    let mut rows = Vec::new();
    for message in client.simple_query(sql).await? {
        if let SimpleQueryMessage::Row(row) = message {
            if columns.is_empty() {
                columns = row.columns().iter().map(|c| c.name().to_string()).collect();
            }
            rows.push(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            );
        }
    }
    Ok((columns, rows))
}

/// `psql -X -A -v ON_ERROR_STOP=1 [flags] -c command` on the endpoint, as `user`.
pub(crate) fn run_psql(
    app: &App,
    user: &str,
    password: &str,
    sslmode: &str,
    flags: &[&str],
    command: &str,
) -> std::process::Output {
    let port = app.server.pg_port().to_string();
    std::process::Command::new("psql")
        .env("PGPASSWORD", password)
        .env("PGSSLMODE", sslmode)
        .args(["-X", "-A", "-v", "ON_ERROR_STOP=1"])
        .args(flags)
        .args([
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            user,
            "-d",
            &app.db.name,
        ])
        .args(["-c", command])
        .output()
        .expect("psql")
}

pub(crate) fn refused<T>(result: Result<T, tokio_postgres::Error>) -> tokio_postgres::Error {
    match result {
        Ok(_) => panic!("the connection was not refused"),
        Err(e) => e,
    }
}

pub(crate) fn sqlstate(e: &tokio_postgres::Error) -> (String, String) {
    let db = e
        .as_db_error()
        .unwrap_or_else(|| panic!("not a database error: {e}"));
    (db.code().code().to_string(), db.message().to_string())
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_passthrough_is_a_direct_connection() {
    let (app, _, _) = start().await;
    let wire = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let db = direct(&app).await;
    for sql in [
        "SELECT * FROM orders ORDER BY id",
        "SELECT secret, amount * 2 AS double FROM orders WHERE id > 1 ORDER BY 1",
        "SELECT count(*), current_setting('server_version_num') FROM notes",
    ] {
        assert_eq!(
            simple(&wire, sql).await.unwrap(),
            simple(&db, sql).await.unwrap(),
            "{sql}"
        );
    }
    // Extended protocol with binary results: same types and values.
    let sql = "SELECT id, amount::float8, status, secret FROM orders WHERE id = $1";
    let a = wire.query(sql, &[&2i32]).await.unwrap();
    let b = db.query(sql, &[&2i32]).await.unwrap();
    assert_eq!(a.len(), 1);
    let types_a: Vec<_> = a[0].columns().iter().map(|c| c.type_().clone()).collect();
    let types_b: Vec<_> = b[0].columns().iter().map(|c| c.type_().clone()).collect();
    assert_eq!(types_a, types_b);
    assert_eq!(a[0].get::<_, f64>(1), b[0].get::<_, f64>(1));
    assert_eq!(a[0].get::<_, String>(3), "s2");
    // COPY in both directions is forwarded as it is.
    let stream = wire
        .copy_out("COPY (SELECT id, secret FROM orders ORDER BY id) TO STDOUT")
        .await
        .unwrap();
    let chunks: Vec<bytes::Bytes> = futures_util::TryStreamExt::try_collect(stream)
        .await
        .unwrap();
    let text: String = chunks
        .iter()
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect();
    assert_eq!(text, "1\ts1\n2\ts2\n3\ts3\n4\ts4\n");
    let sink = wire.copy_in("COPY notes (body) FROM STDIN").await.unwrap();
    futures_util::pin_mut!(sink);
    futures_util::SinkExt::send(&mut sink, bytes::Bytes::from_static(b"copied\n"))
        .await
        .unwrap();
    assert_eq!(sink.finish().await.unwrap(), 1);
    let (_, copied) = simple(&db, "SELECT count(*) FROM notes WHERE body = 'copied'")
        .await
        .unwrap();
    assert_eq!(copied, vec![vec![Some("1".into())]]);
    // Session state lives as on a direct connection: transactions and settings.
    wire.batch_execute("BEGIN; CREATE TEMP TABLE t (x int); INSERT INTO t VALUES (1); SET LOCAL statement_timeout = '5s'")
        .await
        .unwrap();
    assert_eq!(
        simple(&wire, "SELECT x FROM t").await.unwrap().1,
        vec![vec![Some("1".into())]]
    );
    wire.batch_execute("ROLLBACK").await.unwrap();
    let (code, _) = sqlstate(&wire.simple_query("SELECT x FROM t").await.unwrap_err());
    assert_eq!(code, "42P01");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_user_sees_what_the_api_shows() {
    let (app, token, email) = start().await;
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let (columns, rows) = simple(&wire, "SELECT * FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        columns,
        ["id", "customer", "status", "amount"],
        "the table's order"
    );
    same_as_api(&app, &token, "orders", &columns, &rows).await;
    // Whole-row references carry only the readable columns.
    let (_, json) = simple(&wire, "SELECT row_to_json(o) FROM orders o WHERE id = 1")
        .await
        .unwrap();
    let row: Value = serde_json::from_str(json[0][0].as_deref().unwrap()).unwrap();
    let mut keys: Vec<&String> = row.as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(keys, ["amount", "customer", "id", "status"]);
    let (_, composite) = simple(&wire, "SELECT o::text FROM orders o WHERE id = 1")
        .await
        .unwrap();
    assert!(
        !composite[0][0].as_deref().unwrap().contains("s1"),
        "{composite:?}"
    );
    // information_schema, as BI tools read it: readable tables and columns only.
    let (_, tables) = simple(
        &wire,
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public' ORDER BY 1",
    )
    .await
    .unwrap();
    assert_eq!(
        tables,
        vec![vec![Some("customers".into())], vec![Some("orders".into())]]
    );
    let (_, columns) = simple(
        &wire,
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'orders' ORDER BY ordinal_position",
    )
    .await
    .unwrap();
    let columns: Vec<String> = columns.into_iter().filter_map(|r| r[0].clone()).collect();
    assert_eq!(columns, ["id", "customer", "status", "amount"]);
    // Joins, subqueries and aggregates read through the same filter.
    let (_, counted) = simple(&wire, "SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer WHERE o.id IN (SELECT id FROM orders)").await.unwrap();
    assert_eq!(counted, vec![vec![Some("2".into())]]);
    // A predicate that could fail on hidden rows runs only on visible ones: order 2 (a
    // draft, amount 20) would divide by zero.
    let (_, fenced) = simple(
        &wire,
        "SELECT id FROM orders WHERE 100 / (amount - 20) > 0 ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(fenced, vec![vec![Some("3".into())]]);
    // Prepared statements (extended protocol, binary results).
    let rows = wire
        .query("SELECT id, status FROM orders WHERE id = $1", &[&3i32])
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].get::<_, String>(1), "published");
    let hidden = wire
        .query("SELECT id FROM orders WHERE id = $1", &[&2i32])
        .await
        .unwrap();
    assert!(hidden.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_are_errors_in_order_and_abort_transactions() {
    let (app, _, email) = start().await;
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let (code, message) = sqlstate(
        &wire
            .simple_query("SELECT secret FROM orders")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42501");
    assert_eq!(
        message,
        "permission denied for column secret of table orders"
    );
    let (code, message) = sqlstate(&wire.simple_query("SELECT * FROM notes").await.unwrap_err());
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("42501", "permission denied for table notes")
    );
    let (code, _) = sqlstate(&wire.prepare("SELECT pg_sleep(1)").await.unwrap_err());
    assert_eq!(code, "42501");
    // Text the guard reads as nothing but comments reaches the database as an empty query.
    let empty = wire
        .simple_query("/* a /* nested */ comment */ -- and a line comment")
        .await
        .unwrap();
    assert!(
        empty
            .iter()
            .all(|m| !matches!(m, SimpleQueryMessage::Row(_)))
    );
    // The session goes on after a refusal.
    assert_eq!(
        simple(&wire, "SELECT 1").await.unwrap().1,
        vec![vec![Some("1".into())]]
    );
    // Inside a transaction a refusal aborts it, as any error would.
    wire.batch_execute("BEGIN").await.unwrap();
    wire.batch_execute("UPDATE orders SET amount = 1 WHERE id = 2")
        .await
        .unwrap();
    assert!(
        wire.simple_query("SELECT secret FROM orders")
            .await
            .is_err()
    );
    let (code, _) = sqlstate(&wire.simple_query("SELECT 1").await.unwrap_err());
    assert_eq!(code, "25P02");
    wire.batch_execute("COMMIT").await.unwrap();
    let db = direct(&app).await;
    let (_, amount) = simple(&db, "SELECT amount FROM orders WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(
        amount,
        vec![vec![Some("20.00".into())]],
        "the aborted transaction wrote nothing"
    );
    // A string of statements with one refused runs none of them.
    assert!(
        wire.simple_query("UPDATE orders SET amount = 2 WHERE id = 2; SELECT * FROM notes")
            .await
            .is_err()
    );
    let (_, amount) = simple(&db, "SELECT amount FROM orders WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(amount, vec![vec![Some("20.00".into())]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_changes_reach_open_sessions_and_prepared_statements() {
    let (app, _, email) = start().await;
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let statement = wire
        .prepare("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(wire.query(&statement, &[]).await.unwrap().len(), 2);
    wire.batch_execute("PREPARE mine AS SELECT id FROM orders")
        .await
        .unwrap();
    clerk_reads_drafts(&app).await;
    // New statements see the new rule at once.
    let (_, rows) = simple(&wire, "SELECT id FROM orders").await.unwrap();
    assert_eq!(rows.len(), 4);
    // Statements prepared under the old rule are not run with it.
    let (code, message) = sqlstate(&wire.query(&statement, &[]).await.unwrap_err());
    assert_eq!(code, "42501", "{message}");
    assert!(
        message.contains("permissions that have changed"),
        "{message}"
    );
    let (code, _) = sqlstate(&wire.simple_query("EXECUTE mine").await.unwrap_err());
    assert_eq!(code, "42501");
    // Prepared again, they follow the new rule.
    let statement = wire
        .prepare("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(wire.query(&statement, &[]).await.unwrap().len(), 4);
    // A suspended user's open session reads nothing more.
    suspend(&app, "clerk@example.com").await;
    let (code, message) = sqlstate(
        &wire
            .simple_query("SELECT id FROM orders")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "42501");
    assert!(message.contains("no longer active"), "{message}");
}

#[tokio::test(flavor = "multi_thread")]
async fn writes_follow_the_write_rules() {
    let (app, _, email) = start().await;
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let db = direct(&app).await;
    let n = wire
        .execute("INSERT INTO orders (customer, amount) VALUES (1, 7)", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let (_, rows) = simple(&db, "SELECT status FROM orders WHERE amount = 7")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some("draft".into())]], "the preset applies");
    let (code, _) = sqlstate(
        &wire
            .simple_query("INSERT INTO orders (customer, amount) VALUES (1, -1)")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "23514");
    // Updates reach only rows the user may read and update: drafts are not readable here.
    let n = wire
        .execute("UPDATE orders SET amount = amount + 1", &[])
        .await
        .unwrap();
    assert_eq!(n, 0);
    let n = wire
        .execute("UPDATE customers SET name = 'Ada L.' WHERE id = 1", &[])
        .await
        .unwrap();
    assert_eq!(n, 1);
    let n = wire.execute("DELETE FROM orders", &[]).await.unwrap();
    assert_eq!(n, 0);
    let (_, count) = simple(&db, "SELECT count(*) FROM orders").await.unwrap();
    assert_eq!(count, vec![vec![Some("5".into())]]);
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_statement_is_refused_by_the_real_endpoint() {
    let (app, _, email) = start().await;
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let db = direct(&app).await;
    let before = simple(&db, "SELECT * FROM orders ORDER BY id")
        .await
        .unwrap();
    let text = include_str!("../data/guard/pg_refused.sql");
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
        match wire.simple_query(&sql).await {
            Ok(_) => panic!("not refused: {sql}"),
            Err(e) => {
                let (code, _) = sqlstate(&e);
                assert!(
                    ["42501", "42601", "23514"].contains(&code.as_str()),
                    "{sql}: {e}"
                );
            }
        }
    }
    assert!(count > 30);
    assert_eq!(
        simple(&db, "SELECT * FROM orders ORDER BY id")
            .await
            .unwrap(),
        before
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn login_rules() {
    let (app, token, email) = start().await;
    let (code, message) = sqlstate(&refused(connect(&app, &email, "wrong").await));
    assert_eq!(code, "28P01");
    assert_eq!(
        message,
        format!("password authentication failed for user \"{email}\"")
    );
    let (code, _) = sqlstate(&refused(connect(&app, "nobody@example.com", "pw").await));
    assert_eq!(code, "28P01");
    // Another database name is refused.
    let config = format!(
        "host=127.0.0.1 port={} user={email} password=pw dbname=postgres sslmode=disable",
        app.server.pg_port()
    );
    let e = refused(tokio_postgres::connect(&config, NoTls).await);
    assert_eq!(sqlstate(&e).0, "3D000");
    // Startup options could set the search path: refused.
    let config = format!(
        "host=127.0.0.1 port={} user={email} password=pw dbname={} options='-c search_path=evil' sslmode=disable",
        app.server.pg_port(),
        app.db.name
    );
    let e = refused(tokio_postgres::connect(&config, NoTls).await);
    assert_eq!(sqlstate(&e).0, "42501");
    // A static token as the password, any user name.
    patch_user(
        &app,
        "clerk@example.com",
        json!({"token": "clerk-static-token"}),
    )
    .await;
    let wire = connect(&app, "service", "clerk-static-token")
        .await
        .expect("token login");
    assert_eq!(
        simple(&wire, "SELECT count(*) FROM orders")
            .await
            .unwrap()
            .1,
        vec![vec![Some("2".into())]]
    );
    // A service logging in again and again (a pool, pgbench) is never throttled, under any
    // name, the user's own e-mail included; nor are the user's password logins after it.
    for name in ["service", email.as_str()] {
        for n in 0..12 {
            connect(&app, name, "clerk-static-token")
                .await
                .unwrap_or_else(|e| panic!("token login {n} as {name}: {e}"));
        }
    }
    connect(&app, &email, "pw")
        .await
        .expect("the user's password login after many token logins");
    drop(token);
}

/// psql over TLS (the self-signed certificate), and the refusal of passwords on plain
/// connections when insecure passwords are not allowed.
/// The guard's printed text reads back as what it checked: a sign before a negative value
/// does not become a comment (which, with a newline in a later string, would let the rest
/// of that string run unchecked), and string literals keep their meaning where the database
/// sets standard_conforming_strings off.
#[tokio::test(flavor = "multi_thread")]
async fn printed_statements_read_as_checked() {
    let (app, _, email) = start().await;
    let direct = direct(&app).await;
    direct
        .batch_execute(&format!(
            "ALTER DATABASE \"{}\" SET standard_conforming_strings = off",
            app.db.name
        ))
        .await
        .unwrap();
    let wire = connect(&app, &email, "pw").await.expect("user login");
    let (_, rows) = simple(
        &wire,
        "SELECT - -1 AS a, 'x\nid, secret FROM orders --' AS b FROM orders WHERE id = 1",
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![vec![
            Some("1".into()),
            Some("x\nid, secret FROM orders --".into())
        ]]
    );
    let (_, rows) = simple(&wire, r"SELECT 'a\' AS v, id FROM orders WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(rows, vec![vec![Some(r"a\".into()), Some("1".into())]]);
    // A quote after a backslash, and quotes in pairs, stay inside their string (sqlparser
    // prints them once; the guard prints such strings as E'...').
    let value = r"\' UNION SELECT secret FROM public.orders WHERE 'x'='x'' --";
    let sql = format!(
        "SELECT '{}' AS v FROM orders WHERE id = 1",
        value.replace('\'', "''")
    );
    let (_, rows) = simple(&wire, &sql).await.unwrap();
    assert_eq!(rows, vec![vec![Some(value.to_string())]]);
}

/// An admin's passthrough session ends when the admin is suspended.
#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_admin_loses_the_passthrough_session() {
    let (app, _, _) = start().await;
    let boss = second_admin(&app).await;
    let wire = connect(&app, boss, "pw").await.expect("admin login");
    let (_, secrets) = simple(&wire, "SELECT secret FROM orders").await.unwrap();
    assert_eq!(secrets.len(), 4);
    suspend(&app, boss).await;
    assert!(
        wire.simple_query("SELECT secret FROM orders")
            .await
            .is_err()
    );
    assert!(connect(&app, boss, "pw").await.is_err());
}

/// A prepared INSERT whose rules check values is checked with the values its Bind gives
/// (binary, typed by the database's ParameterDescription or by Parse), each time it runs.
#[tokio::test(flavor = "multi_thread")]
async fn prepared_inserts_are_checked_with_their_parameters() {
    let setup = "CREATE TABLE scores (id serial PRIMARY KEY, points integer, label text)";
    let (app, _) = restricted_app(
        Kind::Postgres,
        setup,
        "Scorer",
        &[
            json!({"collection": "scores", "action": "read", "fields": ["*"], "permissions": {}}),
            json!({"collection": "scores", "action": "create", "fields": ["points", "label"], "permissions": {}, "validation": {"points": {"_gt": 0}}}),
        ],
    )
    .await;
    let wire = connect(&app, "scorer@example.com", "pw").await.unwrap();
    // Types from the database (tokio-postgres describes the statement first).
    wire.execute(
        "INSERT INTO scores (points, label) VALUES ($1, $2)",
        &[&5i32, &"five"],
    )
    .await
    .unwrap();
    let (code, _) = sqlstate(
        &wire
            .execute(
                "INSERT INTO scores (points, label) VALUES ($1, $2)",
                &[&-1i32, &"minus"],
            )
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "23514");
    // Parameters numbered out of order, and types given in Parse.
    let typed = wire
        .prepare_typed(
            "INSERT INTO scores (label, points) VALUES ($2, $1)",
            &[
                tokio_postgres::types::Type::INT8,
                tokio_postgres::types::Type::TEXT,
            ],
        )
        .await
        .unwrap();
    wire.execute(&typed, &[&7i64, &"seven"]).await.unwrap();
    assert!(wire.execute(&typed, &[&0i64, &"zero"]).await.is_err());
    let (_, rows) = simple(
        &direct(&app).await,
        "SELECT points, label FROM scores ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(
        rows,
        vec![
            vec![Some("5".into()), Some("five".into())],
            vec![Some("7".into()), Some("seven".into())]
        ]
    );
}
