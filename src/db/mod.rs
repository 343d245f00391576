//! The one boundary over the three databases. Everything above this module speaks in
//! [`Stmt`] (SQL built by sea-query for the [`Dialect`], plus bound [`DbValue`]s) and [`Row`];
//! quoting, placeholders, type conversion, pools and transactions per database live here.

pub mod ddl;
mod error;
pub mod introspect;
pub mod json;
pub mod migrations;
mod mysql;
mod pg;
mod pg_groups;
mod pg_values;
mod sqlite;
pub mod sqlite_rebuild;
pub mod timestamps;
mod value;

use std::fmt::Write as _;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use sea_query::{
    MysqlQueryBuilder, PostgresQueryBuilder, QueryBuilder, QueryStatementWriter,
    SchemaStatementBuilder, SqlWriter, SqlWriterValues, SqliteQueryBuilder,
};

use crate::config::DatabaseConfig;

pub use error::{DbError, DbErrorKind, ErrorDetail};
pub use value::{DbValue, FromDbValue, Row, parse_timestamp_text};

pub use rectus_policies::Dialect;

/// Rendering of sea-query statements for a [`Dialect`]: quoting, placeholders, values.
pub trait DialectExt {
    /// Renders a sea-query statement with this dialect's quoting and placeholders.
    fn build<S: QueryStatementWriter>(self, statement: &S) -> Result<Stmt, DbError>;
    /// Renders a sea-query schema (DDL) statement.
    fn build_schema<S: SchemaStatementBuilder>(self, statement: &S) -> String;
    fn begin_sql(self) -> &'static str;
}

impl DialectExt for Dialect {
    fn build<S: QueryStatementWriter>(self, statement: &S) -> Result<Stmt, DbError> {
        let (sql, values) = match self {
            Dialect::Postgres => PageInline::render(statement, PostgresQueryBuilder),
            Dialect::MySql => PageInline::render(statement, MysqlQueryBuilder),
            Dialect::Sqlite => PageInline::render(statement, SqliteQueryBuilder),
        };
        let values = values
            .into_iter()
            .map(DbValue::try_from)
            .collect::<Result<_, _>>()?;
        Ok(Stmt { sql, values })
    }

    fn build_schema<S: SchemaStatementBuilder>(self, statement: &S) -> String {
        match self {
            Dialect::Postgres => statement.build(PostgresQueryBuilder),
            Dialect::MySql => statement.build(MysqlQueryBuilder),
            Dialect::Sqlite => statement.build(SqliteQueryBuilder),
        }
    }

    fn begin_sql(self) -> &'static str {
        match self {
            Dialect::Postgres => "BEGIN",
            Dialect::MySql => "START TRANSACTION",
            // Take the write lock up front: two deferred transactions that both upgrade to
            // writers would otherwise fail with SQLITE_BUSY instead of waiting.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
        }
    }
}

/// Renders `LIMIT` and `OFFSET` counts as literals and every other value as a parameter.
///
/// sea-query binds the counts like any value, and PostgreSQL cannot plan `LIMIT $1` once
/// for all executions of a prepared statement (a generic plan assumes a tenth of the rows),
/// so it plans every execution afresh: a 100-row list spent 0.19 ms planning for 0.33 ms
/// running. Counts are the only unsigned values rectus gives sea-query (values from
/// requests are signed), and a number printed by sea-query cannot carry SQL.
struct PageInline {
    values: SqlWriterValues,
}

impl PageInline {
    fn render<S: QueryStatementWriter, B: QueryBuilder>(
        statement: &S,
        builder: B,
    ) -> (String, sea_query::Values) {
        let (placeholder, numbered) = builder.placeholder();
        let mut writer = PageInline {
            values: SqlWriterValues::new(placeholder, numbered),
        };
        statement.build_collect_into(builder, &mut writer);
        writer.values.into_parts()
    }
}

impl std::fmt::Write for PageInline {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        self.values.write_str(s)
    }
}

impl std::fmt::Display for PageInline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.values.fmt(f)
    }
}

impl SqlWriter for PageInline {
    fn push_param<T: QueryBuilder>(&mut self, value: sea_query::Value, builder: &T) {
        match value {
            sea_query::Value::BigUnsigned(Some(n)) => {
                // Writing to a String cannot fail.
                let _ = write!(self.values, "{n}");
            }
            other => self.values.push_param(other, builder),
        }
    }

