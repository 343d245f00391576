//! SQLite, embedded (rusqlite, bundled). Its calls block, so each one runs on tokio's
//! blocking pool with the connection moved there and back; a small pool of connections in
//! WAL mode lets readers run beside the one writer.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rusqlite::types::{ToSqlOutput, ValueRef};
use rusqlite::{Connection, OpenFlags, ToSql};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::{DbError, DbValue, ErrorDetail, ExecResult, PoolStatus, Row, Stmt};

const MAX_CONNECTIONS: usize = 8;

pub(super) struct SqlitePool {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl SqlitePool {
    pub(super) fn open(path: &Path) -> Result<Arc<SqlitePool>, DbError> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                DbError::Connect(format!(
                    "cannot create the directory {}: {e}",
                    dir.display()
                ))
            })?;
        }
        Ok(Arc::new(SqlitePool {
            path: path.to_path_buf(),
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(MAX_CONNECTIONS)),
        }))
    }

    fn connect(path: &Path) -> Result<Connection, DbError> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_WRITE
                | OpenFlags::SQLITE_OPEN_CREATE
                | OpenFlags::SQLITE_OPEN_NO_MUTEX
                | OpenFlags::SQLITE_OPEN_URI,
        )
        .map_err(|e| DbError::Connect(format!("{}: {e}", path.display())))?;
        conn.busy_timeout(Duration::from_secs(5))
            .map_err(map_error)?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;",
        )
        .map_err(map_error)?;
        conn.set_prepared_statement_cache_capacity(128);
        Ok(conn)
    }

    pub(super) async fn acquire(self: &Arc<Self>) -> Result<SqliteConn, DbError> {
        let permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| DbError::Connect("the database is closed".into()))?;
        let idle = self.idle.lock().map(|mut v| v.pop()).unwrap_or(None);
        let conn = match idle {
            Some(conn) => conn,
            None => {
                let path = self.path.clone();
                tokio::task::spawn_blocking(move || Self::connect(&path))
                    .await
                    .map_err(|e| DbError::Connect(e.to_string()))??
            }
        };
        Ok(SqliteConn {
            conn: Some(conn),
            pool: self.clone(),
            _permit: permit,
        })
    }

    pub(super) fn status(&self) -> PoolStatus {
        let idle = self.idle.lock().map(|v| v.len()).unwrap_or(0);
        let in_use = MAX_CONNECTIONS - self.permits.available_permits();
        PoolStatus {
            max: MAX_CONNECTIONS,
            open: idle + in_use,
            idle,
        }
    }

    pub(super) fn close(&self) {
        self.permits.close();
        if let Ok(mut idle) = self.idle.lock() {
            idle.clear();
        }
    }
}

pub(super) struct SqliteConn {
    conn: Option<Connection>,
    pool: Arc<SqlitePool>,
    _permit: OwnedSemaphorePermit,
}

impl Drop for SqliteConn {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take() {
            // A connection left inside a transaction is closed, which rolls it back.
            if conn.is_autocommit()
                && !self.pool.permits.is_closed()
                && let Ok(mut idle) = self.pool.idle.lock()
            {
                idle.push(conn);
            }
        }
    }
}

impl SqliteConn {
    /// Runs `work` on the blocking pool with this connection.
    async fn run<R, F>(&mut self, work: F) -> Result<R, DbError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, DbError> + Send + 'static,
    {
        let conn = self
            .conn
            .take()
            .ok_or_else(|| DbError::Connect("the connection was lost".into()))?;
        let (conn, result) = tokio::task::spawn_blocking(move || {
            let result = work(&conn);
            (conn, result)
        })
        .await
        .map_err(|e| DbError::Connect(e.to_string()))?;
        self.conn = Some(conn);
        result
    }

