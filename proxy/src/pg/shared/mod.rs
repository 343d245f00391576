//! Guarded autocommit reads of many sessions, pipelined over a few upstream connections
//! (`PG_PROXY_SHARED_READS`). Through a proxy every read costs a wake-up at each hop; a
//! session's own upstream connection wakes its backend once per read. Reads sent one after
//! another on a shared connection are read by the backend in batches and answered without
//! sleeping in between, which is what the prepared `pgbench -S` through a proxy is short of.
//!
//! Only what cannot tell the connections apart goes here: a Bind/Execute/Sync of a read the
//! guard rewrote, with no deferred checks, in a session with no transaction open and no
//! setting changed since its startup (connections are kept per set of startup settings).
//! Each request ends with its own Sync, so an error in one skips nothing of the next.
//! A read that keeps a shared connection busy for long (`PG_PROXY_SHARED_READ_TIME`) is
//! sent on the sessions' own connections for a while ([`SLOW_FOR`]), so it seldom delays
//! the others. A client's cancel request ends its session's wait for a shared read, and
//! the read is skipped or cancelled on its connection ([`requests`]).

use std::collections::HashMap;
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use pgwire::messages::extendedquery::Parse;
use tokio::io::AsyncWriteExt;
use tokio::sync::{mpsc, oneshot};

use super::bound::PREFIX;
use super::cancel::Target;
use super::frame::{FrameReader, each_frame, encode};
use super::upstream::Upstream;
use crate::UpstreamConfig;
use crate::lines::Lines;
use crate::slow::{LARGE, SlowReads};
use crate::watchdog::{self, Clock};

/// How many statements one shared connection keeps prepared; reads of others are parsed
/// each time (unnamed statement).
const KEPT: usize = 4096;

/// Requests written in one go at most.
const BATCH: usize = 64;

/// One read to run on a shared connection.
pub(super) struct Request {
    /// The guard's rewrite and the parameter types the client's Parse gave it.
    pub statement: Arc<str>,
    pub types: Vec<u32>,
    /// The client's Bind frame from the statement name's terminator on (parameters and
    /// formats), and the frames after the Bind (Describe, Execute, Sync) as they came.
    pub bind_rest: Bytes,
    pub tail: Bytes,
    /// A client's text query: its answer is the simple protocol's, without BindComplete.
    pub text: bool,
    pub answer: oneshot::Sender<BytesMut>,
    /// Set when the session stops waiting (its client cancelled).
    pub gone: Arc<AtomicBool>,
}

/// The shared connections, by the settings their sessions started with.
pub(super) struct SharedReads {
    config: UpstreamConfig,
    lines: Lines<String, Line>,
    /// Timed against `PG_PROXY_SHARED_READ_TIME`.
    slow: SlowReads,
}

#[derive(Clone)]
struct Line {
    requests: mpsc::UnboundedSender<Request>,
    /// Weak: the line is gone when its reader and writer are.
    clock: std::sync::Weak<Clock>,
}

impl crate::lines::Line for Line {
    fn is_closed(&self) -> bool {
        self.requests.is_closed()
    }
}

impl SharedReads {
    /// `None` when `connections` is 0 (the feature is off).
    pub(super) fn new(
        config: UpstreamConfig,
        connections: usize,
        slow_time: Duration,
    ) -> Option<Self> {
        (connections > 0).then(|| SharedReads {
            config,
            lines: Lines::new(connections),
            slow: SlowReads::new(slow_time),
        })
    }

    /// Whether `statement` kept a connection busy lately.
    pub(super) fn is_slow(&self, statement: &str) -> bool {
        self.slow.is_slow(statement)
    }

    /// Sends `request` on a shared connection of the sessions started with `settings` (the
    /// `SET`s that ran at startup), connecting one when needed; the answer comes through the
    /// request's channel; the connection's clock, to tell it when the request is given up.
    /// `Err` gives the request back when no connection can take it.
    async fn send(
        &self,
        settings: &str,
        request: Request,
    ) -> Result<std::sync::Weak<Clock>, Request> {
        let Some(line) = self.lines.get(settings, || self.connect(settings)).await else {
            return Err(request);
        };
        line.requests.send(request).map_err(|e| e.0)?;
        Ok(line.clock)
    }

