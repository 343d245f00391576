//! The guarded command loop: each command is checked, rewritten where it carries SQL, sent
//! to the database, and its answer relayed packet by packet (renumbered to follow the
//! client's command) before the next command is read. Refused commands are answered with
//! an ERR packet and never reach the database; commands without SQL text that could reach
//! around the guard (`COM_FIELD_LIST`, `COM_CHANGE_USER`, binlog and replication commands,
//! ...) are refused.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::{BufMut, BytesMut};
use rectus_policies::guard::template::Bound;
use rectus_policies::guard::{Deferred, GuardError, Guarded, StatementKind};
use tokio::io::{AsyncWrite, AsyncWriteExt};

use super::Shared;
use super::packet::{self, Packet};
use super::params::{self, ParamType};
use super::protocol::{self, Expect, Response, caps, command};
use super::session::{Client, Hello};
use super::shared::{LineKey, Read};
use super::upstream::{Leased, ServerInfo, Upstream, UpstreamError};
use crate::guarded::{Guarding, SessionAccess, TextAnswer};
use crate::{Directory, Identity};

/// The prepared statements of a session, by the database's statement id.
#[derive(Default)]
struct Prepared(HashMap<u32, Statement>);

/// One prepared statement as the guard left it.
#[derive(Clone)]
struct Statement {
    text: String,
    rewrite: Arc<str>,
    /// The generation of the permissions it was guarded under.
    generation: u64,
    /// What the rules check in its parameters when it runs.
    deferred: Option<Deferred>,
    /// A plain read: its executes may run on a shared connection.
    read: bool,
    parameters: usize,
    /// Parameter types as last bound.
    types: Vec<ParamType>,
    /// Parameters sent in parts since it last ran (`COM_STMT_SEND_LONG_DATA`).
    long_data: bool,
}

struct Session<'a, D> {
    shared: &'a Shared<D>,
    identity: &'a Identity,
    hello: &'a Hello,
    info: &'a ServerInfo,
    access: SessionAccess,
    prepared: Prepared,
    /// A `LOCK TABLES … READ` began a read-only snapshot transaction that `UNLOCK TABLES`
    /// is to commit.
    snapshot: bool,
    /// A guarded `SET` ran or was prepared: reads stay on the session's own connection.
    settings_changed: bool,
}

/// Serves commands until the client quits (`Ok(true)`: the upstream connection is clean
/// and may be pooled) or the connection ends.
pub(super) async fn serve<D: Directory>(
    client: &mut Client,
    leased: &mut Leased,
    shared: &Shared<D>,
    identity: &Identity,
    hello: &Hello,
    info: &ServerInfo,
) -> std::io::Result<bool> {
    let mut session = Session {
        shared,
        identity,
        hello,
        info,
        access: SessionAccess::default(),
        prepared: Prepared::default(),
        snapshot: false,
        settings_changed: false,
    };
    loop {
        let Some(packet) = client.packet().await? else {
            return Ok(false);
        };
        let Some(&code) = packet.payload.first() else {
            return Err(packet::invalid("an empty command"));
        };
        if code == command::QUIT {
            return Ok(true);
        }
        let seq = packet.seq.wrapping_add(1);
        if let Err(e) = session.command(client, leased, code, packet).await {
            // The client hears why its session ends (the database lost, most often) instead
            // of finding the socket closed; io errors name no address or credentials.
            let out = protocol::err(1105, "HY000", &format!("rectus: the session ended: {e}"));
            let _ = packet::write(&mut client.stream, seq, &out).await;
            return Err(e);
        }
    }
}

