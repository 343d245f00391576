//! Connections to the real MySQL or MariaDB database: opened as the configured database
//! user (`mysql_native_password`, or `caching_sha2_password`'s fast path), kept in a pool
//! (`MYSQL_PROXY_POOL_SIZE`) per set of the capabilities that shape answers, reset with
//! `COM_RESET_CONNECTION` before reuse. Upstream failures become client errors that never
//! show the upstream's credentials.

use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use tokio::sync::{OnceCell, OwnedSemaphorePermit, Semaphore};

use super::auth;
use super::packet::{self, PacketReader, Read41};
use super::protocol::{Expect, Response, UTF8MB4, caps, command, err_message};
use crate::endpoint::{UpstreamRead, UpstreamWrite, open_upstream, still_open};
pub use crate::{UpstreamConfig, UpstreamError};

/// What every connection to the database shares: its version, capabilities, and the
/// `sql_mode` guarded sessions run under.
#[derive(Debug, Clone)]
pub struct ServerInfo {
    pub version: String,
    pub capabilities: u32,
    /// The server's own mode without what changes how text is read (`ANSI_QUOTES`,
    /// `IGNORE_SPACE`, combination modes), with `NO_BACKSLASH_ESCAPES`: the guard prints
    /// string literals for exactly this.
    pub guarded_mode: String,
    /// Guarded text reads run as prepared statements ([`super::bound`]).
    pub binds_text_reads: bool,
    /// The server's own mode reads text as the guard does
    /// ([`rectus_policies::guard::reads_as_guard`]): admins' reads can be shared.
    pub reads_as_guard: bool,
}

pub struct Upstream {
    pub reader: PacketReader<UpstreamRead>,
    pub writer: UpstreamWrite,
    /// The capabilities this connection was opened with.
    pub capabilities: u32,
    version: String,
    server_capabilities: u32,
    /// Guarded reads prepared on this connection ([`super::bound`]).
    pub statements: super::bound::TextStatements,
    /// The status flags of the last answer that had them: whether a transaction is open
    /// and autocommit on.
    pub status: u16,
    /// The server's id of this connection (`KILL QUERY` takes it).
    pub thread: u32,
}

impl Upstream {
    /// Opens a connection whose answers have the shape `shaping` asks for (a client's
    /// capabilities masked with [`caps::SESSION_SHAPING`]).
    pub async fn connect(config: &UpstreamConfig, shaping: u32) -> Result<Upstream, UpstreamError> {
        // A host starting with `/` is the server's socket file.
        let (read, writer) =
            open_upstream(&config.host, config.port, || config.host.clone().into()).await?;
        let mut reader = PacketReader::new(read);
        let greeting = reader
            .packet()
            .await?
            .ok_or_else(|| packet::invalid("the database closed the connection"))?;
        let mut p = greeting.payload;
        if p.first() == Some(&0xFF) {
            return Err(UpstreamError::Refused(err_message(&p)));
        }
        let parsed = (|| {
            if p.get_u8() != 10 {
                return None;
            }
            let version = String::from_utf8_lossy(&p.nul_str()?).into_owned();
            if p.len() < 4 + 8 + 1 + 2 + 1 + 2 + 2 + 1 + 10 {
                return None;
            }
            let thread = p.get_u32_le();
            let mut salt = p.split_to(8).to_vec();
            p.advance(1);
            let lower = p.get_u16_le() as u32;
            p.advance(3);
            let upper = p.get_u16_le() as u32;
            let salt_len = p.get_u8() as usize;
            p.advance(10);
            let rest = salt_len.saturating_sub(8).max(13).min(p.len());
            let mut more = p.split_to(rest).to_vec();
            if more.last() == Some(&0) {
                more.pop();
            }
            salt.extend_from_slice(&more);
            let plugin = p
                .nul_str()
                .map(|s| String::from_utf8_lossy(&s).into_owned())
                .unwrap_or_default();
            Some((version, thread, lower | upper << 16, salt, plugin))
        })();
        let (version, thread, server_capabilities, salt, plugin) =
            parsed.ok_or_else(|| packet::invalid("an unreadable greeting from the database"))?;
        if server_capabilities & caps::PROTOCOL_41 == 0 {
            return Err(UpstreamError::Unsupported);
        }
        let capabilities = (shaping & caps::SESSION_SHAPING
            | caps::LONG_PASSWORD
            | caps::LONG_FLAG
            | caps::CONNECT_WITH_DB
            | caps::PROTOCOL_41
            | caps::TRANSACTIONS
            | caps::SECURE_CONNECTION
            | caps::PLUGIN_AUTH
            | caps::PLUGIN_AUTH_LENENC_DATA)
            & server_capabilities;
        let password = config.password.clone().unwrap_or_default();
        let mut out = BytesMut::with_capacity(128);
        out.put_u32_le(capabilities);
        out.put_u32_le(packet::MAX_PART as u32);
        out.put_u8(UTF8MB4);
        out.extend_from_slice(&[0; 23]);
        out.extend_from_slice(config.user.as_bytes());
        out.put_u8(0);
        let answer = scramble(&plugin, password.as_bytes(), &salt);
        packet::put_lenenc(&mut out, answer.len() as u64);
        out.extend_from_slice(&answer);
        out.extend_from_slice(config.database.as_bytes());
        out.put_u8(0);
        out.extend_from_slice(plugin_name(&plugin).as_bytes());
        out.put_u8(0);
        let mut upstream = Upstream {
            reader,
            writer,
            capabilities,
            version,
            server_capabilities,
            statements: Default::default(),
            status: super::protocol::SERVER_STATUS_AUTOCOMMIT,
            thread,
        };
        packet::write(&mut upstream.writer, greeting.seq.wrapping_add(1), &out).await?;
        loop {
            let reply = upstream
                .reader
                .packet()
                .await?
                .ok_or_else(|| packet::invalid("the database closed the connection"))?;
            let seq = reply.seq.wrapping_add(1);
            let mut p = reply.payload;
            match p.first() {
                Some(0x00) => return Ok(upstream),
                Some(0xFF) => return Err(UpstreamError::Refused(err_message(&p))),
                // Switch: answer the named plugin with its own salt.
                Some(0xFE) => {
                    p.advance(1);
                    let plugin =
                        String::from_utf8_lossy(&p.nul_str().unwrap_or_default()).into_owned();
                    let mut salt = p.to_vec();
                    if salt.last() == Some(&0) {
                        salt.pop();
                    }
                    if !matches!(
                        plugin.as_str(),
                        "mysql_native_password" | "caching_sha2_password"
                    ) {
                        return Err(UpstreamError::Unsupported);
                    }
                    let answer = scramble(&plugin, password.as_bytes(), &salt);
                    packet::write(&mut upstream.writer, seq, &answer).await?;
                }
                // caching_sha2_password: 3 = the fast path worked, an OK follows; 4 = the
                // server wants the password itself (TLS or RSA), which rectus does not send.
                Some(0x01) if p.get(1) == Some(&3) => {}
                _ => return Err(UpstreamError::Unsupported),
            }
        }
    }

