//! A TCP relay between rectus and its database that the test controls: it can slow every
//! chunk down (a slow database), cut every connection and refuse new ones (a database
//! that went away), or cut one connection (a session the database ended). It injects network faults; the database behind it is the real one.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::AbortHandle;

/// What one connection's client side carried.
#[derive(Default, Clone)]
struct Counts {
    pg_executes: Arc<AtomicU64>,
    my_stmt_executes: Arc<AtomicU64>,
    my_resets: Arc<AtomicU64>,
}

#[derive(Default)]
struct State {
    cut: AtomicBool,
    delay_ms: AtomicU64,
    connections: Mutex<Vec<AbortHandle>>,
    /// PostgreSQL statements the client side sent (Execute and simple Query messages).
    pg_statements: AtomicU64,
    /// PostgreSQL result rows the server side sent (DataRow messages).
    pg_rows: AtomicU64,
    /// PostgreSQL statements the client side prepared (Parse messages).
    pg_parses: AtomicU64,
    /// Execute messages each connection carried, in the order they were opened.
    pg_executes: Mutex<Vec<Arc<AtomicU64>>>,
    /// MySQL `COM_QUERY` texts the client side sent that prepare (`PREPARE …`) or run
    /// (`EXECUTE …`) an SQL-level prepared statement.
    my_prepares: AtomicU64,
    my_executes: AtomicU64,
    /// MySQL `COM_STMT_EXECUTE` commands each connection carried, in the order they were
    /// opened.
    my_stmt_executes: Mutex<Vec<Arc<AtomicU64>>>,
    /// MySQL `COM_RESET_CONNECTION` commands each connection carried, in the same order.
    my_resets: Mutex<Vec<Arc<AtomicU64>>>,
}

pub struct Relay {
    pub addr: SocketAddr,
    state: Arc<State>,
    accept: AbortHandle,
}

impl State {
    fn register(&self, task: AbortHandle, counts: Counts) {
        let lists = [
            (&self.pg_executes, counts.pg_executes),
            (&self.my_stmt_executes, counts.my_stmt_executes),
            (&self.my_resets, counts.my_resets),
        ];
        for (list, count) in lists {
            if let Ok(mut list) = list.lock() {
                list.push(count);
            }
        }
        if let Ok(mut c) = self.connections.lock() {
            c.push(task);
        }
    }
}

impl Relay {
    pub async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind relay");
        let addr = listener.local_addr().expect("relay address");
        let state = Arc::new(State::default());
        let shared = state.clone();
        let accept = tokio::spawn(async move {
            loop {
                let Ok((client, _)) = listener.accept().await else {
                    return;
                };
                if shared.cut.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let Ok(server) = TcpStream::connect(upstream).await else {
                    continue;
                };
                let link = shared.clone();
                let counts = Counts::default();
                let registered = counts.clone();
                let task = tokio::spawn(async move {
                    let (client_read, client_write) = client.into_split();
                    let (server_read, server_write) = server.into_split();
                    tokio::select! {
                        _ = pipe(client_read, server_write, link.clone(), Some(counts)) => {}
                        _ = pipe(server_read, client_write, link, None) => {}
                    }
                });
                // Every per-connection list is filled here, in the order of acceptance.
                shared.register(task.abort_handle(), registered);
            }
        })
        .abort_handle();
        Relay {
            addr,
            state,
            accept,
        }
    }

    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// Every chunk in either direction waits this long.
    pub fn set_delay(&self, delay: Duration) {
        self.state
            .delay_ms
            .store(delay.as_millis() as u64, Ordering::SeqCst);
    }

    /// Drops every open connection and refuses new ones.
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        if let Ok(mut c) = self.state.connections.lock() {
            for task in c.drain(..) {
                task.abort();
            }
        }
    }

    /// Drops the connection opened `index`-th (from 0), as the database would end one
    /// session.
    pub fn cut_connection(&self, index: usize) {
        if let Ok(c) = self.state.connections.lock()
            && let Some(task) = c.get(index)
        {
            task.abort();
        }
    }

    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// How many statements PostgreSQL clients sent through the relay so far.
    pub fn pg_statements(&self) -> u64 {
        self.state.pg_statements.load(Ordering::SeqCst)
    }

    /// How many statements PostgreSQL clients prepared (Parse messages) so far.
    pub fn pg_parses(&self) -> u64 {
        self.state.pg_parses.load(Ordering::SeqCst)
    }

    /// How many Execute messages each PostgreSQL connection carried so far, in the order
    /// the connections were opened.
    pub fn pg_executes(&self) -> Vec<u64> {
        self.state
            .pg_executes
            .lock()
            .map(|c| c.iter().map(|n| n.load(Ordering::SeqCst)).collect())
            .unwrap_or_default()
    }

    /// The most Execute messages one PostgreSQL connection carried so far.
    pub fn pg_most_executes(&self) -> u64 {
        self.pg_executes().into_iter().max().unwrap_or(0)
    }

    /// How many `PREPARE` texts MySQL clients sent so far.
    pub fn my_prepares(&self) -> u64 {
        self.state.my_prepares.load(Ordering::SeqCst)
    }

    /// How many `EXECUTE` texts MySQL clients sent so far.
    pub fn my_executes(&self) -> u64 {
        self.state.my_executes.load(Ordering::SeqCst)
    }

    /// How many `COM_STMT_EXECUTE` commands each MySQL connection carried so far, in the
    /// order the connections were opened.
    pub fn my_stmt_executes(&self) -> Vec<u64> {
        self.state
            .my_stmt_executes
            .lock()
            .map(|c| c.iter().map(|n| n.load(Ordering::SeqCst)).collect())
            .unwrap_or_default()
    }

    /// How many `COM_RESET_CONNECTION` commands each MySQL connection carried so far.
    pub fn my_resets(&self) -> Vec<u64> {
        self.state
            .my_resets
            .lock()
            .map(|c| c.iter().map(|n| n.load(Ordering::SeqCst)).collect())
            .unwrap_or_default()
    }

    /// How many result rows PostgreSQL sent through the relay so far.
    pub fn pg_rows(&self) -> u64 {
        self.state.pg_rows.load(Ordering::SeqCst)
    }
}