    fn as_writer(&mut self) -> &mut dyn std::fmt::Write {
        self
    }
}

/// A statement ready to run: SQL text for one dialect and its bound values.
#[derive(Debug, Clone, PartialEq)]
pub struct Stmt {
    pub sql: String,
    pub values: Vec<DbValue>,
}

impl Stmt {
    /// A statement whose SQL is a constant of rectus (catalog queries); values are bound.
    pub fn new(sql: impl Into<String>) -> Self {
        Stmt {
            sql: sql.into(),
            values: Vec::new(),
        }
    }

    pub fn bind(mut self, value: impl Into<DbValue>) -> Self {
        self.values.push(value.into());
        self
    }
}

/// What a write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct ExecResult {
    pub rows_affected: u64,
    /// The generated id of the last inserted row, where the database reports one this way
    /// (MySQL, SQLite). PostgreSQL returns ids through `RETURNING` instead.
    pub last_insert_id: Option<i64>,
}

/// Connection counts for `/server/health`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStatus {
    pub max: usize,
    pub open: usize,
    pub idle: usize,
}

/// How long a caller waits for a connection before the database counts as unavailable.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(10);

#[derive(Clone)]
pub struct Database {
    pool: Arc<Pool>,
    /// PostgreSQL's connections shared by small reads.
    shared: Arc<pg::Pipelines>,
    /// PostgreSQL's lines for writes that commit by themselves.
    groups: Arc<pg_groups::WriteGroups>,
}

enum Pool {
    Postgres(deadpool_postgres::Pool),
    MySql(mysql::MySqlPool),
    Sqlite(Arc<sqlite::SqlitePool>),
}

impl Database {
    /// Builds the pool for the configured database and checks that it answers.
    pub async fn connect(config: &DatabaseConfig) -> Result<Database, DbError> {
        let pool = match config {
            DatabaseConfig::Postgres(net) => Pool::Postgres(pg::pool(net)?),
            DatabaseConfig::MySql(net) => Pool::MySql(mysql::pool(net)?),
            DatabaseConfig::Sqlite { filename } => {
                Pool::Sqlite(sqlite::SqlitePool::open(filename)?)
            }
        };
        let db = Database {
            pool: Arc::new(pool),
            shared: Arc::new(pg::Pipelines::new()),
            groups: Arc::new(pg_groups::WriteGroups::new()),
        };
        db.ping().await?;
        Ok(db)
    }

    pub fn dialect(&self) -> Dialect {
        match &*self.pool {
            Pool::Postgres(_) => Dialect::Postgres,
            Pool::MySql(_) => Dialect::MySql,
            Pool::Sqlite(_) => Dialect::Sqlite,
        }
    }

    /// Takes a connection from the pool; it goes back when dropped.
    pub async fn acquire(&self) -> Result<Conn, DbError> {
        let inner = match &*self.pool {
            Pool::Postgres(pool) => ConnInner::Postgres(pg::acquire(pool).await?),
            Pool::MySql(pool) => ConnInner::MySql(
                tokio::time::timeout(ACQUIRE_TIMEOUT, pool.get())
                    .await
                    .map_err(|_| DbError::Timeout)??,
            ),
            Pool::Sqlite(pool) => ConnInner::Sqlite(
                tokio::time::timeout(ACQUIRE_TIMEOUT, pool.acquire())
                    .await
                    .map_err(|_| DbError::Timeout)??,
            ),
        };
        Ok(Conn {
            inner: Some(inner),
            dialect: self.dialect(),
            in_transaction: false,
            begin_pending: false,
        })
    }

    pub async fn query(&self, stmt: &Stmt) -> Result<Vec<Row>, DbError> {
        self.acquire().await?.query(stmt).await
    }

    pub async fn query_opt(&self, stmt: &Stmt) -> Result<Option<Row>, DbError> {
        Ok(self.query(stmt).await?.into_iter().next())
    }

