//! Connections to the real database: opened with the configured database user, kept in a
//! session pool (`PG_PROXY_POOL_SIZE`), reset with `DISCARD ALL` before reuse. Upstream
//! failures become client errors that never show the upstream's credentials.

use std::sync::{Arc, Mutex};

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::AsyncWriteExt;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::frame::{FrameReader, cstr, typed};
use super::scram;
use crate::endpoint::{UpstreamRead, UpstreamWrite, open_upstream, still_open};
pub use crate::{UpstreamConfig, UpstreamError};

/// A connection to PostgreSQL: over TCP, or, as libpq reads a `host` starting with `/`, the
/// socket `.s.PGSQL.<port>` in that directory.
pub async fn open(host: &str, port: u16) -> std::io::Result<(UpstreamRead, UpstreamWrite)> {
    open_upstream(host, port, || {
        std::path::Path::new(host).join(format!(".s.PGSQL.{port}"))
    })
    .await
}

/// One upstream connection after its startup.
pub struct Upstream {
    pub reader: FrameReader<UpstreamRead>,
    pub writer: UpstreamWrite,
    pub pid: i32,
    pub secret: i32,
    /// `ParameterStatus` frames the database sent, to replay to the client.
    pub parameters: Vec<(String, String)>,
}

impl Upstream {
    pub async fn connect(config: &UpstreamConfig) -> Result<Upstream, UpstreamError> {
        let (read, mut writer) = open(&config.host, config.port).await?;
        let mut reader = FrameReader::new(read);
        let mut body = BytesMut::new();
        body.put_i32(196_608);
        for (k, v) in [
            ("user", config.user.as_str()),
            ("database", config.database.as_str()),
            ("application_name", "rectus"),
            ("client_encoding", "UTF8"),
        ] {
            body.put_slice(k.as_bytes());
            body.put_u8(0);
            body.put_slice(v.as_bytes());
            body.put_u8(0);
        }
        body.put_u8(0);
        let mut startup = BytesMut::new();
        startup.put_i32(body.len() as i32 + 4);
        startup.put_slice(&body);
        writer.write_all(&startup).await?;
        let mut scram: Option<scram::Client> = None;
        let mut upstream_pid = 0;
        let mut upstream_secret = 0;
        let mut parameters = Vec::new();
        loop {
            let Some(mut frame) = reader.frame().await? else {
                return Err(UpstreamError::Refused(
                    "connection closed during startup".into(),
                ));
            };
            let kind = frame[0];
            frame.advance(5);
            match kind {
                b'R' => {
                    if frame.remaining() < 4 {
                        return Err(UpstreamError::Refused(
                            "malformed authentication request".into(),
                        ));
                    }
                    let code = frame.get_i32();
                    match code {
                        0 => {}
                        3 => {
                            let password = config.password.clone().unwrap_or_default();
                            let mut body = password.into_bytes();
                            body.push(0);
                            writer.write_all(&typed(b'p', &body)).await?;
                        }
                        10 => {
                            let mechanisms: Vec<String> =
                                std::iter::from_fn(|| cstr(&mut frame).filter(|m| !m.is_empty()))
                                    .collect();
                            if !mechanisms.iter().any(|m| m == "SCRAM-SHA-256") {
                                return Err(UpstreamError::Unsupported);
                            }
                            let client =
                                scram::Client::new(config.password.clone().unwrap_or_default());
                            let first = client.first_message();
                            let mut body = BytesMut::new();
                            body.put_slice(b"SCRAM-SHA-256\0");
                            body.put_i32(first.len() as i32);
                            body.put_slice(first.as_bytes());
                            writer.write_all(&typed(b'p', &body)).await?;
                            scram = Some(client);
                        }
                        11 => {
                            let client = scram.as_mut().ok_or(UpstreamError::Unsupported)?;
                            let reply = client
                                .final_message(&frame)
                                .map_err(|e| UpstreamError::Refused(e.to_string()))?;
                            writer.write_all(&typed(b'p', reply.as_bytes())).await?;
                        }
                        12 => {
                            let client = scram.as_ref().ok_or(UpstreamError::Unsupported)?;
                            client
                                .verify_server(&frame)
                                .map_err(|e| UpstreamError::Refused(e.to_string()))?;
                        }
                        _ => return Err(UpstreamError::Unsupported),
                    }
                }
                b'S' => {
                    if let (Some(k), Some(v)) = (cstr(&mut frame), cstr(&mut frame)) {
                        parameters.push((k, v));
                    }
                }
                b'K' if frame.remaining() >= 4 => {
                    upstream_pid = frame.get_i32();
                    upstream_secret = if frame.remaining() >= 4 {
                        frame.get_i32()
                    } else {
                        0
                    };
                }
                b'Z' => {
                    return Ok(Upstream {
                        reader,
                        writer,
                        pid: upstream_pid,
                        secret: upstream_secret,
                        parameters,
                    });
                }
                b'E' => return Err(UpstreamError::Refused(error_text(&frame))),
                _ => {}
            }
        }
    }

