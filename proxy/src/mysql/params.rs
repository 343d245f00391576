//! The parameters of `COM_STMT_EXECUTE` read as JSON values, for the rules a prepared
//! INSERT leaves to its parameters (see `Guarded::deferred`). Types come with the command
//! when the client binds them, and stay until it binds new ones.

use bytes::{Buf, BufMut, BytesMut};
use serde_json::{Number, Value as Json};

use super::packet::Read41;

/// A bound parameter type as the client sent it: the protocol's type code and its flags
/// (`0x80`: unsigned).
pub type ParamType = [u8; 2];

/// An execute command (`payload` from its command byte on) of a statement with `count`
/// parameters, with the types bound in it: the client's own when it binds them (kept in
/// `types`), else the ones `types` holds from before. Such a command reads the same on
/// any connection that prepared the statement. `None` when it cannot be read, or binds
/// no types and none were bound before.
pub fn with_types(payload: &[u8], count: usize, types: &mut Vec<ParamType>) -> Option<BytesMut> {
    if count == 0 {
        return payload.get(..10).map(BytesMut::from);
    }
    let flag_at = 10 + count.div_ceil(8);
    let mut out = BytesMut::with_capacity(payload.len() + 2 * count);
    out.extend_from_slice(payload.get(..flag_at)?);
    out.put_u8(1);
    let mut rest = payload.get(flag_at + 1..)?;
    if payload[flag_at] == 1 {
        let bound = rest.get(..2 * count)?;
        *types = bound.chunks(2).map(|t| [t[0], t[1]]).collect();
        rest = &rest[2 * count..];
    }
    if types.len() != count {
        return None;
    }
    for t in types.iter() {
        out.extend_from_slice(t);
    }
    out.extend_from_slice(rest);
    Some(out)
}

/// The values of `count` parameters of an execute command (`payload` from its command
/// byte on); `types` holds the types last bound and takes new ones. `None` when the
/// command cannot be read.
pub fn decode(payload: &[u8], count: usize, types: &mut Vec<ParamType>) -> Option<Vec<Json>> {
    if count == 0 {
        return Some(Vec::new());
    }
    let mut p = BytesMut::from(payload.get(10..)?);
    let bitmap_len = count.div_ceil(8);
    if p.len() < bitmap_len + 1 {
        return None;
    }
    let nulls = p.split_to(bitmap_len);
    if p.get_u8() == 1 {
        if p.len() < count * 2 {
            return None;
        }
        *types = (0..count).map(|_| [p.get_u8(), p.get_u8()]).collect();
    }
    if types.len() != count {
        return None;
    }
    let mut values = Vec::with_capacity(count);
    for (i, &[code, flags]) in types.iter().enumerate() {
        let unsigned = flags & 0x80 != 0;
        if nulls[i / 8] & (1 << (i % 8)) != 0 || code == 0x06 {
            values.push(Json::Null);
            continue;
        }
        values.push(value(&mut p, code, unsigned)?);
    }
    Some(values)
}

fn value(p: &mut BytesMut, code: u8, unsigned: bool) -> Option<Json> {
    let int = |p: &mut BytesMut, width: usize| -> Option<Json> {
        if p.len() < width {
            return None;
        }
        let raw = p.get_uint_le(width);
        Some(Json::Number(if unsigned {
            Number::from(raw)
        } else {
            let shift = 64 - 8 * width as u32;
            Number::from(((raw << shift) as i64) >> shift)
        }))
    };
    match code {
        0x01 => int(p, 1),
        0x02 | 0x0D => int(p, 2),
        0x03 | 0x09 => int(p, 4),
        0x08 => int(p, 8),
        0x04 => {
            (p.len() >= 4).then_some(())?;
            Some(float(f64::from(p.get_f32_le())))
        }
        0x05 => {
            (p.len() >= 8).then_some(())?;
            Some(float(p.get_f64_le()))
        }
        0x07 | 0x0A | 0x0C => {
            let len = *p.first()? as usize;
            p.advance(1);
            (p.len() >= len).then_some(())?;
            Some(Json::String(date_time(&p.split_to(len))?))
        }
        0x0B => {
            let len = *p.first()? as usize;
            p.advance(1);
            (p.len() >= len).then_some(())?;
            Some(Json::String(time(&p.split_to(len))?))
        }
        _ => {
            let bytes = p.lenenc_bytes()?;
            Some(Json::String(String::from_utf8_lossy(&bytes).into_owned()))
        }
    }
}

