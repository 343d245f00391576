//! Reads a restricted user sends as text run upstream as prepared statements with their
//! literals as parameters: prepared once per session, answering exactly what the same text
//! answers on a direct connection, through errors, aborted transactions, `DEALLOCATE ALL`
//! and pipelined queries.

use std::sync::Arc;

use crate::clerk::clerk_app_via_relay;
use crate::support::relay::Relay;
use crate::support::{Kind, PG_PORT};
use crate::wire_pg::{SETUP, connect, direct, simple, sqlstate};

const MORE_CUSTOMERS: &str =
    "INSERT INTO customers (name) VALUES ('O''Brien'), ('Ådä'), ('back\\slash'), ('G%'), (NULL)";

async fn start() -> (crate::support::App, Relay) {
    clerk_app_via_relay(Kind::Postgres, PG_PORT, (SETUP, MORE_CUSTOMERS), &[]).await
}

#[tokio::test(flavor = "multi_thread")]
async fn a_read_shape_is_prepared_once_and_answers_as_its_text() {
    let (app, relay) = start().await;
    let clerk = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login");
    let db = direct(&app).await;

    let before = relay.pg_parses();
    for id in 1..=4 {
        let sql = format!("SELECT id, amount FROM orders WHERE id = {id}");
        let (_, rows) = simple(&clerk, &sql).await.unwrap();
        // Only published orders (1 and 3) are the clerk's.
        let expected: Vec<Vec<Option<String>>> = match id {
            1 => vec![vec![Some("1".into()), Some("10.50".into())]],
            3 => vec![vec![Some("3".into()), Some("30.25".into())]],
            _ => vec![],
        };
        assert_eq!(rows, expected, "{sql}");
    }
    assert_eq!(
        relay.pg_parses() - before,
        1,
        "four texts of one shape are one prepared statement upstream"
    );

    // Customers are the clerk's without a row filter: every text answers as it does
    // directly, whatever its literals are and wherever they stand.
    for sql in [
        "SELECT id, name FROM customers WHERE name = 'Ada'",
        "SELECT id, name FROM customers WHERE name = 'O''Brien'",
        "SELECT id, name FROM customers WHERE name = 'Ådä'",
        "SELECT id, name FROM customers WHERE name = 'back\\slash'",
        "SELECT id, name FROM customers WHERE name = E'back\\\\slash'",
        "SELECT id, name FROM customers WHERE name LIKE 'G%' ORDER BY id",
        "SELECT id, name FROM customers WHERE name LIKE 'G\\%' ORDER BY id",
        "SELECT id FROM customers WHERE id IN (1, 3, 5) ORDER BY id",
        "SELECT id FROM customers WHERE id BETWEEN 2 AND 2 + 2 ORDER BY id",
        "SELECT id FROM customers WHERE id = 1.0",
        "SELECT id FROM customers WHERE id = 2147483648",
        "SELECT id FROM customers WHERE id = 99999999999999999999",
        "SELECT id FROM customers WHERE id = -1 OR -id = -2",
        "SELECT id FROM customers WHERE id * 2 = 4 OR 7 / 2 = id",
        "SELECT id FROM customers WHERE 1.5e0 < id ORDER BY id",
        "SELECT id, 2 * id, 'x' AS x FROM customers WHERE id >= 1 ORDER BY 1 DESC LIMIT 2",
        "SELECT id FROM customers WHERE name = 'Ada' OR id = 2 ORDER BY 2 - id",
        "SELECT name FROM customers WHERE name IS NULL OR name = '' ORDER BY 1",
        "SELECT count(*) FROM customers WHERE id > 1 GROUP BY 'a' = name ORDER BY 1",
        "SELECT id + 1 FROM customers WHERE id > 1 GROUP BY id + 1 ORDER BY 1",
        "SELECT DISTINCT id * 2 FROM customers WHERE id < 5 ORDER BY id * 2",
        "SELECT name = 'Ada', count(*) FROM customers GROUP BY name = 'Ada' ORDER BY 1",
        "SELECT DISTINCT name FROM customers WHERE id BETWEEN 2 AND 6 ORDER BY name",
        "SELECT name, count(*) FROM customers WHERE id > 1 GROUP BY name HAVING count(*) >= 1 ORDER BY name",
        "SELECT c.name, count(o.id) FROM customers c LEFT JOIN customers o ON o.id = c.id AND o.id > 3 WHERE c.id < 8 GROUP BY c.name ORDER BY 2, 1",
    ] {
        assert_eq!(
            simple(&clerk, sql).await.unwrap(),
            simple(&db, sql).await.unwrap(),
            "{sql}"
        );
        // The second time runs the statement prepared the first time.
        assert_eq!(
            simple(&clerk, sql).await.unwrap(),
            simple(&db, sql).await.unwrap(),
            "{sql} again"
        );
    }

    // A value the column's type does not read fails as it does directly.
    let sql = "SELECT id FROM customers WHERE id = 'abc'";
    let wire = sqlstate(&simple(&clerk, sql).await.unwrap_err());
    let plain = sqlstate(&simple(&db, sql).await.unwrap_err());
    assert_eq!(wire.0, plain.0);
    assert_eq!(wire.0, "22P02");
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_reads_survive_aborted_transactions_deallocate_and_pipelines() {
    let (app, _relay) = start().await;
    let clerk = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login");
    let one = "SELECT id, name FROM customers WHERE id = 1";
    let ada = vec![vec![Some("1".to_string()), Some("Ada".to_string())]];

    // Prepared in a transaction that fails: the statement stays usable after it.
    clerk.simple_query("BEGIN").await.unwrap();
    let (code, _) = sqlstate(
        &simple(&clerk, "SELECT id FROM customers WHERE id = 'x'")
            .await
            .unwrap_err(),
    );
    assert_eq!(code, "22P02");
    let (code, _) = sqlstate(&simple(&clerk, one).await.unwrap_err());
    assert_eq!(code, "25P02", "an aborted transaction refuses the read");
    clerk.simple_query("ROLLBACK").await.unwrap();
    assert_eq!(simple(&clerk, one).await.unwrap().1, ada);

    // DEALLOCATE ALL drops the session's statements too; the next read prepares again.
    simple(&clerk, one).await.unwrap();
    clerk.simple_query("DEALLOCATE ALL").await.unwrap();
    assert_eq!(simple(&clerk, one).await.unwrap().1, ada);

    // Planning every run with its values, as PostgreSQL plans a text query, is the
    // session's choice.
    clerk
        .simple_query("SET plan_cache_mode = force_custom_plan")
        .await
        .unwrap();
    assert_eq!(simple(&clerk, one).await.unwrap().1, ada);
    let (_, rows) = simple(&clerk, "SHOW plan_cache_mode").await.unwrap();
    assert_eq!(rows, vec![vec![Some("force_custom_plan".to_string())]]);

    // Queries pipelined on one connection: those sent while their statement is still being
    // prepared go as they are; every answer is its own.
    let clerk = Arc::new(clerk);
    let mut tasks = Vec::new();
    for round in 0..3 {
        for id in 1..=8i64 {
            let clerk = clerk.clone();
            tasks.push(tokio::spawn(async move {
                let sql = format!(
                    "SELECT id, {round} AS round FROM customers WHERE id = {id} AND {round} >= 0"
                );
                (id, round, simple(&clerk, &sql).await)
            }));
        }
    }
    for task in tasks {
        let (id, round, answer) = task.await.unwrap();
        let (_, rows) = answer.unwrap();
        let expected = if id <= 7 {
            vec![vec![Some(id.to_string()), Some(round.to_string())]]
        } else {
            vec![]
        };
        assert_eq!(rows, expected, "id {id}, round {round}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_session_keeps_256_statements_and_closes_the_least_used() {
    // The session's own connection (reads on the shared ones keep their statements apart).
    let (app, relay) = clerk_app_via_relay(
        Kind::Postgres,
        PG_PORT,
        (SETUP, MORE_CUSTOMERS),
        &[("PG_PROXY_SHARED_READS", "0")],
    )
    .await;
    let clerk = connect(&app, "clerk@example.com", "clerk-token")
        .await
        .expect("clerk login");
    // LIMIT keeps its literal, so each count is a statement of its own.
    let text = |n: usize| format!("SELECT id FROM customers WHERE id > 0 ORDER BY id LIMIT {n}");
    let before = relay.pg_parses();
    for n in 1..=300 {
        let (_, rows) = simple(&clerk, &text(n)).await.unwrap();
        assert_eq!(rows.len(), n.min(7), "{}", text(n));
    }
    assert_eq!(relay.pg_parses() - before, 300);
    // The newest are still prepared; the first ones were closed and are prepared again.
    let before = relay.pg_parses();
    for n in 290..=300 {
        assert_eq!(simple(&clerk, &text(n)).await.unwrap().1.len(), 7);
    }
    assert_eq!(relay.pg_parses() - before, 0);
    for n in 1..=3 {
        assert_eq!(simple(&clerk, &text(n)).await.unwrap().1.len(), n);
    }
    assert_eq!(relay.pg_parses() - before, 3);
}

/// A frame of the PostgreSQL protocol: type, length, body.
fn frame(kind: u8, body: &[u8]) -> Vec<u8> {
    let mut out = vec![kind];
    out.extend_from_slice(&((body.len() + 4) as i32).to_be_bytes());
    out.extend_from_slice(body);
    out
}

/// Reads frames until ReadyForQuery; returns their types and the SQLSTATE of any error.
async fn until_ready(stream: &mut tokio::net::TcpStream) -> (Vec<u8>, Vec<String>) {
    use tokio::io::AsyncReadExt;
    let (mut kinds, mut codes) = (Vec::new(), Vec::new());
    loop {
        let kind = stream.read_u8().await.expect("frame type");
        let len = stream.read_i32().await.expect("frame length") as usize;
        let mut body = vec![0; len - 4];
        stream.read_exact(&mut body).await.expect("frame body");
        kinds.push(kind);
        if kind == b'E' {
            // Fields: a type byte and a NUL-terminated value each; `C` is the SQLSTATE.
            let mut fields = body.as_slice();
            while let Some((&field, rest)) = fields.split_first().filter(|(f, _)| **f != 0) {
                let end = rest.iter().position(|b| *b == 0).expect("field end");
                if field == b'C' {
                    codes.push(String::from_utf8_lossy(&rest[..end]).to_string());
                }
                fields = &rest[end + 1..];
            }
        }
        if kind == b'Z' {
            return (kinds, codes);
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_cannot_name_statements_as_the_session_does() {
    use tokio::io::AsyncWriteExt;
    let (app, _relay) = start().await;
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", app.server.pg_port()))
        .await
        .expect("connect");
    let mut startup = Vec::new();
    startup.extend_from_slice(&196_608i32.to_be_bytes());
    for (k, v) in [
        ("user", "clerk@example.com"),
        ("database", app.db.name.as_str()),
    ] {
        startup.extend_from_slice(k.as_bytes());
        startup.push(0);
        startup.extend_from_slice(v.as_bytes());
        startup.push(0);
    }
    startup.push(0);
    let mut packet = ((startup.len() + 4) as i32).to_be_bytes().to_vec();
    packet.extend_from_slice(&startup);
    stream.write_all(&packet).await.unwrap();
    // The cleartext password request, then the password.
    let mut request = [0u8; 9];
    tokio::io::AsyncReadExt::read_exact(&mut stream, &mut request)
        .await
        .unwrap();
    assert_eq!(
        (request[0], request[8]),
        (b'R', 3),
        "cleartext password asked"
    );
    stream
        .write_all(&frame(b'p', b"clerk-token\0"))
        .await
        .unwrap();
    let (kinds, codes) = until_ready(&mut stream).await;
    assert!(codes.is_empty() && kinds.contains(&b'R'), "logged in");

    // A read the session prepares upstream, then a client Parse under such a name.
    let mut query = b"SELECT id FROM customers WHERE id = 1".to_vec();
    query.push(0);
    stream.write_all(&frame(b'Q', &query)).await.unwrap();
    let (kinds, codes) = until_ready(&mut stream).await;
    assert_eq!(kinds, b"TDCZ", "the simple protocol's answer");
    assert!(codes.is_empty());
    let mut parse = b"\x01rectus_1\0SELECT name FROM customers\0".to_vec();
    parse.extend_from_slice(&0i16.to_be_bytes());
    let mut batch = frame(b'P', &parse);
    batch.extend(frame(b'S', b""));
    stream.write_all(&batch).await.unwrap();
    let (_, codes) = until_ready(&mut stream).await;
    assert_eq!(codes, vec!["42501".to_string()]);
    // The session's own statement still answers.
    stream.write_all(&frame(b'Q', &query)).await.unwrap();
    let (kinds, codes) = until_ready(&mut stream).await;
    assert_eq!((kinds.as_slice(), codes.len()), (&b"TDCZ"[..], 0));
}