    pub(super) async fn query(&mut self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        self.run(move |conn| {
            let mut prepared = conn.prepare_cached(&stmt.sql).map_err(map_error)?;
            let columns: Arc<[String]> = prepared.column_names().map(String::from).collect();
            let count = columns.len();
            let mut rows = prepared
                .query(rusqlite::params_from_iter(
                    stmt.values.iter().map(SqliteParam),
                ))
                .map_err(map_error)?;
            let mut out = Vec::new();
            while let Some(row) = rows.next().map_err(map_error)? {
                let values = (0..count)
                    .map(|i| row.get_ref(i).map(from_sqlite).map_err(map_error))
                    .collect::<Result<Vec<_>, _>>()?;
                out.push(Row::new(columns.clone(), values));
            }
            Ok(out)
        })
        .await
    }

    pub(super) async fn execute(&mut self, stmt: Stmt) -> Result<ExecResult, DbError> {
        self.run(move |conn| {
            let mut prepared = conn.prepare_cached(&stmt.sql).map_err(map_error)?;
            let changed = prepared
                .execute(rusqlite::params_from_iter(
                    stmt.values.iter().map(SqliteParam),
                ))
                .map_err(map_error)?;
            Ok(ExecResult {
                rows_affected: changed as u64,
                last_insert_id: Some(conn.last_insert_rowid()),
            })
        })
        .await
    }

    pub(super) async fn batch(&mut self, sql: String) -> Result<(), DbError> {
        self.run(move |conn| {
            conn.execute_batch(&sql).map_err(map_error)?;
            // Schema changes invalidate cached statements' column lists.
            conn.flush_prepared_statement_cache();
            Ok(())
        })
        .await
    }
}

/// `UNIQUE constraint failed: customers.email` names the table and column.
fn detail(message: &str) -> ErrorDetail {
    let named = message
        .split_once("constraint failed: ")
        .and_then(|(_, rest)| rest.split(',').next())
        .and_then(|first| first.trim().split_once('.'));
    ErrorDetail {
        table: named.map(|(t, _)| t.to_string()),
        column: named.map(|(_, c)| c.to_string()),
        ..ErrorDetail::default()
    }
}

fn map_error(e: rusqlite::Error) -> DbError {
    match &e {
        rusqlite::Error::SqliteFailure(code, message) => {
            let message = message.clone().unwrap_or_else(|| code.to_string());
            let detail = detail(&message);
            DbError::query_with(message, Some(code.extended_code.to_string()), detail)
        }
        _ => DbError::query(e.to_string(), None),
    }
}

fn from_sqlite(v: ValueRef<'_>) -> DbValue {
    match v {
        ValueRef::Null => DbValue::Null,
        ValueRef::Integer(i) => DbValue::Int(i),
        ValueRef::Real(f) => DbValue::Float(f),
        ValueRef::Text(t) => DbValue::Text(String::from_utf8_lossy(t).into_owned()),
        ValueRef::Blob(b) => DbValue::Bytes(b.to_vec()),
    }
}

struct SqliteParam<'a>(&'a DbValue);

impl ToSql for SqliteParam<'_> {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        use rusqlite::types::Value as S;
        Ok(match self.0 {
            DbValue::Null => ToSqlOutput::Owned(S::Null),
            DbValue::Bool(b) => ToSqlOutput::Owned(S::Integer(i64::from(*b))),
            DbValue::Int(i) => ToSqlOutput::Owned(S::Integer(*i)),
            DbValue::Float(f) => ToSqlOutput::Owned(S::Real(*f)),
            DbValue::Decimal(s) | DbValue::Text(s) => {
                ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes()))
            }
            DbValue::Json(j) => ToSqlOutput::Owned(S::Text(j.to_string())),
            DbValue::Uuid(u) => ToSqlOutput::Owned(S::Text(u.hyphenated().to_string())),
            DbValue::Bytes(b) => ToSqlOutput::Borrowed(ValueRef::Blob(b)),
            DbValue::Timestamp(t) => {
                ToSqlOutput::Owned(S::Text(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()))
            }
            DbValue::DateTime(t) => {
                ToSqlOutput::Owned(S::Text(t.format("%Y-%m-%d %H:%M:%S%.3f").to_string()))
            }
            DbValue::Date(d) => ToSqlOutput::Owned(S::Text(d.to_string())),
            DbValue::Time(t) => ToSqlOutput::Owned(S::Text(t.format("%H:%M:%S").to_string())),
        })
    }
}
