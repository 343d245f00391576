//! A session's side of the shared connections: which of its runs of frames may go there,
//! and the wait for the answer, which its client's cancel request ends.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{BufMut, Bytes, BytesMut};
use tokio::sync::{Notify, oneshot};

use rectus_policies::guard::template::Bound;

use super::super::Shared;
use super::super::frame::{Frames, error_response, ready_for_query};
use super::super::statements::{Prepared, SessionAccess};
use super::{Request, SharedReads};
use crate::{Directory, Identity};

/// Where a session's shared reads go, and what tells it its client cancelled.
#[derive(Clone, Copy)]
pub(in crate::pg) struct Via<'a> {
    /// The `SET`s its shared connections started with.
    pub settings: &'a str,
    /// Woken by the client's cancel requests ([`super::super::cancel::Registry`]).
    pub cancelled: &'a Notify,
}

/// What a read on a shared connection gave the session.
pub(in crate::pg) enum Answer {
    /// The database's answer.
    Database(BytesMut),
    /// The client cancelled while it waited: PostgreSQL's answer to a cancelled statement.
    Cancelled(BytesMut),
}

impl Answer {
    pub(in crate::pg) fn into_bytes(self) -> BytesMut {
        match self {
            Answer::Database(bytes) | Answer::Cancelled(bytes) => bytes,
        }
    }
}

/// Runs `run` on a shared connection when it is one execution of a shareable read (see
/// [`one_execution`]), checked as on the session's own connection; the answer for the
/// client, or `None` to send the run on the session's own connection. The caller makes
/// sure the session has nothing open or pending and has changed no setting.
pub(in crate::pg) async fn try_read<D: Directory>(
    shared: &Shared<D>,
    run: &[u8],
    prepared: &mut Prepared,
    (access, identity): (&mut SessionAccess, &Identity),
    via: Via<'_>,
) -> Option<Answer> {
    shared.reads.as_ref()?;
    let one = one_execution(run)?;
    let statement = prepared.protocol.get(one.statement)?;
    // Whether it is slow, [`run_execution`] asks.
    if !statement.shareable {
        return None;
    }
    // A refusal is left to the session's own path, which answers it in order.
    prepared
        .recheck(shared, access, identity, one.statement)
        .await
        .ok()?;
    let statement = prepared.protocol.get(one.statement)?;
    let (rewrite, types) = (statement.rewrite.clone(), statement.types.clone());
    run_execution(shared, &one, rewrite, types, via).await
}

/// Runs one execution of `statement` (prepared with parameter types `types`) on a shared
/// connection: the answer, or `None` to send it on the session's own connection.
pub(in crate::pg) async fn run_execution<D>(
    shared: &Shared<D>,
    one: &OneExecution<'_>,
    statement: Arc<str>,
    types: Vec<u32>,
    via: Via<'_>,
) -> Option<Answer> {
    let reads = shared.reads.as_ref()?;
    if reads.is_slow(&statement) {
        return None;
    }
    let (answer, receiver) = oneshot::channel();
    let request = Request {
        statement,
        types,
        bind_rest: Bytes::copy_from_slice(one.bind_rest),
        tail: Bytes::copy_from_slice(one.tail),
        text: false,
        answer,
        gone: Arc::default(),
    };
    ask(reads, via, request, receiver).await
}

