//! Admin sessions' reads on the shared connections of the MySQL endpoint (MariaDB): while a
//! session has only read, its reads are pipelined with other sessions' as `EXECUTE … USING`
//! and answer exactly as a direct connection does; the first command that could leave state
//! behind (a setting, a temporary table, a transaction) keeps the session on its own
//! connection from then on.

use mysql_async::Conn;
use mysql_async::prelude::Queryable;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App, mysql_conn};
use crate::wire_mysql::{connect, rows, server_error};
use crate::wire_mysql_shared::start;

async fn admin(app: &App) -> Conn {
    connect(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login")
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_reads_share_a_connection_and_answer_as_a_direct_connection() {
    let (app, relay) = start().await;
    let mut db = mysql_conn(Some(&app.db.name)).await;
    let mut sessions = [admin(&app).await, admin(&app).await, admin(&app).await];
    const READS: usize = 20;
    let (prepares, executes) = (relay.my_prepares(), relay.my_executes());
    let mut expected = Vec::new();
    for id in 1..=4 {
        let sql = format!("SELECT * FROM orders WHERE id = {id}");
        expected.push(rows(&mut db, &sql).await.unwrap());
    }
    let expected = &expected;
    let runs = sessions.iter_mut().enumerate().map(|(n, conn)| async move {
        for i in 0..READS {
            // Drafts and the secret column too: nothing of the clerk's rules applies.
            let id = (i + n) % 4 + 1;
            let sql = format!("SELECT * FROM orders WHERE id = {id}");
            assert_eq!(rows(conn, &sql).await.unwrap(), expected[id - 1], "{sql}");
        }
    });
    futures_util::future::join_all(runs).await;
    // One shape read by three sessions, prepared once and run by all on the shared
    // connection (the variables mysql_async reads at connect did not end that).
    assert_eq!(relay.my_prepares() - prepares, 1);
    assert_eq!(relay.my_executes() - executes, 3 * READS as u64);
    // Nor does a ping, a pool's check that the connection is alive.
    let executes = relay.my_executes();
    sessions[2].ping().await.expect("a ping");
    assert_eq!(
        rows(&mut sessions[2], "SELECT * FROM orders WHERE id = 1")
            .await
            .unwrap(),
        expected[0]
    );
    assert_eq!(relay.my_executes() - executes, 1);

    // Read as the admin's own connection reads text: backslash escapes, and `LIKE`'s
    // default escape character.
    let executes = relay.my_executes();
    for sql in [
        r"SELECT CONCAT(status, 'a\\b\'c') AS s FROM orders WHERE status LIKE 'p\_b%' OR secret LIKE '%\\%' OR status = 'dr\\aft' ORDER BY id",
        r"SELECT id FROM orders WHERE CONCAT(status, '_x') LIKE 'draft\_x' ORDER BY id",
        "SELECT @@max_allowed_packet, @@autocommit FROM orders WHERE id = 1",
    ] {
        let theirs = rows(&mut db, sql).await.unwrap();
        assert_eq!(rows(&mut sessions[0], sql).await.unwrap(), theirs, "{sql}");
    }
    assert_eq!(relay.my_executes() - executes, 3, "the reads were shared");
    // Read on the session's own connection: the shared ones run another `sql_mode`, and
    // the parser reads `\a` otherwise than MySQL.
    for sql in [
        "SELECT @@sql_mode",
        r"SELECT id FROM orders WHERE status = 'dr\aft' ORDER BY id",
    ] {
        let theirs = rows(&mut db, sql).await.unwrap();
        assert_eq!(rows(&mut sessions[0], sql).await.unwrap(), theirs, "{sql}");
    }

    // Errors are the database's own; a read with warnings runs on the session's own
    // connection, where SHOW WARNINGS finds them.
    let typo = "SELECT nope FROM orders WHERE id = 1";
    let ours = sessions[1].query_drop(typo).await.unwrap_err();
    let theirs = db.query_drop(typo).await.unwrap_err();
    assert_eq!(server_error(ours), server_error(theirs));
    let divide = "SELECT id / 0 AS x FROM orders WHERE id = 1";
    assert_eq!(
        rows(&mut sessions[1], divide).await.unwrap(),
        rows(&mut db, divide).await.unwrap()
    );
    let warnings = "SHOW WARNINGS";
    let theirs = rows(&mut db, warnings).await.unwrap();
    assert_eq!(theirs.len(), 1, "a division by zero warns");
    assert_eq!(rows(&mut sessions[1], warnings).await.unwrap(), theirs);
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_session_that_leaves_state_behind_keeps_its_reads() {
    let (app, relay) = start().await;
    let (mut a, mut b, mut c) = (admin(&app).await, admin(&app).await, admin(&app).await);
    let epoch = "SELECT CAST(FROM_UNIXTIME(0) AS char) AS t FROM orders WHERE id = 1";
    let here = rows(&mut c, epoch).await.unwrap();

    // A setting: this session's reads see it, the others' do not.
    a.query_drop("SET time_zone = '+09:00'").await.unwrap();
    for _ in 0..3 {
        let tokyo = rows(&mut a, epoch).await.unwrap();
        assert_eq!(
            tokyo,
            rows(&mut a, "SELECT '1970-01-01 09:00:00'").await.unwrap()
        );
        assert_eq!(rows(&mut c, epoch).await.unwrap(), here);
    }

    // A temporary table that hides a table of the same name.
    b.query_drop("CREATE TEMPORARY TABLE orders (id int, only_here text)")
        .await
        .unwrap();
    let first = "SELECT * FROM orders WHERE id = 1";
    assert_eq!(rows(&mut b, first).await.unwrap(), Vec::<Vec<_>>::new());
    assert_eq!(rows(&mut c, first).await.unwrap().len(), 1);

    // A transaction's own writes are read in it, and only there.
    let mut d = admin(&app).await;
    let name = "SELECT name FROM customers WHERE id = 1";
    d.query_drop("BEGIN").await.unwrap();
    d.query_drop("UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    let changed = rows(&mut d, name).await.unwrap();
    assert_ne!(changed, rows(&mut c, name).await.unwrap());
    d.query_drop("ROLLBACK").await.unwrap();
    assert_eq!(
        rows(&mut d, name).await.unwrap(),
        rows(&mut c, name).await.unwrap()
    );

    // A new shape read by the three sessions that hold state is prepared nowhere: they
    // send their text on their own connections.
    let prepares = relay.my_prepares();
    let shape = "SELECT id FROM customers WHERE name <> 'x'";
    for conn in [&mut a, &mut b, &mut d] {
        rows(conn, shape).await.unwrap();
    }
    assert_eq!(relay.my_prepares(), prepares);
    rows(&mut c, shape).await.unwrap();
    assert_eq!(relay.my_prepares() - prepares, 1);
}
