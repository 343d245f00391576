//! One client connection: SSL negotiation, startup checks, login, an upstream connection
//! from the pool, then the message loop. Refused statements are answered in order by
//! sending the database a statement that fails and putting the guard's error in place of
//! the database's, so responses never interleave and a refusal inside a transaction aborts
//! it as any failed statement would.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use pgwire::messages::extendedquery::Parse;
use pgwire::messages::simplequery::Query;
use pgwire::messages::startup::{Authentication, BackendKeyData, ParameterStatus, SecretKey};
use rectus_policies::ReadAccess;
use rectus_policies::guard::{GuardContext, GuardError, Guarded, guard_pg};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;

use super::frame::{self, FrameReader, cstr, encode, error_response, ready_for_query};
use super::upstream::Leased;
use super::{Access, Directory, Identity, LoginError, Shared, cancel};

trait ClientStream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> ClientStream for T {}

const SSL_REQUEST: i32 = 80_877_103;
const GSSENC_REQUEST: i32 = 80_877_104;
const CANCEL_REQUEST: i32 = 80_877_102;
const PROTOCOL_3: i32 = 196_608;

/// What the database is sent in place of a refused statement: it fails at parse time, and
/// its error is replaced by the guard's.
const REFUSED: &str = "RECTUS REFUSED";

/// Startup parameters passed on to the database as session settings.
const PASSED_PARAMETERS: &[&str] = &[
    "application_name",
    "datestyle",
    "timezone",
    "extra_float_digits",
    "intervalstyle",
    "client_encoding",
];

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
            PROTOCOL_3 => break parameters(&mut packet),
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
    match handshake(&mut client, &shared, &params, tls).await? {
        Some((identity, leased, key)) => {
            let result = serve(client, &shared, identity, leased).await;
            shared.cancel.remove(key);
            result
        }
        None => Ok(()),
    }
}

fn parameters(packet: &mut BytesMut) -> BTreeMap<String, String> {
    let mut params = BTreeMap::new();
    while let Some(key) = cstr(packet) {
        if key.is_empty() {
            break;
        }
        let value = cstr(packet).unwrap_or_default();
        params.insert(key, value);
    }
    params
}

async fn fatal<S: AsyncWrite + Unpin>(
    stream: &mut S,
    code: &str,
    message: &str,
) -> std::io::Result<()> {
    frame::write_all(stream, &error_response("FATAL", code, message)).await
}

