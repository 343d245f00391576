//! The parts of the MySQL client/server protocol the endpoint speaks: capability flags,
//! the server greeting, the client's handshake response, OK/ERR packets, and where a
//! command's response ends.

use bytes::{Buf, BufMut, BytesMut};

use super::packet::{MAX_PART, Read41, put_lenenc};

pub mod caps {
    pub const LONG_PASSWORD: u32 = 1;
    pub const FOUND_ROWS: u32 = 1 << 1;
    pub const LONG_FLAG: u32 = 1 << 2;
    pub const CONNECT_WITH_DB: u32 = 1 << 3;
    pub const PROTOCOL_41: u32 = 1 << 9;
    pub const INTERACTIVE: u32 = 1 << 10;
    pub const SSL: u32 = 1 << 11;
    pub const IGNORE_SIGPIPE: u32 = 1 << 12;
    pub const TRANSACTIONS: u32 = 1 << 13;
    pub const SECURE_CONNECTION: u32 = 1 << 15;
    pub const MULTI_STATEMENTS: u32 = 1 << 16;
    pub const MULTI_RESULTS: u32 = 1 << 17;
    pub const PS_MULTI_RESULTS: u32 = 1 << 18;
    pub const PLUGIN_AUTH: u32 = 1 << 19;
    pub const CONNECT_ATTRS: u32 = 1 << 20;
    pub const PLUGIN_AUTH_LENENC_DATA: u32 = 1 << 21;
    pub const DEPRECATE_EOF: u32 = 1 << 24;

    /// What rectus offers clients (less whatever the database lacks). Left out on purpose:
    /// compression, `LOCAL INFILE`, `IGNORE_SPACE` (changes how names parse), session
    /// tracking, query attributes and optional metadata (change packet formats).
    pub const OFFERED: u32 = LONG_PASSWORD
        | FOUND_ROWS
        | LONG_FLAG
        | CONNECT_WITH_DB
        | PROTOCOL_41
        | INTERACTIVE
        | IGNORE_SIGPIPE
        | TRANSACTIONS
        | SECURE_CONNECTION
        | MULTI_STATEMENTS
        | MULTI_RESULTS
        | PS_MULTI_RESULTS
        | PLUGIN_AUTH
        | CONNECT_ATTRS
        | PLUGIN_AUTH_LENENC_DATA
        | DEPRECATE_EOF;

    /// Capabilities that change what the database answers, so an upstream connection
    /// serves only clients that chose the same.
    pub const SESSION_SHAPING: u32 =
        FOUND_ROWS | MULTI_STATEMENTS | MULTI_RESULTS | PS_MULTI_RESULTS | DEPRECATE_EOF;
}

pub mod command {
    pub const QUIT: u8 = 0x01;
    pub const INIT_DB: u8 = 0x02;
    pub const QUERY: u8 = 0x03;
    pub const PING: u8 = 0x0E;
    pub const CHANGE_USER: u8 = 0x11;
    pub const STMT_PREPARE: u8 = 0x16;
    pub const STMT_EXECUTE: u8 = 0x17;
    pub const STMT_SEND_LONG_DATA: u8 = 0x18;
    pub const STMT_CLOSE: u8 = 0x19;
    pub const STMT_RESET: u8 = 0x1A;
    pub const SET_OPTION: u8 = 0x1B;
    pub const RESET_CONNECTION: u8 = 0x1F;
}

pub const SERVER_STATUS_IN_TRANS: u16 = 0x0001;
pub const SERVER_STATUS_AUTOCOMMIT: u16 = 0x0002;
pub const SERVER_MORE_RESULTS_EXISTS: u16 = 0x0008;

/// utf8mb4_general_ci: what guarded sessions speak.
pub const UTF8MB4: u8 = 45;

/// The server greeting (protocol 10) with `mysql_native_password` as the default plugin.
pub fn greeting(version: &str, connection_id: u32, salt: &[u8; 20], capabilities: u32) -> BytesMut {
    let mut out = BytesMut::with_capacity(128);
    out.put_u8(10);
    out.extend_from_slice(version.as_bytes());
    out.put_u8(0);
    out.put_u32_le(connection_id);
    out.extend_from_slice(&salt[..8]);
    out.put_u8(0);
    out.put_u16_le(capabilities as u16);
    out.put_u8(UTF8MB4);
    out.put_u16_le(SERVER_STATUS_AUTOCOMMIT);
    out.put_u16_le((capabilities >> 16) as u16);
    out.put_u8(21);
    out.extend_from_slice(&[0; 10]);
    out.extend_from_slice(&salt[8..]);
    out.put_u8(0);
    out.extend_from_slice(b"mysql_native_password\0");
    out
}