    /// Its last status said autocommit on and no transaction open.
    pub fn autocommit_idle(&self) -> bool {
        use super::protocol::{SERVER_STATUS_AUTOCOMMIT, SERVER_STATUS_IN_TRANS};
        self.status & SERVER_STATUS_IN_TRANS == 0 && self.status & SERVER_STATUS_AUTOCOMMIT != 0
    }

    pub fn version(&self) -> &str {
        &self.version
    }

    pub fn server_capabilities(&self) -> u32 {
        self.server_capabilities
    }

    /// Sends one command (sequence id 0).
    pub async fn send(&mut self, payload: &[u8]) -> std::io::Result<()> {
        packet::write(&mut self.writer, 0, payload)
            .await
            .map(|_| ())
    }

    /// Runs `sql` and reads the whole answer; the first column of the first row, if any.
    pub async fn run(&mut self, sql: &str) -> Result<Option<String>, UpstreamError> {
        let mut payload = BytesMut::with_capacity(sql.len() + 1);
        payload.put_u8(command::QUERY);
        payload.extend_from_slice(sql.as_bytes());
        self.send(&payload).await?;
        self.read_answer(Expect::Results).await
    }

    /// Resets the session (variables, prepared statements, transaction) for the next user.
    pub async fn reset(&mut self) -> Result<(), UpstreamError> {
        self.statements.clear();
        self.send(&[command::RESET_CONNECTION]).await?;
        self.read_answer(Expect::One).await.map(|_| ())
    }

    async fn read_answer(&mut self, expect: Expect) -> Result<Option<String>, UpstreamError> {
        let mut response = Response::new(expect, self.capabilities);
        let mut index = 0;
        let mut value = None;
        let mut error = None;
        while !response.done() {
            let part = self
                .reader
                .part()
                .await?
                .ok_or_else(|| packet::invalid("the database closed the connection"))?;
            response
                .feed(&part)
                .map_err(|e| UpstreamError::Refused(e.to_string()))?;
            let payload = &part[4..];
            if payload.first() == Some(&0xFF) && error.is_none() {
                error = Some(err_message(payload));
            }
            // Header, one column definition, (EOF,) then the first row.
            let row_at = if self.capabilities & caps::DEPRECATE_EOF != 0 {
                2
            } else {
                3
            };
            if expect == Expect::Results && index == row_at && value.is_none() {
                let mut p = BytesMut::from(payload);
                value = p
                    .lenenc_bytes()
                    .map(|b| String::from_utf8_lossy(&b).into_owned());
            }
            index += 1;
        }
        if let Some(status) = response.status {
            self.status = status;
        }
        match error {
            Some(e) if response.failed => Err(UpstreamError::Refused(e)),
            _ => Ok(value),
        }
    }
}