/// Checks the startup parameters and the password, then opens the upstream session.
async fn handshake<D: Directory>(
    client: &mut FrameReader<Box<dyn ClientStream>>,
    shared: &Shared<D>,
    params: &BTreeMap<String, String>,
    tls: bool,
) -> std::io::Result<Option<(Identity, Leased, (i32, i32))>> {
    let stream = &mut client.stream;
    let Some(user) = params.get("user").filter(|u| !u.is_empty()) else {
        fatal(
            stream,
            "28000",
            "no PostgreSQL user name specified in startup packet",
        )
        .await?;
        return Ok(None);
    };
    let database = params.get("database").unwrap_or(user);
    if *database != shared.config.upstream.database {
        let message = format!("database \"{database}\" does not exist");
        fatal(stream, "3D000", &message).await?;
        return Ok(None);
    }
    if params.contains_key("replication") {
        fatal(
            stream,
            "42501",
            "rectus: replication connections are not allowed",
        )
        .await?;
        return Ok(None);
    }
    if params.get("options").is_some_and(|o| !o.trim().is_empty()) {
        fatal(stream, "42501", "rectus: startup options are not allowed").await?;
        return Ok(None);
    }
    if params
        .keys()
        .any(|k| k.eq_ignore_ascii_case("search_path") || k.starts_with('_'))
    {
        fatal(
            stream,
            "42501",
            "rectus: this startup parameter is not allowed",
        )
        .await?;
        return Ok(None);
    }
    if !tls && !shared.config.allow_insecure_password {
        fatal(
            stream,
            "28000",
            "rectus: password authentication needs an encrypted connection (sslmode=require)",
        )
        .await?;
        return Ok(None);
    }
    let mut out = BytesMut::new();
    encode(&Authentication::CleartextPassword, &mut out);
    frame::write_all(stream, &out).await?;
    let Some(mut reply) = client.frame().await? else {
        return Ok(None);
    };
    let stream = &mut client.stream;
    if reply[0] != b'p' {
        fatal(stream, "08P01", "expected a password message").await?;
        return Ok(None);
    }
    reply.advance(5);
    let password = cstr(&mut reply).unwrap_or_default();
    let identity = match shared.directory.login(user, &password).await {
        Ok(identity) => identity,
        Err(LoginError::Invalid) => {
            let message = format!("password authentication failed for user \"{user}\"");
            fatal(stream, "28P01", &message).await?;
            return Ok(None);
        }
        Err(LoginError::Internal(e)) => {
            tracing::warn!(error = %e, "wire login failed");
            fatal(stream, "XX000", "rectus: login failed").await?;
            return Ok(None);
        }
    };
    let mut settings = Vec::new();
    for (key, value) in params {
        let key = key.to_lowercase();
        if !PASSED_PARAMETERS.contains(&key.as_str()) {
            continue;
        }
        if key == "client_encoding" && !identity.admin && !is_utf8(value) {
            fatal(
                stream,
                "22023",
                "rectus: only the UTF8 client encoding is supported",
            )
            .await?;
            return Ok(None);
        }
        if key == "client_encoding" && is_utf8(value) {
            continue;
        }
        if value.contains(['\'', '\\', '\0']) {
            fatal(
                stream,
                "22023",
                &format!("invalid value for parameter \"{key}\""),
            )
            .await?;
            return Ok(None);
        }
        settings.push(format!("SET {key} = '{value}'"));
    }
    let mut leased = match shared.pool.get().await {
        Ok(leased) => leased,
        Err(e) => {
            tracing::warn!(error = ?e, "wire session: no upstream connection");
            fatal(stream, "08006", "rectus: cannot connect to the database").await?;
            return Ok(None);
        }
    };
    if !settings.is_empty()
        && let Err(e) = leased.upstream.run(&settings.join("; ")).await
    {
        let message = match e {
            super::upstream::UpstreamError::Refused(m) => m,
            other => other.to_string(),
        };
        fatal(stream, "22023", &message).await?;
        return Ok(None);
    }
    let key = shared.cancel.register(cancel::Target {
        host: shared.config.upstream.host.clone(),
        port: shared.config.upstream.port,
        pid: leased.upstream.pid,
        secret: leased.upstream.secret,
    });
    let mut out = BytesMut::new();
    encode(&Authentication::Ok, &mut out);
    for (name, value) in &leased.upstream.parameters {
        // The upstream's own role stays hidden: clients see who they logged in as.
        let value = match name.as_str() {
            "session_authorization" => user.clone(),
            "is_superuser" => "off".to_string(),
            "application_name" => params.get("application_name").cloned().unwrap_or_default(),
            _ => value.clone(),
        };
        encode(&ParameterStatus::new(name.clone(), value), &mut out);
    }
    encode(&BackendKeyData::new(key.0, SecretKey::I32(key.1)), &mut out);
    out.extend_from_slice(&ready_for_query(b'I'));
    frame::write_all(stream, &out).await?;
    Ok(Some((identity, leased, key)))
}

fn is_utf8(value: &str) -> bool {
    matches!(
        value.to_ascii_lowercase().replace(['-', '_'], "").as_str(),
        "utf8" | "unicode"
    )
}

/// Refusals waiting for the database's error in their response batch.
#[derive(Default)]
struct Pending {
    refusals: Mutex<VecDeque<(u64, GuardError)>>,
    /// Sync points (Query, Sync, FunctionCall) sent upstream.
    sent: AtomicU64,
    /// ReadyForQuery frames forwarded to the client.
    answered: AtomicU64,
    status: AtomicU8,
}

async fn serve<D: Directory>(
    client: FrameReader<Box<dyn ClientStream>>,
    shared: &Shared<D>,
    identity: Identity,
    leased: Leased,
) -> std::io::Result<()> {
    let Leased { upstream, permit } = leased;
    let super::upstream::Upstream {
        reader: mut upstream_reader,
        writer: mut upstream_writer,
        pid,
        secret,
        parameters,
    } = upstream;
    let (client_read, mut client_write) = tokio::io::split(client.into_inner());
    let mut client_reader = FrameReader::new(client_read);
    let pending = Pending::default();
    pending.status.store(b'I', Ordering::Relaxed);
    let requests = forward_requests(
        &mut client_reader,
        &mut upstream_writer,
        shared,
        &identity,
        &pending,
    );
    let responses = forward_responses(&mut upstream_reader, &mut client_write, &pending);
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

/// A session's copy of its user's permissions: asked for again when the server says they
/// may have changed, and at least every second (rules can name `$NOW`, and changes made
/// straight in the database reach the server's own cache on a timer).
struct SessionAccess {
    held: Option<(u64, Instant, Arc<Access>)>,
}

const ACCESS_REFRESH: Duration = Duration::from_secs(1);

impl SessionAccess {
    async fn get<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        identity: &Identity,
    ) -> Result<Arc<Access>, GuardError> {
        let generation = shared.directory.generation();
        if let Some((held_generation, at, access)) = &self.held
            && *held_generation == generation
            && at.elapsed() < ACCESS_REFRESH
        {
            return Ok(access.clone());
        }
        match shared.directory.access(identity).await {
            Ok(access) => {
                self.held = Some((generation, Instant::now(), access.clone()));
                Ok(access)
            }
            Err(super::AccessError::Inactive) => Err(GuardError::denied(
                "rectus: the user of this session is no longer active",
            )),
            Err(e) => {
                tracing::warn!(error = %e, "cannot load permissions for a wire session");
                Err(GuardError::denied("rectus: permissions are unavailable"))
            }
        }
    }
}

