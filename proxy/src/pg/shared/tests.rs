use super::requests::TEXT_TAIL;
use super::*;
use crate::lines::KEYS_KEPT;
use crate::pg::frame::{error_response, typed};

fn bind(portal: &str, statement: &str) -> BytesMut {
    let mut body = BytesMut::new();
    body.put_slice(portal.as_bytes());
    body.put_u8(0);
    body.put_slice(statement.as_bytes());
    body.put_u8(0);
    body.put_slice(&[0, 0, 0, 1, 0, 0, 0, 1, b'7', 0, 0]);
    typed(b'B', &body)
}

fn run(frames: &[BytesMut]) -> Vec<u8> {
    frames.iter().flat_map(|f| f.to_vec()).collect()
}

/// `SELECT $1::int + 1` as a text read with `n` as its value.
fn plus_one(n: i32) -> (Request, oneshot::Receiver<BytesMut>) {
    let value = n.to_string();
    let mut bind_rest = BytesMut::new();
    bind_rest.put_u8(0);
    bind_rest.put_i16(0);
    bind_rest.put_i16(1);
    bind_rest.put_i32(value.len() as i32);
    bind_rest.put_slice(value.as_bytes());
    bind_rest.put_i16(0);
    let (answer, receiver) = oneshot::channel();
    let request = Request {
        statement: Arc::from("SELECT CAST($1 AS int) + 1"),
        types: vec![0],
        bind_rest: bind_rest.freeze(),
        tail: Bytes::from_static(TEXT_TAIL),
        text: true,
        answer,
        gone: Arc::default(),
    };
    (request, receiver)
}

/// The text of the one value in a simple protocol answer.
fn value(answer: &[u8]) -> String {
    let mut value = String::new();
    each_frame(answer, |kind, bytes| {
        if kind == b'D' {
            // type, length, column count (2), value length (4), value
            value = String::from_utf8_lossy(&bytes[11..]).into_owned();
        }
    });
    value
}

/// Against the real PostgreSQL of the tests (127.0.0.1:5432, user `postgres`, trust).
#[tokio::test]
async fn connections_are_kept_for_a_bounded_number_of_settings() {
    let config = UpstreamConfig {
        host: "127.0.0.1".into(),
        port: 5432,
        user: "postgres".into(),
        password: None,
        database: "postgres".into(),
    };
    let reads = SharedReads::new(config, 1, Duration::from_secs(10)).expect("on");
    let zone = |n: usize| format!("SET timezone = 'Etc/GMT+{n}'");
    for n in 0..KEYS_KEPT {
        let (request, receiver) = plus_one(n as i32);
        assert!(reads.send(&zone(n), request).await.is_ok(), "settings {n}");
        let answer = receiver.await.expect("answered");
        assert_eq!(value(&answer), (n + 1).to_string());
        // The simple protocol's answer: no ParseComplete or BindComplete.
        let mut kinds = Vec::new();
        each_frame(&answer, |kind, _| kinds.push(kind));
        assert_eq!(kinds, b"TDCZ");
    }
    let (request, _) = plus_one(0);
    assert!(
        reads.send(&zone(KEYS_KEPT), request).await.is_err(),
        "one set of settings too many"
    );
    // Those already kept still are.
    let (request, receiver) = plus_one(41);
    assert!(reads.send(&zone(3), request).await.is_ok());
    assert_eq!(value(&receiver.await.expect("answered")), "42");
    assert_eq!(reads.lines.keys(), KEYS_KEPT);
}

#[test]
fn one_execution_is_bind_describe_execute_sync_of_the_unnamed_portal() {
    let describe = typed(b'D', b"P\0");
    let execute = typed(b'E', &[0, 0, 0, 0, 0]);
    let sync = typed(b'S', b"");
    let full = run(&[
        bind("", "s1"),
        describe.clone(),
        execute.clone(),
        sync.clone(),
    ]);
    let one = one_execution(&full).expect("one execution");
    assert_eq!(one.statement, "s1");
    assert_eq!(one.bind_rest[0], 0);
    assert_eq!(one.tail.len(), describe.len() + execute.len() + sync.len());
    assert!(one_execution(&run(&[bind("", ""), execute.clone(), sync.clone()])).is_some());
    let mut text = bind("", "s1").to_vec();
    text.extend_from_slice(TEXT_TAIL);
    assert_eq!(one_execution(&text).map(|o| o.tail), Some(TEXT_TAIL));

    let refused = [
        // a named portal outlives the Sync on the connection that has it
        run(&[bind("p", "s1"), execute.clone(), sync.clone()]),
        // a row limit leaves a portal to continue
        run(&[bind("", "s1"), typed(b'E', &[0, 0, 0, 0, 10]), sync.clone()]),
        // more after the Sync, or no Sync
        run(&[bind("", "s1"), execute.clone(), sync.clone(), sync.clone()]),
        run(&[bind("", "s1"), execute.clone()]),
        // a Describe of a statement, or of another portal
        run(&[
            bind("", "s1"),
            typed(b'D', b"S\0"),
            execute.clone(),
            sync.clone(),
        ]),
        run(&[
            bind("", "s1"),
            typed(b'D', b"Px\0"),
            execute.clone(),
            sync.clone(),
        ]),
        // a Parse in the same run
        run(&[
            typed(b'P', b"\0SELECT 1\0\0\0"),
            bind("", ""),
            execute,
            sync,
        ]),
    ];
    for r in refused {
        assert!(one_execution(&r).is_none());
    }
}

#[test]
fn only_a_cancelled_statement_counts_as_cancelled() {
    assert!(is_cancel(&error_response(
        "ERROR",
        "57014",
        "canceling statement due to user request"
    )));
    assert!(!is_cancel(&error_response("ERROR", "22012", "C57014")));
    assert!(!is_cancel(b"E\0\0\0\x04"));
}