fn plugin_name(greeting: &str) -> &str {
    match greeting {
        "caching_sha2_password" => "caching_sha2_password",
        _ => "mysql_native_password",
    }
}

fn scramble(plugin: &str, password: &[u8], salt: &[u8]) -> Vec<u8> {
    match plugin {
        "caching_sha2_password" => auth::sha2_scramble(password, salt),
        _ => auth::native_scramble(password, salt),
    }
}

/// A connection leased to one client session, and its place in the pool.
pub struct Leased {
    pub upstream: Upstream,
    _permit: OwnedSemaphorePermit,
}

pub struct Pool {
    config: UpstreamConfig,
    size: usize,
    idle: Mutex<Vec<Upstream>>,
    permits: Arc<Semaphore>,
    timeout: std::time::Duration,
    info: OnceCell<ServerInfo>,
}

impl Pool {
    pub fn new(config: UpstreamConfig, size: usize, timeout: std::time::Duration) -> Pool {
        Pool {
            config,
            size,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size)),
            timeout,
            info: OnceCell::new(),
        }
    }

    /// The database's version and capabilities, read once from a first connection (which
    /// then waits in the pool).
    pub async fn info(&self) -> Result<&ServerInfo, UpstreamError> {
        self.info
            .get_or_try_init(|| async {
                let shaping = caps::SESSION_SHAPING;
                let mut upstream = Upstream::connect(&self.config, shaping).await?;
                let mode = upstream
                    .run("SELECT @@GLOBAL.sql_mode")
                    .await?
                    .unwrap_or_default();
                let info = ServerInfo {
                    version: upstream.version().to_string(),
                    capabilities: upstream.server_capabilities(),
                    guarded_mode: rectus_policies::guard::guarded_sql_mode(&mode),
                    reads_as_guard: rectus_policies::guard::reads_as_guard(&mode),
                    binds_text_reads: super::bound::executes_literals(upstream.version()),
                };
                self.keep(upstream);
                Ok(info)
            })
            .await
    }

    /// A connection whose answers have the shape `shaping` asks for.
    pub async fn get(&self, shaping: u32) -> Result<Leased, UpstreamError> {
        let permit = tokio::time::timeout(self.timeout, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| UpstreamError::Full)?
            .map_err(|_| UpstreamError::Full)?;
        let shaping = shaping & caps::SESSION_SHAPING;
        let idle = {
            let mut idle = crate::lock(&self.idle);
            idle.retain_mut(|u| still_open(&mut u.reader.stream));
            idle.iter()
                .position(|u| {
                    u.capabilities & caps::SESSION_SHAPING == shaping & u.server_capabilities
                })
                .map(|i| idle.swap_remove(i))
        };
        let upstream = match idle {
            Some(upstream) => upstream,
            None => Upstream::connect(&self.config, shaping).await?,
        };
        Ok(Leased {
            upstream,
            _permit: permit,
        })
    }

    /// Takes a connection back after a clean session, reset for the next.
    pub async fn put(&self, mut leased: Leased) {
        if leased.upstream.reader.buffered() == 0 && leased.upstream.reset().await.is_ok() {
            self.keep(leased.upstream);
        }
    }

    fn keep(&self, upstream: Upstream) {
        let mut idle = crate::lock(&self.idle);
        if idle.len() < self.size {
            idle.push(upstream);
        }
    }
}

impl Upstream {
    /// Sets up a leased connection for a guarded session.
    pub async fn guard_session(&mut self, info: &ServerInfo) -> Result<(), UpstreamError> {
        self.run(&format!("SET SESSION sql_mode = '{}'", info.guarded_mode))
            .await
            .map(|_| ())
    }

    /// Sets up a leased connection for an admin whose client reads another character set
    /// than the UTF-8 every connection starts in.
    pub async fn client_charset(&mut self, charset: u8) -> Result<(), UpstreamError> {
        match charset_name(charset) {
            Some(name) => self.run(&format!("SET NAMES {name}")).await.map(|_| ()),
            None => Ok(()),
        }
    }
}

/// The character set an admin's connection is set to for a client's handshake charset
/// code; `None`: the UTF-8 every connection starts in.
pub fn charset_name(code: u8) -> Option<&'static str> {
    match code {
        8 | 31 | 47 | 48 | 49 | 94 => Some("latin1"),
        33 | 83 => Some("utf8"),
        63 => Some("binary"),
        _ => None,
    }
}
