//! Admin sessions' reads on the shared connections: while a session has only read, its
//! reads are pipelined with other sessions' and answer exactly as a direct connection does;
//! the first statement that could leave state behind (a setting, a temporary table, a
//! transaction) keeps the session on its own connection from then on.

use tokio_postgres::Client;

use crate::support::{ADMIN_EMAIL, ADMIN_PASSWORD, App};
use crate::wire_pg::{connect, direct, simple, sqlstate};
use crate::wire_pg_shared::start;

async fn admin(app: &App) -> Client {
    connect(app, ADMIN_EMAIL, ADMIN_PASSWORD)
        .await
        .expect("admin login")
}

/// Every column of an order, as text, through a prepared statement.
async fn order(client: &Client, id: i32) -> Vec<Option<String>> {
    let rows = client
        .query(
            "SELECT id::text, customer::text, status, amount::text, secret FROM orders WHERE id = $1",
            &[&id],
        )
        .await
        .expect("read");
    rows.iter()
        .flat_map(|r| (0..5).map(|i| r.get::<_, Option<String>>(i)))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn admin_reads_share_a_connection_and_answer_as_a_direct_connection() {
    let (app, relay) = start().await;
    let db = direct(&app).await;
    let sessions = [admin(&app).await, admin(&app).await, admin(&app).await];
    const READS: i32 = 40;
    let before = relay.pg_executes();
    let runs = sessions.iter().enumerate().map(|(n, client)| {
        let db = &db;
        async move {
            for i in 0..READS {
                let id = (i + n as i32) % 4 + 1;
                // Drafts and the secret column too: nothing of the clerk's rules applies.
                assert_eq!(order(client, id).await, order(db, id).await, "order {id}");
                let sql = format!("SELECT * FROM orders WHERE id = {id} AND status <> 'x'");
                assert_eq!(
                    simple(client, &sql).await.unwrap(),
                    simple(db, &sql).await.unwrap(),
                    "{sql}"
                );
            }
        }
    });
    futures_util::future::join_all(runs).await;
    let after = relay.pg_executes();
    let carried = (0..after.len())
        .map(|i| after[i] - before.get(i).copied().unwrap_or(0))
        .max();
    // Every prepared read, and the text reads but those sent before the answer to the
    // client's closing of its statement came (they wait on the session's own connection).
    assert!(
        carried >= Some(3 * READS as u64 * 3 / 2),
        "one upstream connection carried the reads of all three sessions ({before:?} {after:?})"
    );

    // A column the schema overview does not know yet is there, as the database has it.
    db.batch_execute("ALTER TABLE orders ADD COLUMN late text DEFAULT 'new'")
        .await
        .unwrap();
    let sql = "SELECT * FROM orders WHERE id = 2";
    let (columns, rows) = simple(&sessions[0], sql).await.unwrap();
    assert_eq!(columns.last().map(String::as_str), Some("late"));
    assert_eq!((columns, rows), simple(&db, sql).await.unwrap());

    // Errors are the database's own, as a direct connection gets them.
    let divide = "SELECT id / $1 FROM orders WHERE id = 2";
    let ours = sessions[1].query(divide, &[&0i32]).await.unwrap_err();
    let theirs = db.query(divide, &[&0i32]).await.unwrap_err();
    assert_eq!(sqlstate(&ours), sqlstate(&theirs));
    // The shared connection would fail at Bind, without the text's position.
    let typo = "SELECT * FROM orders WHERE id = 'two'";
    let ours = sessions[1].simple_query(typo).await.unwrap_err();
    let theirs = db.simple_query(typo).await.unwrap_err();
    assert_eq!(sqlstate(&ours), sqlstate(&theirs));
    let (ours, theirs) = (ours.as_db_error().unwrap(), theirs.as_db_error().unwrap());
    assert!(theirs.position().is_some());
    assert_eq!(ours.position(), theirs.position());
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_session_that_leaves_state_behind_keeps_its_reads() {
    let (app, relay) = start().await;
    let (a, b, c) = (admin(&app).await, admin(&app).await, admin(&app).await);
    let stamp = "SELECT CAST(CAST(CAST($1 AS text) AS timestamptz) AS text)";
    let moment = "2020-01-01 00:00:00+00";
    let utc: String = c.query_one(stamp, &[&moment]).await.unwrap().get(0);

    // A setting: this session's reads see it, the others' do not.
    simple(&a, "SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    for _ in 0..3 {
        let tokyo: String = a.query_one(stamp, &[&moment]).await.unwrap().get(0);
        assert_eq!(tokyo, "2020-01-01 09:00:00+09");
        let other: String = c.query_one(stamp, &[&moment]).await.unwrap().get(0);
        assert_eq!(other, utc);
    }

    // A temporary table that hides a table of the same name, made through the extended
    // protocol: this session reads its own table from then on.
    b.execute("CREATE TEMP TABLE orders (id int, only_here text)", &[])
        .await
        .unwrap();
    b.execute("INSERT INTO orders VALUES (1, 'mine')", &[])
        .await
        .unwrap();
    let before = relay.pg_executes();
    for _ in 0..3 {
        let (columns, rows) = simple(&b, "SELECT * FROM orders WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(columns, ["id", "only_here"]);
        assert_eq!(rows, [[Some("1".to_string()), Some("mine".to_string())]]);
        let (_, rows) = simple(&c, "SELECT secret FROM orders WHERE id = 1")
            .await
            .unwrap();
        assert_eq!(rows, [[Some("s1".to_string())]]);
    }
    // c's reads went to one connection that b's session does not own.
    let after = relay.pg_executes();
    let moved = (0..after.len())
        .filter(|&i| after[i] > before.get(i).copied().unwrap_or(0))
        .count();
    assert_eq!(moved, 1, "{before:?} {after:?}");

    // An open transaction: its reads see its writes; a sequence: currval is the session's.
    simple(&c, "BEGIN").await.unwrap();
    simple(&c, "UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    let (_, rows) = simple(&c, "SELECT name FROM customers WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(rows, [[Some("Changed".to_string())]]);
    simple(&c, "ROLLBACK").await.unwrap();
    let fresh = admin(&app).await;
    simple(&fresh, "SELECT nextval('orders_id_seq')")
        .await
        .unwrap();
    let (_, rows) = simple(&fresh, "SELECT currval('orders_id_seq')")
        .await
        .unwrap();
    assert_eq!(rows.len(), 1);
}

/// A read that holds the shared connection past a hundred times
/// `PG_PROXY_SHARED_READ_TIME` is cancelled there and runs again on its session's own
/// connection, so the reads queued behind it go on.
#[tokio::test(flavor = "multi_thread")]
async fn a_long_read_leaves_the_shared_connection_and_the_others_go_on() {
    let (app, relay) = crate::clerk::clerk_app_via_relay(
        crate::support::Kind::Postgres,
        crate::support::PG_PORT,
        (crate::wire_pg::SETUP, ""),
        &[
            ("PG_PROXY_SHARED_READS", "1"),
            ("PG_PROXY_SHARED_READ_TIME", "1ms"),
        ],
    )
    .await;
    let (a, b) = (admin(&app).await, admin(&app).await);
    async fn secret(client: &Client) -> String {
        let quick = "SELECT secret FROM orders WHERE id = $1";
        let row = client.query_one(quick, &[&1i32]).await;
        row.expect("a quick read").get(0)
    }
    assert_eq!(secret(&b).await, "s1");
    let before = relay.pg_executes();
    let token = a.cancel_token();
    let mut long = tokio::spawn(async move {
        // Hours of counting pairs, until the client cancels it (two series of 100,000 rows
        // each: a long single series would spill gigabytes to disk).
        let sql =
            "SELECT count(*) FROM generate_series(1, $1::int) a, generate_series(1, $1::int) b";
        let row = a.query_one(sql, &[&100_000i32]).await;
        (row.map(|r| r.get::<_, i64>(0)), a)
    });
    let carriers = || {
        let now = relay.pg_executes();
        let carriers = (0..now.len()).filter(|&i| now[i] > before.get(i).copied().unwrap_or(0));
        carriers.count()
    };
    // Until the long read is on the shared connection.
    while carriers() == 0 {
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    for _ in 0..5 {
        assert_eq!(secret(&b).await, "s1");
    }
    assert!(
        !long.is_finished(),
        "the quick reads were answered while the long one ran"
    );
    // It runs again on the session's own connection (besides the quick reads, which may
    // have run on b's own connection, found slow in a debug build against a 1 ms limit),
    // where the client's cancel reaches it.
    while carriers() < 2 || relay.pg_executes().iter().sum::<u64>() < before.iter().sum::<u64>() + 7
    {
        assert!(
            !long.is_finished(),
            "the long read ended on the shared connection"
        );
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    // PostgreSQL ignores a cancel that comes before its backend has read the statement,
    // which a loaded machine can delay: the client asks again until the read ends.
    let mut asked = 0;
    let (count, _a) = loop {
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        token
            .cancel_query(tokio_postgres::NoTls)
            .await
            .expect("the cancel request");
        let wait = std::time::Duration::from_secs(2);
        if let Ok(ended) = tokio::time::timeout(wait, &mut long).await {
            break ended.expect("the long read's task");
        }
        asked += 1;
        assert!(
            asked < 30,
            "the cancel requests never reached the long read"
        );
    };
    let e = count.expect_err("the long read was cancelled");
    assert_eq!(sqlstate(&e).0, "57014", "{e}");
}

/// Where the database reads strings differently from the guard (`standard_conforming_strings`
/// off, which admins' sessions keep), an admin's reads stay on the session's own
/// connection and answer as the database reads them.
#[tokio::test(flavor = "multi_thread")]
async fn an_admin_session_without_standard_strings_keeps_its_reads() {
    let (app, _relay) = start().await;
    let db = direct(&app).await;
    db.batch_execute(&format!(
        "ALTER DATABASE \"{}\" SET standard_conforming_strings = off",
        app.db.name
    ))
    .await
    .unwrap();
    let db = direct(&app).await;
    let session = admin(&app).await;
    // With backslashes as escapes the string does not end where the guard would end it.
    for sql in [
        r"SELECT 'a\' AS x, 'b' AS y FROM orders WHERE id = 1",
        r"SELECT 'a\'' || 'b' AS x FROM orders WHERE id = 1",
    ] {
        let theirs = simple(&db, sql).await.map_err(|e| sqlstate(&e));
        let ours = simple(&session, sql).await.map_err(|e| sqlstate(&e));
        assert_eq!(ours, theirs, "{sql}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn an_admin_session_cancels_its_shared_read() {
    let (app, relay) = start().await;
    let other = admin(&app).await;
    crate::wire_pg_shared::a_cancel_reaches_a_shared_read(&relay, admin(&app).await, &other).await;
}