impl<'a, D: Directory> Session<'a, D> {
    async fn command(
        &mut self,
        client: &mut Client,
        leased: &mut Leased,
        code: u8,
        packet: Packet,
    ) -> std::io::Result<()> {
        let seq = packet.seq.wrapping_add(1);
        let payload = packet.payload;
        let upstream = &mut leased.upstream;
        match code {
            command::QUERY => {
                let sql = match std::str::from_utf8(&payload[1..]) {
                    Ok(sql) => sql,
                    Err(_) => return refuse(client, seq, &not_utf8()).await,
                };
                let guarded = match self.guard_text(sql).await {
                    Ok(TextAnswer::Bound(bound, filler)) => {
                        let read = || Read::Text(bound.clone());
                        let own = own_state(&leased.upstream);
                        if self.shared_read(client, own, seq, read).await? {
                            return Ok(());
                        }
                        match self.run_bound(client, leased, seq, &bound).await? {
                            true => return Ok(()),
                            // Not prepared: the text goes as it is.
                            false => match filler.read() {
                                Some(read) => Ok(vec![read]),
                                None => self.guard(sql, false).await,
                            },
                        }
                    }
                    Ok(TextAnswer::Statements(list)) => Ok(list),
                    Err(e) => Err(e),
                };
                let guarded = match guarded {
                    Ok(list) => list,
                    Err(e) => return refuse(client, seq, &e).await,
                };
                let upstream = &mut leased.upstream;
                if guarded.iter().any(|g| g.kind == StatementKind::Session) {
                    upstream.statements.clear();
                    self.settings_changed = true;
                }
                let statements: Vec<&str> = guarded.iter().map(|g| self.as_sent(g)).collect();
                if statements.is_empty() {
                    let out = protocol::err(1065, "42000", "Query was empty");
                    return write(client, seq, &out).await;
                }
                if statements.len() > 1 && self.hello.capabilities & caps::MULTI_STATEMENTS == 0 {
                    let e = GuardError {
                        code: "42601",
                        message: "rectus: several statements in one query need the multi-statements option".into(),
                    };
                    return refuse(client, seq, &e).await;
                }
                let mut out = BytesMut::with_capacity(sql.len() + 64);
                out.put_u8(command::QUERY);
                out.extend_from_slice(statements.join(";\n").as_bytes());
                upstream.send(&out).await?;
                relay(&mut client.stream, leased, Expect::Results, seq)
                    .await
                    .map(|_| ())
            }
            command::STMT_PREPARE => {
                let sql = match std::str::from_utf8(&payload[1..]) {
                    Ok(sql) => sql.to_string(),
                    Err(_) => return refuse(client, seq, &not_utf8()).await,
                };
                let guarded = match self.guard(&sql, true).await {
                    Ok(list)
                        if list.iter().any(|g| {
                            matches!(g.kind, StatementKind::LockSnapshot | StatementKind::Unlock)
                        }) =>
                    {
                        // As in MySQL, which does not prepare them.
                        let e = GuardError::not_allowed(
                            "LOCK TABLES or UNLOCK TABLES as a prepared statement",
                        );
                        return refuse(client, seq, &e).await;
                    }
                    Ok(mut list) if list.len() == 1 => {
                        // Whether or when it runs, its setting may change answers.
                        self.settings_changed |= list[0].kind == StatementKind::Session;
                        list.remove(0)
                    }
                    Ok(list) if list.is_empty() => {
                        let out = protocol::err(1065, "42000", "Query was empty");
                        return write(client, seq, &out).await;
                    }
                    Ok(_) => {
                        let e = GuardError {
                            code: "42601",
                            message: "rectus: a prepared statement holds one statement".into(),
                        };
                        return refuse(client, seq, &e).await;
                    }
                    Err(e) => return refuse(client, seq, &e).await,
                };
                let mut out = BytesMut::with_capacity(guarded.sql.len() + 1);
                out.put_u8(command::STMT_PREPARE);
                out.extend_from_slice(guarded.sql.as_bytes());
                upstream.send(&out).await?;
                let response = relay(&mut client.stream, leased, Expect::Prepare, seq).await?;
                if let (Some(id), Some(generation)) = (response.statement, self.access.generation())
                {
                    let statement = Statement {
                        text: sql,
                        rewrite: guarded.sql.as_str().into(),
                        generation,
                        read: guarded.kind == StatementKind::Read && guarded.deferred.is_none(),
                        deferred: guarded.deferred,
                        parameters: response.parameters,
                        types: Vec::new(),
                        long_data: false,
                    };
                    self.prepared.0.insert(id, statement);
                }
                Ok(())
            }
            command::STMT_EXECUTE | command::STMT_SEND_LONG_DATA | command::STMT_RESET => {
                let id = statement_id(&payload);
                if let Err(e) = self.recheck(id).await {
                    if code == command::STMT_SEND_LONG_DATA {
                        // This command has no answer; the error comes with the execute.
                        return Ok(());
                    }
                    return refuse(client, seq, &e).await;
                }
                // Cursors (fetching a result in parts) are not relayed.
                if code == command::STMT_EXECUTE && payload.get(5).is_some_and(|f| f & 0x07 != 0) {
                    let e = GuardError::not_allowed("cursors on prepared statements");
                    return refuse(client, seq, &e).await;
                }
                if let Err(e) = self.check_parameters(code, id, &payload).await {
                    return refuse(client, seq, &e).await;
                }
                if code == command::STMT_EXECUTE
                    && let Some((shareable, execute)) = self.bound_execute(id, &payload)
                {
                    if let Some(sql) = shareable {
                        let read = || Read::Binary {
                            sql,
                            execute: execute.clone().freeze().split_off(5),
                        };
                        if self
                            .shared_read(client, own_state(upstream), seq, read)
                            .await?
                        {
                            return Ok(());
                        }
                    }
                    // With the types bound: they may have been bound on a shared connection.
                    let upstream = &mut leased.upstream;
                    upstream.send(&execute).await?;
                    return relay(&mut client.stream, leased, Expect::Results, seq)
                        .await
                        .map(|_| ());
                }
                if code == command::STMT_SEND_LONG_DATA
                    && let Some(statement) = id.and_then(|id| self.prepared.0.get_mut(&id))
                {
                    // The parameter is on the session's own connection.
                    statement.long_data = true;
                }
                upstream.send(&payload).await?;
                match code {
                    command::STMT_EXECUTE => {
                        relay(&mut client.stream, leased, Expect::Results, seq)
                            .await
                            .map(|_| ())
                    }
                    command::STMT_RESET => relay(&mut client.stream, leased, Expect::One, seq)
                        .await
                        .map(|_| ()),
                    _ => Ok(()),
                }
            }
            command::STMT_CLOSE => {
                if let Some(id) = statement_id(&payload) {
                    self.prepared.0.remove(&id);
                    upstream.send(&payload).await?;
                }
                Ok(())
            }
            command::INIT_DB => {
                let name = String::from_utf8_lossy(&payload[1..]).into_owned();
                let database = &self.shared.config.upstream.database;
                if !name.eq_ignore_ascii_case(database) {
                    let message = format!(
                        "Access denied for user '{}'@'{}' to database '{name}'",
                        self.hello.user,
                        self.hello.peer.ip()
                    );
                    return write(client, seq, &protocol::err(1044, "42000", &message)).await;
                }
                let mut out = BytesMut::with_capacity(database.len() + 1);
                out.put_u8(command::INIT_DB);
                out.extend_from_slice(database.as_bytes());
                upstream.send(&out).await?;
                relay(&mut client.stream, leased, Expect::One, seq)
                    .await
                    .map(|_| ())
            }
            command::PING | command::SET_OPTION => {
                upstream.send(&payload).await?;
                relay(&mut client.stream, leased, Expect::One, seq)
                    .await
                    .map(|_| ())
            }
            command::RESET_CONNECTION => {
                upstream.send(&payload).await?;
                // The reset also resets the session's sql_mode, which the guard's output
                // relies on: set it again before the client hears back.
                let mut answer = Vec::new();
                relay(&mut answer, leased, Expect::One, seq).await?;
                self.prepared.0.clear();
                leased.upstream.statements.clear();
                self.snapshot = false;
                if let Err(e) = leased.upstream.guard_session(self.info).await {
                    tracing::warn!(error = ?e, "MySQL wire session: cannot set the session up again");
                    return Err(packet::invalid("the session could not be set up again"));
                }
                client.stream.write_all(&answer).await?;
                client.stream.flush().await
            }
            other => {
                let e = GuardError::not_allowed(format!("the protocol command 0x{other:02X}"));
                refuse(client, seq, &e).await
            }
        }
    }

