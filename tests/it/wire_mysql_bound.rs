//! Reads a restricted user sends as text to the MySQL endpoint run upstream, on MariaDB, as
//! SQL-level prepared statements with their literals as `EXECUTE … USING` values: prepared
//! once per connection, answering exactly what the same text answers on a direct
//! connection (columns, types, values, errors), kept up to 256 per connection, and
//! prepared again after the session is reset.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as My, consts::ColumnType};

use crate::clerk::clerk_app_via_relay;
use crate::support::relay::Relay;
use crate::support::{App, Kind, MYSQL_PORT, mysql_conn};
use crate::wire_mysql::{SETUP, connect, server_error};

const MORE_CUSTOMERS: &str = "INSERT INTO customers (name) VALUES ('O''Brien'), ('Ådä'), \
     ('back\\\\slash'), ('G%'), (NULL), ('Ada '), ('ada')";

/// Without shared reads: these are the statements of the session's own connection.
async fn start() -> (App, Relay) {
    let own = [("MYSQL_PROXY_SHARED_READS", "0")];
    clerk_app_via_relay(Kind::MySql, MYSQL_PORT, (SETUP, MORE_CUSTOMERS), &own).await
}

type Answer = (Vec<(String, ColumnType, u32, u8)>, Vec<Vec<My>>);

