//! The one value type that crosses the database boundary in both directions: statement
//! parameters going in, row cells coming out. Each driver converts to and from it; nothing
//! above `src/db` sees a driver's own types.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};
use uuid::Uuid;

use super::DbError;

#[derive(Debug, Clone, PartialEq)]
pub enum DbValue {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    /// Exact decimals travel as text so no precision is lost.
    Decimal(String),
    Text(String),
    Json(serde_json::Value),
    Uuid(Uuid),
    Bytes(Vec<u8>),
    Timestamp(DateTime<Utc>),
    DateTime(NaiveDateTime),
    Date(NaiveDate),
    Time(NaiveTime),
}

impl DbValue {
    pub fn is_null(&self) -> bool {
        matches!(self, DbValue::Null)
    }

    /// The value as Directus writes it in JSON: decimals as strings, timestamps in ISO form
    /// with milliseconds and `Z`, binary data as base64.
    pub fn to_json(&self) -> serde_json::Value {
        use serde_json::Value as J;
        match self {
            DbValue::Null => J::Null,
            DbValue::Bool(b) => J::Bool(*b),
            DbValue::Int(i) => J::from(*i),
            DbValue::Float(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            DbValue::Decimal(s) | DbValue::Text(s) => J::String(s.clone()),
            DbValue::Json(j) => j.clone(),
            DbValue::Uuid(u) => J::String(u.to_string()),
            DbValue::Bytes(b) => {
                use base64::Engine;
                J::String(base64::engine::general_purpose::STANDARD.encode(b))
            }
            DbValue::Timestamp(t) => J::String(
                iso(&t.naive_utc(), true)
                    .unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()),
            ),
            DbValue::DateTime(t) => J::String(
                iso(t, false).unwrap_or_else(|| t.format("%Y-%m-%dT%H:%M:%S").to_string()),
            ),
            DbValue::Date(d) => J::String(d.to_string()),
            DbValue::Time(t) => J::String(t.format("%H:%M:%S").to_string()),
        }
    }

    /// A short name of the kind of value, for error messages.
    pub fn kind(&self) -> &'static str {
        match self {
            DbValue::Null => "null",
            DbValue::Bool(_) => "boolean",
            DbValue::Int(_) => "integer",
            DbValue::Float(_) => "float",
            DbValue::Decimal(_) => "decimal",
            DbValue::Text(_) => "text",
            DbValue::Json(_) => "json",
            DbValue::Uuid(_) => "uuid",
            DbValue::Bytes(_) => "bytes",
            DbValue::Timestamp(_) => "timestamp",
            DbValue::DateTime(_) => "datetime",
            DbValue::Date(_) => "date",
            DbValue::Time(_) => "time",
        }
    }
}

macro_rules! from_option {
    ($($t:ty => $variant:ident),* $(,)?) => {$(
        impl From<$t> for DbValue {
            fn from(v: $t) -> Self { DbValue::$variant(v.into()) }
        }
    )*};
}
from_option!(bool => Bool, i64 => Int, i32 => Int, f64 => Float, String => Text, &str => Text,
    serde_json::Value => Json, Uuid => Uuid, Vec<u8> => Bytes, DateTime<Utc> => Timestamp);

impl<T: Into<DbValue>> From<Option<T>> for DbValue {
    fn from(v: Option<T>) -> Self {
        v.map_or(DbValue::Null, Into::into)
    }
}

impl TryFrom<sea_query::Value> for DbValue {
    type Error = DbError;

