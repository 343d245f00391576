//! MySQL and MariaDB through mysql_async and its pool. Sessions run in UTC so `timestamp`
//! columns read and write the same instant on every connection.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};
use mysql_async::consts::{ColumnFlags, ColumnType};
use mysql_async::prelude::Queryable;
use mysql_async::{Column, Conn, Opts, OptsBuilder, Params, PoolConstraints, PoolOpts, Value};

use super::{DbError, DbValue, ErrorDetail, ExecResult, PoolStatus, Row, Stmt};
use crate::config::NetworkDatabase;

/// The character set number MySQL uses for binary strings (BLOB, BINARY, VARBINARY).
const BINARY_CHARSET: u16 = 63;

pub(super) struct MySqlPool {
    pool: mysql_async::Pool,
    max: usize,
}

pub(super) fn pool(net: &NetworkDatabase) -> Result<MySqlPool, DbError> {
    let base = match &net.connection_string {
        Some(url) => OptsBuilder::from_opts(
            Opts::from_url(url)
                .map_err(|e| DbError::Connect(format!("DB_CONNECTION_STRING is not valid: {e}")))?,
        ),
        None => {
            let opts = OptsBuilder::default()
                .db_name(net.database.clone())
                .user(Some(net.user.clone().unwrap_or_else(|| "root".into())))
                .pass(net.password.clone());
            // A host starting with `/` is the server's Unix socket file.
            match net.host.starts_with('/') {
                true => opts.socket(Some(net.host.clone())),
                false => opts.ip_or_hostname(net.host.clone()).tcp_port(net.port),
            }
        }
    };
    let constraints = PoolConstraints::new(0, net.pool_max)
        .ok_or_else(|| DbError::Connect("invalid pool size".into()))?;
    let opts = base
        .init(vec![
            "SET time_zone = '+00:00'",
            "SET NAMES utf8mb4 COLLATE utf8mb4_unicode_ci",
            // Nested lists are built with GROUP_CONCAT; the default cuts them at 1 KB.
            "SET SESSION group_concat_max_len = 67108864",
        ])
        .pool_opts(
            PoolOpts::default()
                .with_constraints(constraints)
                .with_inactive_connection_ttl(Duration::from_secs(300)),
        )
        // Rows an UPDATE matched, not only the ones it changed, as PostgreSQL and SQLite count.
        .client_found_rows(true)
        // mysql_async would otherwise switch to the server's Unix socket when it finds one,
        // bypassing the address the user configured.
        .prefer_socket(false)
        .stmt_cache_size(256)
        .tcp_nodelay(true);
    Ok(MySqlPool {
        pool: mysql_async::Pool::new(opts),
        max: net.pool_max,
    })
}

impl MySqlPool {
    pub(super) async fn get(&self) -> Result<Conn, DbError> {
        self.pool.get_conn().await.map_err(map_error)
    }

    pub(super) fn status(&self) -> PoolStatus {
        let m = self.pool.metrics();
        PoolStatus {
            max: self.max,
            open: m.connection_count.load(Ordering::Relaxed),
            idle: m.connections_in_pool.load(Ordering::Relaxed),
        }
    }

    pub(super) async fn close(&self) {
        if let Err(e) = self.pool.clone().disconnect().await {
            tracing::debug!(error = %e, "closing the MySQL pool");
        }
    }
}

fn map_error(e: mysql_async::Error) -> DbError {
    match e {
        mysql_async::Error::Server(s) => {
            let detail = detail(s.code, &s.message);
            DbError::query_with(s.message, Some(s.code.to_string()), detail)
        }
        mysql_async::Error::Io(io) => DbError::Connect(io.to_string()),
        mysql_async::Error::Driver(d) => match d {
            mysql_async::DriverError::ConnectionClosed
            | mysql_async::DriverError::PoolDisconnected => DbError::Connect(d.to_string()),
            other => DbError::query(other.to_string(), None),
        },
        other => DbError::Connect(other.to_string()),
    }
}

