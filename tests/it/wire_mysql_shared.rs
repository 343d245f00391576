//! Restricted sessions' text reads pipelined over a shared upstream connection on MariaDB
//! (`MYSQL_PROXY_SHARED_READS`): many sessions' reads on one connection, each answered with
//! its own rows under the user's permissions, and never a read that could tell the
//! connections apart — inside a transaction or after a setting changed.

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value as My};

use crate::clerk::clerk_app_via_relay;
use crate::support::relay::Relay;
use crate::support::{App, Kind, MYSQL_PORT, mysql_conn};
use crate::wire_mysql::{SETUP, connect, server_error};

/// The clerk's app with one shared connection; `time`: `MYSQL_PROXY_SHARED_READ_TIME`.
async fn start_timed(time: &str) -> (App, Relay) {
    clerk_app_via_relay(
        Kind::MySql,
        MYSQL_PORT,
        (SETUP, ""),
        &[
            ("MYSQL_PROXY_SHARED_READS", "1"),
            ("MYSQL_PROXY_SHARED_READ_TIME", time),
        ],
    )
    .await
}

/// Reads in a debug build can take longer than the default's quick read.
pub(crate) async fn start() -> (App, Relay) {
    start_timed("10s").await
}

async fn clerk(app: &App) -> Conn {
    connect(app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login")
}

async fn rows(conn: &mut Conn, sql: &str) -> Result<Vec<Vec<My>>, (u16, String)> {
    let rows: Vec<Row> = conn.query(sql).await.map_err(server_error)?;
    Ok(rows.into_iter().map(Row::unwrap).collect())
}

async fn customer_name(conn: &mut Conn, id: i32) -> Vec<Vec<My>> {
    let sql = format!("SELECT name FROM customers WHERE id = {id}");
    rows(conn, &sql).await.expect("a customer's name")
}

fn text(value: &str) -> Vec<Vec<My>> {
    vec![vec![My::Bytes(value.as_bytes().to_vec())]]
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_share_a_connection_and_each_gets_its_own_rows() {
    let (app, relay) = start().await;
    let mut sessions = [clerk(&app).await, clerk(&app).await, clerk(&app).await];
    let prepares = relay.my_prepares();
    let runs = sessions.iter_mut().enumerate().map(|(n, conn)| async move {
        for i in 0..30 {
            // Each session asks for other rows, so answers crossing sessions would show.
            let id = (i + n) % 4 + 1;
            let sql = format!("SELECT id, amount FROM orders WHERE id = {id}");
            let got = rows(conn, &sql).await.expect("read");
            // Only the published orders (1 and 3) are the clerk's.
            let expected = match id {
                1 => vec![vec![My::Bytes(b"1".to_vec()), My::Bytes(b"10.50".to_vec())]],
                3 => vec![vec![My::Bytes(b"3".to_vec()), My::Bytes(b"30.25".to_vec())]],
                _ => vec![],
            };
            assert_eq!(got, expected, "session {n}: {sql}");
        }
    });
    futures_util::future::join_all(runs).await;
    // One shape read by three sessions, prepared once: on the one shared connection.
    assert_eq!(relay.my_prepares() - prepares, 1);
    // The answers are the database's own, as on a direct connection.
    let mut db = mysql_conn(Some(&app.db.name)).await;
    let sql = "SELECT id, amount, status FROM orders WHERE status = 'published' ORDER BY id";
    let direct = rows(&mut db, sql).await.unwrap();
    assert_eq!(rows(&mut sessions[0], sql).await.unwrap(), direct);
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_that_could_tell_the_connections_apart_stay_on_the_sessions_own() {
    let (app, relay) = start().await;
    let (mut a, mut b) = (clerk(&app).await, clerk(&app).await);
    assert_eq!(customer_name(&mut a, 1).await, text("Ada"));

    // In a transaction a read sees the transaction's own writes, and only there.
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(customer_name(&mut a, 1).await, text("Changed"));
    assert_eq!(customer_name(&mut b, 1).await, text("Ada"));
    a.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(customer_name(&mut a, 1).await, text("Ada"));

    // With autocommit off, each read belongs to the session's transaction.
    a.query_drop("SET autocommit = 0").await.unwrap();
    a.query_drop("UPDATE customers SET name = 'Again' WHERE id = 2")
        .await
        .unwrap();
    assert_eq!(customer_name(&mut a, 2).await, text("Again"));
    assert_eq!(customer_name(&mut b, 2).await, text("Grace"));
    a.query_drop("ROLLBACK").await.unwrap();

    // A failed read gives the database's error, and the next reads of both are answered.
    let many = "SELECT (SELECT id FROM customers) AS x FROM orders WHERE id = 1";
    let e = rows(&mut b, many).await.unwrap_err();
    let mut db = mysql_conn(Some(&app.db.name)).await;
    assert_eq!(Some(e.0), rows(&mut db, many).await.err().map(|e| e.0));
    assert_eq!(customer_name(&mut b, 2).await, text("Grace"));
    assert_eq!(customer_name(&mut a, 2).await, text("Grace"));

    // What the session's own last statement did is known only on its own connection.
    a.query_drop("SET autocommit = 1").await.unwrap();
    b.query_drop("UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    let changed = "SELECT ROW_COUNT() AS n FROM customers WHERE id = 1";
    assert_eq!(
        rows(&mut b, changed).await.unwrap(),
        vec![vec![My::Bytes(b"1".to_vec())]]
    );
    b.query_drop("UPDATE customers SET name = 'Ada' WHERE id = 1")
        .await
        .unwrap();

    // After a setting changed, the session's reads are prepared on its own connection: a
    // new shape read by both is prepared twice.
    let mut c = clerk(&app).await;
    c.query_drop("SET time_zone = '+09:00'").await.unwrap();
    let prepares = relay.my_prepares();
    let shape = "SELECT id FROM orders WHERE amount > 15";
    let (theirs, ours) = (rows(&mut b, shape).await, rows(&mut c, shape).await);
    assert_eq!(theirs, ours);
    assert_eq!(relay.my_prepares() - prepares, 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn slow_reads_and_large_answers_go_back_to_the_sessions_own_connections() {
    // Every read is slower than 1 µs: after 8 runs its shape is prepared on the session's
    // own connection too.
    let (app, relay) = start_timed("1us").await;
    let mut a = clerk(&app).await;
    let prepares = relay.my_prepares();
    for _ in 0..10 {
        assert_eq!(customer_name(&mut a, 1).await, text("Ada"));
    }
    assert_eq!(relay.my_prepares() - prepares, 2, "shared, then its own");

    // An answer over 1 MiB sends its read back at once.
    let (app, relay) = start().await;
    let mut a = clerk(&app).await;
    let big = "SELECT REPEAT(name, 400000) AS n FROM customers WHERE id = 1";
    let prepares = relay.my_prepares();
    for _ in 0..2 {
        let got = rows(&mut a, big).await.expect("a large answer");
        assert_eq!(got, text(&"Ada".repeat(400_000)));
    }
    assert_eq!(relay.my_prepares() - prepares, 2, "shared, then its own");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_long_read_leaves_the_shared_connection_and_the_others_go_on() {
    let more = "INSERT INTO customers (name) SELECT CONCAT('c', seq) FROM seq_1_to_9000";
    let settings = [
        ("MYSQL_PROXY_SHARED_READS", "1"),
        ("MYSQL_PROXY_SHARED_READ_TIME", "1ms"),
    ];
    let (app, relay) = clerk_app_via_relay(Kind::MySql, MYSQL_PORT, (SETUP, more), &settings).await;
    let (mut a, mut b) = (clerk(&app).await, clerk(&app).await);
    assert_eq!(customer_name(&mut b, 1).await, text("Ada"));
    // Seconds of comparing pairs.
    let long = "SELECT COUNT(*) AS n FROM customers a JOIN customers b ON a.name < b.name \
        WHERE a.id > 0";
    let mut db = mysql_conn(Some(&app.db.name)).await;
    let expected = rows(&mut db, long).await.expect("the long read, directly");
    let executes = relay.my_executes();
    let task = tokio::spawn(async move { (rows(&mut a, long).await, a) });
    // Until the long read is on the shared connection.
    while relay.my_executes() == executes {
        assert!(!task.is_finished(), "the long read ran as an EXECUTE");
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for _ in 0..5 {
        assert_eq!(customer_name(&mut b, 1).await, text("Ada"));
    }
    assert!(
        !task.is_finished(),
        "the quick reads were answered while the long one ran"
    );
    let (got, _a) = task.await.expect("the long read's task");
    assert_eq!(got.expect("the long read"), expected);
    // It ran twice, on the shared connection and then on the session's own, besides the
    // five quick reads.
    let ran = relay.my_executes() - executes;
    assert!(ran >= 7, "{ran} executions");
}

/// The rows a prepared read gives, through the binary protocol.
async fn exec_rows(conn: &mut Conn, sql: &str, id: i64) -> Vec<Vec<My>> {
    let rows: Vec<Row> = conn.exec(sql, (id,)).await.expect("a prepared read");
    rows.into_iter().map(Row::unwrap).collect()
}

/// The most `COM_STMT_EXECUTE` commands one upstream connection carried since `before`.
fn most_executes(relay: &Relay, before: &[u64]) -> u64 {
    let after = relay.my_stmt_executes();
    (0..after.len())
        .map(|i| after[i] - before.get(i).copied().unwrap_or(0))
        .max()
        .unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_reads_of_sessions_share_a_connection() {
    let (app, relay) = start().await;
    let mut db = mysql_conn(Some(&app.db.name)).await;
    let mut sessions = [clerk(&app).await, clerk(&app).await, clerk(&app).await];
    let read = "SELECT id, amount FROM orders WHERE id = ?";
    // What the clerk may read of each order, as a direct connection answers it.
    let direct = "SELECT id, amount FROM orders WHERE id = ? AND status = 'published'";
    let mut expected = Vec::new();
    for id in 1..=4 {
        expected.push(exec_rows(&mut db, direct, id).await);
    }
    assert_eq!(expected.iter().filter(|rows| rows.is_empty()).count(), 2);
    let expected = &expected;
    const READS: usize = 30;
    let before = relay.my_stmt_executes();
    let runs = sessions.iter_mut().enumerate().map(|(n, conn)| async move {
        for i in 0..READS {
            let id = (i + n) % 4 + 1;
            let got = exec_rows(conn, read, id as i64).await;
            assert_eq!(got, expected[id - 1], "session {n}, order {id}");
        }
    });
    futures_util::future::join_all(runs).await;
    assert!(
        most_executes(&relay, &before) >= 3 * READS as u64,
        "one upstream connection carried the executes of all three sessions"
    );

    // A parameter bound as another type, and as NULL, answers as on a direct connection.
    let (a, b) = sessions.split_at_mut(1);
    let text_id: Vec<Row> = a[0].exec(read, ("3",)).await.unwrap();
    let got: Vec<Vec<My>> = text_id.into_iter().map(Row::unwrap).collect();
    assert_eq!(got, expected[2]);
    let none: Vec<Row> = b[0].exec(read, (None::<i64>,)).await.unwrap();
    assert!(none.is_empty());

    // In a transaction the session's own writes are read, on its own connection.
    let name = "SELECT name FROM customers WHERE id = ?";
    let (a, b) = (&mut a[0], &mut b[0]);
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    let before = relay.my_stmt_executes();
    assert_eq!(exec_rows(a, name, 1).await, text("Changed"));
    assert_eq!(exec_rows(b, name, 1).await, text("Ada"));
    a.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(exec_rows(a, name, 1).await, text("Ada"));
    // The transaction's read went to its session's own connection, the other two to the
    // shared one.
    assert_eq!(most_executes(&relay, &before), 2);

    // A read answered on the session's own connection leaves no transaction behind (its
    // rows' terminator, sent before the statement commits, says one is open).
    let own = "SELECT ROW_COUNT() AS n FROM customers WHERE id = 1";
    rows(a, own).await.unwrap();
    let before = relay.my_stmt_executes();
    for _ in 0..3 {
        assert_eq!(exec_rows(a, name, 1).await, text("Ada"));
        assert_eq!(exec_rows(b, name, 2).await, text("Grace"));
    }
    assert_eq!(
        most_executes(&relay, &before),
        6,
        "all on the shared connection"
    );
}

/// A login while the database is lost is refused with an error that says so and names
/// nothing of the upstream; once the database is back, a login works again.
#[tokio::test(flavor = "multi_thread")]
async fn a_login_while_the_database_is_lost_hears_why() {
    let (app, relay) = start().await;
    let mut before = clerk(&app).await;
    assert!(
        rows(&mut before, "SELECT count(*) FROM orders")
            .await
            .is_ok()
    );
    drop(before);
    relay.cut();
    let e = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect_err("no login without the database");
    let (code, message) = server_error(e);
    assert_eq!(
        (code, message.as_str()),
        (1105, "rectus: cannot connect to the database")
    );
    relay.restore();
    let mut after = clerk(&app).await;
    assert!(
        rows(&mut after, "SELECT count(*) FROM orders")
            .await
            .is_ok()
    );
}

/// A pooled upstream connection the database closed while it was idle is not handed to the
/// next session: that session gets a new connection and works.
#[tokio::test(flavor = "multi_thread")]
async fn a_pooled_connection_the_database_closed_is_not_reused() {
    let (app, relay) = clerk_app_via_relay(
        Kind::MySql,
        MYSQL_PORT,
        (SETUP, ""),
        // The clerk's prepared read on its own connection, so the relay shows which one;
        // room in the pool beside the connection that read the server's settings.
        &[
            ("MYSQL_PROXY_SHARED_READS", "0"),
            ("MYSQL_PROXY_POOL_SIZE", "2"),
        ],
    )
    .await;
    let mut conn = clerk(&app).await;
    let before = relay.my_stmt_executes();
    let count: Option<i64> = conn
        .exec_first("SELECT count(*) FROM orders WHERE id > ?", (0,))
        .await
        .expect("a prepared read");
    assert!(count.is_some());
    let after = relay.my_stmt_executes();
    let pooled = (0..after.len())
        .find(|&i| after[i] > before.get(i).copied().unwrap_or(0))
        .expect("the session's own connection");
    let resets = relay.my_resets()[pooled];
    conn.disconnect().await.expect("quit");
    // Back in the pool once rectus reset it, and its answer came back.
    let mut waited = 0;
    while relay.my_resets()[pooled] == resets {
        assert!(waited < 200, "the connection was never reset for the pool");
        waited += 1;
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    relay.cut_connection(pooled);
    let mut conn = clerk(&app).await;
    let read = rows(&mut conn, "SELECT count(*) FROM orders").await;
    assert!(read.is_ok(), "a read on a new connection: {read:?}");
}

/// A database lost under an open restricted session ends it with an error the client hears,
/// not a silently closed socket.
#[tokio::test(flavor = "multi_thread")]
async fn a_database_lost_under_a_session_is_an_error_the_client_hears() {
    let (app, relay) = start().await;
    let mut conn = clerk(&app).await;
    assert!(rows(&mut conn, "SELECT count(*) FROM orders").await.is_ok());
    relay.cut();
    let e = conn
        .query_drop("SELECT count(*) FROM orders")
        .await
        .expect_err("no read without the database");
    let (code, message) = server_error(e);
    assert_eq!(code, 1105, "{message}");
    assert!(
        message.starts_with("rectus: the session ended") && !message.contains("127.0.0.1"),
        "{message}"
    );
}
