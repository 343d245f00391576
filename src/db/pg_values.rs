//! [`DbValue`]s to and from PostgreSQL's binary formats. tokio-postgres insists that a Rust
//! type match the column type exactly; [`PgParam`] and [`PgCell`] bridge that by converting
//! [`DbValue`]s to whatever type the server inferred for a parameter or reports for a column.

use std::error::Error as StdError;
use std::str::FromStr;

use bytes::{BufMut, BytesMut};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use tokio_postgres::types::{FromSql, IsNull, Kind, ToSql, Type, to_sql_checked};
use uuid::Uuid;

use super::DbValue;

type BoxError = Box<dyn StdError + Sync + Send>;

/// A parameter converted at bind time to the type the server inferred for it.
#[derive(Debug)]
pub(super) struct PgParam<'a>(pub(super) &'a DbValue);

impl ToSql for PgParam<'_> {
    fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
        if self.0.is_null() {
            return Ok(IsNull::Yes);
        }
        encode(self.0, ty, out)
    }

    fn accepts(_: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

fn cannot(v: &DbValue, ty: &Type) -> BoxError {
    format!(
        "cannot send a {} value as PostgreSQL type {}",
        v.kind(),
        ty.name()
    )
    .into()
}

fn encode(v: &DbValue, ty: &Type, out: &mut BytesMut) -> Result<IsNull, BoxError> {
    use DbValue as V;
    match *ty {
        Type::BOOL => match v {
            V::Bool(b) => b.to_sql(ty, out),
            V::Int(i) => (*i != 0).to_sql(ty, out),
            V::Text(s) => parse_bool(s).ok_or_else(|| cannot(v, ty))?.to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        Type::INT2 => i16::try_from(as_i64(v, ty)?)?.to_sql(ty, out),
        Type::INT4 => i32::try_from(as_i64(v, ty)?)?.to_sql(ty, out),
        Type::INT8 => as_i64(v, ty)?.to_sql(ty, out),
        Type::OID => u32::try_from(as_i64(v, ty)?)?.to_sql(ty, out),
        Type::FLOAT4 => (as_f64(v, ty)? as f32).to_sql(ty, out),
        Type::FLOAT8 => as_f64(v, ty)?.to_sql(ty, out),
        Type::NUMERIC => {
            let text = match v {
                V::Decimal(s) | V::Text(s) => s.clone(),
                V::Int(i) => i.to_string(),
                V::Float(f) if f.is_finite() => f.to_string(),
                _ => return Err(cannot(v, ty)),
            };
            encode_numeric(&text, out)?;
            Ok(IsNull::No)
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => as_text(v)
            .ok_or_else(|| cannot(v, ty))?
            .as_str()
            .to_sql(ty, out),
        Type::JSON | Type::JSONB => {
            let json = match v {
                // Serialized from the borrowed document: no copy of it per parameter.
                V::Json(j) => return tokio_postgres::types::Json(j).to_sql(ty, out),
                // JSON arrives as text from MySQL-minded callers: a document, not a string.
                V::Text(s) => serde_json::from_str(s)?,
                V::Int(i) => serde_json::Value::from(*i),
                V::Float(f) => serde_json::Value::from(*f),
                V::Bool(b) => serde_json::Value::from(*b),
                V::Decimal(s) => serde_json::from_str(s)?,
                _ => return Err(cannot(v, ty)),
            };
            json.to_sql(ty, out)
        }
        Type::UUID => match v {
            V::Uuid(u) => u.to_sql(ty, out),
            V::Text(s) => Uuid::parse_str(s)?.to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        Type::TIMESTAMPTZ => as_timestamp(v, ty)?.to_sql(ty, out),
        Type::TIMESTAMP => match v {
            V::DateTime(t) => t.to_sql(ty, out),
            other => as_timestamp(other, ty)?.naive_utc().to_sql(ty, out),
        },
        Type::DATE => match v {
            V::Date(d) => d.to_sql(ty, out),
            V::Text(s) => NaiveDate::parse_from_str(s, "%Y-%m-%d")?.to_sql(ty, out),
            V::DateTime(t) => t.date().to_sql(ty, out),
            V::Timestamp(t) => t.date_naive().to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        Type::TIME => match v {
            V::Time(t) => t.to_sql(ty, out),
            V::Text(s) => NaiveTime::from_str(s)?.to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        Type::BYTEA => match v {
            V::Bytes(b) => b.as_slice().to_sql(ty, out),
            V::Text(s) => s.as_bytes().to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        Type::TEXT_ARRAY | Type::VARCHAR_ARRAY => match v {
            V::Json(serde_json::Value::Array(items)) => items
                .iter()
                .map(|i| match i {
                    serde_json::Value::String(s) => Ok(s.clone()),
                    other => Ok(other.to_string()),
                })
                .collect::<Result<Vec<String>, BoxError>>()?
                .to_sql(ty, out),
            _ => Err(cannot(v, ty)),
        },
        _ if matches!(ty.kind(), Kind::Enum(_)) => {
            // Enum values travel as their label text in the binary protocol too.
            out.put_slice(as_text(v).ok_or_else(|| cannot(v, ty))?.as_bytes());
            Ok(IsNull::No)
        }
        _ => Err(cannot(v, ty)),
    }
}

fn parse_bool(s: &str) -> Option<bool> {
    match s {
        "true" | "t" | "1" => Some(true),
        "false" | "f" | "0" => Some(false),
        _ => None,
    }
}

fn as_i64(v: &DbValue, ty: &Type) -> Result<i64, BoxError> {
    match v {
        DbValue::Int(i) => Ok(*i),
        DbValue::Bool(b) => Ok(i64::from(*b)),
        DbValue::Text(s) | DbValue::Decimal(s) => Ok(s.trim().parse()?),
        DbValue::Float(f) if f.fract() == 0.0 && f.abs() < 9.0e15 => Ok(*f as i64),
        _ => Err(cannot(v, ty)),
    }
}

fn as_f64(v: &DbValue, ty: &Type) -> Result<f64, BoxError> {
    match v {
        DbValue::Float(f) => Ok(*f),
        DbValue::Int(i) => Ok(*i as f64),
        DbValue::Text(s) | DbValue::Decimal(s) => Ok(s.trim().parse()?),
        _ => Err(cannot(v, ty)),
    }
}

fn as_text(v: &DbValue) -> Option<String> {
    Some(match v {
        DbValue::Text(s) | DbValue::Decimal(s) => s.clone(),
        DbValue::Int(i) => i.to_string(),
        DbValue::Float(f) => f.to_string(),
        DbValue::Bool(b) => b.to_string(),
        DbValue::Uuid(u) => u.to_string(),
        DbValue::Json(j) => j.to_string(),
        DbValue::Timestamp(t) => t.to_rfc3339(),
        DbValue::DateTime(t) => t.to_string(),
        DbValue::Date(d) => d.to_string(),
        DbValue::Time(t) => t.to_string(),
        DbValue::Null | DbValue::Bytes(_) => return None,
    })
}

fn as_timestamp(v: &DbValue, ty: &Type) -> Result<DateTime<Utc>, BoxError> {
    match v {
        DbValue::Timestamp(t) => Ok(*t),
        DbValue::DateTime(t) => Ok(t.and_utc()),
        DbValue::Date(d) => Ok(d.and_hms_opt(0, 0, 0).ok_or("invalid date")?.and_utc()),
        DbValue::Text(s) => super::parse_timestamp_text(s).ok_or_else(|| cannot(v, ty)),
        _ => Err(cannot(v, ty)),
    }
}

/// A result cell read according to the type the server reports for its column.
pub(super) struct PgCell(pub(super) DbValue);

impl<'a> FromSql<'a> for PgCell {
    fn from_sql(ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        use DbValue as V;
        let value = match *ty {
            Type::BOOL => V::Bool(bool::from_sql(ty, raw)?),
            Type::INT2 => V::Int(i16::from_sql(ty, raw)?.into()),
            Type::INT4 => V::Int(i32::from_sql(ty, raw)?.into()),
            Type::INT8 => V::Int(i64::from_sql(ty, raw)?),
            Type::OID => V::Int(u32::from_sql(ty, raw)?.into()),
            Type::FLOAT4 => V::Float(f32::from_sql(ty, raw)?.into()),
            Type::FLOAT8 => V::Float(f64::from_sql(ty, raw)?),
            Type::NUMERIC => V::Decimal(decode_numeric(raw)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                V::Text(<&str>::from_sql(ty, raw)?.to_string())
            }
            Type::CHAR => V::Text(char::from(i8::from_sql(ty, raw)? as u8).to_string()),
            Type::JSON | Type::JSONB => V::Json(serde_json::Value::from_sql(ty, raw)?),
            Type::UUID => V::Uuid(Uuid::from_sql(ty, raw)?),
            Type::TIMESTAMPTZ => V::Timestamp(DateTime::<Utc>::from_sql(ty, raw)?),
            Type::TIMESTAMP => V::DateTime(NaiveDateTime::from_sql(ty, raw)?),
            Type::DATE => V::Date(NaiveDate::from_sql(ty, raw)?),
            Type::TIME => V::Time(NaiveTime::from_sql(ty, raw)?),
            Type::BYTEA => V::Bytes(<&[u8]>::from_sql(ty, raw)?.to_vec()),
            Type::TEXT_ARRAY | Type::VARCHAR_ARRAY | Type::NAME_ARRAY | Type::BPCHAR_ARRAY => {
                let items = Vec::<Option<String>>::from_sql(ty, raw)?;
                V::Json(serde_json::Value::from(items))
            }
            _ if matches!(ty.kind(), Kind::Enum(_)) => {
                V::Text(std::str::from_utf8(raw)?.to_string())
            }
            _ => return Err(format!("unsupported PostgreSQL column type {}", ty.name()).into()),
        };
        Ok(PgCell(value))
    }

    fn from_sql_null(_: &Type) -> Result<Self, BoxError> {
        Ok(PgCell(DbValue::Null))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

const NUMERIC_NEG: u16 = 0x4000;
const NUMERIC_NAN: u16 = 0xC000;
const NUMERIC_PINF: u16 = 0xD000;
const NUMERIC_NINF: u16 = 0xF000;

/// Writes a decimal literal (`-12.340`) in PostgreSQL's binary `numeric` form: base-10000
/// digit groups, a weight (position of the first group) and the display scale.
fn encode_numeric(text: &str, out: &mut BytesMut) -> Result<(), BoxError> {
    let text = text.trim();
    let special = match text {
        "NaN" => Some(NUMERIC_NAN),
        "Infinity" | "inf" => Some(NUMERIC_PINF),
        "-Infinity" | "-inf" => Some(NUMERIC_NINF),
        _ => None,
    };
    if let Some(sign) = special {
        for n in [0u16, 0, sign, 0] {
            out.put_u16(n);
        }
        return Ok(());
    }
    let invalid = || -> BoxError { format!("{text:?} is not a decimal number").into() };
    let (negative, unsigned) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text.strip_prefix('+').unwrap_or(text)),
    };
    let (int_part, frac_part) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    if (int_part.is_empty() && frac_part.is_empty())
        || !int_part
            .bytes()
            .chain(frac_part.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(invalid());
    }
    let dscale = u16::try_from(frac_part.len()).map_err(|_| invalid())?;
    let int_pad = (4 - int_part.len() % 4) % 4;
    let frac_pad = (4 - frac_part.len() % 4) % 4;
    let digits: String = "0".repeat(int_pad) + int_part + frac_part + &"0".repeat(frac_pad);
    let mut groups: Vec<i16> = digits
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight = i16::try_from((int_part.len() + int_pad) / 4).map_err(|_| invalid())? - 1;
    let leading = groups.iter().take_while(|g| **g == 0).count();
    groups.drain(..leading);
    weight -= i16::try_from(leading).map_err(|_| invalid())?;
    while groups.last() == Some(&0) {
        groups.pop();
    }
    if groups.is_empty() {
        weight = 0;
    }
    out.put_u16(u16::try_from(groups.len()).map_err(|_| invalid())?);
    out.put_i16(weight);
    out.put_u16(if negative && !groups.is_empty() {
        NUMERIC_NEG
    } else {
        0
    });
    out.put_u16(dscale);
    for g in groups {
        out.put_i16(g);
    }
    Ok(())
}

/// Reads PostgreSQL's binary `numeric` into its decimal text, scale preserved.
fn decode_numeric(raw: &[u8]) -> Result<String, BoxError> {
    let word = |i: usize| -> Result<u16, BoxError> {
        raw.get(i * 2..i * 2 + 2)
            .map(|b| u16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(|| "truncated numeric".into())
    };
    let ndigits = usize::from(word(0)?);
    let weight = word(1)? as i16;
    let sign = word(2)?;
    let dscale = usize::from(word(3)?);
    match sign {
        NUMERIC_NAN => return Ok("NaN".into()),
        NUMERIC_PINF => return Ok("Infinity".into()),
        NUMERIC_NINF => return Ok("-Infinity".into()),
        _ => {}
    }
    let digits = (0..ndigits)
        .map(|i| word(4 + i).map(|d| d as i16))
        .collect::<Result<Vec<i16>, _>>()?;
    let group = |i: i32| -> i16 {
        usize::try_from(i)
            .ok()
            .and_then(|i| digits.get(i).copied())
            .unwrap_or(0)
    };
    let mut text = String::new();
    if sign == NUMERIC_NEG {
        text.push('-');
    }
    if weight < 0 {
        text.push('0');
    } else {
        for i in 0..=i32::from(weight) {
            if i == 0 {
                text.push_str(&group(i).to_string());
            } else {
                text.push_str(&format!("{:04}", group(i)));
            }
        }
    }
    if dscale > 0 {
        let mut frac = String::new();
        let mut i = i32::from(weight) + 1;
        while frac.len() < dscale {
            frac.push_str(&format!("{:04}", group(i)));
            i += 1;
        }
        frac.truncate(dscale);
        text.push('.');
        text.push_str(&frac);
    }
    Ok(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn round_trip(text: &str) -> String {
        let mut buf = BytesMut::new();
        encode_numeric(text, &mut buf).unwrap();
        decode_numeric(&buf).unwrap()
    }

    #[test]
    fn numerics_round_trip_with_their_scale() {
        for (input, expected) in [
            ("0", "0"),
            ("12.50", "12.50"),
            ("-12.340", "-12.340"),
            ("10000", "10000"),
            ("0.0001", "0.0001"),
            ("123456789.123456789", "123456789.123456789"),
            ("-0.5", "-0.5"),
            ("+7", "7"),
            ("99999999999999999999", "99999999999999999999"),
            ("NaN", "NaN"),
        ] {
            assert_eq!(round_trip(input), expected, "for {input}");
        }
    }

    #[test]
    fn numerics_reject_what_is_not_a_decimal() {
        for bad in ["", "1e5", "12,5", "abc", "-", "."] {
            assert!(encode_numeric(bad, &mut BytesMut::new()).is_err(), "{bad}");
        }
    }

    #[test]
    fn numeric_encoding_matches_postgres_layout() {
        // 12.5 = one group 12 at weight 0, one group 5000 after it, scale 1.
        let mut buf = BytesMut::new();
        encode_numeric("12.5", &mut buf).unwrap();
        assert_eq!(&buf[..], &[0, 2, 0, 0, 0, 0, 0, 1, 0, 12, 0x13, 0x88]);
    }
}