/// The column, value and table MySQL names in a constraint error's message.
fn detail(code: u16, message: &str) -> ErrorDetail {
    let quoted = |after: &str, quote: char| -> Option<String> {
        let rest = &message[message.find(after)? + after.len()..];
        let rest = rest.strip_prefix(quote)?;
        Some(rest[..rest.find(quote)?].to_string())
    };
    match code {
        // Duplicate entry 'x' for key 'customers_email_unique'
        1062 | 1586 => ErrorDetail {
            value: quoted("Duplicate entry ", '\''),
            constraint: quoted(" for key ", '\'').map(|k| {
                k.rsplit_once('.')
                    .map_or(k.clone(), |(_, name)| name.to_string())
            }),
            ..ErrorDetail::default()
        },
        // a foreign key constraint fails (`db`.`orders`, CONSTRAINT `x` FOREIGN KEY (`customer`) ...
        1451 | 1452 => ErrorDetail {
            table: quoted("`.", '`'),
            column: quoted("FOREIGN KEY (", '`'),
            constraint: quoted("CONSTRAINT ", '`'),
            ..ErrorDetail::default()
        },
        // Column 'name' cannot be null / Data too long for column 'email' at row 1
        1048 => ErrorDetail {
            column: quoted("Column ", '\''),
            ..ErrorDetail::default()
        },
        1364 => ErrorDetail {
            column: quoted("Field ", '\''),
            ..ErrorDetail::default()
        },
        1406 | 1264 => ErrorDetail {
            column: quoted("for column ", '\''),
            ..ErrorDetail::default()
        },
        _ => ErrorDetail::default(),
    }
}

fn params(values: &[DbValue]) -> Params {
    if values.is_empty() {
        Params::Empty
    } else {
        Params::Positional(values.iter().map(to_mysql).collect())
    }
}

pub(super) async fn query(conn: &mut Conn, stmt: &Stmt) -> Result<Vec<Row>, DbError> {
    // Statements without parameters go through the text protocol: no prepare round trip.
    let (columns, rows) = if stmt.values.is_empty() {
        let mut result = conn
            .query_iter(stmt.sql.as_str())
            .await
            .map_err(map_error)?;
        let columns = result.columns();
        let rows: Vec<mysql_async::Row> = result.collect().await.map_err(map_error)?;
        result.drop_result().await.map_err(map_error)?;
        (columns, rows)
    } else {
        let mut result = conn
            .exec_iter(stmt.sql.as_str(), params(&stmt.values))
            .await
            .map_err(map_error)?;
        let columns = result.columns();
        let rows: Vec<mysql_async::Row> = result.collect().await.map_err(map_error)?;
        result.drop_result().await.map_err(map_error)?;
        (columns, rows)
    };
    let Some(columns) = columns else {
        return Ok(Vec::new());
    };
    let names: Arc<[String]> = columns.iter().map(|c| c.name_str().into_owned()).collect();
    rows.into_iter()
        .map(|row| {
            let values = row
                .unwrap()
                .into_iter()
                .zip(columns.iter())
                .map(|(v, c)| from_mysql(v, c))
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row::new(names.clone(), values))
        })
        .collect()
}

pub(super) async fn execute(conn: &mut Conn, stmt: &Stmt) -> Result<ExecResult, DbError> {
    if stmt.values.is_empty() {
        conn.query_drop(stmt.sql.as_str())
            .await
            .map_err(map_error)?;
    } else {
        conn.exec_drop(stmt.sql.as_str(), params(&stmt.values))
            .await
            .map_err(map_error)?;
    }
    Ok(ExecResult {
        rows_affected: conn.affected_rows(),
        last_insert_id: conn.last_insert_id().and_then(|id| i64::try_from(id).ok()),
    })
}

pub(super) async fn batch(conn: &mut Conn, sql: &str) -> Result<(), DbError> {
    conn.query_drop(sql).await.map_err(map_error)
}

fn to_mysql(v: &DbValue) -> Value {
    match v {
        DbValue::Null => Value::NULL,
        DbValue::Bool(b) => Value::Int(i64::from(*b)),
        DbValue::Int(i) => Value::Int(*i),
        DbValue::Float(f) => Value::Double(*f),
        DbValue::Decimal(s) | DbValue::Text(s) => Value::Bytes(s.clone().into_bytes()),
        DbValue::Json(j) => Value::Bytes(j.to_string().into_bytes()),
        // Directus stores uuids on MySQL as char(36) text.
        DbValue::Uuid(u) => Value::Bytes(u.hyphenated().to_string().into_bytes()),
        DbValue::Bytes(b) => Value::Bytes(b.clone()),
        DbValue::Timestamp(t) => datetime_value(t.naive_utc()),
        DbValue::DateTime(t) => datetime_value(*t),
        DbValue::Date(d) => datetime_value(d.and_hms_opt(0, 0, 0).unwrap_or_default()),
        DbValue::Time(t) => {
            use chrono::Timelike;
            Value::Time(
                false,
                0,
                t.hour() as u8,
                t.minute() as u8,
                t.second() as u8,
                t.nanosecond() / 1000,
            )
        }
    }
}

fn datetime_value(t: NaiveDateTime) -> Value {
    use chrono::{Datelike, Timelike};
    Value::Date(
        t.year() as u16,
        t.month() as u8,
        t.day() as u8,
        t.hour() as u8,
        t.minute() as u8,
        t.second() as u8,
        t.nanosecond() / 1000,
    )
}

