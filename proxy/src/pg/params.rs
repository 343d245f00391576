//! The parameters of a Bind message read as JSON values, for the rules a prepared INSERT
//! leaves to its parameters (see `Guarded::deferred`). Text-format values are taken as
//! text; binary ones are read by their type (from Parse, or the database's
//! ParameterDescription); a binary value of a type not read here cannot be checked.

use bytes::Buf;
use chrono::{Duration, NaiveDate};
use serde_json::{Number, Value as Json};

/// The values of `parameters` bound with `formats` (none: all text; one: for all; else
/// one each) whose types are `types` (0: unknown).
pub fn decode(
    parameters: &[Option<bytes::Bytes>],
    formats: &[i16],
    types: &[u32],
) -> Option<Vec<Json>> {
    parameters
        .iter()
        .enumerate()
        .map(|(i, value)| {
            let Some(bytes) = value else {
                return Some(Json::Null);
            };
            let format = match formats {
                [] => 0,
                [one] => *one,
                each => *each.get(i)?,
            };
            if format == 0 {
                return Some(Json::String(std::str::from_utf8(bytes).ok()?.to_string()));
            }
            binary(bytes, types.get(i).copied().unwrap_or(0))
        })
        .collect()
}

fn binary(bytes: &[u8], oid: u32) -> Option<Json> {
    let mut b = bytes;
    let exact = |len: usize| (bytes.len() == len).then_some(());
    Some(match oid {
        16 => {
            exact(1)?;
            Json::Bool(b[0] != 0)
        }
        21 => {
            exact(2)?;
            Json::from(b.get_i16())
        }
        23 => {
            exact(4)?;
            Json::from(b.get_i32())
        }
        20 => {
            exact(8)?;
            Json::from(b.get_i64())
        }
        700 => {
            exact(4)?;
            float(f64::from(b.get_f32()))
        }
        701 => {
            exact(8)?;
            float(b.get_f64())
        }
        1700 => Json::String(numeric(b)?),
        25 | 1043 | 1042 | 19 | 114 | 705 => Json::String(std::str::from_utf8(b).ok()?.to_string()),
        3802 => {
            let (&version, text) = b.split_first()?;
            (version == 1).then_some(())?;
            let text = std::str::from_utf8(text).ok()?;
            serde_json::from_str(text).ok()?
        }
        2950 => {
            exact(16)?;
            Json::String(uuid(b))
        }
        1082 => {
            exact(4)?;
            let days = Duration::days(i64::from(b.get_i32()));
            Json::String(
                epoch()
                    .checked_add_signed(days)?
                    .format("%Y-%m-%d")
                    .to_string(),
            )
        }
        1114 | 1184 => {
            exact(8)?;
            let micros = Duration::microseconds(b.get_i64());
            let at = epoch().and_hms_opt(0, 0, 0)?.checked_add_signed(micros)?;
            Json::String(at.format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string())
        }
        _ => return None,
    })
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(2000, 1, 1).unwrap_or_default()
}

fn float(f: f64) -> Json {
    Number::from_f64(f).map_or(Json::Null, Json::Number)
}

fn uuid(b: &[u8]) -> String {
    let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// PostgreSQL's binary numeric: digit count, weight, sign, scale, then base-10000 digits.
fn numeric(mut b: &[u8]) -> Option<String> {
    if b.len() < 8 {
        return None;
    }
    let count = b.get_u16() as usize;
    let weight = i32::from(b.get_i16());
    let sign = b.get_u16();
    let scale = b.get_u16() as usize;
    if b.len() != count * 2 || count > 1000 || scale > 1000 {
        return None;
    }
    match sign {
        0x0000 | 0x4000 => {}
        _ => return None,
    }
    let digits: Vec<u16> = (0..count).map(|_| b.get_u16()).collect();
    if digits.iter().any(|d| *d > 9999) {
        return None;
    }
    // The value is the sum of digits[i] * 10000^(weight - i).
    let group = |exponent: i32| -> u16 {
        usize::try_from(weight - exponent)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut int = String::new();
    for exponent in (0..=weight).rev() {
        if int.is_empty() {
            int = group(exponent).to_string();
        } else {
            int.push_str(&format!("{:04}", group(exponent)));
        }
    }
    if int.is_empty() {
        int.push('0');
    }
    let mut fraction = String::new();
    let mut exponent = -1;
    while fraction.len() < scale {
        fraction.push_str(&format!("{:04}", group(exponent)));
        exponent -= 1;
    }
    fraction.truncate(scale);
    let sign = if sign == 0x4000 { "-" } else { "" };
    Some(if scale > 0 {
        format!("{sign}{int}.{fraction}")
    } else {
        format!("{sign}{int}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric_bytes(count: u16, weight: i16, sign: u16, scale: u16, digits: &[u16]) -> Vec<u8> {
        let mut out = Vec::new();
        for v in [count, weight as u16, sign, scale] {
            out.extend_from_slice(&v.to_be_bytes());
        }
        for d in digits {
            out.extend_from_slice(&d.to_be_bytes());
        }
        out
    }

    #[test]
    fn binary_values_read_as_json() {
        let values = [
            Some(bytes::Bytes::from_static(&[0, 0, 0, 5])),
            Some(bytes::Bytes::from_static(b"hello")),
            None,
            Some(bytes::Bytes::from(2.5f64.to_be_bytes().to_vec())),
        ];
        let json = decode(&values, &[1, 0, 1, 1], &[23, 0, 23, 701]).unwrap();
        assert_eq!(
            json,
            [
                Json::from(5),
                Json::from("hello"),
                Json::Null,
                Json::from(2.5)
            ]
        );
        // Text for all.
        let json = decode(&values[..2], &[], &[0, 0]).unwrap();
        assert_eq!(json[0], Json::from("\0\0\0\u{5}"));
        // A binary value of a type not read here.
        assert!(decode(&values[..1], &[1], &[600]).is_none());
    }

    #[test]
    fn numerics() {
        // 12345.678 = groups 1, 2345, 6780 with weight 1, scale 3.
        let b = numeric_bytes(3, 1, 0, 3, &[1, 2345, 6780]);
        assert_eq!(numeric(&b).unwrap(), "12345.678");
        // -0.05: weight -1, group 500, scale 2.
        let b = numeric_bytes(1, -1, 0x4000, 2, &[500]);
        assert_eq!(numeric(&b).unwrap(), "-0.05");
        // 7: one group.
        let b = numeric_bytes(1, 0, 0, 0, &[7]);
        assert_eq!(numeric(&b).unwrap(), "7");
        // 20000 = group 2 with weight 1, trailing zero group dropped.
        let b = numeric_bytes(1, 1, 0, 0, &[2]);
        assert_eq!(numeric(&b).unwrap(), "20000");
        assert!(numeric(&[0, 1]).is_none());
    }

    proptest::proptest! {
        /// Whatever a client binds, reading it never panics.
        #[test]
        fn any_bytes(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            oid in proptest::sample::select(vec![16u32, 20, 21, 23, 700, 701, 1700, 25, 3802, 2950, 1082, 1114, 1184, 0]),
            format in 0i16..2,
        ) {
            let values = [Some(bytes::Bytes::from(bytes))];
            let _ = decode(&values, &[format], &[oid]);
        }
    }
}