    /// [`Self::query`] for a read whose work is bounded by its keys (a read by key of the
    /// rows' own columns, see [`crate::planner::read::ReadPlan::small`]): on PostgreSQL it
    /// shares a connection with other such reads (see `pg::Pipelines`).
    pub async fn query_small(&self, stmt: &Stmt) -> Result<Vec<Row>, DbError> {
        match &*self.pool {
            Pool::Postgres(pool) => self.shared.query(pool, stmt).await,
            _ => self.query(stmt).await,
        }
    }

    /// Runs a write that is one statement committing by itself (outside any transaction);
    /// on PostgreSQL, writes arriving while others run share a transaction and its commit
    /// (see `pg_groups`), each answered as if it had run alone.
    pub async fn query_grouped(&self, stmt: Stmt) -> Result<Vec<Row>, DbError> {
        match &*self.pool {
            Pool::Postgres(pool) => self.groups.query(pool, stmt).await,
            _ => self.query(&stmt).await,
        }
    }

    /// The JSON array of the texts in `column` (each row's a JSON value), in row order.
    pub async fn json_array(&self, stmt: &Stmt, column: &str) -> Result<String, DbError> {
        self.acquire().await?.json_array(stmt, column).await
    }

    pub async fn execute(&self, stmt: &Stmt) -> Result<ExecResult, DbError> {
        self.acquire().await?.execute(stmt).await
    }

    /// Runs `work` inside one transaction: committed when it returns `Ok`, rolled back when
    /// it returns `Err` (or is dropped half-way).
    pub async fn transaction<T, E, F>(&self, work: F) -> Result<T, E>
    where
        E: From<DbError>,
        F: for<'c> FnOnce(&'c mut Conn) -> Pin<Box<dyn Future<Output = Result<T, E>> + Send + 'c>>,
    {
        let mut conn = self.acquire().await?;
        conn.begin().await?;
        match work(&mut conn).await {
            Ok(value) => {
                conn.commit().await?;
                Ok(value)
            }
            Err(error) => {
                if let Err(rollback) = conn.rollback().await {
                    tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
                }
                Err(error)
            }
        }
    }

    /// One round trip to the database.
    pub async fn ping(&self) -> Result<(), DbError> {
        let mut conn = self.acquire().await?;
        conn.query(&Stmt::new("SELECT 1")).await.map(drop)
    }

    pub fn pool_status(&self) -> PoolStatus {
        match &*self.pool {
            Pool::Postgres(pool) => {
                let s = pool.status();
                PoolStatus {
                    max: s.max_size,
                    open: s.size,
                    idle: s.available,
                }
            }
            Pool::MySql(pool) => pool.status(),
            Pool::Sqlite(pool) => pool.status(),
        }
    }

    /// Closes every pooled connection; used at shutdown.
    pub async fn close(&self) {
        match &*self.pool {
            Pool::Postgres(pool) => pool.close(),
            Pool::MySql(pool) => pool.close().await,
            Pool::Sqlite(pool) => pool.close(),
        }
    }
}

/// Appends one JSON value to the array text `out` (opened with `[`).
fn push_item(out: &mut String, item: &str) {
    if out.len() > 1 {
        out.push(',');
    }
    out.push_str(item);
}

/// One connection taken from the pool.
pub struct Conn {
    inner: Option<ConnInner>,
    dialect: Dialect,
    in_transaction: bool,
    /// PostgreSQL: `BEGIN` not sent yet; it goes out with the transaction's first
    /// statement, in the same round trip.
    begin_pending: bool,
}

enum ConnInner {
    Postgres(deadpool_postgres::Object),
    MySql(mysql_async::Conn),
    Sqlite(sqlite::SqliteConn),
}

impl Conn {
    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    fn inner(&mut self) -> Result<&mut ConnInner, DbError> {
        self.inner
            .as_mut()
            .ok_or_else(|| DbError::Connect("the connection was closed".into()))
    }

    pub async fn query(&mut self, stmt: &Stmt) -> Result<Vec<Row>, DbError> {
        let begin = std::mem::take(&mut self.begin_pending);
        match self.inner()? {
            ConnInner::Postgres(c) => pg::query(c, stmt, begin).await,
            ConnInner::MySql(c) => mysql::query(c, stmt).await,
            ConnInner::Sqlite(c) => c.query(stmt.clone()).await,
        }
    }

