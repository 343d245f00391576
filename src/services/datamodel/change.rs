//! One data-model change as a unit: DDL, then the metadata rows and the activity row.
//! PostgreSQL and SQLite run it all in one transaction. MySQL commits each DDL statement by
//! itself, and a SQLite table rebuild runs its own transaction; for those the change keeps
//! the DDL that undoes each step and runs it, newest first, when a later step fails.

use rectus_policies::SchemaOverview;
use sea_query::{Condition, Query as Sql};
use serde_json::{Map, Value as Json};

use crate::db::sqlite_rebuild::{self, TableChange};
use crate::db::{Conn, Database, DbError, Dialect, DialectExt};
use crate::error::ApiError;
use crate::planner::write;

/// How to undo a DDL step that a rollback cannot undo.
#[derive(Debug, Clone)]
pub enum Undo {
    Sql(String),
    Rebuild {
        table: String,
        changes: Vec<TableChange>,
    },
}

pub struct Change<'a> {
    pub conn: Conn,
    pub dialect: Dialect,
    schema: &'a SchemaOverview,
    undo: Vec<Undo>,
    in_transaction: bool,
}

impl<'a> Change<'a> {
    pub async fn start(db: &Database, schema: &'a SchemaOverview) -> Result<Change<'a>, ApiError> {
        let mut conn = db.acquire().await?;
        let dialect = conn.dialect();
        // PostgreSQL and SQLite roll DDL back with everything else.
        let in_transaction = dialect == Dialect::Postgres;
        if in_transaction {
            conn.begin().await?;
        }
        Ok(Change {
            conn,
            dialect,
            schema,
            undo: Vec::new(),
            in_transaction,
        })
    }

    /// Runs DDL; `undo` reverses it where a rollback would not.
    pub async fn ddl(&mut self, sql: &str, undo: Option<Undo>) -> Result<(), ApiError> {
        if self.dialect == Dialect::Sqlite && !self.in_transaction {
            self.conn.begin().await?;
            self.in_transaction = true;
        }
        self.conn.batch(sql).await?;
        if self.dialect == Dialect::MySql
            && let Some(undo) = undo
        {
            self.undo.push(undo);
        }
        Ok(())
    }

    /// Rebuilds a SQLite table (its own transaction); `undo` restores it on failure.
    pub async fn rebuild(
        &mut self,
        table: &str,
        changes: Vec<TableChange>,
        undo: Vec<TableChange>,
    ) -> Result<(), ApiError> {
        if self.in_transaction {
            return Err(ApiError::internal(
                &"a SQLite rebuild must come before other steps",
            ));
        }
        sqlite_rebuild::rebuild(&mut self.conn, table, &changes).await?;
        self.undo.push(Undo::Rebuild {
            table: table.to_string(),
            changes: undo,
        });
        Ok(())
    }

    async fn ensure_transaction(&mut self) -> Result<(), DbError> {
        if !self.in_transaction {
            self.conn.begin().await?;
            self.in_transaction = true;
        }
        Ok(())
    }

    /// Inserts a metadata row, its values typed by the system collection's fields.
    pub async fn insert(&mut self, table: &str, values: Map<String, Json>) -> Result<(), ApiError> {
        self.ensure_transaction().await?;
        let collection = self
            .schema
            .collection(table)
            .ok_or_else(ApiError::forbidden)?;
        let values = write::row_values(collection, &values)?;
        let stmt = write::insert(self.dialect, collection, values, false)?;
        self.conn.execute(&stmt).await?;
        Ok(())
    }

    pub async fn update(
        &mut self,
        table: &str,
        values: Map<String, Json>,
        condition: Condition,
    ) -> Result<u64, ApiError> {
        self.ensure_transaction().await?;
        let collection = self
            .schema
            .collection(table)
            .ok_or_else(ApiError::forbidden)?;
        if values.is_empty() {
            return Ok(0);
        }
        let mut update = Sql::update();
        update.table(table.to_string()).cond_where(condition);
        for (column, value) in write::row_values(collection, &values)? {
            update.value(column, sea_query::Expr::val(write::sea_value(value)));
        }
        Ok(self
            .conn
            .execute(&self.dialect.build(&update)?)
            .await?
            .rows_affected)
    }

    pub async fn delete(&mut self, table: &str, condition: Condition) -> Result<(), ApiError> {
        self.ensure_transaction().await?;
        let delete = Sql::delete()
            .from_table(table.to_string())
            .cond_where(condition)
            .to_owned();
        self.conn.execute(&self.dialect.build(&delete)?).await?;
        Ok(())
    }

    pub async fn commit(mut self) -> Result<(), ApiError> {
        if self.in_transaction {
            self.conn.commit().await?;
        }
        Ok(())
    }

    /// Commits after a successful `outcome`; otherwise undoes what can be undone.
    pub async fn finish(self, outcome: Result<(), ApiError>) -> Result<(), ApiError> {
        match outcome {
            Ok(()) => self.commit().await,
            Err(e) => Err(self.fail(e).await),
        }
    }

    /// Undoes what can be undone after `error`, and returns it.
    pub async fn fail(mut self, error: ApiError) -> ApiError {
        if self.in_transaction
            && let Err(e) = self.conn.rollback().await
        {
            tracing::error!(error = %e, "rollback of a data-model change failed");
        }
        while let Some(undo) = self.undo.pop() {
            let outcome = match &undo {
                Undo::Sql(sql) => self.conn.batch(sql).await,
                Undo::Rebuild { table, changes } => {
                    sqlite_rebuild::rebuild(&mut self.conn, table, changes).await
                }
            };
            if let Err(e) = outcome {
                tracing::error!(error = %e, ?undo, "undoing a data-model step failed; the schema needs attention");
            }
        }
        error
    }
}
