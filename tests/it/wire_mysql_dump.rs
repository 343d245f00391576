//! `mysqldump` through the MySQL endpoint: a restricted user's dump holds the readable
//! tables, columns and rows only (schema and data); the admin's is the database's own.

use crate::clerk::{clerk_permissions, restricted_app};
use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, Kind};
use crate::wire_mysql::SETUP;

fn dump(app: &App, user: &str, password: &str, args: &[&str]) -> (bool, String, String) {
    let out = std::process::Command::new("mysqldump")
        .args([
            "-h",
            "127.0.0.1",
            "-P",
            &app.server.mysql_port().to_string(),
        ])
        .args(["-u", user, &format!("-p{password}"), "--skip-ssl"])
        .args(args)
        .arg(&app.db.name)
        .output()
        .expect("mysqldump");
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn mysqldump_of_a_restricted_user_holds_what_they_may_read() {
    let (app, _) = restricted_app(Kind::MySql, SETUP, "Clerk", &clerk_permissions()).await;
    let clerk = |args: &[&str]| dump(&app, "clerk@example.com", "pw", args);

    let (ok, schema, stderr) = clerk(&["--no-data", "--single-transaction"]);
    assert!(ok, "{stderr}");
    assert!(
        schema.contains(
            "CREATE TABLE `orders` (\n  `id` int(11) NOT NULL auto_increment,\n  `customer` int(11) DEFAULT NULL,\n  `status` varchar(20) DEFAULT NULL,\n  `amount` decimal(10,2) DEFAULT NULL,\n  PRIMARY KEY (`id`)\n)"
        ),
        "{schema}"
    );
    assert!(schema.contains("CREATE TABLE `customers`"), "{schema}");
    for hidden in ["secret", "notes", "INSERT"] {
        assert!(!schema.contains(hidden), "{hidden}: {schema}");
    }

    // The rows are GET /items/orders's for the clerk: published orders, readable columns.
    let (ok, data, stderr) = clerk(&["--single-transaction", "--skip-extended-insert"]);
    assert!(ok, "{stderr}");
    let inserts: Vec<&str> = data
        .lines()
        .filter(|l| l.starts_with("INSERT INTO `orders`"))
        .collect();
    assert_eq!(
        inserts,
        [
            "INSERT INTO `orders` VALUES (1,1,'published',10.50);",
            "INSERT INTO `orders` VALUES (3,2,'published',30.25);",
        ],
        "{data}"
    );
    assert!(
        data.contains("INSERT INTO `customers` VALUES (2,'Grace');"),
        "{data}"
    );
    assert!(!data.contains("hidden") && !data.contains("'s1'"), "{data}");

    // Plain mysqldump locks the tables it reads: the same dump.
    let (ok, locked, stderr) = clerk(&["--skip-extended-insert"]);
    assert!(ok, "{stderr}");
    let inserts_locked: Vec<&str> = locked
        .lines()
        .filter(|l| l.starts_with("INSERT INTO `orders`"))
        .collect();
    assert_eq!(inserts_locked, inserts, "{locked}");

    // The admin's dump is the database's own: every table, column and key.
    let (ok, full, stderr) = dump(&app, ADMIN_EMAIL, ADMIN_PASSWORD, &["--no-data"]);
    assert!(ok, "{stderr}");
    for shown in [
        "`secret` varchar(50)",
        "CREATE TABLE `notes`",
        "FOREIGN KEY (`customer`)",
    ] {
        assert!(full.contains(shown), "{shown}: {full}");
    }
}

/// What `mysqldump` and other tools send in executable comments runs as the server would
/// run it, guarded like any other text; `sql_mode` never changes how the guard's output is
/// read.
#[tokio::test(flavor = "multi_thread")]
async fn executable_comments_and_sql_mode_on_the_real_endpoint() {
    use crate::wire_mysql::{connect, rows, server_error, text};
    let (app, _) = restricted_app(Kind::MySql, SETUP, "Clerk", &clerk_permissions()).await;
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    for sql in [
        "/*!40100 SET @@SQL_MODE='ANSI_QUOTES,PIPES_AS_CONCAT' */",
        "/*!40103 SET TIME_ZONE='+00:00' */",
        "SET SESSION character_set_results = 'binary'",
        "SET SQL_QUOTE_SHOW_CREATE=1",
    ] {
        rows(&mut wire, sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {e}"));
    }
    let got = rows(&mut wire, "SELECT @@sql_mode, \"x\", 'a\\'b', @@time_zone")
        .await
        .unwrap();
    let got: Vec<Option<String>> = got[0].iter().map(text).collect();
    let mode = got[0].clone().unwrap_or_default();
    assert!(
        mode.contains("NO_BACKSLASH_ESCAPES") && mode.contains("PIPES_AS_CONCAT"),
        "{mode}"
    );
    assert!(!mode.contains("ANSI_QUOTES"), "{mode}");
    assert_eq!(
        got[1..],
        [Some("x".into()), Some("a'b".into()), Some("+00:00".into())]
    );
    // The body of a comment is guarded: a hidden column stays hidden.
    let (code, message) = server_error(
        rows(&mut wire, "SELECT id /*!50000 , secret */ FROM orders")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 1143, "{message}");
    for sql in [
        "SELECT id /*!80000 , status */ FROM orders",
        "SET optimizer_switch = 'derived_merge=off'",
        "SET character_set_results = 'latin1'",
    ] {
        let (code, message) = server_error(rows(&mut wire, sql).await.unwrap_err());
        assert_eq!(code, 1142, "{sql}: {message}");
    }
    let got = rows(
        &mut wire,
        "SELECT id /*!50000 , status */ FROM orders ORDER BY id",
    )
    .await
    .unwrap();
    assert_eq!(got.len(), 2);
    assert_eq!(text(&got[0][1]).as_deref(), Some("published"));
}

/// `LOCK TABLES … READ` gives a restricted session a consistent snapshot instead of locks:
/// its reads do not see later writes, it cannot write, and writers are not held up;
/// `UNLOCK TABLES` ends it.
#[tokio::test(flavor = "multi_thread")]
async fn table_read_locks_read_a_snapshot_until_unlocked() {
    use crate::wire_mysql::{connect, rows, server_error};
    let (app, _) = restricted_app(Kind::MySql, SETUP, "Clerk", &clerk_permissions()).await;
    let mut wire = connect(&app, "clerk@example.com", "pw").await.unwrap();
    let mut db = crate::support::mysql_conn(Some(&app.db.name)).await;
    let published = "SELECT COUNT(*) FROM orders";
    let count = |rows: Vec<Vec<mysql_async::Value>>| crate::wire_mysql::text(&rows[0][0]);
    rows(&mut wire, "LOCK TABLES orders READ LOCAL, customers READ")
        .await
        .unwrap();
    assert_eq!(
        count(rows(&mut wire, published).await.unwrap()).as_deref(),
        Some("2")
    );
    // A writer is not held up by the reader...
    rows(
        &mut db,
        "INSERT INTO orders (customer, status, amount, secret) VALUES (1, 'published', 5, 's5')",
    )
    .await
    .unwrap();
    // ...whose reads stay on their snapshot, and who cannot write meanwhile.
    assert_eq!(
        count(rows(&mut wire, published).await.unwrap()).as_deref(),
        Some("2")
    );
    let (code, message) = server_error(
        rows(
            &mut wire,
            "INSERT INTO orders (customer, amount) VALUES (1, 7)",
        )
        .await
        .unwrap_err(),
    );
    assert_eq!(code, 1792, "{message}");
    rows(&mut wire, "UNLOCK TABLES").await.unwrap();
    assert_eq!(
        count(rows(&mut wire, published).await.unwrap()).as_deref(),
        Some("3")
    );
    // Without a snapshot, UNLOCK TABLES leaves an open transaction alone.
    rows(&mut wire, "START TRANSACTION").await.unwrap();
    rows(
        &mut wire,
        "INSERT INTO orders (customer, amount) VALUES (1, 7)",
    )
    .await
    .unwrap();
    rows(&mut wire, "UNLOCK TABLES").await.unwrap();
    rows(&mut wire, "ROLLBACK").await.unwrap();
    let drafts = rows(&mut db, "SELECT COUNT(*) FROM orders WHERE amount = 7")
        .await
        .unwrap();
    assert_eq!(count(drafts).as_deref(), Some("0"));
    // Write locks and tables the user cannot read are refused.
    for sql in ["LOCK TABLES orders WRITE", "LOCK TABLES notes READ"] {
        let (code, message) = server_error(rows(&mut wire, sql).await.unwrap_err());
        assert_eq!(code, 1142, "{sql}: {message}");
    }
}