impl SessionAccess {
    /// The server's generation of the permissions last used.
    fn generation(&self) -> Option<u64> {
        self.held.as_ref().map(|(g, _, _)| *g)
    }
}

/// The prepared statements of a session and the generation of the permissions they were
/// guarded under: a statement guarded before permissions or the schema changed is guarded
/// again before it runs and refused if its rewrite would differ (SQL-level ones, whose text
/// is not kept, are refused).
#[derive(Default)]
struct Prepared {
    /// Protocol-level: name -> (text, rewrite, generation).
    protocol: std::collections::HashMap<String, (String, String, u64)>,
    /// SQL-level (`PREPARE name`): name -> generation.
    sql: std::collections::HashMap<String, u64>,
}

impl Prepared {
    fn sql_level(
        &mut self,
        list: Vec<Guarded>,
        generation: u64,
    ) -> Result<Vec<Guarded>, GuardError> {
        use rectus_policies::guard::PreparedName;
        for g in &list {
            match &g.prepared {
                Some(PreparedName::Runs(name))
                    if self.sql.get(name).is_some_and(|p| *p != generation) =>
                {
                    return Err(changed(name));
                }
                Some(PreparedName::Defines(name)) => {
                    self.sql.insert(name.clone(), generation);
                }
                _ => {}
            }
        }
        Ok(list)
    }

    async fn recheck<D: Directory>(
        &mut self,
        shared: &Shared<D>,
        access: &mut SessionAccess,
        identity: &Identity,
        statement: &str,
    ) -> Result<(), GuardError> {
        let Some((text, rewrite, generation)) = self.protocol.get(statement).cloned() else {
            return Ok(());
        };
        access.get(shared, identity).await?;
        let current = access.generation().unwrap_or(generation);
        if current == generation {
            return Ok(());
        }
        let again = guarded(shared, access, identity, &text, true).await?;
        match again.as_slice() {
            [g] if g.sql == rewrite => {
                self.protocol
                    .insert(statement.to_string(), (text, rewrite, current));
                Ok(())
            }
            _ => {
                self.protocol.remove(statement);
                Err(changed(statement))
            }
        }
    }
}

fn changed(name: &str) -> GuardError {
    GuardError::denied(format!(
        "rectus: prepared statement \"{name}\" was prepared under permissions that have changed; prepare it again"
    ))
}

/// The statement name of a Bind frame (after the portal name).
fn bind_statement(frame: &[u8]) -> String {
    let mut body = BytesMut::from(&frame[5..]);
    let _portal = cstr(&mut body);
    cstr(&mut body).unwrap_or_default()
}

