//! The guard in its MySQL dialect on the schema of the PostgreSQL tests: rewrites as
//! expected, the MySQL attack file (`tests/data/guard/mysql_refused.sql`) and the
//! PostgreSQL one refused, and a fuzz of MySQL fragments.

use super::tests::with_context;
use super::*;

fn run(sql: &str) -> GuardResult<Vec<String>> {
    with_context(crate::Dialect::MySql, |ctx| guard(sql, ctx))
        .map(|g| g.into_iter().map(|g| g.sql).collect())
}

fn one(sql: &str) -> String {
    match run(sql) {
        Ok(mut out) if out.len() == 1 => out.remove(0),
        other => panic!("{sql}: {other:?}"),
    }
}

fn refused(sql: &str) -> GuardError {
    match run(sql) {
        Err(e) => e,
        Ok(out) => panic!("not refused: {sql} -> {out:?}"),
    }
}

#[test]
fn a_table_becomes_its_guarded_derived_table() {
    assert_eq!(
        one("select * from orders where id = ?"),
        "SELECT * FROM (SELECT `__rectus`.`id` AS `id`, `__rectus`.`customer` AS `customer`, `__rectus`.`status` AS `status`, `__rectus`.`amount` AS `amount` FROM `mydb`.`orders` AS `__rectus` WHERE `__rectus`.`status` = 'published') AS `orders` WHERE id = ?"
    );
    // Database-qualified and differently cased names resolve to the same table, printed in
    // the schema's own spelling.
    let sql = one("select ID from MYDB.Orders o");
    assert!(sql.contains("FROM `mydb`.`orders` AS `__rectus`"), "{sql}");
    assert!(sql.ends_with(") o"), "{sql}");
}

#[test]
fn a_predicate_that_can_fail_gets_the_fence() {
    let sql = one("select id from orders o where 1/(amount-100) = 1");
    assert!(sql.contains("LIMIT 18446744073709551615"), "{sql}");
    let sql = one("select id from orders o where amount > 100");
    assert!(!sql.contains("LIMIT"), "{sql}");
}

#[test]
fn hidden_columns_are_refused_whatever_their_case() {
    for sql in [
        "select secret from orders",
        "select SECRET from orders",
        "select `Secret` from orders",
        "select o.SeCrEt from orders o",
        "select id from orders order by secret",
    ] {
        let e = refused(sql);
        assert_eq!(
            e.message, "permission denied for column secret of table orders",
            "{sql}"
        );
    }
    assert_eq!(
        refused("select * from notes").message,
        "permission denied for table notes"
    );
}

#[test]
fn variables() {
    one("select @@version, @@session.autocommit, @@max_allowed_packet, @@wait_timeout");
    one("select @@version_comment limit 1");
    assert_eq!(
        one("SELECT @@max_allowed_packet,@@wait_timeout,@@socket"),
        "SELECT @@max_allowed_packet, @@wait_timeout, NULL AS `@@socket`"
    );
    assert_eq!(one("select 1 from dual"), "SELECT 1 FROM dual");
    for sql in [
        "select @x",
        "select @x := 1",
        "select id from orders where (@x := secret) is null",
        "set @x = 1",
        "select @@datadir",
        "select @@global.version",
        "select @@hostname",
        "select @`x`",
    ] {
        refused(sql);
    }
}

