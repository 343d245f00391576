//! Values in filters, coerced to the type of the field they are compared with. A value that
//! cannot be the field's type is the caller's mistake (`INVALID_QUERY`), found here rather
//! than by the database.

use std::cmp::Ordering;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use serde_json::Value as Json;

use crate::schema::FieldType;

/// A filter value of a known type.
#[derive(Debug, Clone, PartialEq)]
pub enum Scalar {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Exact decimals, kept as their text.
    Decimal(String),
    Text(String),
    /// Dates and times are UTC.
    DateTime(NaiveDateTime),
    Date(NaiveDate),
    Time(NaiveTime),
    Json(Json),
}

impl Scalar {
    /// The JSON form, for error messages and in-memory evaluation.
    pub fn to_json(&self) -> Json {
        match self {
            Scalar::Null => Json::Null,
            Scalar::Bool(b) => Json::Bool(*b),
            Scalar::Int(i) => Json::from(*i),
            Scalar::Float(f) => serde_json::Number::from_f64(*f).map_or(Json::Null, Json::Number),
            Scalar::Decimal(s) | Scalar::Text(s) => Json::String(s.clone()),
            Scalar::DateTime(t) => Json::String(t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            Scalar::Date(d) => Json::String(d.to_string()),
            Scalar::Time(t) => Json::String(t.format("%H:%M:%S").to_string()),
            Scalar::Json(j) => j.clone(),
        }
    }

    /// The value bound into SQL.
    pub fn to_sea(&self) -> sea_query::Value {
        use sea_query::Value as V;
        match self {
            Scalar::Null => V::String(None),
            Scalar::Bool(b) => V::Bool(Some(*b)),
            Scalar::Int(i) => V::BigInt(Some(*i)),
            Scalar::Float(f) => V::Double(Some(*f)),
            Scalar::Decimal(s) | Scalar::Text(s) => V::String(Some(s.clone())),
            Scalar::DateTime(t) => V::ChronoDateTime(Some(*t)),
            Scalar::Date(d) => V::ChronoDate(Some(*d)),
            Scalar::Time(t) => V::ChronoTime(Some(*t)),
            Scalar::Json(j) => V::Json(Some(Box::new(j.clone()))),
        }
    }

    /// Orders two values of the same field; `None` when they cannot be compared.
    pub fn compare(&self, other: &Scalar) -> Option<Ordering> {
        use Scalar::*;
        match (self, other) {
            (Bool(a), Bool(b)) => Some(a.cmp(b)),
            (Int(a), Int(b)) => Some(a.cmp(b)),
            (Text(a), Text(b)) => Some(a.cmp(b)),
            (DateTime(a), DateTime(b)) => Some(a.cmp(b)),
            (Date(a), Date(b)) => Some(a.cmp(b)),
            (Time(a), Time(b)) => Some(a.cmp(b)),
            (a, b) => a.as_f64()?.partial_cmp(&b.as_f64()?),
        }
    }

    fn as_f64(&self) -> Option<f64> {
        match self {
            Scalar::Int(i) => Some(*i as f64),
            Scalar::Float(f) => Some(*f),
            Scalar::Decimal(s) => s.parse().ok(),
            _ => None,
        }
    }
}

/// Why a value cannot be the field's type.
pub type CoerceError = String;

/// Coerces a JSON value to the type of a field. `null` stays `Null`.
pub fn coerce(value: &Json, field_type: FieldType) -> Result<Scalar, CoerceError> {
    if value.is_null() {
        return Ok(Scalar::Null);
    }
    let text = || match value {
        Json::String(s) => Some(s.trim().to_string()),
        Json::Number(n) => Some(n.to_string()),
        Json::Bool(b) => Some(b.to_string()),
        _ => None,
    };
    let expected = |what: &str| format!("{value} is not {what}");
    match field_type {
        FieldType::Integer | FieldType::BigInteger => match value {
            Json::Number(n) if n.is_i64() => Ok(Scalar::Int(n.as_i64().unwrap_or_default())),
            Json::Number(n)
                if n.as_f64()
                    .is_some_and(|f| f.fract() == 0.0 && f.abs() < 9.0e15) =>
            {
                Ok(Scalar::Int(n.as_f64().unwrap_or_default() as i64))
            }
            Json::String(s) => s
                .trim()
                .parse::<i64>()
                .map(Scalar::Int)
                .map_err(|_| expected("an integer")),
            _ => Err(expected("an integer")),
        },
        FieldType::Float => match value {
            Json::Number(n) => n
                .as_f64()
                .map(Scalar::Float)
                .ok_or_else(|| expected("a number")),
            Json::String(s) => s
                .trim()
                .parse::<f64>()
                .ok()
                .filter(|f| f.is_finite())
                .map(Scalar::Float)
                .ok_or_else(|| expected("a number")),
            _ => Err(expected("a number")),
        },
        FieldType::Decimal => {
            let t = text()
                .filter(|_| !value.is_boolean())
                .ok_or_else(|| expected("a decimal number"))?;
            if is_decimal(&t) {
                Ok(Scalar::Decimal(t))
            } else {
                Err(expected("a decimal number"))
            }
        }
        FieldType::Boolean => match value {
            Json::Bool(b) => Ok(Scalar::Bool(*b)),
            Json::Number(n) if n.as_i64() == Some(1) => Ok(Scalar::Bool(true)),
            Json::Number(n) if n.as_i64() == Some(0) => Ok(Scalar::Bool(false)),
            Json::String(s) => match s.trim() {
                "true" | "1" => Ok(Scalar::Bool(true)),
                "false" | "0" => Ok(Scalar::Bool(false)),
                _ => Err(expected("a boolean")),
            },
            _ => Err(expected("a boolean")),
        },
        FieldType::Uuid => match value {
            Json::String(s) => uuid::Uuid::parse_str(s.trim())
                .map(|u| Scalar::Text(u.hyphenated().to_string()))
                .map_err(|_| expected("a uuid")),
            _ => Err(expected("a uuid")),
        },
        FieldType::Date => match value {
            Json::String(s) => parse_date(s.trim())
                .map(Scalar::Date)
                .ok_or_else(|| expected("a date")),
            _ => Err(expected("a date")),
        },
        FieldType::DateTime | FieldType::Timestamp => match value {
            Json::String(s) => parse_datetime(s.trim())
                .map(Scalar::DateTime)
                .ok_or_else(|| expected("a date and time")),
            _ => Err(expected("a date and time")),
        },
        FieldType::Time => match value {
            Json::String(s) => parse_time(s.trim())
                .map(Scalar::Time)
                .ok_or_else(|| expected("a time")),
            _ => Err(expected("a time")),
        },
        FieldType::Json => Ok(Scalar::Json(value.clone())),
        FieldType::String
        | FieldType::Text
        | FieldType::Csv
        | FieldType::Hash
        | FieldType::Unknown
        | FieldType::Binary
        | FieldType::Alias => match value {
            Json::String(s) => Ok(Scalar::Text(s.clone())),
            Json::Number(n) => Ok(Scalar::Text(n.to_string())),
            Json::Bool(b) => Ok(Scalar::Text(b.to_string())),
            _ => Err(expected("a string")),
        },
    }
}

fn is_decimal(text: &str) -> bool {
    let unsigned = text.strip_prefix(['-', '+']).unwrap_or(text);
    let (int, frac) = unsigned.split_once('.').unwrap_or((unsigned, ""));
    !(int.is_empty() && frac.is_empty())
        && int.bytes().all(|b| b.is_ascii_digit())
        && frac.bytes().all(|b| b.is_ascii_digit())
}

pub fn parse_date(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .or_else(|| parse_datetime(s).map(|t| t.date()))
}

/// ISO 8601 with or without an offset (converted to UTC), `T` or a space between date and
/// time, seconds optional; a bare date is its midnight.
pub fn parse_datetime(s: &str) -> Option<NaiveDateTime> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc).naive_utc());
    }
    for format in [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ] {
        if let Ok(t) = NaiveDateTime::parse_from_str(s.trim_end_matches('Z'), format) {
            return Some(t);
        }
    }
    NaiveDate::parse_from_str(s, "%Y-%m-%d")
        .ok()
        .and_then(|d| d.and_hms_opt(0, 0, 0))
}

