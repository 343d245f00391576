//! Restricted sessions' prepared reads pipelined over shared upstream connections
//! (`PG_PROXY_SHARED_READS`): many sessions' reads on one connection, each answered with its
//! own rows under the user's permissions, and never a read that could tell the connections
//! apart — inside a transaction, after a setting changed, or after another read failed.

use tokio_postgres::Client;

use crate::clerk::clerk_app_via_relay;
use crate::support::relay::Relay;
use crate::support::{App, Kind, PG_PORT};
use crate::wire_pg::{SETUP, connect, direct, simple, sqlstate};

/// The clerk's app with one shared connection, reaching PostgreSQL through a relay that
/// counts what each upstream connection carries.
pub(crate) async fn start() -> (App, Relay) {
    clerk_app_via_relay(
        Kind::Postgres,
        PG_PORT,
        (SETUP, ""),
        // Reads in a debug build can take longer than the default's quick read.
        &[
            ("PG_PROXY_SHARED_READS", "1"),
            ("PG_PROXY_SHARED_READ_TIME", "10s"),
        ],
    )
    .await
}

async fn clerk(app: &App) -> Client {
    connect(app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login")
}

/// `SELECT name FROM customers WHERE id = $1` through a prepared statement.
async fn customer_name(client: &Client, id: i32) -> Result<Option<String>, tokio_postgres::Error> {
    let rows = client
        .query("SELECT name FROM customers WHERE id = $1", &[&id])
        .await?;
    Ok(rows.first().map(|r| r.get(0)))
}

#[tokio::test(flavor = "multi_thread")]
async fn sessions_share_a_connection_and_each_gets_its_own_rows() {
    let (app, relay) = start().await;
    let sessions = [clerk(&app).await, clerk(&app).await, clerk(&app).await];
    const READS: i32 = 60;
    const TEXTS: i32 = 20;
    let before = relay.pg_most_executes();
    let runs = sessions.iter().enumerate().map(|(n, client)| async move {
        let statement = client
            .prepare("SELECT id, amount::text FROM orders WHERE id = $1")
            .await
            .expect("prepare");
        for i in 0..READS {
            // Each session asks for other rows, so answers crossing sessions would show.
            let id = (i + n as i32) % 4 + 1;
            let rows = client.query(&statement, &[&id]).await.expect("read");
            let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
            // Only the published orders (1 and 3) are the clerk's.
            let expected = match id {
                1 => vec![(1, "10.50".to_string())],
                3 => vec![(3, "30.25".to_string())],
                _ => vec![],
            };
            assert_eq!(got, expected, "session {n}, order {id}");
        }
        // Text reads too (run upstream as prepared statements of their own).
        for i in 0..TEXTS {
            let id = (i + n as i32) % 4 + 1;
            let sql = format!("SELECT id, amount FROM orders WHERE id = {id}");
            let (_, rows) = simple(client, &sql).await.expect("text read");
            let expected = match id {
                1 => vec![vec![Some("1".to_string()), Some("10.50".to_string())]],
                3 => vec![vec![Some("3".to_string()), Some("30.25".to_string())]],
                _ => vec![],
            };
            assert_eq!(rows, expected, "session {n}: {sql}");
        }
    });
    futures_util::future::join_all(runs).await;
    let carried = relay.pg_most_executes();
    assert!(
        carried >= 3 * (READS + TEXTS) as u64 && carried > before,
        "one upstream connection carried the reads of all three sessions (most: {carried})"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_with_a_large_answer_goes_back_to_the_sessions_own_connection() {
    let (app, relay) = start().await;
    let client = clerk(&app).await;
    let big = client
        .prepare("SELECT repeat(name, $1) FROM customers WHERE id = 1")
        .await
        .unwrap();
    let before = relay.pg_executes();
    let mut carriers = Vec::new();
    for _ in 0..3 {
        // "Ada" 400,000 times: 1.2 MB, past what a shared connection holds whole.
        let rows = client.query(&big, &[&400_000i32]).await.unwrap();
        assert_eq!(rows[0].get::<_, String>(0).len(), 1_200_000);
        let after = relay.pg_executes();
        let carrier = (0..after.len())
            .filter(|&i| after[i] > before.get(i).copied().unwrap_or(0))
            .collect::<Vec<_>>();
        carriers.push(carrier);
    }
    // The first run went to the shared connection, the next ones to the session's own.
    assert_eq!(carriers[0].len(), 1);
    assert_eq!(carriers[1].len(), 2, "{carriers:?}");
    assert_eq!(carriers[1], carriers[2]);
    assert!(carriers[1].contains(&carriers[0][0]));
}

#[tokio::test(flavor = "multi_thread")]
async fn reads_that_could_tell_the_connections_apart_stay_on_the_sessions_own() {
    let (app, _relay) = start().await;
    let (a, b) = (clerk(&app).await, clerk(&app).await);
    assert_eq!(customer_name(&a, 1).await.unwrap().as_deref(), Some("Ada"));

    // In a transaction a read sees the transaction's own writes, and only there.
    simple(&a, "BEGIN").await.unwrap();
    simple(&a, "UPDATE customers SET name = 'Changed' WHERE id = 1")
        .await
        .unwrap();
    assert_eq!(
        customer_name(&a, 1).await.unwrap().as_deref(),
        Some("Changed")
    );
    assert_eq!(customer_name(&b, 1).await.unwrap().as_deref(), Some("Ada"));
    simple(&a, "ROLLBACK").await.unwrap();
    assert_eq!(customer_name(&a, 1).await.unwrap().as_deref(), Some("Ada"));

    // A failed read ends with its own Sync: the next reads, of any session, are answered.
    let divide = "SELECT id / $1 FROM customers WHERE id = 2";
    let e = a.query(divide, &[&0i32]).await.unwrap_err();
    assert_eq!(sqlstate(&e).0, "22012");
    assert_eq!(
        customer_name(&b, 2).await.unwrap().as_deref(),
        Some("Grace")
    );
    let rows = a.query(divide, &[&2i32]).await.unwrap();
    assert_eq!(rows[0].get::<_, i32>(0), 1);

    // A setting the session changed shapes its answers from then on.
    let stamp = "SELECT CAST(CAST(CAST($1 AS text) AS timestamptz) AS text)";
    let moment = "2020-01-01 00:00:00+00";
    let as_the_database_says = direct(&app)
        .await
        .query_one(stamp, &[&moment])
        .await
        .unwrap()
        .get::<_, String>(0);
    simple(&a, "SET TimeZone = 'Asia/Tokyo'").await.unwrap();
    for _ in 0..3 {
        let tokyo: String = a.query_one(stamp, &[&moment]).await.unwrap().get(0);
        assert_eq!(tokyo, "2020-01-01 09:00:00+09");
        let other: String = b.query_one(stamp, &[&moment]).await.unwrap().get(0);
        assert_eq!(other, as_the_database_says);
    }
}

/// A client's cancel request while its read waits on the shared connection: the client
/// gets PostgreSQL's answer to a cancelled statement, the read is cancelled on the shared
/// connection (whose next read is answered), and the session goes on reading. `cancelled`
/// and `other` are two sessions of the same user (restricted or admin).
pub(crate) async fn a_cancel_reaches_a_shared_read(
    relay: &Relay,
    cancelled: Client,
    other: &Client,
) {
    // Hours of counting pairs, unless cancelled (a long single series would spill
    // gigabytes to disk).
    let long = "SELECT count(*) FROM generate_series(1, $1::int) a, generate_series(1, $1::int) b";
    assert_eq!(
        customer_name(other, 1).await.unwrap().as_deref(),
        Some("Ada")
    );
    let before = relay.pg_executes();
    let token = cancelled.cancel_token();
    let read = tokio::spawn(async move {
        let result = cancelled.query_one(long, &[&100_000i32]).await;
        (result.map(|row| row.get::<_, i64>(0)), cancelled)
    });
    // Until the long read is on a connection, then a moment for it to run there.
    let line = loop {
        let now = relay.pg_executes();
        let carrier = (0..now.len()).find(|&i| now[i] > before.get(i).copied().unwrap_or(0));
        if let Some(line) = carrier {
            break line;
        }
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(!read.is_finished(), "the long read is running");
    token
        .cancel_query(tokio_postgres::NoTls)
        .await
        .expect("the cancel request");
    let (result, session) = read.await.expect("the long read's task");
    let e = result.expect_err("the long read was cancelled");
    assert_eq!(sqlstate(&e).0, "57014", "{e}");
    // The shared connection answers the other session's read: the long read stopped there.
    let at = relay.pg_executes()[line];
    let answer = tokio::time::timeout(std::time::Duration::from_secs(60), customer_name(other, 2))
        .await
        .expect("the shared connection is free again");
    assert_eq!(answer.unwrap().as_deref(), Some("Grace"));
    assert!(
        relay.pg_executes()[line] > at,
        "the shared connection answered it"
    );
    // The cancelled session's answers stay in step.
    for (id, name) in [(1, "Ada"), (2, "Grace")] {
        assert_eq!(
            customer_name(&session, id).await.unwrap().as_deref(),
            Some(name)
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_restricted_session_cancels_its_shared_read() {
    let (app, relay) = start().await;
    let other = clerk(&app).await;
    a_cancel_reaches_a_shared_read(&relay, clerk(&app).await, &other).await;
}