    /// Runs `sql` (simple protocol) and waits for the database to be ready again; the
    /// `ParameterStatus` frames it sends update `parameters`. `Err` with the database's
    /// message when it fails.
    pub async fn run(&mut self, sql: &str) -> Result<(), UpstreamError> {
        let mut body = sql.as_bytes().to_vec();
        body.push(0);
        self.writer.write_all(&typed(b'Q', &body)).await?;
        let mut failure = None;
        loop {
            let Some(mut frame) = self.reader.frame().await? else {
                return Err(UpstreamError::Refused("connection closed".into()));
            };
            let kind = frame[0];
            frame.advance(5);
            match kind {
                b'E' => failure = Some(error_text(&frame)),
                b'S' => {
                    if let (Some(k), Some(v)) = (cstr(&mut frame), cstr(&mut frame)) {
                        match self.parameters.iter_mut().find(|(name, _)| *name == k) {
                            Some(p) => p.1 = v,
                            None => self.parameters.push((k, v)),
                        }
                    }
                }
                b'Z' => {
                    return match failure {
                        Some(f) => Err(UpstreamError::Refused(f)),
                        None => Ok(()),
                    };
                }
                _ => {}
            }
        }
    }
}

/// The `M` (message) field of an ErrorResponse body.
pub fn error_text(body: &[u8]) -> String {
    let mut at = 0;
    while at < body.len() && body[at] != 0 {
        let kind = body[at];
        let end = body[at + 1..]
            .iter()
            .position(|b| *b == 0)
            .map_or(body.len(), |p| at + 1 + p);
        if kind == b'M' {
            return String::from_utf8_lossy(&body[at + 1..end]).into_owned();
        }
        at = end + 1;
    }
    "unknown error".into()
}

/// The session pool: at most `size` upstream connections, idle ones reused.
pub struct Pool {
    config: UpstreamConfig,
    /// How long a new session waits for a free slot.
    wait: std::time::Duration,
    idle: Mutex<Vec<Upstream>>,
    permits: Arc<Semaphore>,
}

/// An upstream connection with its pool slot.
pub struct Leased {
    pub upstream: Upstream,
    pub(super) permit: OwnedSemaphorePermit,
}

impl Pool {
    pub fn new(config: UpstreamConfig, size: usize, wait: std::time::Duration) -> Self {
        Pool {
            config,
            wait,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(size.max(1))),
        }
    }

    pub async fn get(&self) -> Result<Leased, UpstreamError> {
        // A client waits a while for a free slot, then hears what PostgreSQL says when it
        // has no connection left.
        let permit = tokio::time::timeout(self.wait, self.permits.clone().acquire_owned())
            .await
            .map_err(|_| UpstreamError::Full)?
            .map_err(|_| UpstreamError::Refused("pool closed".into()))?;
        let idle = {
            let mut idle = crate::lock(&self.idle);
            idle.retain_mut(|u| still_open(&mut u.reader.stream));
            idle.pop()
        };
        let upstream = match idle {
            Some(u) => u,
            None => Upstream::connect(&self.config).await?,
        };
        Ok(Leased { upstream, permit })
    }

    /// Gives a connection back after resetting its session; one that cannot be reset is
    /// dropped.
    pub async fn put(&self, mut leased: Leased) {
        if leased.upstream.reader.buffered() != 0 {
            return;
        }
        // DISCARD ALL cannot run in a transaction block, so one left open ends first.
        if leased.upstream.run("ROLLBACK").await.is_ok()
            && leased.upstream.run("DISCARD ALL").await.is_ok()
        {
            crate::lock(&self.idle).push(leased.upstream);
        }
    }
}