/// What a client's handshake response holds.
#[derive(Debug, Default)]
pub struct HandshakeResponse {
    pub capabilities: u32,
    pub charset: u8,
    pub user: String,
    pub auth: Vec<u8>,
    pub database: Option<String>,
    pub plugin: Option<String>,
}

/// The short response that asks for TLS: capabilities, max packet, charset, filler.
pub fn is_ssl_request(payload: &[u8]) -> bool {
    payload.len() == 32
        && u32::from_le_bytes([payload[0], payload[1], payload[2], payload[3]]) & caps::SSL != 0
}

pub fn handshake_response(mut p: BytesMut) -> Option<HandshakeResponse> {
    if p.len() < 32 {
        return None;
    }
    let capabilities = p.get_u32_le();
    if capabilities & caps::PROTOCOL_41 == 0 {
        return None;
    }
    let _max_packet = p.get_u32_le();
    let charset = p.get_u8();
    p.advance(23);
    let user = String::from_utf8(p.nul_str()?.to_vec()).ok()?;
    let auth = if capabilities & caps::PLUGIN_AUTH_LENENC_DATA != 0 {
        p.lenenc_bytes()?.to_vec()
    } else if capabilities & caps::SECURE_CONNECTION != 0 {
        let len = *p.first()? as usize;
        p.advance(1);
        if p.len() < len {
            return None;
        }
        p.split_to(len).to_vec()
    } else {
        p.nul_str()?.to_vec()
    };
    let database = if capabilities & caps::CONNECT_WITH_DB != 0 && !p.is_empty() {
        Some(String::from_utf8(p.nul_str()?.to_vec()).ok()?).filter(|d| !d.is_empty())
    } else {
        None
    };
    let plugin = if capabilities & caps::PLUGIN_AUTH != 0 && !p.is_empty() {
        p.nul_str().and_then(|s| String::from_utf8(s.to_vec()).ok())
    } else {
        None
    };
    Some(HandshakeResponse {
        capabilities,
        charset,
        user,
        auth,
        database,
        plugin,
    })
}

/// An auth switch request: the plugin the client must use now, and its data.
pub fn auth_switch(plugin: &str, data: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(plugin.len() + data.len() + 3);
    out.put_u8(0xFE);
    out.extend_from_slice(plugin.as_bytes());
    out.put_u8(0);
    out.extend_from_slice(data);
    out
}

pub fn ok(affected: u64, status: u16) -> BytesMut {
    let mut out = BytesMut::with_capacity(11);
    out.put_u8(0);
    put_lenenc(&mut out, affected);
    put_lenenc(&mut out, 0);
    out.put_u16_le(status);
    out.put_u16_le(0);
    out
}

pub fn err(code: u16, sqlstate: &str, message: &str) -> BytesMut {
    let mut out = BytesMut::with_capacity(message.len() + 9);
    out.put_u8(0xFF);
    out.put_u16_le(code);
    out.put_u8(b'#');
    out.extend_from_slice(&sqlstate.as_bytes()[..5]);
    out.extend_from_slice(message.as_bytes());
    out
}

/// The error of an ERR payload (code and message), for logs and tests.
pub fn err_message(payload: &[u8]) -> String {
    if payload.len() < 3 || payload[0] != 0xFF {
        return "unexpected answer".into();
    }
    let code = u16::from_le_bytes([payload[1], payload[2]]);
    let text = if payload.get(3) == Some(&b'#') && payload.len() >= 9 {
        &payload[9..]
    } else {
        &payload[3..]
    };
    format!("{code}: {}", String::from_utf8_lossy(text))
}