    /// The text sent for a guarded statement, following the snapshot a `LOCK TABLES`
    /// began: `UNLOCK TABLES` commits it; a transaction statement ends or replaces it.
    fn as_sent<'g>(&mut self, guarded: &'g Guarded) -> &'g str {
        match guarded.kind {
            StatementKind::LockSnapshot => self.snapshot = true,
            StatementKind::Unlock if std::mem::take(&mut self.snapshot) => return "COMMIT",
            StatementKind::Transaction => self.snapshot = false,
            _ => {}
        }
        guarded.sql.as_str()
    }

    fn guarding(&self) -> Guarding<'a> {
        Guarding {
            cache: &self.shared.guarded,
            templates: &self.shared.templates,
            schema_name: &self.shared.config.upstream.database,
            dialect: rectus_policies::Dialect::MySql,
        }
    }

    async fn guard(
        &mut self,
        sql: &str,
        prepared: bool,
    ) -> Result<Vec<rectus_policies::guard::Guarded>, GuardError> {
        let guarding = self.guarding();
        guarding
            .guard(
                &*self.shared.directory,
                &mut self.access,
                self.identity,
                sql,
                prepared,
            )
            .await
    }

    /// The guard's answer for a text sent as a query: a read with literals that can be
    /// parameters comes [`TextAnswer::Bound`] where the database runs it that way.
    async fn guard_text(&mut self, sql: &str) -> Result<TextAnswer, GuardError> {
        let guarding = self.guarding();
        guarding
            .guard_text(
                &*self.shared.directory,
                &mut self.access,
                self.identity,
                sql,
                self.info.binds_text_reads,
            )
            .await
    }

    /// An execute command with the parameter types bound ([`params::with_types`]), and the
    /// statement's rewrite when it may run on a shared connection: a plain read with no
    /// parameters sent in parts (they are on the session's own connection).
    fn bound_execute(
        &mut self,
        id: Option<u32>,
        payload: &[u8],
    ) -> Option<(Option<Arc<str>>, BytesMut)> {
        let statement = self.prepared.0.get_mut(&id?)?;
        let shareable = statement.read && !std::mem::take(&mut statement.long_data);
        let execute = params::with_types(payload, statement.parameters, &mut statement.types)?;
        Some((shareable.then(|| statement.rewrite.clone()), execute))
    }

    /// Runs a read on a shared connection ([`super::shared`]) when nothing of the
    /// session's own could change its answer: no transaction open on its own connection,
    /// autocommit on, no setting changed. `(idle, key)`: [`own_state`]. `true` when the
    /// client got the answer.
    async fn shared_read(
        &mut self,
        client: &mut Client,
        (idle, key): (bool, LineKey),
        seq: u8,
        read: impl FnOnce() -> Read,
    ) -> std::io::Result<bool> {
        let Some(reads) = &self.shared.reads else {
            return Ok(false);
        };
        if !idle || self.settings_changed || self.snapshot {
            return Ok(false);
        }
        let Some(mut answer) = reads.run(key, self.info, read()).await else {
            return Ok(false);
        };
        super::shared::renumber(&mut answer.packets, seq);
        client.stream.write_all(&answer.packets).await?;
        client.stream.flush().await?;
        Ok(true)
    }

    /// Runs a bound read as its prepared statement, preparing it first on this connection
    /// if needed, and relays the answer. `false` when the database did not prepare it
    /// (nothing was sent to the client).
    async fn run_bound(
        &mut self,
        client: &mut Client,
        leased: &mut Leased,
        seq: u8,
        bound: &Bound,
    ) -> std::io::Result<bool> {
        let upstream = &mut leased.upstream;
        let run = upstream.statements.run(bound);
        if let Some(prepare) = run.prepare {
            match upstream.run(&prepare).await {
                Ok(_) => {}
                Err(UpstreamError::Refused(e)) => {
                    tracing::debug!(error = %e, "MySQL wire session: a read could not be prepared");
                    upstream.statements.forget(bound);
                    return Ok(false);
                }
                Err(e) => return Err(std::io::Error::other(e.to_string())),
            }
        }
        let mut out = BytesMut::with_capacity(run.execute.len() + 1);
        out.put_u8(command::QUERY);
        out.extend_from_slice(run.execute.as_bytes());
        upstream.send(&out).await?;
        relay(&mut client.stream, leased, Expect::Results, seq).await?;
        Ok(true)
    }

    /// What a prepared write leaves to its parameters is checked with their values before
    /// it runs; parameters sent in parts cannot be, and are refused for such a statement.
    async fn check_parameters(
        &mut self,
        code: u8,
        id: Option<u32>,
        payload: &[u8],
    ) -> Result<(), GuardError> {
        let Some(statement) = id.and_then(|id| self.prepared.0.get_mut(&id)) else {
            return Ok(());
        };
        let Some(deferred) = statement.deferred.clone() else {
            return Ok(());
        };
        match code {
            command::STMT_SEND_LONG_DATA => {
                statement.long_data = true;
                return Ok(());
            }
            command::STMT_EXECUTE => {}
            _ => return Ok(()),
        }
        if std::mem::take(&mut statement.long_data) {
            return Err(GuardError::not_allowed(
                "parameters sent in parts where the permission checks values",
            ));
        }
        let values = params::decode(payload, statement.parameters, &mut statement.types)
            .ok_or_else(|| GuardError::not_allowed("parameters rectus cannot read"))?;
        let guarding = self.guarding();
        guarding
            .check(
                &*self.shared.directory,
                &mut self.access,
                self.identity,
                &deferred,
                &values,
            )
            .await
    }

    /// A prepared statement guarded under permissions that have changed since is guarded
    /// again, and refused if its rewrite would differ; unknown ids are refused.
    async fn recheck(&mut self, id: Option<u32>) -> Result<(), GuardError> {
        let Some(generation) = id
            .and_then(|id| self.prepared.0.get(&id))
            .map(|s| s.generation)
        else {
            return Err(GuardError {
                code: "HY000",
                message: "Unknown prepared statement handler given to rectus".into(),
            });
        };
        self.access
            .get(&*self.shared.directory, self.identity)
            .await?;
        let current = self.access.generation().unwrap_or(generation);
        if current == generation {
            return Ok(());
        }
        // Only a statement to guard again is copied (this runs before every execute).
        let Some(statement) = id.and_then(|id| self.prepared.0.get(&id)).cloned() else {
            return Ok(());
        };
        let again = self.guard(&statement.text, true).await?;
        let id = id.unwrap_or_default();
        match again.as_slice() {
            [g] if *g.sql == *statement.rewrite && g.deferred == statement.deferred => {
                let statement = Statement {
                    generation: current,
                    ..statement
                };
                self.prepared.0.insert(id, statement);
                Ok(())
            }
            _ => Err(GuardError::denied(
                "rectus: the prepared statement was prepared under permissions that have changed; prepare it again",
            )),
        }
    }
}

