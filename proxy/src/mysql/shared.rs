//! Guarded sessions' reads pipelined over shared upstream connections
//! (`MYSQL_PROXY_SHARED_READS`), as on the PostgreSQL endpoint ([`crate::pg`]): a text read
//! the guard bound ([`super::bound`]) runs there as `EXECUTE … USING`, and an execute of a
//! client's prepared read as `COM_STMT_EXECUTE` of the same rewrite prepared there, when
//! its session has no transaction open, autocommit on and no setting changed, so nothing
//! of the session's own can change its answer. MariaDB reads the commands sent one after another on a
//! connection without sleeping in between; each session's own connection would wake its
//! thread once per read. Connections are kept per shape of answers (the client's
//! capabilities), each set up as guarded sessions' are. Reads found slow go back to the
//! sessions' own connections ([`crate::slow`]); one still running long is stopped with
//! `KILL QUERY` ([`crate::watchdog`]) and runs again on its session's own connection.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use rectus_policies::guard::template::Bound;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::bound::TextStatements;
use super::packet::{self, PacketReader};
use super::protocol::{Expect, Response, command};
use super::upstream::{ServerInfo, Upstream};
use crate::UpstreamConfig;
use crate::endpoint::{UpstreamRead, UpstreamWrite};
use crate::lines::Lines;
use crate::slow::{LARGE, SlowReads};
use crate::watchdog::{self, Clock};

/// Requests written in one go at most.
const BATCH: usize = 64;

/// `ER_QUERY_INTERRUPTED`: what a statement stopped by `KILL QUERY` answers.
const QUERY_INTERRUPTED: u16 = 1317;

/// A read's answer from a shared connection: its packets, numbered from 1, warning counts
/// zeroed.
pub(super) struct Answer {
    pub packets: BytesMut,
    /// A count was not zero.
    pub warned: bool,
}

/// What tells shared connections apart: the shape of answers the client's capabilities ask
/// for, and the character set of an admin's client ([`super::upstream::charset_name`];
/// `None`, UTF-8, for guarded sessions).
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub(super) struct LineKey {
    shaping: u32,
    charset: Option<&'static str>,
}

impl LineKey {
    /// The kind of shared connection that answers as `upstream` does, for a client reading
    /// `charset`.
    pub(super) fn of(upstream: &Upstream, charset: Option<&'static str>) -> LineKey {
        LineKey {
            shaping: upstream.capabilities & super::protocol::caps::SESSION_SHAPING,
            charset,
        }
    }
}

/// A read for a shared connection.
pub(super) enum Read {
    /// A text read, run as `EXECUTE … USING` ([`TextStatements`]).
    Text(Bound),
    /// A client's prepared statement: the guard's rewrite, and the execute command from
    /// its flags on, with the parameter types bound ([`super::params::with_types`]).
    Binary { sql: Arc<str>, execute: Bytes },
}

impl Read {
    fn sql(&self) -> &str {
        match self {
            Read::Text(bound) => &bound.sql,
            Read::Binary { sql, .. } => sql,
        }
    }

    /// Its statement, for timing; a prepared statement's is shared, not copied.
    fn statement(&self) -> Arc<str> {
        match self {
            Read::Text(bound) => Arc::from(bound.sql.as_str()),
            Read::Binary { sql, .. } => sql.clone(),
        }
    }
}

struct Request {
    read: Read,
    /// The statement it runs, as timed ([`SlowReads`]).
    statement: Arc<str>,
    answer: oneshot::Sender<Answer>,
}

/// What one shared connection has prepared.
#[derive(Default)]
struct Statements {
    text: TextStatements,
    /// Client statements' rewrites prepared with `COM_STMT_PREPARE`, by their id here.
    binary: HashMap<Arc<str>, u32>,
    /// Ids to close before the next commands: a statement prepared twice (a second
    /// request came before the first one's id), or one more than [`KEPT_BINARY`].
    closing: Vec<u32>,
}

/// How many client statements one shared connection keeps prepared.
const KEPT_BINARY: usize = 256;

/// `COM_STMT_EXECUTE` of the statement prepared last on the connection (MariaDB), so a
/// statement's execute follows its prepare without waiting for its id.
const LAST_PREPARED: u32 = u32::MAX;

#[derive(Clone)]
struct Line {
    requests: mpsc::UnboundedSender<Request>,
}

impl crate::lines::Line for Line {
    fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

pub(super) struct SharedReads {
    config: UpstreamConfig,
    lines: Lines<LineKey, Line>,
    /// Timed against `MYSQL_PROXY_SHARED_READ_TIME`.
    slow: SlowReads,
}

impl SharedReads {
    /// `None` when `connections` is 0 (the feature is off).
    pub(super) fn new(
        config: UpstreamConfig,
        connections: usize,
        slow_time: Duration,
    ) -> Option<SharedReads> {
        (connections > 0).then(|| SharedReads {
            config,
            lines: Lines::new(connections),
            slow: SlowReads::new(slow_time),
        })
    }

