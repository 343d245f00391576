//! One client connection: SSL negotiation, startup checks, login, an upstream connection
//! from the pool, then the message loop. Refused statements are answered in order by
//! sending the database a statement that fails and putting the guard's error in place of
//! the database's, so responses never interleave and a refusal inside a transaction aborts
//! it as any failed statement would.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use bytes::{Buf, BytesMut};
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::simplequery::Query;
use rectus_policies::guard::{GuardError, StatementKind};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::admin_reads::Outcome;
use super::bound;
use super::frame::{self, FrameReader, cstr, encode, error_response};
use super::pending::Pending;
use super::shared::Via;
use super::statements::{
    Prepared, SessionAccess, Statement, bind_statement, guarded, guarded_text,
};
use super::upstream::Leased;
use super::{Shared, startup};
use crate::guarded::TextAnswer;
use crate::{Directory, Identity};

pub(super) trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_3: i32 = 196_608;

/// What the database is sent in place of a refused statement: it fails at parse time, and
/// its error is replaced by the guard's.
const REFUSED: &str = "RECTUS REFUSED";

pub async fn run<D: Directory>(stream: TcpStream, shared: Arc<Shared<D>>) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let mut reader = FrameReader::new(Box::new(stream) as Box<dyn ClientStream>);
    let mut tls = false;
    let params = loop {
        let Some(mut packet) = reader.startup_frame().await? else {
            return Ok(());
        };
        packet.advance(4);
        let code = packet.get_i32();
        match code {
            SSL_REQUEST if !tls => {
                // Bytes after the SSLRequest and before the handshake would be read as if
                // they had come encrypted.
                if reader.buffered() != 0 {
                    return Err(frame::invalid("data after SSLRequest"));
                }
                let mut stream = reader.into_inner();
                frame::write_all(&mut stream, b"S").await?;
                let tls_stream = shared.tls.accept(stream).await?;
                reader = FrameReader::new(Box::new(tls_stream) as Box<dyn ClientStream>);
                tls = true;
            }
            GSSENC_REQUEST => frame::write_all(&mut reader.stream, b"N").await?,
            CANCEL_REQUEST if packet.remaining() >= 8 => {
                let pid = packet.get_i32();
                let secret = packet.get_i32();
                shared.cancel.cancel((pid, secret)).await;
                return Ok(());
            }
            PROTOCOL_3 => break startup::parameters(&mut packet),
            _ => {
                let out = error_response(
                    "FATAL",
                    "0A000",
                    "unsupported frontend protocol: rectus speaks protocol 3.0",
                );
                return frame::write_all(&mut reader.stream, &out).await;
            }
        }
    };
    let mut client = reader;
    match startup::handshake(&mut client, &shared, &params, tls).await? {
        Some(session) => {
            let key = session.cancel_key;
            let result = serve(client, &shared, session).await;
            shared.cancel.remove(key);
            result
        }
        None => Ok(()),
    }
}

