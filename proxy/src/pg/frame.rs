//! Message framing on both sides of the proxy: whole frames are read as bytes (type byte,
//! length, body); only the frames the proxy must understand are decoded, with pgwire.

use bytes::{Buf, BufMut, BytesMut};
use pgwire::error::ErrorInfo;
use pgwire::messages::Message;
use pgwire::messages::response::{ErrorResponse, ReadyForQuery, TransactionStatus};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// Larger frames are refused: no client needs 256 MiB in one message.
const MAX_FRAME: usize = 256 << 20;

pub struct FrameReader<S> {
    pub stream: S,
    buf: BytesMut,
}

impl<S: AsyncRead + Unpin> FrameReader<S> {
    pub fn new(stream: S) -> Self {
        FrameReader {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    async fn fill(&mut self, wanted: usize) -> std::io::Result<bool> {
        while self.buf.len() < wanted {
            self.buf.reserve(wanted - self.buf.len());
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// A typed frame (`type, length, body`), whole; `None` at end of stream.
    pub async fn frame(&mut self) -> std::io::Result<Option<BytesMut>> {
        if !self.fill(5).await? {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.buf[1], self.buf[2], self.buf[3], self.buf[4]]);
        let total = frame_len(len, 1)?;
        if !self.fill(total).await? {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total)))
    }

    /// An untyped frame (startup, SSL and cancel requests).
    pub async fn startup_frame(&mut self) -> std::io::Result<Option<BytesMut>> {
        if !self.fill(4).await? {
            return Ok(None);
        }
        let len = i32::from_be_bytes([self.buf[0], self.buf[1], self.buf[2], self.buf[3]]);
        let total = frame_len(len, 0)?;
        if !(8..=10_000).contains(&total) {
            return Err(invalid("bad startup packet length"));
        }
        if !self.fill(total).await? {
            return Ok(None);
        }
        Ok(Some(self.buf.split_to(total)))
    }

    /// Every complete frame already read, as one contiguous run, after reading at least one
    /// more chunk; `None` at end of stream. A partial frame stays buffered.
    pub async fn frames(&mut self) -> std::io::Result<Option<BytesMut>> {
        loop {
            let complete = complete_prefix(&self.buf)?;
            if complete > 0 {
                return Ok(Some(self.buf.split_to(complete)));
            }
            self.buf.reserve(64 * 1024);
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                return Ok(None);
            }
        }
    }

    /// Bytes read past the last frame handed out (to move the reader onto a TLS stream).
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn into_inner(self) -> S {
        self.stream
    }
}

fn frame_len(len: i32, type_bytes: usize) -> std::io::Result<usize> {
    let len = usize::try_from(len).map_err(|_| invalid("negative message length"))?;
    if !(4..=MAX_FRAME).contains(&len) {
        return Err(invalid("message length out of range"));
    }
    Ok(len + type_bytes)
}

/// The length of the run of complete typed frames at the start of `buf`.
fn complete_prefix(buf: &[u8]) -> std::io::Result<usize> {
    let mut at = 0;
    while buf.len() >= at + 5 {
        let len = i32::from_be_bytes([buf[at + 1], buf[at + 2], buf[at + 3], buf[at + 4]]);
        let total = frame_len(len, 1)?;
        if buf.len() < at + total {
            break;
        }
        at += total;
    }
    Ok(at)
}

/// Calls `f` with the type byte and whole frame of each frame in a run of complete frames.
pub fn each_frame(run: &[u8], mut f: impl FnMut(u8, &[u8])) {
    for (kind, frame) in Frames::new(run) {
        f(kind, frame);
    }
}

/// The frames of a run as (type byte, whole frame); it stops at the first frame that is
/// not whole or whose length is out of range.
pub struct Frames<'a> {
    run: &'a [u8],
    at: usize,
}

impl<'a> Frames<'a> {
    pub fn new(run: &'a [u8]) -> Self {
        Frames { run, at: 0 }
    }

    /// Where the next frame starts.
    pub fn at(&self) -> usize {
        self.at
    }
}

impl<'a> Iterator for Frames<'a> {
    type Item = (u8, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        let head = self.run.get(self.at..self.at + 5)?;
        let len = usize::try_from(i32::from_be_bytes([head[1], head[2], head[3], head[4]])).ok()?;
        let frame = self
            .run
            .get(self.at..self.at + 1 + len)
            .filter(|f| f.len() >= 5)?;
        self.at += frame.len();
        Some((head[0], frame))
    }
}

pub fn invalid(message: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, message.to_string())
}

/// Decodes one whole typed frame with pgwire.
pub fn decode<M: Message>(frame: &mut BytesMut) -> std::io::Result<M> {
    let ctx = pgwire::messages::DecodeContext::default();
    M::decode(frame, &ctx)
        .map_err(|e| invalid(&e.to_string()))?
        .ok_or_else(|| invalid("truncated message"))
}

pub fn encode<M: Message>(message: &M, out: &mut BytesMut) {
    // Encoding into memory fails only for messages over pgwire's size limits, which the
    // proxy's own messages never reach.
    if let Err(e) = message.encode(out) {
        tracing::warn!(error = %e, "cannot encode a protocol message");
    }
}

pub fn error_response(severity: &str, code: &str, message: &str) -> BytesMut {
    let mut out = BytesMut::new();
    let info = ErrorInfo::new(severity.to_string(), code.to_string(), message.to_string());
    encode(&ErrorResponse::from(info), &mut out);
    out
}

pub fn ready_for_query(status: u8) -> BytesMut {
    let status = match status {
        b'T' => TransactionStatus::Transaction,
        b'E' => TransactionStatus::Error,
        _ => TransactionStatus::Idle,
    };
    let mut out = BytesMut::new();
    encode(&ReadyForQuery::new(status), &mut out);
    out
}

/// A typed frame built by hand: `type`, length, `body`.
pub fn typed(kind: u8, body: &[u8]) -> BytesMut {
    let mut out = BytesMut::with_capacity(body.len() + 5);
    out.put_u8(kind);
    out.put_i32((body.len() + 4) as i32);
    out.put_slice(body);
    out
}

/// The NUL-terminated string at the start of `body`.
pub fn cstr(body: &mut impl Buf) -> Option<String> {
    let bytes = body.chunk();
    let end = bytes.iter().position(|b| *b == 0)?;
    let s = String::from_utf8(bytes[..end].to_vec()).ok()?;
    body.advance(end + 1);
    Some(s)
}

pub async fn write_all<W: AsyncWrite + Unpin>(w: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    w.write_all(bytes).await?;
    w.flush().await
}
