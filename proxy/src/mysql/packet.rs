//! MySQL packets: a 3-byte little-endian payload length, a sequence id, the payload. A
//! payload of 16 MiB - 1 or more is split into parts of that size, the last one shorter.
//! Readers hand out whole physical packets (header included, for forwarding as they are)
//! or logical ones (payload of every part joined, for reading).

use bytes::{Buf, BufMut, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The most a packet part carries; a part this long is followed by another.
pub const MAX_PART: usize = 0xFF_FFFF;

/// The most a client command may hold (its parts joined): larger ones end the session
/// rather than grow a buffer without bound.
pub const MAX_COMMAND: usize = 64 * 1024 * 1024;

pub struct PacketReader<R> {
    pub stream: R,
    buf: BytesMut,
}

/// A logical packet: the sequence id of its last part and the joined payload.
pub struct Packet {
    pub seq: u8,
    pub payload: BytesMut,
}

impl<R: AsyncRead + Unpin> PacketReader<R> {
    pub fn new(stream: R) -> Self {
        PacketReader {
            stream,
            buf: BytesMut::with_capacity(16 * 1024),
        }
    }

    /// Bytes read but not handed out yet.
    pub fn buffered(&self) -> usize {
        self.buf.len()
    }

    pub fn into_inner(self) -> R {
        self.stream
    }

    /// The stream and the bytes read from it but not handed out yet.
    pub fn into_parts(self) -> (R, BytesMut) {
        (self.stream, self.buf)
    }

    /// A reader that hands out `buffered` before reading `stream`.
    pub fn resume(stream: R, buffered: BytesMut) -> Self {
        PacketReader {
            stream,
            buf: buffered,
        }
    }

    /// Reads until `n` bytes are buffered; `false` at a clean end of stream.
    async fn fill(&mut self, n: usize) -> std::io::Result<bool> {
        while self.buf.len() < n {
            self.buf
                .reserve(n.saturating_sub(self.buf.len()).max(8 * 1024));
            if self.stream.read_buf(&mut self.buf).await? == 0 {
                if self.buf.is_empty() {
                    return Ok(false);
                }
                return Err(invalid("the connection closed inside a packet"));
            }
        }
        Ok(true)
    }

    /// The next physical packet, header included.
    pub async fn part(&mut self) -> std::io::Result<Option<BytesMut>> {
        if !self.fill(4).await? {
            return Ok(None);
        }
        let len = part_len(&self.buf);
        if !self.fill(4 + len).await? {
            return Err(invalid("the connection closed inside a packet"));
        }
        Ok(Some(self.buf.split_to(4 + len)))
    }

    /// The next logical packet, its parts joined.
    pub async fn packet(&mut self) -> std::io::Result<Option<Packet>> {
        let mut payload = BytesMut::new();
        loop {
            let Some(mut part) = self.part().await? else {
                return if payload.is_empty() {
                    Ok(None)
                } else {
                    Err(invalid("the connection closed inside a packet"))
                };
            };
            let len = part_len(&part);
            let seq = part[3];
            part.advance(4);
            payload.unsplit(part);
            if payload.len() > MAX_COMMAND {
                return Err(invalid("a packet beyond the size rectus accepts"));
            }
            if len < MAX_PART {
                return Ok(Some(Packet { seq, payload }));
            }
        }
    }
}

/// The payload length a packet header gives.
pub fn part_len(header: &[u8]) -> usize {
    header[0] as usize | (header[1] as usize) << 8 | (header[2] as usize) << 16
}

/// Appends `payload` as packets numbered from `seq`; returns the next sequence id.
pub fn frame(out: &mut BytesMut, mut seq: u8, payload: &[u8]) -> u8 {
    let mut rest = payload;
    loop {
        let n = rest.len().min(MAX_PART);
        out.put_uint_le(n as u64, 3);
        out.put_u8(seq);
        out.extend_from_slice(&rest[..n]);
        seq = seq.wrapping_add(1);
        rest = &rest[n..];
        if n < MAX_PART {
            return seq;
        }
    }
}

/// Writes `payload` as packets numbered from `seq`; returns the next sequence id.
pub async fn write<W: AsyncWrite + Unpin>(
    stream: &mut W,
    seq: u8,
    payload: &[u8],
) -> std::io::Result<u8> {
    let mut out = BytesMut::with_capacity(payload.len() + 4);
    let next = frame(&mut out, seq, payload);
    stream.write_all(&out).await?;
    stream.flush().await?;
    Ok(next)
}

pub fn invalid(what: &str) -> std::io::Error {
    std::io::Error::new(std::io::ErrorKind::InvalidData, what.to_string())
}

/// Length-encoded integers and strings, and NUL-terminated strings, read from a payload.
pub trait Read41 {
    fn lenenc(&mut self) -> Option<u64>;
    fn lenenc_bytes(&mut self) -> Option<BytesMut>;
    fn nul_str(&mut self) -> Option<BytesMut>;
}

impl Read41 for BytesMut {
    fn lenenc(&mut self) -> Option<u64> {
        let first = *self.first()?;
        let (skip, width) = match first {
            0..=0xFA => {
                self.advance(1);
                return Some(first as u64);
            }
            0xFC => (1, 2),
            0xFD => (1, 3),
            0xFE => (1, 8),
            _ => return None,
        };
        if self.len() < skip + width {
            return None;
        }
        self.advance(skip);
        Some(self.get_uint_le(width))
    }

    fn lenenc_bytes(&mut self) -> Option<BytesMut> {
        let len = usize::try_from(self.lenenc()?).ok()?;
        (self.len() >= len).then(|| self.split_to(len))
    }

    fn nul_str(&mut self) -> Option<BytesMut> {
        let end = self.iter().position(|&b| b == 0)?;
        let s = self.split_to(end);
        self.advance(1);
        Some(s)
    }
}

/// Appends a length-encoded integer.
pub fn put_lenenc(out: &mut BytesMut, n: u64) {
    match n {
        0..=0xFA => out.put_u8(n as u8),
        0xFB..=0xFFFF => {
            out.put_u8(0xFC);
            out.put_u16_le(n as u16);
        }
        0x1_0000..=0xFF_FFFF => {
            out.put_u8(0xFD);
            out.put_uint_le(n, 3);
        }
        _ => {
            out.put_u8(0xFE);
            out.put_u64_le(n);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn long_payloads_split_and_join() {
        let payload: Vec<u8> = (0..MAX_PART + 10).map(|i| i as u8).collect();
        let mut out = BytesMut::new();
        let next = frame(&mut out, 3, &payload);
        assert_eq!(next, 5);
        let mut reader = PacketReader::new(&out[..]);
        let packet = reader.packet().await.unwrap().unwrap();
        assert_eq!(packet.seq, 4);
        assert_eq!(&packet.payload[..], &payload[..]);
        assert!(reader.packet().await.unwrap().is_none());
        // A part of exactly the maximum is followed by an empty one.
        let mut out = BytesMut::new();
        assert_eq!(frame(&mut out, 0, &payload[..MAX_PART]), 2);
        assert_eq!(out.len(), MAX_PART + 8);
    }

    #[test]
    fn lenenc_round_trips() {
        for n in [
            0,
            250,
            251,
            65_535,
            65_536,
            16_777_215,
            16_777_216,
            u64::MAX,
        ] {
            let mut out = BytesMut::new();
            put_lenenc(&mut out, n);
            assert_eq!(out.lenenc(), Some(n));
            assert!(out.is_empty());
        }
        assert_eq!(BytesMut::from(&[0xFC, 1][..]).lenenc(), None);
    }
}