    fn try_from(value: sea_query::Value) -> Result<Self, DbError> {
        use sea_query::Value as V;
        Ok(match value {
            V::Bool(v) => v.into(),
            V::TinyInt(v) => v.map(i64::from).into(),
            V::SmallInt(v) => v.map(i64::from).into(),
            V::Int(v) => v.map(i64::from).into(),
            V::BigInt(v) => v.into(),
            V::TinyUnsigned(v) => v.map(i64::from).into(),
            V::SmallUnsigned(v) => v.map(i64::from).into(),
            V::Unsigned(v) => v.map(i64::from).into(),
            V::BigUnsigned(v) => match v {
                None => DbValue::Null,
                Some(n) => {
                    i64::try_from(n).map_or_else(|_| DbValue::Decimal(n.to_string()), DbValue::Int)
                }
            },
            V::Float(v) => v.map(f64::from).into(),
            V::Double(v) => v.into(),
            V::String(v) => v.into(),
            V::Char(v) => v.map(|c| c.to_string()).into(),
            V::Bytes(v) => v.into(),
            V::Json(v) => v.map(|j| *j).into(),
            V::Uuid(v) => v.into(),
            V::ChronoDate(v) => v.map_or(DbValue::Null, DbValue::Date),
            V::ChronoTime(v) => v.map_or(DbValue::Null, DbValue::Time),
            V::ChronoDateTime(v) => v.map_or(DbValue::Null, DbValue::DateTime),
            V::ChronoDateTimeUtc(v) => v.into(),
            V::ChronoDateTimeLocal(v) => v.map(|d| d.with_timezone(&Utc)).into(),
            V::ChronoDateTimeWithTimeZone(v) => v.map(|d| d.with_timezone(&Utc)).into(),
            other => return Err(DbError::UnsupportedValue(format!("{other:?}"))),
        })
    }
}

/// One result row: column names shared by all rows of a result, values in column order.
#[derive(Debug, Clone)]
pub struct Row {
    columns: Arc<[String]>,
    values: Vec<DbValue>,
}

impl Row {
    pub fn new(columns: Arc<[String]>, values: Vec<DbValue>) -> Self {
        debug_assert_eq!(columns.len(), values.len());
        Row { columns, values }
    }

    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    pub fn values(&self) -> &[DbValue] {
        &self.values
    }

    pub fn into_values(self) -> Vec<DbValue> {
        self.values
    }

    fn index(&self, column: &str) -> Result<usize, DbError> {
        self.columns
            .iter()
            .position(|c| c.eq_ignore_ascii_case(column))
            .ok_or_else(|| DbError::Decode(format!("no column {column} in the result")))
    }

    pub fn value(&self, column: &str) -> Result<&DbValue, DbError> {
        Ok(&self.values[self.index(column)?])
    }

    pub fn get<T: FromDbValue>(&self, column: &str) -> Result<T, DbError> {
        T::from_db_value(self.value(column)?)
            .map_err(|expected| DbError::Decode(format!("column {column}: {expected}")))
    }

    /// The text of `column`, moved out of the row rather than copied: the JSON of a read
    /// arrives so, one cell per item.
    pub fn into_string(mut self, column: &str) -> Result<String, DbError> {
        let i = self.index(column)?;
        let decode = |expected: String| DbError::Decode(format!("column {column}: {expected}"));
        match std::mem::replace(&mut self.values[i], DbValue::Null) {
            DbValue::Text(s) => Ok(s),
            DbValue::Bytes(b) => String::from_utf8(b).map_err(|_| decode("expected text".into())),
            other => String::from_db_value(&other).map_err(decode),
        }
    }
}

/// Conversion of a cell into a Rust value; the error says what was expected.
pub trait FromDbValue: Sized {
    fn from_db_value(value: &DbValue) -> Result<Self, String>;
}

fn mismatch<T>(expected: &str, got: &DbValue) -> Result<T, String> {
    Err(format!("expected {expected}, found {}", got.kind()))
}

impl<T: FromDbValue> FromDbValue for Option<T> {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Null => Ok(None),
            v => T::from_db_value(v).map(Some),
        }
    }
}

impl FromDbValue for DbValue {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        Ok(value.clone())
    }
}