pub fn parse_time(s: &str) -> Option<NaiveTime> {
    ["%H:%M:%S%.f", "%H:%M"]
        .iter()
        .find_map(|f| NaiveTime::parse_from_str(s, f).ok())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_take_the_field_type() {
        assert_eq!(
            coerce(&json!("42"), FieldType::Integer),
            Ok(Scalar::Int(42))
        );
        assert_eq!(
            coerce(&json!(42.0), FieldType::BigInteger),
            Ok(Scalar::Int(42))
        );
        assert!(coerce(&json!("4.5"), FieldType::Integer).is_err());
        assert!(coerce(&json!("abc"), FieldType::Integer).is_err());
        assert_eq!(
            coerce(&json!("1.50"), FieldType::Decimal),
            Ok(Scalar::Decimal("1.50".into()))
        );
        assert!(coerce(&json!("1e3"), FieldType::Decimal).is_err());
        assert_eq!(
            coerce(&json!("true"), FieldType::Boolean),
            Ok(Scalar::Bool(true))
        );
        assert_eq!(
            coerce(&json!(0), FieldType::Boolean),
            Ok(Scalar::Bool(false))
        );
        assert!(coerce(&json!("yes"), FieldType::Boolean).is_err());
        assert_eq!(
            coerce(
                &json!("6E1BB3A4-0E57-4A83-9A46-4C3C6A1B3C51"),
                FieldType::Uuid
            ),
            Ok(Scalar::Text("6e1bb3a4-0e57-4a83-9a46-4c3c6a1b3c51".into()))
        );
        assert!(coerce(&json!("not-a-uuid"), FieldType::Uuid).is_err());
        assert_eq!(
            coerce(&json!(7), FieldType::String),
            Ok(Scalar::Text("7".into()))
        );
        assert!(coerce(&json!([1]), FieldType::String).is_err());
        assert_eq!(coerce(&json!(null), FieldType::Integer), Ok(Scalar::Null));
    }

    #[test]
    fn dates_and_times_parse_in_their_usual_forms() {
        let t = |s: &str| coerce(&json!(s), FieldType::Timestamp);
        let noon = NaiveDate::from_ymd_opt(2024, 5, 1)
            .unwrap()
            .and_hms_opt(12, 0, 0)
            .unwrap();
        assert_eq!(t("2024-05-01T12:00:00Z"), Ok(Scalar::DateTime(noon)));
        assert_eq!(t("2024-05-01T14:00:00+02:00"), Ok(Scalar::DateTime(noon)));
        assert_eq!(t("2024-05-01 12:00"), Ok(Scalar::DateTime(noon)));
        assert!(t("yesterday").is_err());
        assert_eq!(
            coerce(&json!("2024-05-01"), FieldType::Date),
            Ok(Scalar::Date(NaiveDate::from_ymd_opt(2024, 5, 1).unwrap()))
        );
        assert!(coerce(&json!("2024-13-01"), FieldType::Date).is_err());
        assert!(coerce(&json!("25:00"), FieldType::Time).is_err());
    }

    #[test]
    fn comparison_follows_the_type() {
        assert_eq!(
            Scalar::Int(2).compare(&Scalar::Float(2.5)),
            Some(Ordering::Less)
        );
        assert_eq!(
            Scalar::Decimal("10.0".into()).compare(&Scalar::Decimal("9.5".into())),
            Some(Ordering::Greater)
        );
        assert_eq!(Scalar::Text("b".into()).compare(&Scalar::Int(1)), None);
    }
}
