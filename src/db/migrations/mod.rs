//! Versioned migrations of the `directus_*` system tables, recorded in `directus_migrations`
//! as Directus records its own. The first migration is the whole Directus 11 schema; a
//! database that Directus 11 already set up has it and is used as is.

mod directus_versions;
pub mod system_tables;

use sea_query::{Expr, ForeignKey, Index, Query, Table};

use super::ddl::{self, ColumnKind};
use super::{Conn, Database, DbError, Dialect, DialectExt, Stmt};
pub use directus_versions::DIRECTUS_MIGRATIONS;
pub use system_tables::{SYSTEM_TABLES, SystemDefault, SystemTable, system_table};

/// The Directus migration that introduced the Directus 11 access model (policies). A
/// database that has it speaks the model rectus serves.
pub const DIRECTUS_11_MARKER: &str = "20240806A";

#[derive(Debug, thiserror::Error)]
pub enum MigrationError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(
        "this database was set up by a Directus older than 11 (last migration {0}): upgrade it with Directus 11 first"
    )]
    PreDirectus11(String),
    #[error(
        "the database has system tables ({0}) but no record of the migrations that made them; rectus will not touch them"
    )]
    Unrecorded(String),
}

/// What `migrate` found and did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MigrationOutcome {
    /// The system tables were created on an empty (of `directus_*` tables) database.
    Created,
    /// The system tables were already there (set up by rectus or Directus 11).
    UpToDate,
}

/// Which state the system tables are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    /// No `directus_*` table exists.
    Empty,
    /// The Directus 11 baseline is recorded.
    Current,
}

/// Reads the state of the system tables, refusing states rectus cannot serve.
pub async fn status(conn: &mut Conn) -> Result<Status, MigrationError> {
    let existing = existing_system_tables(conn).await?;
    if !existing.iter().any(|t| t == "directus_migrations") {
        return if existing.is_empty() {
            Ok(Status::Empty)
        } else {
            Err(MigrationError::Unrecorded(existing.join(", ")))
        };
    }
    let select = Query::select()
        .column("version")
        .from("directus_migrations")
        .to_owned();
    let mut versions: Vec<String> = conn
        .query(&conn.dialect().build(&select)?)
        .await?
        .iter()
        .map(|r| r.get("version"))
        .collect::<Result<_, _>>()?;
    versions.sort();
    if versions.iter().any(|v| v == DIRECTUS_11_MARKER) {
        Ok(Status::Current)
    } else if let Some(last) = versions.last() {
        Err(MigrationError::PreDirectus11(last.clone()))
    } else {
        Err(MigrationError::Unrecorded(existing.join(", ")))
    }
}

/// Brings the system tables up to date. Creating them is all-or-nothing on PostgreSQL and
/// SQLite; MySQL commits DDL statement by statement, so a failure there is reported as
/// unrecorded tables on the next start rather than silently repaired.
pub async fn migrate(db: &Database) -> Result<MigrationOutcome, MigrationError> {
    let mut conn = db.acquire().await?;
    match status(&mut conn).await? {
        Status::Current => Ok(MigrationOutcome::UpToDate),
        Status::Empty => {
            drop(conn);
            db.transaction(|conn| {
                Box::pin(async move {
                    create_system_tables(conn).await?;
                    record_directus_migrations(conn).await?;
                    Ok::<_, MigrationError>(())
                })
            })
            .await?;
            Ok(MigrationOutcome::Created)
        }
    }
}

async fn existing_system_tables(conn: &mut Conn) -> Result<Vec<String>, DbError> {
    let stmt = match conn.dialect() {
        Dialect::Postgres => Stmt::new(
            "SELECT c.relname AS name FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') \
             AND c.relname LIKE 'directus\\_%' ORDER BY 1",
        ),
        Dialect::MySql => Stmt::new(
            "SELECT TABLE_NAME AS name FROM information_schema.TABLES \
             WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME LIKE 'directus\\_%' ORDER BY 1",
        ),
        Dialect::Sqlite => Stmt::new(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') \
             AND name LIKE 'directus\\_%' ESCAPE '\\' ORDER BY 1",
        ),
    };
    conn.query(&stmt)
        .await?
        .iter()
        .map(|r| r.get("name"))
        .collect()
}