/// The status flags of an OK (or, for `eof`, an EOF) payload.
fn status(payload: &[u8], eof: bool) -> u16 {
    let mut p = BytesMut::from(&payload[1..]);
    if eof {
        return if p.len() >= 4 {
            u16::from_le_bytes([p[2], p[3]])
        } else {
            0
        };
    }
    if p.lenenc().is_none() || p.lenenc().is_none() || p.len() < 2 {
        return 0;
    }
    p.get_u16_le()
}

/// Which command a response answers, for knowing where it ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Expect {
    /// Result sets, OK or ERR (`COM_QUERY`, `COM_STMT_EXECUTE`).
    Results,
    /// `COM_STMT_PREPARE`: OK with parameter and column definitions, or ERR.
    Prepare,
    /// One packet (`COM_PING`, `COM_INIT_DB`, `COM_STMT_RESET`, ...).
    One,
}

#[derive(Debug, Clone, Copy)]
enum State {
    First,
    Columns(u64),
    ColumnsEof,
    Rows,
    Params { left: u64, columns: u64 },
    ParamsEof { columns: u64 },
    PrepareColumns(u64),
    PrepareColumnsEof,
    Done,
}

/// Follows a response packet by packet and says when it is complete.
pub struct Response {
    expect: Expect,
    deprecate_eof: bool,
    state: State,
    /// The previous part was full, so this one continues the same packet.
    continued: bool,
    /// The statement id of a `COM_STMT_PREPARE` answered with OK.
    pub statement: Option<u32>,
    /// How many parameters that statement takes.
    pub parameters: usize,
    /// Whether the response (or its last result) was an error.
    pub failed: bool,
    /// That error's code.
    pub error: Option<u16>,
    /// The status flags of its last OK or EOF, if it had one.
    pub status: Option<u16>,
}

impl Response {
    pub fn new(expect: Expect, capabilities: u32) -> Self {
        Response {
            expect,
            deprecate_eof: capabilities & caps::DEPRECATE_EOF != 0,
            state: State::First,
            continued: false,
            statement: None,
            parameters: 0,
            failed: false,
            error: None,
            status: None,
        }
    }

    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// [`Self::feed`] for a guarded session's answer, whose warning counts are zeroed in
    /// `part`: MySQL reports conversion warnings with the converted values, which could
    /// come from rows outside the row filter. `true` when a count was not zero.
    pub fn feed_guarded(&mut self, part: &mut [u8]) -> Result<bool, &'static str> {
        let Some(at) = self.feed(part)? else {
            return Ok(false);
        };
        let warned = part[4 + at] != 0 || part[5 + at] != 0;
        part[4 + at] = 0;
        part[5 + at] = 0;
        Ok(warned)
    }

    /// Takes the next physical packet (header included). `Ok(Some(at))` when the packet
    /// holds a warning count, at that offset of the payload. `Err` for a packet that cannot
    /// come here (`LOCAL INFILE` requests, which rectus never enables).
    pub fn feed(&mut self, part: &[u8]) -> Result<Option<usize>, &'static str> {
        let len = part.len() - 4;
        let continued = self.continued;
        self.continued = len == MAX_PART;
        if continued {
            return Ok(None);
        }
        let payload = &part[4..];
        let Some(&first) = payload.first() else {
            return Err("an empty packet");
        };
        let eof = !self.deprecate_eof;
        let warnings = match (self.state, first) {
            (State::First, 0x00) if self.expect == Expect::Prepare => Some(10),
            (State::First, 0x00) => ok_warnings(payload),
            (State::First, 0xFE) if len < 9 => Some(1),
            (State::ColumnsEof | State::ParamsEof { .. } | State::PrepareColumnsEof, 0xFE) => {
                Some(1)
            }
            (State::Rows, 0xFE) if eof && len < 9 => Some(1),
            (State::Rows, 0xFE) if !eof && len < MAX_PART => ok_warnings(payload),
            _ => None,
        }
        .filter(|at| at + 2 <= payload.len());
        self.state = match self.state {
            State::First => match (self.expect, first) {
                (_, 0xFF) => {
                    self.failed(payload);
                    State::Done
                }
                (Expect::One, _) => State::Done,
                (Expect::Prepare, 0x00) if payload.len() >= 9 => {
                    self.statement = Some(u32::from_le_bytes([
                        payload[1], payload[2], payload[3], payload[4],
                    ]));
                    let columns = u16::from_le_bytes([payload[5], payload[6]]) as u64;
                    let params = u16::from_le_bytes([payload[7], payload[8]]) as u64;
                    self.parameters = params as usize;
                    match params {
                        0 => prepare_columns(columns),
                        left => State::Params { left, columns },
                    }
                }
                (Expect::Prepare, _) => return Err("an unexpected answer to a prepare"),
                (Expect::Results, 0x00) => self.after_result(status(payload, false)),
                (Expect::Results, 0xFB) => return Err("a LOCAL INFILE request"),
                (Expect::Results, _) => {
                    let mut p = BytesMut::from(payload);
                    match p.lenenc() {
                        Some(n) if n > 0 => State::Columns(n),
                        _ => return Err("a malformed result set header"),
                    }
                }
            },
            State::Columns(n) if n > 1 => State::Columns(n - 1),
            State::Columns(_) if eof => State::ColumnsEof,
            State::Columns(_) | State::ColumnsEof => State::Rows,
            State::Rows => match first {
                0xFF => {
                    self.failed(payload);
                    State::Done
                }
                0xFE if (!eof && len < MAX_PART) || len < 9 => {
                    self.after_result(status(payload, eof))
                }
                _ => State::Rows,
            },
            State::Params { left, columns } if left > 1 => State::Params {
                left: left - 1,
                columns,
            },
            State::Params { columns, .. } if eof => State::ParamsEof { columns },
            State::Params { columns, .. } | State::ParamsEof { columns } => {
                prepare_columns(columns)
            }
            State::PrepareColumns(n) if n > 1 => State::PrepareColumns(n - 1),
            State::PrepareColumns(_) if eof => State::PrepareColumnsEof,
            State::PrepareColumns(_) | State::PrepareColumnsEof => State::Done,
            State::Done => return Err("more than the response"),
        };
        Ok(warnings)
    }

    /// An ERR packet's payload came.
    fn failed(&mut self, payload: &[u8]) {
        self.failed = true;
        self.error = payload
            .get(1..3)
            .map(|code| u16::from_le_bytes([code[0], code[1]]));
    }

    fn after_result(&mut self, status: u16) -> State {
        self.failed = false;
        self.error = None;
        self.status = Some(status);
        if status & SERVER_MORE_RESULTS_EXISTS != 0 {
            State::First
        } else {
            State::Done
        }
    }
}