/// Reads a cell by its column's type: the text protocol sends every value as bytes, the
/// binary protocol sends typed values.
fn from_mysql(v: Value, column: &Column) -> Result<DbValue, DbError> {
    let ty = column.column_type();
    let bad = |what: &str| DbError::Decode(format!("column {}: {what}", column.name_str()));
    Ok(match v {
        Value::NULL => DbValue::Null,
        Value::Int(i) => DbValue::Int(i),
        Value::UInt(u) => {
            i64::try_from(u).map_or_else(|_| DbValue::Decimal(u.to_string()), DbValue::Int)
        }
        Value::Float(f) => DbValue::Float(f.into()),
        Value::Double(f) => DbValue::Float(f),
        Value::Date(y, mo, d, h, mi, s, us) => {
            let date = NaiveDate::from_ymd_opt(y.into(), mo.into(), d.into());
            match (ty, date) {
                // MySQL's zero date has no calendar equivalent.
                (_, None) => DbValue::Null,
                (ColumnType::MYSQL_TYPE_DATE | ColumnType::MYSQL_TYPE_NEWDATE, Some(date)) => {
                    DbValue::Date(date)
                }
                (_, Some(date)) => DbValue::DateTime(
                    date.and_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                        .ok_or_else(|| bad("invalid datetime"))?,
                ),
            }
        }
        Value::Time(neg, days, h, mi, s, us) => {
            if neg || days > 0 {
                DbValue::Text(format!(
                    "{}{:02}:{:02}:{:02}",
                    if neg { "-" } else { "" },
                    days * 24 + u32::from(h),
                    mi,
                    s
                ))
            } else {
                DbValue::Time(
                    NaiveTime::from_hms_micro_opt(h.into(), mi.into(), s.into(), us)
                        .ok_or_else(|| bad("invalid time"))?,
                )
            }
        }
        Value::Bytes(bytes) => from_text(bytes, column).map_err(|e| bad(&e))?,
    })
}

fn from_text(bytes: Vec<u8>, column: &Column) -> Result<DbValue, String> {
    use ColumnType::*;
    let text = |bytes: Vec<u8>| String::from_utf8(bytes).map_err(|_| "invalid UTF-8".to_string());
    Ok(match column.column_type() {
        MYSQL_TYPE_TINY | MYSQL_TYPE_SHORT | MYSQL_TYPE_LONG | MYSQL_TYPE_INT24
        | MYSQL_TYPE_LONGLONG | MYSQL_TYPE_YEAR => {
            let s = text(bytes)?;
            match s.parse::<i64>() {
                Ok(i) => DbValue::Int(i),
                // unsigned bigint above i64::MAX
                Err(_) => DbValue::Decimal(s),
            }
        }
        MYSQL_TYPE_FLOAT | MYSQL_TYPE_DOUBLE => {
            DbValue::Float(text(bytes)?.parse().map_err(|_| "invalid number")?)
        }
        MYSQL_TYPE_DECIMAL | MYSQL_TYPE_NEWDECIMAL => DbValue::Decimal(text(bytes)?),
        MYSQL_TYPE_JSON => {
            DbValue::Json(serde_json::from_slice(&bytes).map_err(|e| e.to_string())?)
        }
        MYSQL_TYPE_DATE | MYSQL_TYPE_NEWDATE => {
            let s = text(bytes)?;
            NaiveDate::parse_from_str(&s, "%Y-%m-%d").map_or(DbValue::Null, DbValue::Date)
        }
        MYSQL_TYPE_DATETIME
        | MYSQL_TYPE_TIMESTAMP
        | MYSQL_TYPE_DATETIME2
        | MYSQL_TYPE_TIMESTAMP2 => {
            let s = text(bytes)?;
            NaiveDateTime::parse_from_str(&s, "%Y-%m-%d %H:%M:%S%.f")
                .map_or(DbValue::Null, DbValue::DateTime)
        }
        MYSQL_TYPE_TIME | MYSQL_TYPE_TIME2 => {
            let s = text(bytes)?;
            NaiveTime::parse_from_str(&s, "%H:%M:%S%.f").map_or(DbValue::Text(s), DbValue::Time)
        }
        MYSQL_TYPE_BIT => {
            DbValue::Int(bytes.iter().fold(0i64, |acc, b| (acc << 8) | i64::from(*b)))
        }
        _ if column.character_set() == BINARY_CHARSET
            && column.flags().contains(ColumnFlags::BINARY_FLAG) =>
        {
            DbValue::Bytes(bytes)
        }
        _ => DbValue::Text(text(bytes)?),
    })
}
