//! PostgreSQL through tokio-postgres and a deadpool pool; values cross in
//! [`super::pg_values`]'s types.

use std::error::Error as StdError;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{
    Manager, ManagerConfig, Object, Pool, QueueMode, RecyclingMethod, Runtime,
};
use tokio_postgres::types::ToSql;

use super::pg_values::{PgCell, PgParam};
use super::{DbError, ErrorDetail, ExecResult, Row, Stmt};
use crate::config::NetworkDatabase;

/// Prepared statements kept per connection before the cache is emptied; bounds memory when
/// clients send many distinct query shapes.
const STATEMENT_CACHE_LIMIT: usize = 512;

pub(super) fn pool(net: &NetworkDatabase) -> Result<Pool, DbError> {
    let mut config = match &net.connection_string {
        Some(cs) => tokio_postgres::Config::from_str(cs)
            .map_err(|e| DbError::Connect(format!("DB_CONNECTION_STRING is not valid: {e}")))?,
        None => {
            let mut c = tokio_postgres::Config::new();
            c.host(&net.host).port(net.port);
            if let Some(db) = &net.database {
                c.dbname(db);
            }
            c.user(net.user.as_deref().unwrap_or("postgres"));
            if let Some(pw) = &net.password {
                c.password(pw);
            }
            c
        }
    };
    config
        .application_name("rectus")
        .connect_timeout(Duration::from_secs(5));
    let manager = Manager::from_config(
        config,
        tokio_postgres::NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(net.pool_max)
        // The connection given back last is the next one taken, as PgBouncer reuses its
        // server connections: a write line taking one per group then stays on one warm
        // backend. Taken in turns (deadpool's default), each group went to another of
        // the connections a burst of reads had opened, and PostgreSQL spent a fifth more
        // CPU per create (`loadbench` after another workload against alone).
        .queue_mode(QueueMode::Lifo)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(super::ACQUIRE_TIMEOUT))
        .create_timeout(Some(Duration::from_secs(5)))
        .recycle_timeout(Some(Duration::from_secs(5)))
        .build()
        .map_err(|e| DbError::Connect(e.to_string()))
}

pub(super) async fn acquire(pool: &Pool) -> Result<Object, DbError> {
    pool.get().await.map_err(|e| match e {
        deadpool_postgres::PoolError::Timeout(_) => DbError::Timeout,
        deadpool_postgres::PoolError::Backend(e) => DbError::Connect(describe(&e)),
        other => DbError::Connect(other.to_string()),
    })
}

fn map_error(e: tokio_postgres::Error) -> DbError {
    match e.as_db_error() {
        Some(db) => {
            DbError::query_with(db.message(), Some(db.code().code().to_string()), detail(db))
        }
        None if e.is_closed() => DbError::Connect("the connection was closed".into()),
        None => match e.source() {
            // An I/O error means the server went away mid-statement.
            Some(source) if source.is::<std::io::Error>() => DbError::Connect(describe(&e)),
            _ => DbError::query(describe(&e), None),
        },
    }
}

/// The table, column and value of a constraint error; PostgreSQL names the key's column and
/// value in the detail text: `Key (email)=(a@b.c) already exists.`
fn detail(db: &tokio_postgres::error::DbError) -> ErrorDetail {
    let key = db.detail().and_then(|d| {
        let rest = d.strip_prefix("Key (")?;
        let (column, rest) = rest.split_once(")=(")?;
        let value = rest.rsplit_once(')').map(|(v, _)| v)?;
        Some((column.to_string(), value.to_string()))
    });
    ErrorDetail {
        table: db.table().map(String::from),
        column: db
            .column()
            .map(String::from)
            .or_else(|| key.as_ref().map(|(c, _)| c.clone())),
        value: key.map(|(_, v)| v),
        constraint: db.constraint().map(String::from),
    }
}

/// tokio-postgres errors print "db error" and hide the cause one level down.
pub(super) fn describe(e: &tokio_postgres::Error) -> String {
    match e.source() {
        Some(source) => format!("{e}: {source}"),
        None => e.to_string(),
    }
}

pub(super) async fn prepare(
    client: &Object,
    sql: &str,
) -> Result<tokio_postgres::Statement, DbError> {
    if client.statement_cache.size() >= STATEMENT_CACHE_LIMIT {
        client.statement_cache.clear();
    }
    client.prepare_cached(sql).await.map_err(map_error)
}

/// Sends `BEGIN` and then `run`'s statement without waiting in between: tokio-postgres
/// pipelines requests that are in flight together, so both take one round trip.
async fn after_begin<T, F>(client: &Object, begin: bool, run: F) -> Result<T, tokio_postgres::Error>
where
    F: std::future::Future<Output = Result<T, tokio_postgres::Error>>,
{
    if !begin {
        return run.await;
    }
    let (began, result) = tokio::join!(client.batch_execute("BEGIN"), run);
    began?;
    result
}

pub(super) async fn query(client: &Object, stmt: &Stmt, begin: bool) -> Result<Vec<Row>, DbError> {
    let prepared = prepare(client, &stmt.sql).await?;
    let params: Vec<PgParam> = stmt.values.iter().map(PgParam).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let rows = after_begin(client, begin, client.query(&prepared, &refs))
        .await
        .map_err(map_error)?;
    rows_of(&prepared, &rows)
}