/// Runs a text read that the guard gave as a statement and its parameters
/// ([`super::super::bound`]) on a shared connection; the simple protocol's answer, or `None`
/// to run it on the session's own connection. The caller makes sure it is alone in its run
/// and the session has nothing open or pending and has changed no setting.
pub(in crate::pg) async fn try_text_read<D>(
    shared: &Shared<D>,
    bound: &Bound,
    via: Via<'_>,
) -> Option<Answer> {
    let reads = shared.reads.as_ref()?;
    let count = i16::try_from(bound.values.len()).ok()?;
    if bound.types.len() != bound.values.len() || reads.is_slow(&bound.sql) {
        return None;
    }
    // Bind's fields after the statement name: text parameters, text results.
    let mut bind_rest = BytesMut::with_capacity(8 + bound.values.len() * 16);
    bind_rest.put_u8(0);
    bind_rest.put_i16(0);
    bind_rest.put_i16(count);
    for value in &bound.values {
        bind_rest.put_i32(i32::try_from(value.len()).ok()?);
        bind_rest.put_slice(value.as_bytes());
    }
    bind_rest.put_i16(0);
    let (answer, receiver) = oneshot::channel();
    let request = Request {
        statement: Arc::from(bound.sql.as_str()),
        types: bound.types.clone(),
        bind_rest: bind_rest.freeze(),
        tail: Bytes::from_static(TEXT_TAIL),
        text: true,
        answer,
        gone: Arc::default(),
    };
    ask(reads, via, request, receiver).await
}

/// Sends `request` and waits for its answer or the client's cancel. A cancelled read is
/// left to its connection, which skips it if it has not sent it yet and cancels it on the
/// backend if it runs there. A connection lost before it answered: `None`, and the read
/// runs again on the session's own connection.
async fn ask(
    reads: &SharedReads,
    via: Via<'_>,
    request: Request,
    receiver: oneshot::Receiver<BytesMut>,
) -> Option<Answer> {
    // Made before the request goes, so a cancel from then on is heard.
    let cancelled = via.cancelled.notified();
    let gone = request.gone.clone();
    let line = reads.send(via.settings, request).await.ok()?;
    tokio::select! {
        biased;
        answer = receiver => answer.ok().map(Answer::Database),
        () = cancelled => {
            gone.store(true, Ordering::Release);
            if let Some(line) = line.upgrade() {
                line.abandoned();
            }
            let mut answer =
                error_response("ERROR", "57014", "canceling statement due to user request");
            answer.extend_from_slice(&ready_for_query(b'I'));
            Some(Answer::Cancelled(answer))
        }
    }
}

/// Describe of the unnamed portal (the simple protocol's RowDescription), Execute of all
/// its rows, Sync.
pub(super) const TEXT_TAIL: &[u8] = b"D\0\0\0\x06P\0E\0\0\0\x09\0\0\0\0\0S\0\0\0\x04";

/// A client's run of frames that is one execution of a prepared statement and nothing
/// else: Bind to the unnamed portal, an optional Describe of it, Execute of all its rows,
/// Sync.
pub(in crate::pg) struct OneExecution<'a> {
    /// The client's statement name.
    pub statement: &'a str,
    /// See [`Request::bind_rest`] and [`Request::tail`].
    pub bind_rest: &'a [u8],
    pub tail: &'a [u8],
}

pub(in crate::pg) fn one_execution(run: &[u8]) -> Option<OneExecution<'_>> {
    // (type, body) of the next frame.
    fn next<'a>(frames: &mut Frames<'a>) -> Option<(u8, &'a [u8])> {
        frames.next().map(|(kind, frame)| (kind, &frame[5..]))
    }
    let mut frames = Frames::new(run);
    let (kind, bind) = next(&mut frames)?;
    if kind != b'B' || bind.first() != Some(&0) {
        return None;
    }
    let name_len = bind[1..].iter().position(|b| *b == 0)?;
    let statement = std::str::from_utf8(&bind[1..1 + name_len]).ok()?;
    let bind_rest = &bind[1 + name_len..];
    let tail_at = frames.at();
    let (mut kind, mut body) = next(&mut frames)?;
    if kind == b'D' {
        if body != b"P\0" {
            return None;
        }
        (kind, body) = next(&mut frames)?;
    }
    // Execute of the unnamed portal with no row limit: a suspended portal would be looked
    // for again on the session's own connection.
    if kind != b'E' || body != [0, 0, 0, 0, 0] {
        return None;
    }
    let (kind, body) = next(&mut frames)?;
    if kind != b'S' || !body.is_empty() || frames.at() != run.len() {
        return None;
    }
    Some(OneExecution {
        statement,
        bind_rest,
        tail: &run[tail_at..],
    })
}