impl FromDbValue for String {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Text(s) | DbValue::Decimal(s) => Ok(s.clone()),
            DbValue::Uuid(u) => Ok(u.to_string()),
            DbValue::Bytes(b) => String::from_utf8(b.clone()).map_err(|_| "expected text".into()),
            DbValue::Int(i) => Ok(i.to_string()),
            v => mismatch("text", v),
        }
    }
}

impl FromDbValue for i64 {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Int(i) => Ok(*i),
            DbValue::Bool(b) => Ok(i64::from(*b)),
            DbValue::Decimal(s) | DbValue::Text(s) => s
                .trim()
                .parse()
                .map_err(|_| format!("expected an integer, found {s:?}")),
            v => mismatch("an integer", v),
        }
    }
}

impl FromDbValue for u32 {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        let n = i64::from_db_value(value)?;
        u32::try_from(n).map_err(|_| format!("{n} is out of range"))
    }
}

impl FromDbValue for f64 {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Float(f) => Ok(*f),
            DbValue::Int(i) => Ok(*i as f64),
            DbValue::Decimal(s) => s
                .parse()
                .map_err(|_| format!("expected a number, found {s:?}")),
            v => mismatch("a number", v),
        }
    }
}

impl FromDbValue for bool {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Bool(b) => Ok(*b),
            // MySQL's tinyint(1) and SQLite's integers stand for booleans.
            DbValue::Int(i) => Ok(*i != 0),
            DbValue::Text(s) => match s.as_str() {
                "1" | "true" | "t" | "YES" | "yes" => Ok(true),
                "0" | "false" | "f" | "NO" | "no" => Ok(false),
                _ => Err(format!("expected a boolean, found {s:?}")),
            },
            v => mismatch("a boolean", v),
        }
    }
}

impl FromDbValue for serde_json::Value {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Json(j) => Ok(j.clone()),
            // MySQL and SQLite hand JSON columns over as text.
            DbValue::Text(s) => serde_json::from_str(s).map_err(|e| format!("invalid JSON: {e}")),
            DbValue::Bytes(b) => {
                serde_json::from_slice(b).map_err(|e| format!("invalid JSON: {e}"))
            }
            v => mismatch("JSON", v),
        }
    }
}

impl FromDbValue for Uuid {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Uuid(u) => Ok(*u),
            DbValue::Text(s) => {
                Uuid::parse_str(s).map_err(|_| format!("expected a uuid, found {s:?}"))
            }
            DbValue::Bytes(b) if b.len() == 16 => {
                Ok(Uuid::from_slice(b).map_err(|e| e.to_string())?)
            }
            v => mismatch("a uuid", v),
        }
    }
}

impl FromDbValue for Vec<u8> {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Bytes(b) => Ok(b.clone()),
            DbValue::Text(s) => Ok(s.clone().into_bytes()),
            v => mismatch("bytes", v),
        }
    }
}

impl FromDbValue for DateTime<Utc> {
    fn from_db_value(value: &DbValue) -> Result<Self, String> {
        match value {
            DbValue::Timestamp(t) => Ok(*t),
            DbValue::DateTime(t) => Ok(t.and_utc()),
            DbValue::Text(s) => {
                parse_timestamp_text(s).ok_or_else(|| format!("expected a timestamp, found {s:?}"))
            }
            v => mismatch("a timestamp", v),
        }
    }
}

/// Reads the textual timestamps SQLite stores (`2024-01-31 12:00:00`, ISO 8601 with an
/// offset or `Z`).
pub fn parse_timestamp_text(s: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
        .map(|t| t.and_utc())
}