async fn serve<D: Directory>(
    client: FrameReader<Box<dyn ClientStream>>,
    shared: &Shared<D>,
    session: startup::Session,
) -> std::io::Result<()> {
    let startup::Session {
        identity,
        leased,
        settings,
        cancelled,
        ..
    } = session;
    let Leased { upstream, permit } = leased;
    let super::upstream::Upstream {
        reader: mut upstream_reader,
        writer: mut upstream_writer,
        pid,
        secret,
        parameters,
    } = upstream;
    // The guard reads text as the database does in UTF8 with standard-conforming strings,
    // which guarded sessions always have; an admin's may not.
    let read_as_guarded = !settings.contains("SET client_encoding")
        && parameters
            .iter()
            .any(|(k, v)| k == "standard_conforming_strings" && v == "on");
    let (client_read, client_write) = tokio::io::split(client.into_inner());
    // Written by the database's answers and by the answers of shared reads, never both at
    // once: a read is shared only when the session waits for nothing else.
    let client_write = tokio::sync::Mutex::new(client_write);
    let mut client_reader = FrameReader::new(client_read);
    let pending = Pending::default();
    let requests = forward_requests(
        &mut client_reader,
        &mut upstream_writer,
        &client_write,
        shared,
        (&identity, &settings, read_as_guarded),
        (&pending, &cancelled),
    );
    let responses = forward_responses(
        &mut upstream_reader,
        &client_write,
        &pending,
        identity.admin,
    );
    let (clean, upstream_closed) = tokio::select! {
        r = requests => (r?, false),
        r = responses => { r?; (false, true) }
    };
    if upstream_closed {
        // The client hears why its session ends instead of seeing the socket drop.
        let out = error_response(
            "FATAL",
            "08006",
            "rectus: the database closed the connection",
        );
        let mut client_write = client_write.lock().await;
        let _ = client_write.write_all(&out).await;
        let _ = client_write.flush().await;
        return Ok(());
    }
    let idle = pending.sent.load(Ordering::Relaxed) == pending.answered.load(Ordering::Relaxed);
    if clean && idle {
        let upstream = super::upstream::Upstream {
            reader: upstream_reader,
            writer: upstream_writer,
            pid,
            secret,
            parameters,
        };
        shared.pool.put(Leased { upstream, permit }).await;
    }
    Ok(())
}