/// The columns (name, type, length, decimals) and rows of a text query, or the server's
/// error.
async fn answer(conn: &mut Conn, sql: &str) -> Result<Answer, (u16, String)> {
    let rows: Vec<Row> = conn.query(sql).await.map_err(server_error)?;
    let columns = rows
        .first()
        .map(|row| {
            row.columns_ref()
                .iter()
                .map(|c| {
                    (
                        c.name_str().into_owned(),
                        c.column_type(),
                        c.column_length(),
                        c.decimals(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    Ok((columns, rows.into_iter().map(Row::unwrap).collect()))
}

/// Asserts that `sql` answers the clerk as it answers on a direct connection.
async fn same_as_direct(clerk: &mut Conn, db: &mut Conn, sql: &str) {
    let direct = answer(db, sql).await.unwrap();
    assert_eq!(answer(clerk, sql).await.unwrap(), direct, "{sql}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_shape_is_prepared_once_and_answers_as_its_text() {
    let (app, relay) = start().await;
    let mut clerk = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login");
    let mut db = mysql_conn(Some(&app.db.name)).await;

    let (prepares, executes) = (relay.my_prepares(), relay.my_executes());
    for id in 1..=4 {
        let sql = format!("SELECT id, amount FROM orders WHERE id = {id}");
        let (_, rows) = answer(&mut clerk, &sql).await.unwrap();
        // Only published orders (1 and 3) are the clerk's.
        let expected: Vec<Vec<My>> = match id {
            1 => vec![vec![My::Bytes(b"1".to_vec()), My::Bytes(b"10.50".to_vec())]],
            3 => vec![vec![My::Bytes(b"3".to_vec()), My::Bytes(b"30.25".to_vec())]],
            _ => vec![],
        };
        assert_eq!(rows, expected, "{sql}");
    }
    assert_eq!(
        relay.my_prepares() - prepares,
        1,
        "four texts of one shape are one prepared statement upstream"
    );
    assert_eq!(relay.my_executes() - executes, 4);

    // Customers are the clerk's without a row filter: every text answers as it does
    // directly, whatever its literals are and wherever they stand.
    let executes = relay.my_executes();
    let texts = [
        "SELECT id, name FROM customers WHERE name = 'Ada' ORDER BY id",
        "SELECT id, name FROM customers WHERE name = 'Ada ' ORDER BY id",
        "SELECT id, name FROM customers WHERE name = 'O''Brien'",
        "SELECT id, name FROM customers WHERE name = 'O\\'Brien'",
        "SELECT id, name FROM customers WHERE name = \"O'Brien\"",
        "SELECT id, name FROM customers WHERE name = 'Ådä'",
        "SELECT id, name FROM customers WHERE name = 'back\\\\slash'",
        "SELECT id, name FROM customers WHERE name = 'back\\slash'",
        "SELECT id, name FROM customers WHERE name LIKE 'G%' ORDER BY id",
        "SELECT id, name FROM customers WHERE name LIKE 'G\\%' ORDER BY id",
        "SELECT id, name FROM customers WHERE name = 'Ada' COLLATE utf8mb4_bin",
        "SELECT id FROM customers WHERE id IN (1, 3, 5) ORDER BY id",
        "SELECT id FROM customers WHERE id BETWEEN 2 AND 2 + 2 ORDER BY id",
        "SELECT id FROM customers WHERE id = 1.0",
        "SELECT id FROM customers WHERE id = '2'",
        "SELECT id FROM customers WHERE id = '2abc'",
        "SELECT id FROM customers WHERE name = 0 ORDER BY id",
        "SELECT id FROM customers WHERE id = 2147483648",
        "SELECT id FROM customers WHERE id = 99999999999999999999",
        "SELECT id FROM customers WHERE id = -1 OR -id = -2",
        "SELECT id FROM customers WHERE id * 2 = 4 OR 7 / 2 = id",
        "SELECT id FROM customers WHERE 1.5e0 < id ORDER BY id",
        "SELECT id, 2 * id, 'x' AS x FROM customers WHERE id >= 1 ORDER BY 1 DESC LIMIT 2",
        "SELECT id * 2.5 AS a, id - 1 AS b, 7 AS c FROM customers WHERE id >= 1 ORDER BY id LIMIT 3",
        "SELECT id FROM customers WHERE name = 'Ada' OR id = 2 ORDER BY 2 - id",
        "SELECT name FROM customers WHERE name IS NULL OR name = '' ORDER BY 1",
        "SELECT count(*) FROM customers WHERE id > 1 GROUP BY 'a' = name ORDER BY 1",
        "SELECT DISTINCT id * 2 FROM customers WHERE id < 5 ORDER BY id * 2",
        "SELECT DISTINCT name FROM customers WHERE id BETWEEN 2 AND 6 ORDER BY name",
        "SELECT name, count(*) FROM customers WHERE id > 1 GROUP BY name HAVING count(*) >= 1 ORDER BY name",
        "SELECT c.name, count(o.id) FROM customers c LEFT JOIN customers o ON o.id = c.id AND o.id > 3 WHERE c.id < 8 GROUP BY c.name ORDER BY 2, 1",
    ];
    for sql in texts {
        same_as_direct(&mut clerk, &mut db, sql).await;
        // The second time runs the statement prepared the first time.
        same_as_direct(&mut clerk, &mut db, sql).await;
    }
    assert!(
        relay.my_executes() - executes >= 2 * 20,
        "most of these texts ran as prepared statements: {}",
        relay.my_executes() - executes
    );

    // A join reads orders through the row filter: Grace's draft order 4 is not there.
    let sql = "SELECT o.id, c.name FROM orders o JOIN customers c ON c.id = o.customer \
               WHERE o.amount > 5 AND c.id = 2 ORDER BY o.id";
    for _ in 0..2 {
        let (_, rows) = answer(&mut clerk, sql).await.unwrap();
        assert_eq!(
            rows,
            vec![vec![My::Bytes(b"3".to_vec()), My::Bytes(b"Grace".to_vec())]]
        );
    }

    // An error at run time is the text's own, and the session goes on.
    let sql = "SELECT id FROM customers WHERE id = (SELECT id FROM customers WHERE id > 0)";
    let wire = answer(&mut clerk, sql).await.unwrap_err();
    let plain = answer(&mut db, sql).await.unwrap_err();
    assert_eq!(wire, plain);
    assert_eq!(wire.0, 1242);
    let one = "SELECT id, name FROM customers WHERE id = 1";
    same_as_direct(&mut clerk, &mut db, one).await;

    // In a transaction rolled back, and after a reset of the session (which drops the
    // connection's prepared statements), the read is prepared again.
    clerk.query_drop("BEGIN").await.unwrap();
    same_as_direct(&mut clerk, &mut db, one).await;
    clerk.query_drop("ROLLBACK").await.unwrap();
    let prepares = relay.my_prepares();
    clerk.reset().await.expect("COM_RESET_CONNECTION");
    same_as_direct(&mut clerk, &mut db, one).await;
    assert_eq!(
        relay.my_prepares() - prepares,
        1,
        "prepared again after the reset"
    );

    // MariaDB keeps a statement as read under the sql_mode and collation of its PREPARE: a
    // SET makes the session's reads prepare again, as its texts would be read anew.
    let ada = "SELECT id, name FROM customers WHERE name = 'ada' ORDER BY id";
    answer(&mut clerk, ada).await.unwrap();
    for conn in [&mut clerk, &mut db] {
        conn.query_drop("SET NAMES utf8mb4 COLLATE utf8mb4_bin")
            .await
            .unwrap();
    }
    let prepares = relay.my_prepares();
    for _ in 0..2 {
        same_as_direct(&mut clerk, &mut db, ada).await;
    }
    assert_eq!(
        relay.my_prepares() - prepares,
        1,
        "prepared again after SET"
    );

    // A guarded client cannot reach rectus's statements by name.
    for sql in ["EXECUTE rectus_1 USING 1", "DEALLOCATE PREPARE rectus_1"] {
        let (code, _) = answer(&mut clerk, sql).await.unwrap_err();
        assert_eq!(code, 1142, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_connection_keeps_256_statements_and_replaces_the_least_used() {
    let (app, relay) = start().await;
    let mut clerk = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login");
    // LIMIT keeps its literal, so each count is a statement of its own.
    let text = |n: usize| format!("SELECT id FROM customers WHERE id > 0 ORDER BY id LIMIT {n}");
    let before = relay.my_prepares();
    for n in 1..=300 {
        let (_, rows) = answer(&mut clerk, &text(n)).await.unwrap();
        assert_eq!(rows.len(), n.min(9), "{}", text(n));
    }
    assert_eq!(relay.my_prepares() - before, 300);
    // The newest are still prepared; the first ones were replaced and are prepared again.
    let before = relay.my_prepares();
    for n in 290..=300 {
        assert_eq!(answer(&mut clerk, &text(n)).await.unwrap().1.len(), 9);
    }
    assert_eq!(relay.my_prepares() - before, 0);
    for n in 1..=3 {
        assert_eq!(answer(&mut clerk, &text(n)).await.unwrap().1.len(), n);
    }
    assert_eq!(relay.my_prepares() - before, 3);
}