/// Client to database. Returns `true` when the client said goodbye (Terminate).
async fn forward_requests<D: Directory, R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    client: &mut FrameReader<R>,
    upstream: &mut W,
    shared: &Shared<D>,
    identity: &Identity,
    pending: &Pending,
) -> std::io::Result<bool> {
    let mut access = SessionAccess { held: None };
    let mut prepared = Prepared::default();
    loop {
        let Some(run) = client.frames().await? else {
            return Ok(false);
        };
        let mut out = BytesMut::with_capacity(run.len());
        let mut terminate = false;
        let mut frames = Vec::new();
        frame::each_frame(&run, |kind, bytes| frames.push((kind, bytes.len())));
        let mut at = 0;
        for (kind, len) in frames {
            let bytes = &run[at..at + len];
            at += len;
            if kind == b'X' {
                terminate = true;
                break;
            }
            if identity.admin {
                if matches!(kind, b'Q' | b'S' | b'F') {
                    pending.sent.fetch_add(1, Ordering::Relaxed);
                }
                out.extend_from_slice(bytes);
                continue;
            }
            match kind {
                b'Q' => {
                    let mut frame = BytesMut::from(bytes);
                    let query: Query = frame::decode(&mut frame)?;
                    let answer = guarded(shared, &mut access, identity, &query.query, false).await;
                    let answer = match (answer, access.generation()) {
                        (Ok(list), Some(id)) => prepared.sql_level(list, id),
                        (other, _) => other,
                    };
                    let sql = match answer {
                        Ok(list) if list.is_empty() => query.query.clone(),
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
                    let answer = guarded(shared, &mut access, identity, &parse.query, true).await;
                    let sql = match answer {
                        Ok(list) if list.is_empty() => parse.query.clone(),
                        Ok(mut list) if list.len() == 1 => {
                            let rewritten = list.remove(0).sql;
                            if let Some(id) = access.generation() {
                                let entry = (parse.query.clone(), rewritten.clone(), id);
                                prepared.protocol.insert(name, entry);
                            }
                            rewritten
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
                    match prepared
                        .recheck(shared, &mut access, identity, &statement)
                        .await
                    {
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
                b'E' | b'D' | b'H' => out.extend_from_slice(bytes),
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
        if terminate {
            return Ok(true);
        }
    }
}

/// Queues the guard's error for the current response batch and returns the statement that
/// makes the database fail in its place.
fn refuse(pending: &Pending, error: GuardError) -> String {
    let batch = pending.sent.load(Ordering::Relaxed);
    match pending.refusals.lock() {
        Ok(mut r) => r.push_back((batch, error)),
        Err(poisoned) => poisoned.into_inner().push_back((batch, error)),
    }
    REFUSED.to_string()
}

/// The guard's answer for `sql` under the user's current permissions. Prepared statements
/// are cached per text and permission set; simple queries mostly carry their values as
/// literals, so their texts rarely repeat and are not kept.
async fn guarded<D: Directory>(
    shared: &Shared<D>,
    access: &mut SessionAccess,
    identity: &Identity,
    sql: &str,
    prepared: bool,
) -> Result<Vec<Guarded>, GuardError> {
    let access = access.get(shared, identity).await?;
    let run = || {
        let ctx = GuardContext {
            access: ReadAccess {
                schema: &access.schema,
                permissions: &access.permissions,
                variables: &access.variables,
            },
            schema_name: &shared.config.schema_name,
            derived: Some(&access.derived),
        };
        guard_pg(sql, &ctx)
    };
    if !prepared {
        return run();
    }
    let answer = shared
        .guarded
        .get_with((access.id, sql.to_string()), || Arc::new(run()));
    (*answer).clone()
}

/// Database to client, as bytes; only an error answering a refused statement is replaced.
async fn forward_responses<R: AsyncRead + Unpin, W: AsyncWrite + Unpin>(
    upstream: &mut FrameReader<R>,
    client: &mut W,
    pending: &Pending,
) -> std::io::Result<()> {
    loop {
        let Some(run) = upstream.frames().await? else {
            return Ok(());
        };
        let has_refusals = match pending.refusals.lock() {
            Ok(r) => !r.is_empty(),
            Err(poisoned) => !poisoned.into_inner().is_empty(),
        };
        if !has_refusals {
            frame::each_frame(&run, |kind, bytes| {
                if kind == b'Z' {
                    pending.status.store(bytes[5], Ordering::Relaxed);
                    pending.answered.fetch_add(1, Ordering::Relaxed);
                }
            });
            client.write_all(&run).await?;
            client.flush().await?;
            continue;
        }
        let mut out = BytesMut::with_capacity(run.len());
        frame::each_frame(&run, |kind, bytes| {
            let batch = pending.answered.load(Ordering::Relaxed);
            match kind {
                b'E' => {
                    let mut refusals = match pending.refusals.lock() {
                        Ok(r) => r,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    if refusals.front().is_some_and(|(b, _)| *b == batch) {
                        if let Some((_, e)) = refusals.pop_front() {
                            out.extend_from_slice(&error_response("ERROR", e.code, &e.message));
                        }
                        return;
                    }
                    out.extend_from_slice(bytes);
                }
                b'Z' => {
                    pending.status.store(bytes[5], Ordering::Relaxed);
                    let done = pending.answered.fetch_add(1, Ordering::Relaxed) + 1;
                    let mut refusals = match pending.refusals.lock() {
                        Ok(r) => r,
                        Err(poisoned) => poisoned.into_inner(),
                    };
                    while refusals.front().is_some_and(|(b, _)| *b < done) {
                        refusals.pop_front();
                    }
                    out.extend_from_slice(bytes);
                }
                _ => out.extend_from_slice(bytes),
            }
        });
        client.write_all(&out).await?;
        client.flush().await?;
    }
}