/// Client to database. Returns `true` when the client said goodbye (Terminate).
async fn forward_requests<D, R, W, C>(
    client: &mut FrameReader<R>,
    upstream: &mut W,
    client_out: &tokio::sync::Mutex<C>,
    shared: &Shared<D>,
    (identity, settings, read_as_guarded): (&Identity, &str, bool),
    (pending, cancelled): (&Pending, &tokio::sync::Notify),
) -> std::io::Result<bool>
where
    D: Directory,
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
    C: AsyncWrite + Unpin,
{
    let mut access = SessionAccess::default();
    let mut prepared = Prepared::default();
    // Extended-protocol messages since the last Sync.
    let mut extended = false;
    // A setting changed since startup: reads stay on the session's own connection.
    let mut settings_changed = false;
    // An admin session that has only read so far: its reads may be shared.
    let mut admin_reads = (identity.admin && read_as_guarded && shared.reads.is_some())
        .then(|| super::admin_reads::AdminReads::new(settings));
    let via = Via {
        settings,
        cancelled,
    };
    loop {
        let Some(run) = client.frames().await? else {
            return Ok(false);
        };
        if identity.admin {
            if !access.still_admin(&*shared.directory, identity).await {
                return Err(frame::invalid("the user is no longer an active admin"));
            }
            if let Some(reads) = admin_reads.as_mut() {
                let idle = !extended && pending.idle();
                let routed = reads
                    .route(shared, &run, (&mut access, identity), (idle, cancelled))
                    .await;
                match routed {
                    Outcome::Answered(answer) => {
                        to_client(client_out, &answer).await?;
                        continue;
                    }
                    Outcome::Forward => {}
                    Outcome::Stateful => admin_reads = None,
                }
            }
            // Passthrough: the bytes as they came, up to a Terminate.
            let mut end = 0;
            let mut terminate = false;
            frame::each_frame(&run, |kind, bytes| {
                if terminate || kind == b'X' {
                    terminate = true;
                    return;
                }
                match kind {
                    b'Q' | b'F' => {
                        pending.sent.fetch_add(1, Ordering::Relaxed);
                    }
                    b'S' => {
                        pending.sent.fetch_add(1, Ordering::Relaxed);
                        extended = false;
                    }
                    b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => extended = true,
                    _ => {}
                }
                end += bytes.len();
            });
            if end > 0 {
                upstream.write_all(&run[..end]).await?;
            }
            if terminate {
                return Ok(true);
            }
            continue;
        }
        if !extended && !settings_changed && pending.idle() {
            let session = (&mut access, identity);
            let answer = super::shared::try_read(shared, &run, &mut prepared, session, via).await;
            if let Some(answer) = answer {
                to_client(client_out, &answer.into_bytes()).await?;
                continue;
            }
        }
        let mut frames = Vec::new();
        frame::each_frame(&run, |kind, bytes| frames.push((kind, bytes.len())));
        // A text read alone in its run, in an idle session, may go to a shared connection.
        let may_share = frames.len() == 1 && !extended && !settings_changed && pending.idle();
        let mut shared_answer = None;
        let mut out = BytesMut::with_capacity(run.len());
        let mut terminate = false;
        let mut at = 0;
        for (kind, len) in frames {
            let bytes = &run[at..at + len];
            at += len;
            if kind == b'X' {
                terminate = true;
                break;
            }
            match kind {
                b'P' | b'B' | b'D' | b'E' | b'C' | b'H' => extended = true,
                b'S' => extended = false,
                _ => {}
            }
            match kind {
                b'Q' => {
                    let mut frame = BytesMut::from(bytes);
                    let query: Query = frame::decode(&mut frame)?;
                    // Between a client's Parse and its Sync the extended protocol's unnamed
                    // portal and error skipping are the client's: no parameters then.
                    let answer =
                        guarded_text(shared, &mut access, identity, &query.query, !extended).await;
                    let answer = match answer {
                        Ok(TextAnswer::Bound(bound, filler)) => {
                            if may_share {
                                shared_answer =
                                    super::shared::try_text_read(shared, &bound, via).await;
                                if shared_answer.is_some() {
                                    continue;
                                }
                            }
                            {
                                let mut statements = crate::lock(&pending.statements);
                                if let Some(mut run) = statements.frames(&bound, &mut out) {
                                    run.batch = pending.sent.fetch_add(1, Ordering::Relaxed);
                                    crate::lock(&pending.translated).push_back(run);
                                    continue;
                                }
                            }
                            match filler.read() {
                                Some(read) => Ok(vec![read]),
                                None => {
                                    guarded(shared, &mut access, identity, &query.query, false)
                                        .await
                                }
                            }
                        }
                        Ok(TextAnswer::Statements(list)) => {
                            settings_changed |=
                                list.iter().any(|g| g.kind == StatementKind::Session);
                            if list.iter().any(|g| deallocates(&g.sql)) {
                                crate::lock(&pending.statements).forget_all();
                            }
                            Ok(list)
                        }
                        Err(e) => Err(e),
                    };
                    let answer = match (answer, access.generation()) {
                        (Ok(list), Some(id)) => prepared.sql_level(list, id),
                        (other, _) => other,
                    };
                    let sql = match answer {
                        // Nothing but comments and blanks, as the guard reads it: the database
                        // gets an empty string, not the text, which it might read otherwise.
                        Ok(list) if list.is_empty() => String::new(),
                        Ok(list) => list
                            .iter()
                            .map(|g| g.sql.as_str())
                            .collect::<Vec<_>>()
                            .join(";\n"),
                        Err(e) => refuse(pending, e),
                    };
                    encode(&Query::new(sql), &mut out);
                    pending.sent.fetch_add(1, Ordering::Relaxed);
                }
                b'P' => {
                    let mut frame = BytesMut::from(bytes);
                    let parse: Parse = frame::decode(&mut frame)?;
                    let name = parse.name.clone().unwrap_or_default();
                    prepared.protocol.remove(&name);
                    let answer = if name.starts_with(bound::PREFIX) {
                        Err(GuardError::not_allowed("this statement name"))
                    } else {
                        guarded(shared, &mut access, identity, &parse.query, true).await
                    };
                    let sql = match answer {
                        Ok(list) if list.is_empty() => String::new(),
                        Ok(mut list) if list.len() == 1 => {
                            let guarded = list.remove(0);
                            settings_changed |= guarded.kind == StatementKind::Session;
                            crate::lock(&pending.parameter_types).remove(&name);
                            if let Some(generation) = access.generation() {
                                let statement = Statement {
                                    text: parse.query.clone(),
                                    rewrite: guarded.sql.as_str().into(),
                                    shareable: guarded.kind == StatementKind::Read
                                        && guarded.deferred.is_none(),
                                    generation,
                                    deferred: guarded.deferred,
                                    types: parse.type_oids.clone(),
                                };
                                prepared.protocol.insert(name, statement);
                            }
                            guarded.sql
                        }
                        Ok(_) => refuse(
                            pending,
                            GuardError {
                                code: "42601",
                                message:
                                    "cannot insert multiple commands into a prepared statement"
                                        .into(),
                            },
                        ),
                        Err(e) => refuse(pending, e),
                    };
                    encode(&Parse::new(parse.name, sql, parse.type_oids), &mut out);
                }
                b'S' => {
                    out.extend_from_slice(bytes);
                    pending.sent.fetch_add(1, Ordering::Relaxed);
                }
                b'B' => {
                    let statement = bind_statement(bytes);
                    if prepared
                        .protocol
                        .get(&statement)
                        .is_some_and(|s| deallocates(&s.rewrite))
                    {
                        crate::lock(&pending.statements).forget_all();
                    }
                    let checked = match prepared
                        .recheck(shared, &mut access, identity, &statement)
                        .await
                    {
                        Ok(()) => {
                            prepared
                                .check_bind(
                                    shared,
                                    &mut access,
                                    identity,
                                    &statement,
                                    bytes,
                                    &pending.parameter_types,
                                )
                                .await
                        }
                        Err(e) => Err(e),
                    };
                    match checked {
                        Ok(()) => out.extend_from_slice(bytes),
                        Err(e) => {
                            let sql = refuse(pending, e);
                            encode(&Parse::new(None, sql, vec![]), &mut out);
                        }
                    }
                }
                b'C' => {
                    if bytes.get(5) == Some(&b'S') {
                        let mut name = BytesMut::from(&bytes[6..]);
                        prepared
                            .protocol
                            .remove(&cstr(&mut name).unwrap_or_default());
                    }
                    out.extend_from_slice(bytes);
                }
                b'D' => {
                    // The database's ParameterDescription answers a statement's Describe.
                    if bytes.get(5) == Some(&b'S') {
                        let mut name = BytesMut::from(&bytes[6..]);
                        let name = cstr(&mut name).unwrap_or_default();
                        let batch = pending.sent.load(Ordering::Relaxed);
                        crate::lock(&pending.described).push_back((batch, name));
                    }
                    out.extend_from_slice(bytes);
                }
                b'E' | b'H' => out.extend_from_slice(bytes),
                b'F' => {
                    let sql = refuse(
                        pending,
                        GuardError::not_allowed("the function call message"),
                    );
                    encode(&Query::new(sql), &mut out);
                    pending.sent.fetch_add(1, Ordering::Relaxed);
                }
                // COPY data outside COPY, passwords after login, unknown messages: the
                // client is not speaking the protocol; the session ends.
                _ => return Err(frame::invalid("unexpected message from a guarded client")),
            }
        }
        if !out.is_empty() {
            upstream.write_all(&out).await?;
        }
        if let Some(answer) = shared_answer {
            to_client(client_out, &answer.into_bytes()).await?;
        }
        if terminate {
            return Ok(true);
        }
    }
}