    /// Runs `read` on a shared connection of the kind `key`: the answer, or `None` to run
    /// it on the session's own connection (no connection could take it, it was lost, the
    /// read failed there, or it keeps a connection busy long).
    pub(super) async fn run(&self, key: LineKey, info: &ServerInfo, read: Read) -> Option<Answer> {
        if self.slow.is_slow(read.sql()) {
            return None;
        }
        let line = self.lines.get(&key, || self.connect(key, info)).await?;
        let (answer, receiver) = oneshot::channel();
        let request = Request {
            statement: read.statement(),
            read,
            answer,
        };
        line.requests.send(request).ok()?;
        receiver.await.ok()
    }

    /// A new connection of the kind `key`, set up as guarded sessions' are (the statements
    /// run there are printed for them); failures are logged.
    async fn connect(&self, key: LineKey, info: &ServerInfo) -> Option<Line> {
        let mut upstream = match Upstream::connect(&self.config, key.shaping).await {
            Ok(upstream) => upstream,
            Err(e) => {
                tracing::warn!(error = %e, "MySQL wire: no shared read connection");
                return None;
            }
        };
        let mut setup = upstream.guard_session(info).await;
        if let (Ok(()), Some(charset)) = (&setup, key.charset) {
            setup = upstream
                .run(&format!("SET NAMES {charset}"))
                .await
                .map(|_| ());
        }
        if let Err(e) = setup {
            tracing::warn!(error = ?e, "MySQL wire: a shared read connection could not start");
            return None;
        }
        Some(start(upstream, self.slow.clone(), &self.config))
    }
}

/// A prepare sent ahead of a request's read.
enum Prepared {
    /// `PREPARE`: failed, the statement is forgotten.
    Text(Bound),
    /// `COM_STMT_PREPARE` of this rewrite: its id is kept.
    Binary(Arc<str>),
}

/// What the reader needs for the answer to one request.
struct Sink {
    /// A prepare went first: its answer is dropped.
    prepared: Option<Prepared>,
    answer: oneshot::Sender<Answer>,
    statement: Arc<str>,
    sent: Instant,
}

fn start(upstream: Upstream, slow: SlowReads, config: &UpstreamConfig) -> Line {
    let (requests, receiver) = mpsc::unbounded_channel();
    let (sinks, sink_receiver) = mpsc::unbounded_channel();
    let statements = Arc::new(Mutex::new(Statements::default()));
    let clock = Clock::new();
    let limit = slow.limit().saturating_mul(watchdog::OVERDUE_FACTOR);
    let (config, thread) = (config.clone(), upstream.thread);
    let kill = move || {
        let config = config.clone();
        async move { kill_query(&config, thread).await }
    };
    tokio::spawn(watchdog::watch(Arc::downgrade(&clock), kill, limit));
    let Upstream {
        reader,
        writer,
        capabilities,
        ..
    } = upstream;
    let line = (statements.clone(), clock.clone());
    tokio::spawn(write_requests(receiver, writer, sinks, line));
    tokio::spawn(async move {
        let line = (statements, clock, capabilities);
        if let Err(e) = read_answers(reader, sink_receiver, line, slow).await {
            tracing::warn!(error = %e, "MySQL wire: a shared read connection failed");
        }
    });
    Line { requests }
}

/// Stops what the connection `thread` runs, from a connection of its own.
async fn kill_query(config: &UpstreamConfig, thread: u32) {
    let outcome = match Upstream::connect(config, 0).await {
        Ok(mut upstream) => {
            let killed = upstream.run(&format!("KILL QUERY {thread}")).await;
            let _ = upstream.send(&[command::QUIT]).await;
            killed.map(|_| ())
        }
        Err(e) => Err(e),
    };
    if let Err(e) = outcome {
        tracing::warn!(error = %e, "MySQL wire: cannot stop a long shared read");
    }
}

async fn write_requests(
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut upstream: UpstreamWrite,
    sinks: mpsc::UnboundedSender<Sink>,
    (statements, clock): (Arc<Mutex<Statements>>, Arc<Clock>),
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = BytesMut::with_capacity(16 * 1024);
    let mut command_text = BytesMut::new();
    while requests.recv_many(&mut batch, BATCH).await > 0 {
        out.clear();
        // No session gives up a read here yet: only the time limit cancels one.
        clock.writing(batch.iter().map(|_| Arc::default()));
        // Closing has no answer, so the answers still follow the requests.
        for id in std::mem::take(&mut crate::lock(&statements).closing) {
            command_text.clear();
            command_text.put_u8(command::STMT_CLOSE);
            command_text.put_u32_le(id);
            packet::frame(&mut out, 0, &command_text);
        }
        for request in batch.drain(..) {
            let prepared = match request.read {
                Read::Text(bound) => {
                    let run = crate::lock(&statements).text.run(&bound);
                    let prepared = run.prepare.is_some();
                    for sql in run.prepare.iter().chain(std::iter::once(&run.execute)) {
                        command_text.clear();
                        command_text.put_u8(command::QUERY);
                        command_text.extend_from_slice(sql.as_bytes());
                        packet::frame(&mut out, 0, &command_text);
                    }
                    prepared.then_some(Prepared::Text(bound))
                }
                Read::Binary { sql, execute } => {
                    let known = crate::lock(&statements).binary.get(&sql).copied();
                    if known.is_none() {
                        command_text.clear();
                        command_text.put_u8(command::STMT_PREPARE);
                        command_text.extend_from_slice(sql.as_bytes());
                        packet::frame(&mut out, 0, &command_text);
                    }
                    command_text.clear();
                    command_text.put_u8(command::STMT_EXECUTE);
                    command_text.put_u32_le(known.unwrap_or(LAST_PREPARED));
                    command_text.extend_from_slice(&execute);
                    packet::frame(&mut out, 0, &command_text);
                    known.is_none().then_some(Prepared::Binary(sql))
                }
            };
            let sink = Sink {
                prepared,
                answer: request.answer,
                statement: request.statement,
                sent: Instant::now(),
            };
            if sinks.send(sink).is_err() {
                return;
            }
        }
        if upstream.write_all(&out).await.is_err() {
            return;
        }
    }
}

async fn read_answers(
    mut upstream: PacketReader<UpstreamRead>,
    mut sinks: mpsc::UnboundedReceiver<Sink>,
    (statements, clock, capabilities): (Arc<Mutex<Statements>>, Arc<Clock>, u32),
    slow: SlowReads,
) -> std::io::Result<()> {
    let mut last_done = Instant::now();
    loop {
        let Some(mut sink) = sinks.recv().await else {
            return Ok(());
        };
        // The prepare failed: the execute of "the statement prepared last" could have run
        // another one.
        let mut unprepared = false;
        match sink.prepared.take() {
            Some(Prepared::Text(bound)) => {
                let (prepare, ..) =
                    read_answer(&mut upstream, Expect::Results, capabilities).await?;
                if prepare.failed {
                    crate::lock(&statements).text.forget(&bound);
                }
            }
            Some(Prepared::Binary(sql)) => {
                let (prepare, ..) =
                    read_answer(&mut upstream, Expect::Prepare, capabilities).await?;
                unprepared = prepare.failed;
                if let Some(id) = prepare.statement {
                    let mut statements = crate::lock(&statements);
                    if statements.binary.len() >= KEPT_BINARY
                        || statements.binary.contains_key(&sql)
                    {
                        statements.closing.push(id);
                    } else {
                        statements.binary.insert(sql, id);
                    }
                }
            }
            None => {}
        }
        let (execute, packets, warned) =
            read_answer(&mut upstream, Expect::Results, capabilities).await?;
        clock.answered();
        // From its sending or the answer before it, whichever came later: how long it
        // kept the connection busy.
        let now = Instant::now();
        // Stopped by `KILL QUERY`: the watchdog's doing, or, should it come late, that of
        // the read before.
        let interrupted = execute.failed && execute.error == Some(QUERY_INTERRUPTED);
        if packets.len() > LARGE || interrupted {
            slow.mark(&sink.statement, now);
        } else {
            slow.ran(
                &sink.statement,
                now.duration_since(sink.sent.max(last_done)),
                now,
            );
        }
        last_done = now;
        // An error is the session's own connection's to give (a statement that could not
        // be prepared is unknown here, for one).
        if !execute.failed && !unprepared {
            let _ = sink.answer.send(Answer { packets, warned });
        }
    }
}

/// One whole answer, warning counts zeroed as on a guarded session's own connection, and
/// whether one was not zero.
async fn read_answer(
    upstream: &mut PacketReader<UpstreamRead>,
    expect: Expect,
    capabilities: u32,
) -> std::io::Result<(Response, BytesMut, bool)> {
    let mut response = Response::new(expect, capabilities);
    let mut packets = BytesMut::new();
    let mut warned = false;
    while !response.done() {
        let Some(mut part) = upstream.part().await? else {
            return Err(packet::invalid("the database closed the connection"));
        };
        warned |= response.feed_guarded(&mut part).map_err(packet::invalid)?;
        packets.extend_from_slice(&part);
    }
    Ok((response, packets, warned))
}

/// Numbers an answer's packets from `seq`, following the client's command.
pub(super) fn renumber(packets: &mut BytesMut, mut seq: u8) {
    let mut at = 0;
    while at + 4 <= packets.len() {
        packets[at + 3] = seq;
        seq = seq.wrapping_add(1);
        at += 4 + packet::part_len(&packets[at..at + 3]);
    }
}
