//! The MySQL wire endpoint with real clients (mysql_async, the `mysql` command-line client)
//! against a real MariaDB: admin passthrough identical to a direct connection, restricted
//! users seeing exactly what `GET /items` shows them, refusals as errors 1142/1143, writes
//! under the create/update/delete rules, logins, `SHOW`/`DESCRIBE` limited to what the user
//! may read, and every statement of the MySQL attack file refused with the data unchanged.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, OptsBuilder, Row, Value as My};
use serde_json::json;

use crate::clerk::{
    clerk_permissions, clerk_reads_drafts, restricted_app, restricted_app_with, same_as_api,
    second_admin, suspend,
};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind, mysql_conn};

pub(crate) const SETUP: &str = "
CREATE TABLE customers (id int AUTO_INCREMENT PRIMARY KEY, name varchar(100));
CREATE TABLE orders (id int AUTO_INCREMENT PRIMARY KEY, customer int, status varchar(20), amount decimal(10,2), secret varchar(50), FOREIGN KEY (customer) REFERENCES customers(id));
CREATE TABLE notes (id int AUTO_INCREMENT PRIMARY KEY, body text);
INSERT INTO customers (name) VALUES ('Ada'), ('Grace');
INSERT INTO orders (customer, status, amount, secret) VALUES (1, 'published', 10.50, 's1'), (1, 'draft', 20.00, 's2'), (2, 'published', 30.25, 's3'), (2, 'draft', 40.00, 's4');
INSERT INTO notes (body) VALUES ('hidden');
CREATE INDEX orders_status_index ON orders (status);
CREATE INDEX orders_secret_index ON orders (secret)
";

async fn start() -> (App, String) {
    restricted_app(Kind::MySql, SETUP, "Clerk", &clerk_permissions()).await
}

fn opts(app: &App, user: &str, password: &str) -> OptsBuilder {
    OptsBuilder::default()
        .ip_or_hostname("127.0.0.1")
        .tcp_port(app.server.mysql_port())
        .user(Some(user))
        .pass(Some(password))
        .db_name(Some(app.db.name.clone()))
        .prefer_socket(false)
        .enable_cleartext_plugin(true)
}

pub(crate) async fn connect(
    app: &App,
    user: &str,
    password: &str,
) -> Result<Conn, mysql_async::Error> {
    Conn::new(opts(app, user, password)).await
}

async fn direct(app: &App) -> Conn {
    mysql_conn(Some(&app.db.name)).await
}

/// A server error's code and message.
pub(crate) fn server_error(e: mysql_async::Error) -> (u16, String) {
    match e {
        mysql_async::Error::Server(e) => (e.code, e.message),
        other => panic!("not a server error: {other}"),
    }
}

pub(crate) async fn rows(conn: &mut Conn, sql: &str) -> Result<Vec<Vec<My>>, mysql_async::Error> {
    let rows: Vec<Row> = conn.query(sql).await?;
    Ok(rows.into_iter().map(Row::unwrap).collect())
}