/// The DDL that creates the system tables on `dialect`, in dependency order.
pub fn system_table_ddl(dialect: Dialect) -> Vec<String> {
    let mut statements = Vec::new();
    for table in SYSTEM_TABLES {
        let mut create = Table::create();
        create.table(table.name);
        for column in table.columns {
            let mut def = sea_query::ColumnDef::new(column.name);
            ddl::set_type(&mut def, dialect, column.kind);
            if column.nullable {
                def.null();
            } else {
                def.not_null();
            }
            match column.default {
                None => {}
                Some(SystemDefault::Str(s)) => {
                    def.default(s);
                }
                Some(SystemDefault::Int(i)) => {
                    def.default(i);
                }
                Some(SystemDefault::Bool(b)) => {
                    def.default(b);
                }
                Some(SystemDefault::Null) => {
                    def.default(sea_query::Value::String(None));
                }
                Some(SystemDefault::Now) => {
                    def.default(Expr::current_timestamp());
                }
            }
            create.col(def);
            if let Some(reference) = &column.references {
                let mut fk = ForeignKey::create();
                fk.name(format!("{}_{}_foreign", table.name, column.name))
                    .from(table.name, column.name)
                    .to(reference.table, reference.column);
                if let Some(action) = foreign_key_action(reference.on_delete) {
                    fk.on_delete(action);
                }
                create.foreign_key(&mut fk);
            }
        }
        let serial_pk = table
            .column(table.primary_key)
            .is_some_and(|c| c.kind == ColumnKind::Serial);
        if !serial_pk {
            create.primary_key(Index::create().col(table.primary_key));
        }
        for columns in table.uniques {
            let mut unique = Index::create();
            unique
                .name(format!("{}_{}_unique", table.name, columns.join("_")))
                .unique();
            for c in *columns {
                unique.col(*c);
            }
            create.index(&mut unique);
        }
        statements.push(dialect.build_schema(&create));
        for column in table.indexes {
            let index = Index::create()
                .name(format!("{}_{}_index", table.name, column))
                .table(table.name)
                .col(*column)
                .to_owned();
            statements.push(dialect.build_schema(&index));
        }
    }
    statements
}

fn foreign_key_action(
    action: rectus_policies::ReferentialAction,
) -> Option<sea_query::ForeignKeyAction> {
    use rectus_policies::ReferentialAction as R;
    use sea_query::ForeignKeyAction as F;
    match action {
        R::NoAction => None,
        R::Restrict => Some(F::Restrict),
        R::Cascade => Some(F::Cascade),
        R::SetNull => Some(F::SetNull),
        R::SetDefault => Some(F::SetDefault),
    }
}

async fn create_system_tables(conn: &mut Conn) -> Result<(), DbError> {
    for statement in system_table_ddl(conn.dialect()) {
        conn.batch(&statement).await?;
    }
    Ok(())
}

async fn record_directus_migrations(conn: &mut Conn) -> Result<(), DbError> {
    let mut insert = Query::insert();
    insert
        .into_table("directus_migrations")
        .columns(["version", "name"]);
    for (version, name) in DIRECTUS_MIGRATIONS {
        insert.values_panic([(*version).into(), (*name).into()]);
    }
    let stmt = conn.dialect().build(&insert)?;
    conn.execute(&stmt).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spec_has_every_directus_11_table_and_column() {
        assert_eq!(SYSTEM_TABLES.len(), 29);
        let columns: usize = SYSTEM_TABLES.iter().map(|t| t.columns.len()).sum();
        assert_eq!(columns, 354);
        let fks = SYSTEM_TABLES
            .iter()
            .flat_map(|t| t.columns.iter())
            .filter(|c| c.references.is_some())
            .count();
        assert_eq!(fks, 47);
        assert!(
            DIRECTUS_MIGRATIONS
                .iter()
                .any(|(v, _)| *v == DIRECTUS_11_MARKER)
        );
    }

    #[test]
    fn tables_come_after_the_tables_they_reference() {
        for (i, table) in SYSTEM_TABLES.iter().enumerate() {
            for reference in table.columns.iter().filter_map(|c| c.references.as_ref()) {
                let target = SYSTEM_TABLES
                    .iter()
                    .position(|t| t.name == reference.table)
                    .expect("referenced table is in the spec");
                assert!(
                    target <= i,
                    "{} references {} defined later",
                    table.name,
                    reference.table
                );
            }
            assert!(table.column(table.primary_key).is_some(), "{}", table.name);
        }
    }

    #[test]
    fn ddl_uses_each_dialects_types() {
        let pg = system_table_ddl(Dialect::Postgres).join("\n");
        assert!(pg.contains(r#""id" uuid NOT NULL"#), "{pg}");
        assert!(pg.contains(r#""id" serial NOT NULL PRIMARY KEY"#), "{pg}");
        assert!(pg.contains("timestamp with time zone NULL DEFAULT CURRENT_TIMESTAMP"));
        assert!(pg.contains(r#"CONSTRAINT "directus_users_email_unique" UNIQUE ("email")"#));
        let my = system_table_ddl(Dialect::MySql).join("\n");
        assert!(my.contains("`id` char(36) NOT NULL"), "{my}");
        let lite = system_table_ddl(Dialect::Sqlite).join("\n");
        assert!(
            lite.contains(r#""timestamp" timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP"#),
            "{lite}"
        );
    }
}