    /// A new connection started with `settings`; failures are logged.
    async fn connect(&self, settings: &str) -> Option<Line> {
        let mut upstream = match Upstream::connect(&self.config).await {
            Ok(upstream) => upstream,
            Err(e) => {
                tracing::warn!(error = %e, "wire: no shared read connection");
                return None;
            }
        };
        if !settings.is_empty()
            && let Err(e) = upstream.run(settings).await
        {
            tracing::warn!(error = %e, "wire: a shared read connection could not start");
            return None;
        }
        let target = Target::of(&self.config, &upstream);
        Some(start(upstream, target, self.slow.clone()))
    }
}

/// What the reader needs to turn the database's answer into the client's.
struct Sink {
    /// Drop BindComplete: the client sent a text query.
    text: bool,
    answer: oneshot::Sender<BytesMut>,
    /// A Parse went first: its ParseComplete is dropped, or its error forgets the name.
    parsed: Option<Arc<str>>,
    statement: Arc<str>,
    sent: Instant,
    /// Its answer passed [`LARGE`].
    large: bool,
    /// Stopped by a cancel ([`crate::watchdog`]).
    cancelled: bool,
}

/// Statements prepared on one shared connection, by rewrite and parameter types.
#[derive(Default)]
struct Kept {
    names: HashMap<Arc<str>, Vec<(Vec<u32>, String)>>,
    kept: usize,
    count: u64,
}

impl Kept {
    /// The name `statement` runs under and whether it must be parsed first; the unnamed
    /// statement (parsed each time) once [`KEPT`] are kept.
    fn name(&mut self, statement: &Arc<str>, types: &[u32]) -> (String, bool) {
        let known = self
            .names
            .get(&**statement)
            .and_then(|list| list.iter().find(|(t, _)| t == types));
        if let Some((_, name)) = known {
            return (name.clone(), false);
        }
        if self.kept >= KEPT {
            return (String::new(), true);
        }
        self.count += 1;
        self.kept += 1;
        let name = format!("{PREFIX}shared_{}", self.count);
        self.names
            .entry(statement.clone())
            .or_default()
            .push((types.to_vec(), name.clone()));
        (name, true)
    }

    /// A Parse of `name` failed: the name was never defined.
    fn forget(&mut self, name: &str) {
        for list in self.names.values_mut() {
            let before = list.len();
            list.retain(|(_, n)| n != name);
            self.kept -= before - list.len();
        }
        self.names.retain(|_, list| !list.is_empty());
    }
}

fn start(upstream: Upstream, target: Target, slow: SlowReads) -> Line {
    let (requests, receiver) = mpsc::unbounded_channel();
    let (sinks, sink_receiver) = mpsc::unbounded_channel();
    let prepared = Arc::new(Mutex::new(Kept::default()));
    let clock = Clock::new();
    let limit = slow.limit().saturating_mul(watchdog::OVERDUE_FACTOR);
    let weak = Arc::downgrade(&clock);
    let cancel = move || {
        let target = target.clone();
        async move { super::cancel::send(&target).await }
    };
    tokio::spawn(watchdog::watch(weak.clone(), cancel, limit));
    let Upstream { reader, writer, .. } = upstream;
    let line = (prepared.clone(), clock.clone());
    tokio::spawn(write_requests(receiver, writer, sinks, line));
    let line = (prepared, clock);
    tokio::spawn(async move {
        if let Err(e) = read_answers(reader, sink_receiver, line, slow).await {
            tracing::warn!(error = %e, "wire: a shared read connection failed");
        }
    });
    Line {
        requests,
        clock: weak,
    }
}