    pub async fn query_opt(&mut self, stmt: &Stmt) -> Result<Option<Row>, DbError> {
        Ok(self.query(stmt).await?.into_iter().next())
    }

    /// See [`Database::json_array`].
    pub async fn json_array(&mut self, stmt: &Stmt, column: &str) -> Result<String, DbError> {
        let begin = std::mem::take(&mut self.begin_pending);
        if let ConnInner::Postgres(c) = self.inner()? {
            return pg::json_array(c, stmt, column, begin).await;
        }
        self.begin_pending = begin;
        let rows = self.query(stmt).await?;
        let mut out = String::from("[");
        for row in rows {
            push_item(&mut out, &row.into_string(column)?);
        }
        out.push(']');
        Ok(out)
    }

    pub async fn execute(&mut self, stmt: &Stmt) -> Result<ExecResult, DbError> {
        let begin = std::mem::take(&mut self.begin_pending);
        match self.inner()? {
            ConnInner::Postgres(c) => pg::execute(c, stmt, begin).await,
            ConnInner::MySql(c) => mysql::execute(c, stmt).await,
            ConnInner::Sqlite(c) => c.execute(stmt.clone()).await,
        }
    }

    /// Runs SQL text of rectus's own (DDL of migrations) without parameters. Never pass
    /// anything a user wrote.
    pub async fn batch(&mut self, sql: &str) -> Result<(), DbError> {
        if std::mem::take(&mut self.begin_pending) {
            self.send_batch("BEGIN").await?;
        }
        self.send_batch(sql).await
    }

    async fn send_batch(&mut self, sql: &str) -> Result<(), DbError> {
        match self.inner()? {
            ConnInner::Postgres(c) => pg::batch(c, sql).await,
            ConnInner::MySql(c) => mysql::batch(c, sql).await,
            ConnInner::Sqlite(c) => c.batch(sql.to_string()).await,
        }
    }

    pub async fn begin(&mut self) -> Result<(), DbError> {
        if self.dialect == Dialect::Postgres {
            self.begin_pending = true;
        } else {
            let sql = self.dialect.begin_sql();
            self.send_batch(sql).await?;
        }
        self.in_transaction = true;
        Ok(())
    }

    pub async fn commit(&mut self) -> Result<(), DbError> {
        // A transaction that ran nothing has nothing to commit.
        if !std::mem::take(&mut self.begin_pending) {
            self.send_batch("COMMIT").await?;
        }
        self.in_transaction = false;
        Ok(())
    }

    pub async fn rollback(&mut self) -> Result<(), DbError> {
        if !std::mem::take(&mut self.begin_pending) {
            self.send_batch("ROLLBACK").await?;
        }
        self.in_transaction = false;
        Ok(())
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if !self.in_transaction {
            return;
        }
        // Dropped inside a transaction (an error path or a cancelled request): the
        // connection must not go back to the pool with the transaction open.
        match self.inner.take() {
            Some(ConnInner::Postgres(object)) => {
                drop(deadpool_postgres::Object::take(object));
            }
            // mysql_async rolls back open transactions before pooling a connection, and a
            // SQLite connection outside autocommit is discarded by `SqliteConn` itself.
            Some(other) => drop(other),
            None => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use sea_query::{Alias, Expr, ExprTrait, Query};

    use super::*;

    #[test]
    fn page_counts_are_literals_and_values_are_bound() {
        let mut select = Query::select();
        select
            .column(Alias::new("id"))
            .from(Alias::new("orders"))
            .and_where(Expr::col(Alias::new("status")).eq("Paid"))
            .limit(100)
            .offset(20);
        let stmt = Dialect::Postgres.build(&select).unwrap();
        assert_eq!(
            stmt.sql,
            r#"SELECT "id" FROM "orders" WHERE "status" = $1 LIMIT 100 OFFSET 20"#
        );
        assert_eq!(stmt.values, vec![DbValue::Text("Paid".into())]);
        let stmt = Dialect::MySql.build(&select).unwrap();
        assert_eq!(
            stmt.sql,
            "SELECT `id` FROM `orders` WHERE `status` = ? LIMIT 100 OFFSET 20"
        );
        assert_eq!(stmt.values.len(), 1);
    }
}