/// Strings are printed for a session with NO_BACKSLASH_ESCAPES: quotes doubled, backslashes
/// as they are, so a value cannot end its string early.
#[test]
fn strings_are_printed_for_no_backslash_escapes() {
    assert_eq!(one(r"select 'a\'b'"), "SELECT 'a''b'");
    assert_eq!(one(r"select 'a\\'"), r"SELECT 'a\'");
    assert_eq!(one(r#"select "x\"y""#), r#"SELECT "x""y""#);
    let sql = one(r"select id from customers where name like 'a\_%'");
    assert!(sql.ends_with(r"LIKE 'a\_%' ESCAPE '\'"), "{sql}");
}

#[test]
fn executable_comments_are_read_as_the_server_reads_them() {
    // Their body is guarded like any other text: a hidden column stays hidden.
    refused("select /*!50000 secret */ id from orders");
    assert!(one("select /*!50000 status, */ id from orders").starts_with("SELECT status, id FROM"));
    // mysqldump's opening statements.
    assert_eq!(
        one("/*!40103 SET TIME_ZONE='+00:00' */"),
        "SET TIME_ZONE = '+00:00'"
    );
    assert_eq!(one("/*!40101 SET NAMES utf8mb4 */"), "SET NAMES utf8mb4");
    // Comments a supported server might not run, MariaDB's own, and ones holding comments.
    refused("select /*!80000 status, */ id from orders");
    refused("select /*M!100000 secret */ id from orders");
    refused("select /*!50000 status /* x */, */ id from orders");
}

#[test]
fn sql_mode_is_set_without_what_changes_how_text_is_read() {
    for (sql, mode) in [
        ("set sql_mode = 'ANSI_QUOTES'", "NO_BACKSLASH_ESCAPES"),
        ("set @@session.sql_mode = ''", "NO_BACKSLASH_ESCAPES"),
        ("/*!40100 SET @@SQL_MODE='' */", "NO_BACKSLASH_ESCAPES"),
        (
            "SET SESSION SQL_MODE = 'STRICT_ALL_TABLES,ansi,IGNORE_SPACE,NO_ZERO_DATE'",
            "STRICT_ALL_TABLES,NO_ZERO_DATE,NO_BACKSLASH_ESCAPES",
        ),
    ] {
        assert_eq!(
            one(sql),
            format!("SET SESSION sql_mode = '{mode}'"),
            "{sql}"
        );
    }
    for sql in [
        "set global sql_mode = ''",
        "set sql_mode = concat(@@sql_mode, ',ANSI_QUOTES')",
        "set sql_mode = @x",
        "set sql_mode = '', autocommit = 1",
    ] {
        refused(sql);
    }
}

#[test]
fn session_statements() {
    assert_eq!(one("set names utf8mb4"), "SET NAMES utf8mb4");
    assert_eq!(one("set autocommit = 1"), "SET autocommit = 1");
    one("set session transaction isolation level read committed");
    one("start transaction");
    one("commit");
    assert_eq!(one("use mydb"), "USE `mydb`");
    // What mysqldump sends around its reads: table locks become a read-only snapshot.
    assert_eq!(one("unlock tables"), "UNLOCK TABLES");
    assert_eq!(
        one("LOCK TABLES `orders` READ /*!32311 LOCAL */, customers READ"),
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
    );
    assert_eq!(
        one("START TRANSACTION /*!40100 WITH CONSISTENT SNAPSHOT */"),
        "START TRANSACTION WITH CONSISTENT SNAPSHOT"
    );
    assert_eq!(
        one("start transaction with consistent snapshot, read only;"),
        "START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY"
    );
    assert_eq!(
        one("set optimizer_switch='semijoin=off'"),
        "SET optimizer_switch = 'semijoin=off'"
    );
    one("set optimizer_switch=default");
    one("SET SESSION character_set_results = 'binary'");
    one("SET SQL_QUOTE_SHOW_CREATE=1");
    for sql in [
        "select trigger_name from information_schema.triggers",
        "select * from information_schema.files",
        "select table_name, partition_expression from information_schema.partitions",
    ] {
        one(sql);
    }
    for sql in [
        "set names gbk",
        "lock tables orders write",
        "lock tables orders read, notes read",
        "start transaction with consistent snapshot; select 1",
        "set optimizer_switch = 'derived_merge=off'",
        "set optimizer_switch = 'semijoin=off,derived_merge=off'",
        "set character_set_results = latin1",
        "set names utf8mb4 collate 'x; drop table orders'",
        "set global autocommit = 1",
        "set character_set_client = gbk",
        "set foreign_key_checks = 0",
        "use mysql",
        "show variables",
        "show processlist",
        "show grants",
        "show create table notes",
        "show create view orders",
        "show warnings",
        "show errors",
        "select @@warning_count",
    ] {
        refused(sql);
    }
}

#[test]
fn catalog_statements_show_only_what_the_user_may_read() {
    let tables = one("show tables");
    assert!(
        tables.contains("'customers'") && tables.contains("'orders'"),
        "{tables}"
    );
    assert!(!tables.contains("notes"), "{tables}");
    assert!(tables.contains("`Tables_in_mydb`"), "{tables}");
    for sql in [
        "describe orders",
        "show columns from orders",
        "show full columns from orders",
    ] {
        let columns = one(sql);
        assert!(columns.contains("'status'"), "{columns}");
        assert!(!columns.contains("secret"), "{columns}");
    }
    let create = one("show create table orders");
    assert!(create.contains("'CREATE TABLE '"), "{create}");
    assert!(!create.contains("secret"), "{create}");
    let index = one("show index from orders");
    assert!(
        index.contains("`information_schema`.`STATISTICS`"),
        "{index}"
    );
    assert!(
        index.contains("NOT IN ('amount', 'customer', 'id', 'status')"),
        "{index}"
    );
    one("show keys in orders");
    let status = one("show table status");
    assert!(!status.contains("notes"), "{status}");
    refused("show index from notes");
    refused("show table status like 'o%'");
    one("show databases");
    one("show tables like 'ord%'");
    refused("describe notes");
    refused("show tables from mysql");
    let columns = one("select table_name, column_name from information_schema.columns");
    assert!(!columns.contains("secret"), "{columns}");
    assert!(!columns.contains("notes"), "{columns}");
    refused("select * from information_schema.processlist");
    refused("select * from mysql.user");
    refused("select * from performance_schema.threads");
}

#[test]
fn writes() {
    let sql = one("insert into orders (customer, amount) values (1, 5)");
    assert!(
        sql.starts_with(
            "INSERT INTO `mydb`.`orders` (customer, amount, `status`) VALUES (1, 5, 'draft')"
        ),
        "{sql}"
    );
    assert_eq!(
        refused("insert into orders (customer, amount) values (1, -5)").code,
        "23514"
    );
    let sql = one("update orders set amount = amount + 1 where customer = 3");
    assert!(
        sql.contains("`orders`.`id` IN (SELECT `__rectus_key` FROM"),
        "{sql}"
    );
    assert!(sql.contains("`orders`.`status` = 'draft'"), "{sql}");
    let sql = one("delete from orders where amount < 3");
    assert!(sql.contains("`orders`.`status` = 'draft'"), "{sql}");
    for sql in [
        "insert into orders (customer, amount) values (1, 5) on duplicate key update amount = 9",
        "replace into orders (customer, amount) values (1, 5)",
        "insert ignore into orders (customer, amount) values (1, 5)",
        "insert into orders set customer = 1, amount = 5",
        "update orders set status = 'x'",
        "update orders set amount = 1 order by id limit 1",
        "delete from orders limit 1",
    ] {
        refused(sql);
    }
}

fn statements_of(text: &str) -> Vec<String> {
    text.split("\n--;\n")
        .map(|statement| {
            statement
                .lines()
                .filter(|l| !l.starts_with('#'))
                .collect::<Vec<_>>()
                .join("\n")
        })
        .filter(|sql| !sql.trim().is_empty())
        .collect()
}

/// Every statement of the MySQL attack file is refused, and so is every statement of the
/// PostgreSQL one (where it is not MySQL at all, it fails to parse).
#[test]
fn the_attack_files_are_refused() {
    let mysql = statements_of(include_str!("../../../tests/data/guard/mysql_refused.sql"));
    assert!(mysql.len() > 40, "{} statements", mysql.len());
    let pg = statements_of(include_str!("../../../tests/data/guard/pg_refused.sql"));
    let passed: Vec<&String> = mysql.iter().filter(|sql| run(sql).is_ok()).collect();
    assert!(passed.is_empty(), "not refused: {passed:#?}");
    // What MySQL reads differently: a virtual catalog it serves, a version every client may
    // read (`@@version`), names that are no keyword there (the server finds no such column),
    // and a double-quoted string.
    let passed: Vec<&str> = pg
        .iter()
        .filter(|sql| run(sql).is_ok())
        .map(String::as_str)
        .collect();
    assert_eq!(
        passed,
        [
            "select version()",
            "select user",
            "select current_schema",
            "select \"secret\" from orders",
        ]
    );
}

mod fuzz {
    //! Random MySQL statements from fragments: no panics, whatever passes parses again as
    //! MySQL, names nothing unreadable and holds no executable comment.

    use proptest::prelude::*;
    use sqlparser::dialect::MySqlDialect;
    use sqlparser::parser::Parser;

    use super::run;

    const FRAGMENTS: &[&str] = &[
        "- -",
        "'x\n# y'",
        "SELECT",
        "*",
        "id",
        "secret",
        "SECRET",
        "`secret`",
        "status",
        "amount",
        "customer",
        "name",
        "FROM",
        "orders",
        "customers",
        "notes",
        "mydb.orders",
        "mysql.user",
        "information_schema.columns",
        "o",
        "WHERE",
        "AND",
        "OR",
        "NOT",
        "=",
        "<>",
        "<=>",
        "+",
        "/",
        "||",
        "&&",
        "(",
        ")",
        ",",
        ";",
        "1",
        "'x'",
        "'a\\'b'",
        "\"dq\"",
        "?",
        "NULL",
        "JOIN",
        "ON",
        "USING",
        "UNION",
        "WITH",
        "AS",
        "ORDER BY",
        "GROUP BY",
        "LIMIT 1, 2",
        "count(*)",
        "lower(name)",
        "sleep(1)",
        "benchmark(1, 1)",
        "load_file('/etc/passwd')",
        "@x",
        "@@version",
        "@@datadir",
        ":=",
        "INSERT INTO",
        "VALUES",
        "UPDATE",
        "SET",
        "DELETE",
        "/*!50000 secret */",
        "# c\n",
        "-- c\n",
        "CASE WHEN",
        "THEN",
        "END",
        "LIKE",
        "REGEXP",
        "INTO OUTFILE '/tmp/x'",
        "SHOW TABLES",
        "DESCRIBE orders",
        "USE mysql",
        "ON DUPLICATE KEY UPDATE",
        "CAST(",
        "AS SIGNED)",
        "CONVERT(",
        "USING gbk)",
    ];

    fn check(sql: &str) {
        let Ok(out) = run(sql) else { return };
        for statement in out {
            // What goes out reads back as itself: printing made no token the database
            // would read differently (a comment, a merged operator). The parser reads
            // backslashes as escapes, the session does not: texts with one are left out.
            if !statement.contains('\\') {
                let again = Parser::parse_sql(&MySqlDialect {}, &statement).unwrap_or_else(|e| {
                    panic!("rewrite does not parse: {sql:?} -> {statement}: {e}")
                });
                let printed: Vec<String> = again.iter().map(|s| s.to_string()).collect();
                assert_eq!(printed, std::slice::from_ref(&statement), "{sql:?}");
            }
            for forbidden in ["`mydb`.`notes`", "`__rectus`.`secret`", "mysql.user", "/*"] {
                assert!(!statement.contains(forbidden), "{sql:?} -> {statement}");
            }
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(3000))]

        #[test]
        fn fragments(parts in proptest::collection::vec(proptest::sample::select(FRAGMENTS), 1..24)) {
            check(&parts.join(" "));
        }
    }
}

/// What ORMs and drivers send passes.
#[test]
fn common_client_statements() {
    for sql in [
        "select `orders`.* from `orders` where `orders`.`status` = ? limit 1",
        "select count(*) as aggregate from `orders` where `customer` in (?, ?)",
        "SELECT `o`.`id`, `c`.`name` FROM `orders` AS `o` INNER JOIN `customers` AS `c` ON `c`.`id` = `o`.`customer` ORDER BY `o`.`id` DESC LIMIT 20 OFFSET 40",
        "insert into `orders` (`customer`, `amount`) values (1, 2.5)",
        "update `customers` set `name` = ? where `id` = ?",
        "SELECT @@max_allowed_packet, @@wait_timeout",
        // Connector/J's first query.
        "SELECT @@session.auto_increment_increment AS auto_increment_increment, @@character_set_client AS character_set_client, @@character_set_connection AS character_set_connection, @@character_set_results AS character_set_results, @@character_set_server AS character_set_server, @@collation_server AS collation_server, @@collation_connection AS collation_connection, @@init_connect AS init_connect, @@interactive_timeout AS interactive_timeout, @@license AS license, @@lower_case_table_names AS lower_case_table_names, @@max_allowed_packet AS max_allowed_packet, @@net_write_timeout AS net_write_timeout, @@performance_schema AS performance_schema, @@query_cache_size AS query_cache_size, @@query_cache_type AS query_cache_type, @@sql_mode AS sql_mode, @@system_time_zone AS system_time_zone, @@time_zone AS time_zone, @@transaction_isolation AS transaction_isolation, @@wait_timeout AS wait_timeout",
        "SET autocommit=1",
        "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ",
        "SELECT DATABASE()",
        "select 1 from dual",
        "SELECT id, IF(amount > 10, 'big', 'small') AS size, DATE_FORMAT(NOW(), '%Y') FROM orders",
        "SELECT status, COUNT(*) FROM orders GROUP BY status HAVING COUNT(*) > 1",
        "SELECT * FROM orders WHERE status REGEXP '^pub'",
        "SELECT id FROM orders WHERE id IN (SELECT MAX(id) FROM orders GROUP BY customer)",
        "WITH recent AS (SELECT id FROM orders ORDER BY id DESC LIMIT 5) SELECT * FROM recent",
        "SELECT SQL_CALC_FOUND_ROWS SQL_NO_CACHE id FROM orders LIMIT 10",
        "SELECT FOUND_ROWS()",
    ] {
        let out = run(sql).unwrap_or_else(|e| panic!("{sql}: {e}"));
        assert_eq!(out.len(), 1, "{sql}");
    }
}

/// A prepared INSERT whose values the rules check takes them from its parameters when the
/// caller checks them as it runs; otherwise it is refused.
#[test]
fn prepared_inserts_check_their_parameters_when_they_run() {
    with_context(crate::Dialect::MySql, |ctx| {
        let sql = "insert into orders (customer, amount) values (?, ?), (3, ?)";
        assert!(guard(sql, ctx).is_err(), "refused without deferred checks");
        let ctx = GuardContext {
            deferred_checks: true,
            ..*ctx
        };
        let guarded = guard(sql, &ctx).unwrap();
        let deferred = guarded[0]
            .deferred
            .as_ref()
            .expect("checks left to the parameters");
        assert_eq!(deferred.parameters(), 3);
        assert!(
            guarded[0]
                .sql
                .contains("VALUES (?, ?, 'draft'), (3, ?, 'draft')"),
            "{}",
            guarded[0].sql
        );
        use serde_json::json;
        check_deferred(deferred, &[json!(1), json!(5), json!("2.5")], &ctx).unwrap();
        let e = check_deferred(deferred, &[json!(1), json!(5), json!(-1)], &ctx).unwrap_err();
        assert_eq!(e.code, "23514");
        assert!(check_deferred(deferred, &[json!(1)], &ctx).is_err());
        // Rows of literals are still checked at once.
        assert_eq!(
            guard(
                "insert into orders (customer, amount) values (?, 1), (2, -1)",
                &ctx
            )
            .unwrap_err()
            .code,
            "23514"
        );
        // Anything computed is still refused.
        assert!(
            guard(
                "insert into orders (customer, amount) values (?, ? + 1)",
                &ctx
            )
            .is_err()
        );
    });
}

#[test]
fn catalog_views_for_dump_tools() {
    let sql = one("select table_name, partition_expression from information_schema.partitions");
    assert!(sql.contains("NULL AS `PARTITION_EXPRESSION`"), "{sql}");
    assert!(
        sql.contains("`TABLE_NAME` IN ('customers', 'orders')"),
        "{sql}"
    );
    let sql = one("select trigger_name from information_schema.triggers");
    assert!(
        sql.contains("FROM `information_schema`.`TRIGGERS` WHERE false)"),
        "{sql}"
    );
}