async fn write_requests(
    mut requests: mpsc::UnboundedReceiver<Request>,
    mut upstream: crate::endpoint::UpstreamWrite,
    sinks: mpsc::UnboundedSender<Sink>,
    (prepared, clock): (Arc<Mutex<Kept>>, Arc<Clock>),
) {
    let mut batch = Vec::with_capacity(BATCH);
    let mut out = BytesMut::with_capacity(16 * 1024);
    while requests.recv_many(&mut batch, BATCH).await > 0 {
        out.clear();
        batch.retain(|request| !watchdog::is_gone(&request.gone));
        clock.writing(batch.iter().map(|request| request.gone.clone()));
        for request in batch.drain(..) {
            let (name, parse) = crate::lock(&prepared).name(&request.statement, &request.types);
            if parse {
                let parse = Parse::new(
                    Some(name.clone()),
                    request.statement.to_string(),
                    request.types.clone(),
                );
                encode(&parse, &mut out);
            }
            let len = 4 + 1 + name.len() + request.bind_rest.len();
            out.put_u8(b'B');
            out.put_i32(len as i32);
            out.put_u8(0); // the unnamed portal
            out.put_slice(name.as_bytes());
            out.put_slice(&request.bind_rest);
            out.put_slice(&request.tail);
            let sink = Sink {
                text: request.text,
                answer: request.answer,
                parsed: (parse && !name.is_empty()).then(|| Arc::from(name.as_str())),
                statement: request.statement,
                sent: Instant::now(),
                large: false,
                cancelled: false,
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
    mut upstream: FrameReader<crate::endpoint::UpstreamRead>,
    mut sinks: mpsc::UnboundedReceiver<Sink>,
    (prepared, clock): (Arc<Mutex<Kept>>, Arc<Clock>),
    slow: SlowReads,
) -> std::io::Result<()> {
    // The request being answered, what it has so far, and whether its first frame came.
    let mut current: Option<(Sink, BytesMut, bool)> = None;
    let mut last_done = Instant::now();
    loop {
        let Some(run) = upstream.frames().await? else {
            return Ok(());
        };
        let mut failure = None;
        each_frame(&run, |kind, bytes| {
            if failure.is_some() {
                return;
            }
            if current.is_none() {
                match sinks.try_recv() {
                    Ok(sink) => current = Some((sink, BytesMut::new(), false)),
                    Err(_) => {
                        failure = Some("an answer to no request");
                        return;
                    }
                }
            }
            let Some((sink, answer, started)) = current.as_mut() else {
                return;
            };
            let first = !std::mem::replace(started, true);
            if kind == b'E' && is_cancel(bytes) {
                sink.cancelled = true;
            }
            match kind {
                // ParseComplete and CloseComplete: the session never sent those messages.
                b'1' | b'3' => {}
                b'2' if sink.text => {}
                b'E' if first && sink.parsed.is_some() => {
                    // The Parse failed: the name was never defined.
                    if let Some(name) = &sink.parsed {
                        crate::lock(&prepared).forget(name);
                    }
                    answer.extend_from_slice(bytes);
                }
                b'Z' => {
                    answer.extend_from_slice(bytes);
                    let now = Instant::now();
                    clock.answered();
                    if let Some((sink, answer, _)) = current.take() {
                        let took = now.duration_since(sink.sent.max(last_done));
                        if sink.cancelled {
                            // Dropped unanswered: the session runs it on its own connection.
                            slow.mark(&sink.statement, now);
                        } else {
                            slow.ran(&sink.statement, took, now);
                            let _ = sink.answer.send(answer);
                        }
                    }
                    last_done = now;
                }
                _ => {
                    answer.extend_from_slice(bytes);
                    if answer.len() > LARGE && !sink.large {
                        sink.large = true;
                        slow.mark(&sink.statement, Instant::now());
                    }
                }
            }
        });
        if let Some(why) = failure {
            return Err(super::frame::invalid(why));
        }
    }
}

mod requests;
#[cfg(test)]
mod tests;

pub(super) use requests::{Answer, Via, one_execution, run_execution, try_read, try_text_read};

/// Whether an ErrorResponse frame says the statement was cancelled (`57014`).
fn is_cancel(frame: &[u8]) -> bool {
    let mut fields = frame.get(5..).unwrap_or_default();
    while let Some((&kind, rest)) = fields.split_first() {
        if kind == 0 {
            return false;
        }
        let Some(end) = rest.iter().position(|b| *b == 0) else {
            return false;
        };
        if kind == b'C' {
            return &rest[..end] == b"57014";
        }
        fields = &rest[end + 1..];
    }
    false
}