/// Whether the session's own connection is in autocommit with no transaction open, and the
/// kind of shared connection that answers as it does.
fn own_state(upstream: &Upstream) -> (bool, LineKey) {
    (upstream.autocommit_idle(), LineKey::of(upstream, None))
}

fn statement_id(payload: &[u8]) -> Option<u32> {
    (payload.len() >= 5)
        .then(|| u32::from_le_bytes([payload[1], payload[2], payload[3], payload[4]]))
}

fn not_utf8() -> GuardError {
    GuardError {
        code: "22021",
        message: "rectus: statements must be UTF-8".into(),
    }
}

/// Relays the database's answer to `out` (the client) of a guarded session, renumbered
/// from `seq`.
async fn relay<W: AsyncWrite + Unpin>(
    out: &mut W,
    leased: &mut Leased,
    expect: Expect,
    seq: u8,
) -> std::io::Result<Response> {
    relay_answer(out, &mut leased.upstream, expect, seq, true).await
}

/// Relays the database's answer to `out`, renumbered from `seq`; `guarded`: its warning
/// counts zeroed ([`Response::feed_guarded`]). Keeps the connection's status.
pub(super) async fn relay_answer<W: AsyncWrite + Unpin>(
    out: &mut W,
    upstream: &mut Upstream,
    expect: Expect,
    mut seq: u8,
    guarded: bool,
) -> std::io::Result<Response> {
    let mut response = Response::new(expect, upstream.capabilities);
    let mut buf = BytesMut::with_capacity(16 * 1024);
    while !response.done() {
        let Some(mut part) = upstream.reader.part().await? else {
            return Err(packet::invalid("the database closed the connection"));
        };
        if guarded {
            response.feed_guarded(&mut part).map_err(packet::invalid)?;
        } else {
            response.feed(&part).map_err(packet::invalid)?;
        }
        part[3] = seq;
        seq = seq.wrapping_add(1);
        buf.extend_from_slice(&part);
        if response.done() || upstream.reader.buffered() == 0 || buf.len() >= 64 * 1024 {
            out.write_all(&buf).await?;
            buf.clear();
        }
    }
    out.flush().await?;
    if let Some(status) = response.status {
        upstream.status = status;
    }
    Ok(response)
}

async fn write(client: &mut Client, seq: u8, payload: &[u8]) -> std::io::Result<()> {
    packet::write(&mut client.stream, seq, payload)
        .await
        .map(|_| ())
}

/// The guard's refusal as MySQL reports a refused privilege: 1142 for a table, 1143 for a
/// column, 1064 for what rectus cannot parse, 4025 for a failed validation.
async fn refuse(client: &mut Client, seq: u8, e: &GuardError) -> std::io::Result<()> {
    let (code, state) = match e.code {
        "42501" if e.message.starts_with("permission denied for column") => (1143, "42000"),
        "42501" => (1142, "42000"),
        "42601" => (1064, "42000"),
        "23514" => (4025, "23000"),
        "42P01" => (1054, "42S22"),
        "22021" => (1366, "HY000"),
        "HY000" => (1243, "HY000"),
        _ => (1142, "42000"),
    };
    write(client, seq, &protocol::err(code, state, &e.message)).await
}