/// Follows the PostgreSQL backend protocol's framing: typed messages from the first byte
/// (rectus does not ask the database for TLS, so no single-byte answer comes first).
#[derive(Default)]
struct PgServerFrames {
    pending: Vec<u8>,
    /// Not PostgreSQL (a MySQL test through the relay): nothing is counted.
    lost: bool,
}

impl PgServerFrames {
    fn feed(&mut self, bytes: &[u8], rows: &AtomicU64) {
        if self.lost {
            return;
        }
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= 5 {
            let len = u32::from_be_bytes([
                self.pending[1],
                self.pending[2],
                self.pending[3],
                self.pending[4],
            ]) as usize;
            let total = 1 + len;
            if len > 1 << 26 {
                self.lost = true;
                self.pending.clear();
                return;
            }
            if self.pending.len() < total {
                return;
            }
            if self.pending[0] == b'D' {
                rows.fetch_add(1, Ordering::SeqCst);
            }
            self.pending.drain(..total);
        }
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.accept.abort();
        self.cut();
    }
}

/// Follows the PostgreSQL frontend protocol's framing on the client side: a startup packet
/// (no type byte), then messages of a type byte and a length.
#[derive(Default)]
struct PgFrames {
    started: bool,
    pending: Vec<u8>,
    executes: Arc<AtomicU64>,
}

impl PgFrames {
    fn feed(&mut self, bytes: &[u8], state: &State) {
        let (statements, parses) = (&state.pg_statements, &state.pg_parses);
        self.pending.extend_from_slice(bytes);
        loop {
            let header = if self.started { 5 } else { 4 };
            if self.pending.len() < header {
                return;
            }
            let at = header - 4;
            let len = u32::from_be_bytes([
                self.pending[at],
                self.pending[at + 1],
                self.pending[at + 2],
                self.pending[at + 3],
            ]) as usize;
            let total = at + len;
            if self.pending.len() < total {
                return;
            }
            if self.started && matches!(self.pending[0], b'E' | b'Q') {
                statements.fetch_add(1, Ordering::SeqCst);
            }
            if self.started && self.pending[0] == b'E' {
                self.executes.fetch_add(1, Ordering::SeqCst);
            }
            if self.started && self.pending[0] == b'P' {
                parses.fetch_add(1, Ordering::SeqCst);
            }
            if !self.started {
                // An SSLRequest or startup packet; the client speaks typed messages after
                // the startup packet (SSL is not used by rectus here).
                let code = u32::from_be_bytes([
                    self.pending[4],
                    self.pending[5],
                    self.pending[6],
                    self.pending[7],
                ]);
                self.started = code != 80877103;
            }
            self.pending.drain(..total);
        }
    }
}

/// Follows the MySQL protocol's framing on the client side: packets of a 3-byte length and
/// a sequence id; a command is a packet with sequence id 0 (the login's packets are not).
#[derive(Default)]
struct MyFrames {
    pending: Vec<u8>,
    stmt_executes: Arc<AtomicU64>,
    resets: Arc<AtomicU64>,
}

impl MyFrames {
    fn feed(&mut self, bytes: &[u8], state: &State) {
        self.pending.extend_from_slice(bytes);
        while self.pending.len() >= 4 {
            let len = self.pending[0] as usize
                | (self.pending[1] as usize) << 8
                | (self.pending[2] as usize) << 16;
            if self.pending.len() < 4 + len {
                return;
            }
            let payload = &self.pending[4..4 + len];
            if self.pending[3] == 0 && payload.first() == Some(&0x03) {
                let text = String::from_utf8_lossy(&payload[1..]).to_ascii_uppercase();
                if text.starts_with("PREPARE ") {
                    state.my_prepares.fetch_add(1, Ordering::SeqCst);
                }
                if text.starts_with("EXECUTE ") {
                    state.my_executes.fetch_add(1, Ordering::SeqCst);
                }
            }
            if self.pending[3] == 0 && payload.first() == Some(&0x17) {
                self.stmt_executes.fetch_add(1, Ordering::SeqCst);
            }
            if self.pending[3] == 0 && payload.first() == Some(&0x1F) {
                self.resets.fetch_add(1, Ordering::SeqCst);
            }
            self.pending.drain(..4 + len);
        }
    }
}

/// Copies `from` to `to`; `client` holds the counts when `from` is the client side.
async fn pipe(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    state: Arc<State>,
    client: Option<Counts>,
) {
    let mut buf = vec![0u8; 16 * 1024];
    let client_side = client.is_some();
    let counts = client.unwrap_or_default();
    let mut frames = PgFrames {
        executes: counts.pg_executes,
        ..PgFrames::default()
    };
    let mut my_frames = MyFrames {
        stmt_executes: counts.my_stmt_executes,
        resets: counts.my_resets,
        ..MyFrames::default()
    };
    let mut server_frames = PgServerFrames::default();
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        if client_side {
            frames.feed(&buf[..n], &state);
            my_frames.feed(&buf[..n], &state);
        } else {
            server_frames.feed(&buf[..n], &state.pg_rows);
        }
        let delay = state.delay_ms.load(Ordering::SeqCst);
        if delay > 0 {
            tokio::time::sleep(Duration::from_millis(delay)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}