/// Whether a guarded statement drops prepared statements (`DEALLOCATE name` or `ALL`): the
/// session's own may be among them.
fn deallocates(sql: &str) -> bool {
    sql.get(..10)
        .is_some_and(|head| head.eq_ignore_ascii_case("DEALLOCATE"))
}

/// Queues the guard's error for the current response batch and returns the statement that
/// makes the database fail in its place.
fn refuse(pending: &Pending, error: GuardError) -> String {
    let batch = pending.sent.load(Ordering::Relaxed);
    crate::lock(&pending.refusals).push_back((batch, error));
    REFUSED.to_string()
}

/// Database to client, as bytes; only an error answering a refused statement is replaced.
/// An admin's session has nothing refused or translated: its answers are only counted.
async fn forward_responses<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    upstream: &mut FrameReader<R>,
    client: &tokio::sync::Mutex<W>,
    pending: &Pending,
    admin: bool,
) -> std::io::Result<()> {
    loop {
        let Some(run) = upstream.frames().await? else {
            return Ok(());
        };
        if admin {
            let mut done = 0;
            frame::each_frame(&run, |kind, _| done += u64::from(kind == b'Z'));
            pending.answered.fetch_add(done, Ordering::Relaxed);
            to_client(client, &run).await?;
            continue;
        }
        let has_refusals = !crate::lock(&pending.refusals).is_empty()
            || !crate::lock(&pending.translated).is_empty();
        if !has_refusals {
            frame::each_frame(&run, |kind, bytes| match kind {
                b'Z' => {
                    pending.ready(bytes);
                }
                b't' => pending.note_types(bytes),
                _ => {}
            });
            to_client(client, &run).await?;
            continue;
        }
        let mut out = BytesMut::with_capacity(run.len());
        frame::each_frame(&run, |kind, bytes| {
            let batch = pending.answered.load(Ordering::Relaxed);
            if translated_frame(pending, batch, kind, bytes) {
                return;
            }
            match kind {
                b'E' => {
                    let mut refusals = crate::lock(&pending.refusals);
                    if refusals.front().is_some_and(|(b, _)| *b == batch) {
                        if let Some((_, e)) = refusals.pop_front() {
                            out.extend_from_slice(&error_response("ERROR", e.code, &e.message));
                        }
                        return;
                    }
                    out.extend_from_slice(bytes);
                }
                b't' => {
                    pending.note_types(bytes);
                    out.extend_from_slice(bytes);
                }
                b'Z' => {
                    let done = pending.ready(bytes);
                    let mut refusals = crate::lock(&pending.refusals);
                    while refusals.front().is_some_and(|(b, _)| *b < done) {
                        refusals.pop_front();
                    }
                    let mut translated = crate::lock(&pending.translated);
                    while translated.front().is_some_and(|t| t.batch < done) {
                        translated.pop_front();
                    }
                    out.extend_from_slice(bytes);
                }
                _ => out.extend_from_slice(bytes),
            }
        });
        to_client(client, &out).await?;
    }
}

/// Writes `bytes` to the client, whose write half the database's answers and the shared
/// reads' answers take turns at.
async fn to_client<W: AsyncWrite + Unpin>(
    client: &tokio::sync::Mutex<W>,
    bytes: &[u8],
) -> std::io::Result<()> {
    let mut client = client.lock().await;
    client.write_all(bytes).await?;
    client.flush().await
}

/// Takes the extended protocol's acknowledgements out of the answer to a translated read
/// (`true`: the frame is dropped), and keeps the session's statements in step with what
/// the database did: a Parse acknowledged, or failed, or a statement found gone.
fn translated_frame(pending: &Pending, batch: u64, kind: u8, bytes: &[u8]) -> bool {
    let mut translated = crate::lock(&pending.translated);
    let Some(run) = translated.front_mut().filter(|t| t.batch == batch) else {
        return false;
    };
    match kind {
        b'1' => {
            run.parsing = false;
            crate::lock(&pending.statements).ready(&run.name);
            true
        }
        b'2' | b'3' => true,
        b'E' => {
            if run.parsing || bound::statement_gone(bytes) {
                run.parsing = false;
                crate::lock(&pending.statements).forget(&run.name);
            }
            false
        }
        _ => false,
    }
}