fn float(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn date_time(b: &[u8]) -> Option<String> {
    let u16_at = |i: usize| Some(u16::from_le_bytes([*b.get(i)?, *b.get(i + 1)?]));
    Some(match b.len() {
        0 => "0000-00-00 00:00:00".to_string(),
        4 => format!("{:04}-{:02}-{:02}", u16_at(0)?, b[2], b[3]),
        7 | 11 => {
            let mut s = format!(
                "{:04}-{:02}-{:02} {:02}:{:02}:{:02}",
                u16_at(0)?,
                b[2],
                b[3],
                b[4],
                b[5],
                b[6]
            );
            if b.len() == 11 {
                let micros = u32::from_le_bytes([b[7], b[8], b[9], b[10]]);
                s.push_str(&format!(".{micros:06}"));
            }
            s
        }
        _ => return None,
    })
}

fn time(b: &[u8]) -> Option<String> {
    Some(match b.len() {
        0 => "00:00:00".to_string(),
        8 | 12 => {
            let days = u32::from_le_bytes([b[1], b[2], b[3], b[4]]);
            let hours = u64::from(days) * 24 + u64::from(b[5]);
            let mut s = format!(
                "{}{hours:02}:{:02}:{:02}",
                if b[0] == 1 { "-" } else { "" },
                b[6],
                b[7]
            );
            if b.len() == 12 {
                let micros = u32::from_le_bytes([b[8], b[9], b[10], b[11]]);
                s.push_str(&format!(".{micros:06}"));
            }
            s
        }
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_read_as_json() {
        // id 1, no cursor, 1 iteration; 4 parameters, the third NULL; types bound.
        let mut payload = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0];
        payload.push(0b0000_0100);
        payload.push(1);
        payload.extend_from_slice(&[0x08, 0, 0x05, 0, 0x06, 0, 0xFD, 0]);
        payload.extend_from_slice(&(-5i64).to_le_bytes());
        payload.extend_from_slice(&2.5f64.to_le_bytes());
        payload.extend_from_slice(&[3, b'a', b'\'', b'b']);
        let mut types = Vec::new();
        let values = decode(&payload, 4, &mut types).unwrap();
        assert_eq!(
            values,
            [
                json(-5),
                serde_json::json!(2.5),
                Json::Null,
                json_str("a'b")
            ]
        );
        // The next execute binds no types: the last ones hold.
        let mut again = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0b0000_0100, 0];
        again.extend_from_slice(&7i64.to_le_bytes());
        again.extend_from_slice(&1.0f64.to_le_bytes());
        again.extend_from_slice(&[1, b'x']);
        let values = decode(&again, 4, &mut types).unwrap();
        assert_eq!(values[0], json(7));
        assert!(decode(&again[..14], 4, &mut types).is_none(), "cut short");
        // Dates and unsigned integers.
        let mut dated = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x0C, 0, 0x01, 0x80];
        dated.extend_from_slice(&[7, 0xE8, 0x07, 12, 5, 18, 30, 0, 200]);
        let values = decode(&dated, 2, &mut Vec::new()).unwrap();
        assert_eq!(values, [json_str("2024-12-05 18:30:00"), json(200)]);
    }

    #[test]
    fn executes_get_the_types_bound_before() {
        // 2 parameters, types bound: as it came.
        let mut first = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 1, 0x08, 0, 0x01, 0x80];
        first.extend_from_slice(&5i64.to_le_bytes());
        first.push(7);
        let mut types = Vec::new();
        assert_eq!(with_types(&first, 2, &mut types).unwrap(), first[..]);
        assert_eq!(types, [[0x08, 0], [0x01, 0x80]]);
        // No types bound: the ones from before, flagged as bound.
        let mut again = vec![0x17, 1, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0];
        again.extend_from_slice(&6i64.to_le_bytes());
        again.push(8);
        let mut expected = first[..12].to_vec();
        expected.extend_from_slice(&first[12..16]);
        expected.extend_from_slice(&6i64.to_le_bytes());
        expected.push(8);
        assert_eq!(with_types(&again, 2, &mut types).unwrap(), expected[..]);
        assert!(
            with_types(&again, 2, &mut Vec::new()).is_none(),
            "never bound"
        );
        assert!(
            with_types(&first[..13], 2, &mut Vec::new()).is_none(),
            "cut short"
        );
        assert_eq!(
            with_types(&first[..10], 0, &mut types).unwrap(),
            first[..10]
        );
    }

    fn json(n: i64) -> Json {
        serde_json::json!(n)
    }

    fn json_str(s: &str) -> Json {
        Json::String(s.to_string())
    }

    proptest::proptest! {
        /// Whatever a client sends, reading it never panics.
        #[test]
        fn any_bytes(bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..80), count in 0usize..12) {
            let mut types = Vec::new();
            let _ = decode(&bytes, count, &mut types);
            let _ = decode(&bytes, count, &mut types);
            let _ = with_types(&bytes, count, &mut types);
        }
    }
}