/// Where an OK packet's warning count is: after the header, two length-encoded integers
/// and the status flags.
fn ok_warnings(payload: &[u8]) -> Option<usize> {
    let mut p = BytesMut::from(&payload[1..]);
    let before = p.len();
    p.lenenc()?;
    p.lenenc()?;
    Some(1 + before - p.len() + 2)
}

fn prepare_columns(columns: u64) -> State {
    match columns {
        0 => State::Done,
        n => State::PrepareColumns(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn part(payload: &[u8]) -> Vec<u8> {
        let mut out = BytesMut::new();
        super::super::packet::frame(&mut out, 1, payload);
        out.to_vec()
    }

    fn run(expect: Expect, capabilities: u32, packets: &[&[u8]]) -> Vec<bool> {
        let mut r = Response::new(expect, capabilities);
        packets
            .iter()
            .map(|p| {
                r.feed(&part(p)).unwrap();
                r.done()
            })
            .collect()
    }

    const EOF: &[u8] = &[0xFE, 0, 0, 2, 0];
    const EOF_MORE: &[u8] = &[0xFE, 0, 0, 0x0A, 0];
    const OK_EOF: &[u8] = &[0xFE, 0, 0, 2, 0, 0, 0];

    #[test]
    fn result_sets_end_at_their_terminator() {
        let col: &[u8] = &[3, b'd', b'e', b'f'];
        let row: &[u8] = &[1, b'x'];
        // Classic EOF: header, 2 columns, EOF, 2 rows, EOF.
        let done = run(Expect::Results, 0, &[&[2], col, col, EOF, row, row, EOF]);
        assert_eq!(done, [false, false, false, false, false, false, true]);
        // DEPRECATE_EOF: no EOF after the columns; an OK with 0xFE ends.
        let done = run(
            Expect::Results,
            caps::DEPRECATE_EOF,
            &[&[1], col, row, OK_EOF],
        );
        assert_eq!(done, [false, false, false, true]);
        // More results: the next set follows.
        let done = run(
            Expect::Results,
            0,
            &[&[1], col, EOF, row, EOF_MORE, &[0, 0, 0, 2, 0, 0, 0]],
        );
        assert_eq!(done, [false, false, false, false, false, true]);
        // An error in the middle of rows ends it.
        let done = run(Expect::Results, 0, &[&[1], col, EOF, &[0xFF, 1, 0]]);
        assert_eq!(done, [false, false, false, true]);
    }

    #[test]
    fn empty_or_unexpected_packets_are_errors() {
        let mut r = Response::new(Expect::Results, 0);
        assert!(r.feed(&[0, 0, 0, 1]).is_err());
        let mut r = Response::new(Expect::Results, 0);
        assert!(r.feed(&part(&[0xFB, b'/', b'x'])).is_err(), "LOCAL INFILE");
        let mut r = Response::new(Expect::One, 0);
        r.feed(&part(&[0, 0, 0, 2, 0, 0, 0])).unwrap();
        assert!(
            r.feed(&part(&[0, 0, 0, 2, 0, 0, 0])).is_err(),
            "more than the answer"
        );
    }

    #[test]
    fn warning_counts_are_found_in_oks_and_eofs() {
        let mut r = Response::new(Expect::Results, 0);
        let ok = [0, 0xFC, 0x10, 0x27, 5, 2, 0, 3, 0];
        assert_eq!(r.feed(&part(&ok)).unwrap(), Some(7));
        let mut r = Response::new(Expect::Results, 0);
        let col: &[u8] = &[3, b'd', b'e', b'f'];
        assert_eq!(r.feed(&part(&[1])).unwrap(), None);
        assert_eq!(r.feed(&part(col)).unwrap(), None);
        assert_eq!(r.feed(&part(EOF)).unwrap(), Some(1));
        assert_eq!(r.feed(&part(&[1, b'x'])).unwrap(), None);
        assert_eq!(r.feed(&part(EOF)).unwrap(), Some(1));
        let mut r = Response::new(Expect::Results, caps::DEPRECATE_EOF);
        r.feed(&part(&[1])).unwrap();
        r.feed(&part(col)).unwrap();
        assert_eq!(r.feed(&part(OK_EOF)).unwrap(), Some(5));
    }

    #[test]
    fn prepares_end_after_their_definitions() {
        let col: &[u8] = &[3, b'd', b'e', b'f'];
        let ok = |columns: u8, params: u8| vec![0, 7, 0, 0, 0, columns, 0, params, 0, 0, 0, 0];
        let mut r = Response::new(Expect::Prepare, 0);
        r.feed(&part(&ok(1, 2))).unwrap();
        assert_eq!(r.statement, Some(7));
        for p in [col, col, EOF, col] {
            r.feed(&part(p)).unwrap();
            assert!(!r.done());
        }
        r.feed(&part(EOF)).unwrap();
        assert!(r.done());
        let done = run(Expect::Prepare, caps::DEPRECATE_EOF, &[&ok(1, 1), col, col]);
        assert_eq!(done, [false, false, true]);
        assert_eq!(run(Expect::Prepare, 0, &[&ok(0, 0)]), [true]);
    }
}

#[cfg(test)]
mod fuzz {
    //! Whatever a client or the database sends, reading it never panics.

    use proptest::prelude::*;

    use super::*;

    proptest! {
        #[test]
        fn handshake_responses(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let _ = handshake_response(BytesMut::from(&bytes[..]));
            let _ = is_ssl_request(&bytes);
            let _ = err_message(&bytes);
        }

        #[test]
        fn answers(
            parts in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..40), 1..12),
            expect in 0usize..3,
            capabilities in any::<u32>(),
        ) {
            let expect = [Expect::Results, Expect::Prepare, Expect::One][expect];
            let mut r = Response::new(expect, capabilities);
            for payload in parts {
                let mut part = BytesMut::new();
                super::super::packet::frame(&mut part, 1, &payload);
                if let Ok(Some(at)) = r.feed(&part) {
                    prop_assert!(at + 2 <= payload.len());
                }
            }
        }
    }
}