/// `YYYY-MM-DDTHH:MM:SS`, with `.mmmZ` when `utc`, printed digit by digit: chrono's
/// `format` reads its pattern anew every time, which was 2% of the CPU of a create (its
/// revision holds the item's timestamps). `None` where chrono's printing is needed: years
/// outside four digits and leap seconds.
fn iso(t: &NaiveDateTime, utc: bool) -> Option<String> {
    use chrono::{Datelike, Timelike};
    let year = u32::try_from(t.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = t.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let mut out = String::with_capacity(24);
    let mut digits = |n: u32, width: u32, after: Option<char>| {
        for place in (0..width).rev() {
            let digit = (n / 10u32.pow(place)) % 10;
            out.push(char::from(b'0' + digit as u8));
        }
        if let Some(c) = after {
            out.push(c);
        }
    };
    digits(year, 4, Some('-'));
    digits(t.month(), 2, Some('-'));
    digits(t.day(), 2, Some('T'));
    digits(t.hour(), 2, Some(':'));
    digits(t.minute(), 2, Some(':'));
    digits(t.second(), 2, utc.then_some('.'));
    if utc {
        digits(nanos / 1_000_000, 3, Some('Z'));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Datelike;

    #[test]
    fn timestamps_print_as_chrono_prints_them() {
        let mut t = NaiveDate::from_ymd_opt(1, 1, 1)
            .and_then(|d| d.and_hms_nano_opt(0, 0, 0, 0))
            .unwrap();
        // Steps that visit every digit position of every part over the years 1..9999.
        let step =
            chrono::Duration::seconds(86_399 * 37 + 7) + chrono::Duration::nanoseconds(7_654_321);
        while t.year() <= 9999 {
            let utc = DateTime::<Utc>::from_naive_utc_and_offset(t, Utc);
            assert_eq!(
                DbValue::Timestamp(utc).to_json(),
                utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
            assert_eq!(
                DbValue::DateTime(t).to_json(),
                t.format("%Y-%m-%dT%H:%M:%S").to_string()
            );
            t += step;
        }
        for year in [-5, 0, 10_000, 262_000] {
            let far = NaiveDate::from_ymd_opt(year, 3, 4)
                .and_then(|d| d.and_hms_milli_opt(5, 6, 7, 8))
                .unwrap();
            let utc = DateTime::<Utc>::from_naive_utc_and_offset(far, Utc);
            assert_eq!(
                DbValue::Timestamp(utc).to_json(),
                utc.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
            );
        }
        let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|d| d.and_hms_milli_opt(23, 59, 59, 1_500))
            .unwrap();
        assert_eq!(
            DbValue::DateTime(leap).to_json(),
            leap.format("%Y-%m-%dT%H:%M:%S").to_string()
        );
    }

    #[test]
    fn rows_find_columns_case_insensitively_and_convert() {
        let row = Row::new(
            Arc::from(vec!["ID".to_string(), "flag".into(), "doc".into()]),
            vec![
                DbValue::Int(7),
                DbValue::Int(1),
                DbValue::Text("{\"a\":1}".into()),
            ],
        );
        assert_eq!(row.get::<i64>("id").unwrap(), 7);
        assert!(row.get::<bool>("flag").unwrap());
        assert_eq!(row.get::<serde_json::Value>("doc").unwrap()["a"], 1);
        assert!(row.get::<i64>("missing").is_err());
        assert!(row.get::<Uuid>("doc").is_err());
        assert_eq!(
            row.get::<Option<String>>("id").unwrap().as_deref(),
            Some("7")
        );
    }

    #[test]
    fn sea_query_values_convert_without_loss() {
        let big = sea_query::Value::BigUnsigned(Some(u64::MAX));
        assert_eq!(
            DbValue::try_from(big).unwrap(),
            DbValue::Decimal(u64::MAX.to_string())
        );
        assert_eq!(
            DbValue::try_from(sea_query::Value::String(None)).unwrap(),
            DbValue::Null
        );
    }

    #[test]
    fn sqlite_timestamps_parse() {
        assert!(parse_timestamp_text("2024-01-31 12:00:00").is_some());
        assert!(parse_timestamp_text("2024-01-31T12:00:00.123Z").is_some());
        assert!(parse_timestamp_text("yesterday").is_none());
    }
}