pub(crate) fn text(v: &My) -> Option<String> {
    match v {
        My::NULL => None,
        My::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_passthrough_is_a_direct_connection() {
    let (app, _) = start().await;
    let mut wire = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login");
    let mut db = direct(&app).await;
    for sql in [
        "SELECT * FROM orders ORDER BY id",
        "SELECT secret, amount * 2 AS `double` FROM orders WHERE id > 1 ORDER BY 1",
        "SELECT count(*), @@version FROM notes",
    ] {
        assert_eq!(
            rows(&mut wire, sql).await.unwrap(),
            rows(&mut db, sql).await.unwrap(),
            "{sql}"
        );
    }
    // The binary protocol: same column types and values.
    let sql = "SELECT id, amount, status, secret FROM orders WHERE id = ?";
    let a: Vec<Row> = wire.exec(sql, (2,)).await.unwrap();
    let b: Vec<Row> = db.exec(sql, (2,)).await.unwrap();
    assert_eq!(a.len(), 1);
    let types = |r: &Row| {
        r.columns_ref()
            .iter()
            .map(|c| c.column_type())
            .collect::<Vec<_>>()
    };
    assert_eq!(types(&a[0]), types(&b[0]));
    assert_eq!(a[0].clone().unwrap(), b[0].clone().unwrap());
    // Session state lives as on a direct connection.
    wire.query_drop("CREATE TEMPORARY TABLE t (x int)")
        .await
        .unwrap();
    wire.query_drop("START TRANSACTION").await.unwrap();
    wire.query_drop("INSERT INTO t VALUES (1)").await.unwrap();
    wire.query_drop("SET @v = 7").await.unwrap();
    assert_eq!(
        rows(&mut wire, "SELECT x, @v FROM t").await.unwrap(),
        vec![vec![My::Bytes(b"1".to_vec()), My::Bytes(b"7".to_vec())]]
    );
    wire.query_drop("ROLLBACK").await.unwrap();
    assert!(rows(&mut wire, "SELECT x FROM t").await.unwrap().is_empty());
    // Several statements in one query, as the client asked for.
    let mut result = wire
        .query_iter("SELECT 1; SELECT secret FROM orders WHERE id = 1")
        .await
        .unwrap();
    let first: Vec<Row> = result.collect().await.unwrap();
    let second: Vec<Row> = result.collect().await.unwrap();
    drop(result);
    assert_eq!(first.len(), 1);
    assert_eq!(second[0].clone().unwrap(), vec![My::Bytes(b"s1".to_vec())]);
    wire.disconnect().await.unwrap();
}

/// `DB_SOCKET_PATH` (Directus's name; the same as `DB_HOST` naming the socket file): the
/// API's pool and the endpoint's sessions (admin and guarded) reach the database over the
/// server's Unix socket.
#[tokio::test(flavor = "multi_thread")]
async fn the_database_is_reached_over_its_unix_socket() {
    let mut root = mysql_conn(None).await;
    let socket: String = root
        .query_first("SELECT @@socket")
        .await
        .unwrap()
        .expect("MariaDB listens on a Unix socket");
    let (app, _) = restricted_app_with(
        Kind::MySql,
        SETUP,
        "Clerk",
        &clerk_permissions(),
        &[("DB_SOCKET_PATH", socket.as_str())],
    )
    .await;
    let body = app
        .admin_call("GET", "/items/orders?fields=id&sort=id", None)
        .await;
    assert_eq!(
        body["data"],
        json!([{"id": 1}, {"id": 2}, {"id": 3}, {"id": 4}])
    );
    let mut admin = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login");
    root.query_drop(format!("USE `{}`", app.db.name))
        .await
        .unwrap();
    let sql = "SELECT id, secret FROM orders ORDER BY id";
    assert_eq!(
        rows(&mut admin, sql).await.unwrap(),
        rows(&mut root, sql).await.unwrap()
    );
    let mut clerk = connect(&app, "clerk@example.com", "pw")
        .await
        .expect("user login");
    let ids: Vec<i64> = clerk
        .query("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(ids, [1, 3]);
    // The test connects over TCP; rectus's API pool and the clerk's session come over the
    // socket, which MariaDB lists as `localhost` (over TCP it would be `127.0.0.1:<port>`).
    let hosts: Vec<String> = root
        .exec(
            "SELECT HOST FROM information_schema.PROCESSLIST WHERE DB = ?",
            (app.db.name.clone(),),
        )
        .await
        .unwrap();
    assert!(
        hosts.iter().filter(|h| *h == "localhost").count() >= 2,
        "{hosts:?}"
    );
    admin.disconnect().await.unwrap();
    clerk.disconnect().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_user_sees_what_the_api_shows() {
    let (app, token) = start().await;
    let mut wire = connect(&app, "clerk@example.com", "pw")
        .await
        .expect("user login");
    let result: Vec<Row> = wire
        .query("SELECT * FROM orders ORDER BY id")
        .await
        .unwrap();
    let columns: Vec<String> = result[0]
        .columns_ref()
        .iter()
        .map(|c| c.name_str().into_owned())
        .collect();
    assert_eq!(
        columns,
        ["id", "customer", "status", "amount"],
        "the table's order"
    );
    let rows: Vec<Vec<Option<String>>> = result
        .into_iter()
        .map(|row| row.unwrap().iter().map(text).collect())
        .collect();
    same_as_api(&app, &token, "orders", &columns, &rows).await;
    // Joins, subqueries and aggregates read through the same filter.
    let counted: Vec<i64> = wire
        .query("SELECT count(*) FROM orders o JOIN customers c ON c.id = o.customer WHERE o.id IN (SELECT id FROM orders)")
        .await
        .unwrap();
    assert_eq!(counted, [2]);
    // A condition that gets the fence reads the same rows.
    let fenced: Vec<i32> = wire
        .query("SELECT id FROM orders WHERE 100 / (amount - 20) > 0 ORDER BY id")
        .await
        .unwrap();
    assert_eq!(fenced, [3]);
    // Prepared statements (binary protocol).
    let found: Vec<(i32, String)> = wire
        .exec("SELECT id, status FROM orders WHERE id = ?", (3,))
        .await
        .unwrap();
    assert_eq!(found, vec![(3, "published".to_string())]);
    let hidden: Vec<i32> = wire
        .exec("SELECT id FROM orders WHERE id = ?", (2,))
        .await
        .unwrap();
    assert!(hidden.is_empty());
    // Several statements in one query: each guarded, each answered.
    let mut result = wire
        .query_iter("SELECT 1; SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    let first: Vec<i64> = result.collect().await.unwrap();
    let second: Vec<i32> = result.collect().await.unwrap();
    drop(result);
    assert_eq!((first, second), (vec![1], vec![1, 3]));
    // mysql_async by default reads @@socket to move to the server's own socket: it is
    // answered as NULL, so the connection stays with rectus.
    let mut default = Conn::new(opts(&app, "clerk@example.com", "pw").prefer_socket(true))
        .await
        .expect("login with mysql_async's defaults");
    let ids: Vec<i32> = default
        .query("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(ids, [1, 3]);
    // A static token logs in with mysql_native_password, without sending it in clear.
    let mut service =
        Conn::new(opts(&app, "any-name", "clerk-token").enable_cleartext_plugin(false))
            .await
            .expect("token login");
    let ids: Vec<i32> = service
        .query("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(ids, [1, 3]);
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_and_writes_follow_the_rules() {
    let (app, _) = start().await;
    let mut wire = connect(&app, "clerk@example.com", "pw")
        .await
        .expect("user login");
    let (code, message) = server_error(
        wire.query_drop("SELECT secret FROM orders")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1143);
    assert_eq!(
        message,
        "permission denied for column secret of table orders"
    );
    let (code, message) = server_error(wire.query_drop("SELECT * FROM notes").await.unwrap_err());
    assert_eq!(
        (code, message.as_str()),
        (1142, "permission denied for table notes")
    );
    let (code, _) = server_error(wire.prep("SELECT sleep(1)").await.unwrap_err());
    assert_eq!(code, 1142);
    // The session goes on; in a transaction a refusal is one failed statement, as MySQL
    // treats any error, and what ran before it commits.
    wire.query_drop("START TRANSACTION").await.unwrap();
    wire.query_drop("UPDATE customers SET name = 'Ada B' WHERE id = 1")
        .await
        .unwrap();
    assert!(wire.query_drop("SELECT secret FROM orders").await.is_err());
    wire.query_drop("COMMIT").await.unwrap();
    let mut db = direct(&app).await;
    let names: Vec<String> = db
        .query("SELECT name FROM customers ORDER BY id")
        .await
        .unwrap();
    assert_eq!(names, ["Ada B", "Grace"]);
    // A query of several statements with one refused runs none of them.
    assert!(
        wire.query_drop("UPDATE customers SET name = 'Ada C' WHERE id = 1; SELECT * FROM notes")
            .await
            .is_err()
    );
    let names: Vec<String> = db
        .query("SELECT name FROM customers ORDER BY id")
        .await
        .unwrap();
    assert_eq!(names, ["Ada B", "Grace"]);
    // Creates get the presets and the validation; updates and deletes reach only drafts.
    wire.exec_drop("INSERT INTO orders (customer, amount) VALUES (1, 5)", ())
        .await
        .unwrap();
    let created: Vec<(String, Option<String>)> = db
        .query("SELECT status, secret FROM orders WHERE amount = 5")
        .await
        .unwrap();
    assert_eq!(created, [("draft".to_string(), None)]);
    let (code, _) = server_error(
        wire.query_drop("INSERT INTO orders (customer, amount) VALUES (1, -5)")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 4025);
    let (code, _) = server_error(
        wire.query_drop("INSERT INTO orders (customer, amount) VALUES (1, 5) ON DUPLICATE KEY UPDATE amount = 9")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1142);
    // Prepared, with parameters: the validation is checked with their values each time
    // the statement runs.
    let insert = wire
        .prep("INSERT INTO orders (customer, amount) VALUES (?, ?)")
        .await
        .unwrap();
    wire.exec_drop(&insert, (2, 7.5)).await.unwrap();
    wire.exec_drop(&insert, (2, "8")).await.unwrap();
    let (code, _) = server_error(wire.exec_drop(&insert, (2, -1)).await.unwrap_err());
    assert_eq!(code, 4025);
    let prepared: Vec<(String, String)> = db
        .query("SELECT status, CAST(amount AS CHAR) FROM orders WHERE customer = 2 AND secret IS NULL ORDER BY id")
        .await
        .unwrap();
    assert_eq!(
        prepared,
        [
            ("draft".to_string(), "7.50".to_string()),
            ("draft".to_string(), "8.00".to_string())
        ]
    );
    // Updates and deletes reach rows the user may read and the rule admits: the drafts
    // are not readable, the published orders are not drafts, so nothing changes.
    wire.query_drop("UPDATE orders SET amount = amount + 100")
        .await
        .unwrap();
    assert_eq!(wire.affected_rows(), 0);
    wire.query_drop("DELETE FROM orders WHERE amount > 0")
        .await
        .unwrap();
    assert_eq!(wire.affected_rows(), 0);
    let left: Vec<(i32, String)> = db
        .query("SELECT id, CAST(amount AS CHAR) FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(left.len(), 7);
    assert_eq!(left[0], (1, "10.50".to_string()));
    // A column the update rule looks at cannot be set over the wire.
    let (code, _) = server_error(
        wire.query_drop("UPDATE orders SET status = 'published'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1142);
}

#[tokio::test(flavor = "multi_thread")]
async fn logins() {
    let (app, _) = start().await;
    for (user, password) in [
        ("clerk@example.com", "wrong"),
        ("nobody@example.com", "pw"),
        ("x", "not-a-token"),
    ] {
        let (code, message) = server_error(connect(&app, user, password).await.unwrap_err());
        assert_eq!(code, 1045, "{user}: {message}");
        assert!(
            message.starts_with(&format!("Access denied for user '{user}'")),
            "{message}"
        );
    }
    let (code, _) = server_error(
        Conn::new(opts(&app, "clerk@example.com", "pw").db_name(Some("mysql")))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1044);
    // A user suspended while connected reads nothing more.
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    suspend(&app, "clerk@example.com").await;
    let (code, message) = server_error(wire.query_drop("SELECT id FROM orders").await.unwrap_err());
    assert_eq!(code, 1142);
    assert!(message.contains("no longer active"), "{message}");
    assert!(connect(&app, "clerk@example.com", "pw").await.is_err());
}

#[tokio::test(flavor = "multi_thread")]
async fn permission_changes_reach_prepared_statements() {
    let (app, _) = start().await;
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    let statement = wire
        .prep("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    let ids: Vec<i32> = wire.exec(&statement, ()).await.unwrap();
    assert_eq!(ids, [1, 3]);
    clerk_reads_drafts(&app).await;
    let all: Vec<i32> = wire.query("SELECT id FROM orders").await.unwrap();
    assert_eq!(all.len(), 4);
    let (code, message) = server_error(wire.exec::<i32, _, _>(&statement, ()).await.unwrap_err());
    assert_eq!(code, 1142, "{message}");
    assert!(
        message.contains("permissions that have changed"),
        "{message}"
    );
    wire.close(statement).await.unwrap();
    let ids: Vec<i32> = wire
        .exec("SELECT id FROM orders ORDER BY id", ())
        .await
        .unwrap();
    assert_eq!(ids, [1, 2, 3, 4]);
}

/// `mysql -e ...` on the endpoint, as `user`; `ssl` picks `--ssl` or `--skip-ssl`.
fn run_mysql(
    app: &App,
    user: &str,
    password: &str,
    ssl: bool,
    command: &str,
) -> std::process::Output {
    std::process::Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &app.server.mysql_port().to_string(),
        ])
        .args(["-u", user, &format!("-p{password}")])
        .arg(if ssl { "--ssl" } else { "--skip-ssl" })
        .args(["--batch", "--raw", &app.db.name, "-e", command])
        .output()
        .expect("the mysql client")
}

#[tokio::test(flavor = "multi_thread")]
async fn the_mysql_client_over_tls_sees_only_what_the_user_may_read() {
    // Plain-text passwords only inside TLS here.
    let app = App::start_with(Kind::MySql, Some(SETUP), &[]).await;
    let policy = json!({"name": "clerk", "app_access": false, "admin_access": false});
    let (policies, _, _) = crate::rbac::role_with_user(&app, "Clerk", &[policy]).await;
    for permission in clerk_permissions() {
        let mut body = permission;
        body["policy"] = json!(policies[0]);
        app.admin_call("POST", "/permissions", Some(body)).await;
    }
    let out = run_mysql(
        &app,
        "clerk@example.com",
        "pw",
        true,
        "SHOW TABLES; DESCRIBE orders; SHOW DATABASES; SELECT DATABASE(), @@version_comment IS NOT NULL",
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tables = format!("Tables_in_{}\ncustomers\norders\n", app.db.name);
    assert!(stdout.starts_with(&tables), "{stdout}");
    assert!(stdout.contains("status\tvarchar(20)\tYES"), "{stdout}");
    assert!(
        !stdout.contains("secret") && !stdout.contains("notes"),
        "{stdout}"
    );
    assert!(
        stdout.contains(&format!("Database\n{}\n", app.db.name)),
        "{stdout}"
    );
    let out = run_mysql(
        &app,
        "clerk@example.com",
        "pw",
        true,
        "SHOW CREATE TABLE orders\\G",
    );
    let create = String::from_utf8_lossy(&out.stdout);
    assert!(
        create.contains(
            "Create Table: CREATE TABLE `orders` (\n  `id` int(11) NOT NULL auto_increment,\n"
        ),
        "{create}"
    );
    assert!(
        create.contains("  `status` varchar(20) DEFAULT NULL,\n"),
        "{create}"
    );
    assert!(create.contains("  PRIMARY KEY (`id`)\n)"), "{create}");
    assert!(!create.contains("secret"), "{create}");
    let out = run_mysql(
        &app,
        "clerk@example.com",
        "pw",
        true,
        "SHOW INDEX FROM orders; SHOW TABLE STATUS",
    );
    let shown = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(shown.contains("orders\t0\tPRIMARY\t1\tid"), "{shown}");
    assert!(shown.contains("orders_status_index"), "{shown}");
    assert!(
        !shown.contains("secret") && !shown.contains("notes"),
        "{shown}"
    );
    assert!(shown.contains("\ncustomers\tInnoDB"), "{shown}");
    // Without TLS a password is not sent; the admin's neither.
    for (user, password) in [("clerk@example.com", "pw"), (ADMIN_EMAIL, ADMIN_PASSWORD)] {
        let out = run_mysql(&app, user, password, false, "SELECT 1");
        assert!(!out.status.success());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains("ERROR 1045") && stderr.contains("TLS"),
            "{stderr}"
        );
    }
    // The admin over TLS reads everything.
    let out = run_mysql(
        &app,
        ADMIN_EMAIL,
        ADMIN_PASSWORD,
        true,
        "SELECT secret FROM orders ORDER BY id LIMIT 1",
    );
    assert_eq!(String::from_utf8_lossy(&out.stdout), "secret\ns1\n");
}

#[tokio::test(flavor = "multi_thread")]
async fn every_attack_statement_is_refused_by_the_real_endpoint() {
    let (app, _) = start().await;
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    let mut db = direct(&app).await;
    let snapshot = "SELECT (SELECT GROUP_CONCAT(CONCAT_WS(',', id, customer, status, amount, secret) ORDER BY id) FROM orders), (SELECT GROUP_CONCAT(body) FROM notes), (SELECT GROUP_CONCAT(name) FROM customers)";
    let before = rows(&mut db, snapshot).await.unwrap();
    // The MySQL attack file, and the PostgreSQL one where its SQL means something in MySQL
    // too (the guard's unit tests list the few statements MySQL reads as harmless).
    let mysql_file = include_str!("../data/guard/mysql_refused.sql");
    let pg_file = include_str!("../data/guard/pg_refused.sql");
    let harmless_in_mysql = [
        "select version()",
        "select user",
        "select current_schema",
        "select \"secret\" from orders",
    ];
    let mut count = 0;
    for statement in mysql_file.split("\n--;\n").chain(pg_file.split("\n--;\n")) {
        let sql: String = statement
            .lines()
            .filter(|l| !l.starts_with('#'))
            .collect::<Vec<_>>()
            .join("\n");
        if sql.trim().is_empty() || harmless_in_mysql.contains(&sql.as_str()) {
            continue;
        }
        count += 1;
        match wire.query_drop(&sql).await {
            Ok(()) => panic!("not refused: {sql}"),
            Err(e) => {
                let (code, message) = server_error(e);
                assert!(
                    [1142, 1143, 1064, 4025].contains(&code),
                    "{sql}: {code} {message}"
                );
            }
        }
    }
    assert!(count > 150, "{count}");
    assert_eq!(rows(&mut db, snapshot).await.unwrap(), before);
    let tables: Vec<String> = db.query("SHOW TABLES").await.unwrap();
    assert!(!tables.contains(&"x".to_string()) && !tables.contains(&"o2".to_string()));
    // The session still works after all that.
    let ids: Vec<i32> = wire
        .query("SELECT id FROM orders ORDER BY id")
        .await
        .unwrap();
    assert_eq!(ids, [1, 3]);
}

/// Guarded sessions run with NO_BACKSLASH_ESCAPES, which the guard's printed literals rely
/// on: values reach the server as the guard read them, also after COM_RESET_CONNECTION. An
/// admin cannot switch the upstream session to another database user.
#[tokio::test(flavor = "multi_thread")]
async fn session_protocol_details() {
    let (app, _) = start().await;
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    let sql = r"SELECT 'a\\b', 'it\'s', name FROM customers WHERE name LIKE 'A\_a' OR name = 'Ada'";
    let expected = vec![(r"a\b".to_string(), "it's".to_string(), "Ada".to_string())];
    let read: Vec<(String, String, String)> = wire.query(sql).await.unwrap();
    assert_eq!(read, expected);
    assert!(wire.reset().await.unwrap(), "COM_RESET_CONNECTION");
    let read: Vec<(String, String, String)> = wire.query(sql).await.unwrap();
    assert_eq!(read, expected);
    let prepared: Vec<String> = wire
        .exec("SELECT name FROM customers WHERE name LIKE ?", (r"Gr\_ce",))
        .await
        .unwrap();
    assert!(prepared.is_empty(), "an escaped _ matches only itself");
    // A quote after a backslash, and quotes in pairs, stay inside their string (sqlparser
    // prints them once; the guard prints such strings between the other quotes).
    let value = r"\' UNION SELECT secret FROM orders WHERE 'x'='x'' #";
    let sql = format!(
        "SELECT '{}' FROM orders WHERE id = 1",
        value.replace('\\', r"\\").replace('\'', r"\'")
    );
    let read: Vec<String> = wire.query(&sql).await.unwrap();
    assert_eq!(read, [value]);
    // A client's sql_mode keeps backslashes plain for the guard's output: the same text
    // reads the same after it.
    wire.query_drop("SET SESSION sql_mode = 'ANSI_QUOTES'")
        .await
        .unwrap();
    let read: Vec<String> = wire.query(&sql).await.unwrap();
    assert_eq!(read, [value]);
    wire.ping().await.unwrap();
    // Conversion warnings (which quote the converted values) are not counted for a
    // restricted user; an admin gets them as the database sends them.
    let converted: Vec<Option<i64>> = wire
        .query("SELECT CAST(status AS SIGNED) FROM orders")
        .await
        .unwrap();
    assert_eq!(converted, [Some(0), Some(0)]);
    assert_eq!(wire.get_warnings(), 0);

    let mut admin = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.unwrap();
    let change = admin
        .change_user(mysql_async::ChangeUserOpts::default().with_user(Some("root".into())))
        .await;
    assert!(change.is_err(), "COM_CHANGE_USER reached the database");
    let mut admin = connect(&app, ADMIN_EMAIL, ADMIN_PASSWORD).await.unwrap();
    let _: Vec<Option<i64>> = admin
        .query("SELECT CAST(status AS SIGNED) FROM orders")
        .await
        .unwrap();
    assert_eq!(admin.get_warnings(), 4);

    // MySQL 8 clients start with caching_sha2_password: without TLS they are switched to
    // mysql_native_password, where a static token logs in.
    let out = std::process::Command::new("mysql")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &app.server.mysql_port().to_string(),
        ])
        .args(["-u", "service", "-pclerk-token", "--skip-ssl"])
        .args([
            "--default-auth=caching_sha2_password",
            "--batch",
            &app.db.name,
        ])
        .args(["-e", "SELECT count(*) FROM orders"])
        .output()
        .expect("the mysql client");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "count(*)\n2\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// An admin's passthrough session ends when the admin is suspended.
#[tokio::test(flavor = "multi_thread")]
async fn a_suspended_admin_loses_the_passthrough_session() {
    let (app, _) = start().await;
    let boss = second_admin(&app).await;
    let mut wire = connect(&app, boss, "pw").await.expect("admin login");
    let secrets: Vec<String> = wire.query("SELECT secret FROM orders").await.unwrap();
    assert_eq!(secrets.len(), 4);
    suspend(&app, boss).await;
    assert!(wire.query_drop("SELECT secret FROM orders").await.is_err());
    assert!(connect(&app, boss, "pw").await.is_err());
}