/// tokio-postgres's rows of `prepared` as rectus's.
pub(super) fn rows_of(
    prepared: &tokio_postgres::Statement,
    rows: &[tokio_postgres::Row],
) -> Result<Vec<Row>, DbError> {
    let columns: Arc<[String]> = prepared
        .columns()
        .iter()
        .map(|c| c.name().to_string())
        .collect();
    rows.iter()
        .map(|row| {
            let values = (0..row.len())
                .map(|i| {
                    row.try_get::<_, PgCell>(i)
                        .map(|c| c.0)
                        .map_err(|e| DbError::Decode(describe(&e)))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(Row::new(columns.clone(), values))
        })
        .collect()
}

/// Connections shared by small reads (see [`crate::db::Database::query_small`]): each
/// takes one of them in turn, and tokio-postgres pipelines the statements in flight on a
/// connection — several reads in one send, PostgreSQL reading them in one receive and
/// running them back to back. On two cores a single-item read's database CPU halved
/// (0.022 → 0.012 ms) and the load benchmark's one-order rate rose by a third. Bigger reads
/// keep a pooled connection each: on one shared connection one backend would do all their
/// work. A shared connection is taken from the pool and replaced once it has closed.
pub(super) struct Pipelines {
    slots: Vec<Shared>,
    next: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct Shared {
    client: std::sync::Mutex<Option<Arc<Object>>>,
    /// Held while a connection for the slot is taken from the pool, so that reads arriving
    /// together wait for that one instead of each taking one.
    connecting: tokio::sync::Mutex<()>,
}

impl Pipelines {
    /// One shared connection per two cores, at least one.
    pub(super) fn new() -> Pipelines {
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        Pipelines {
            slots: (0..(cores / 2).max(1)).map(|_| Shared::default()).collect(),
            next: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    pub(super) async fn query(&self, pool: &Pool, stmt: &Stmt) -> Result<Vec<Row>, DbError> {
        // A shared connection is one the pool no longer lends: in a small pool (`DB_POOL__MAX`)
        // it would leave writes and transactions waiting, so there reads take pooled ones.
        if pool.status().max_size < 2 * self.slots.len() {
            return query(&acquire(pool).await?, stmt, false).await;
        }
        let client = self.client(pool).await?;
        match query(&client, stmt, false).await {
            // The shared connection was lost (a restart, a terminated backend): a read
            // changes nothing, so it is sent once more on a fresh connection.
            Err(_) if client.is_closed() => {
                let client = self.client(pool).await?;
                query(&client, stmt, false).await
            }
            result => result,
        }
    }

    async fn client(&self, pool: &Pool) -> Result<Arc<Object>, DbError> {
        let turn = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let Some(slot) = self.slots.get(turn % self.slots.len()) else {
            return Ok(Arc::new(acquire(pool).await?));
        };
        let open = || {
            lock(&slot.client)
                .as_ref()
                .filter(|c| !c.is_closed())
                .cloned()
        };
        if let Some(client) = open() {
            return Ok(client);
        }
        let _connecting = slot.connecting.lock().await;
        if let Some(client) = open() {
            return Ok(client);
        }
        let fresh = Arc::new(acquire(pool).await?);
        *lock(&slot.client) = Some(fresh.clone());
        Ok(fresh)
    }
}

pub(super) fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The text of each row's `column` joined into a JSON array, taken from the rows as they
/// arrive: a read's items come one JSON object per row, and copying them out of the
/// protocol's buffers once is cheaper than making a [`Row`] of each.
pub(super) async fn json_array(
    client: &mut Object,
    stmt: &Stmt,
    column: &str,
    begin: bool,
) -> Result<String, DbError> {
    use futures_util::TryStreamExt;

    let prepared = prepare(client, &stmt.sql).await?;
    let index = prepared
        .columns()
        .iter()
        .position(|c| c.name() == column)
        .ok_or_else(|| DbError::Decode(format!("no column {column}")))?;
    let params: Vec<PgParam> = stmt.values.iter().map(PgParam).collect();
    let refs = params.iter().map(|p| p as &(dyn ToSql + Sync));
    let rows = after_begin(client, begin, client.query_raw(&prepared, refs))
        .await
        .map_err(map_error)?;
    let mut rows = std::pin::pin!(rows);
    let mut out = String::from("[");
    while let Some(row) = rows.try_next().await.map_err(map_error)? {
        let text: Option<&str> = row
            .try_get(index)
            .map_err(|e| DbError::Decode(describe(&e)))?;
        super::push_item(&mut out, text.unwrap_or("null"));
    }
    out.push(']');
    Ok(out)
}

pub(super) async fn execute(
    client: &mut Object,
    stmt: &Stmt,
    begin: bool,
) -> Result<ExecResult, DbError> {
    let prepared = prepare(client, &stmt.sql).await?;
    let params: Vec<PgParam> = stmt.values.iter().map(PgParam).collect();
    let refs: Vec<&(dyn ToSql + Sync)> = params.iter().map(|p| p as &(dyn ToSql + Sync)).collect();
    let rows_affected = after_begin(client, begin, client.execute(&prepared, &refs))
        .await
        .map_err(map_error)?;
    Ok(ExecResult {
        rows_affected,
        last_insert_id: None,
    })
}

pub(super) async fn batch(client: &mut Object, sql: &str) -> Result<(), DbError> {
    client.batch_execute(sql).await.map_err(map_error)?;
    // DDL can change what a cached statement means (a column type, a dropped table).
    if !matches!(sql, "BEGIN" | "COMMIT" | "ROLLBACK") {
        client.statement_cache.clear();
    }
    Ok(())
}
