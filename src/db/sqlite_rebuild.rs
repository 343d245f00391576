//! SQLite cannot add or drop a foreign key, or change a column's type, in place. This runs
//! SQLite's documented twelve-step procedure: the table's own `CREATE TABLE` text is parsed
//! (sqlparser), changed, and the table rebuilt under it with its rows, indexes and triggers,
//! in one transaction — so everything the original declared (checks, collations, other
//! constraints) survives.

use rectus_policies::ReferentialAction;
use sqlparser::ast::{ColumnOption, Statement, TableConstraint};
use sqlparser::dialect::SQLiteDialect;
use sqlparser::parser::Parser;

use super::{Conn, DbError, Dialect, Stmt};

/// One change to a table's definition.
#[derive(Debug, Clone)]
pub enum TableChange {
    AddForeignKey {
        column: String,
        foreign_table: String,
        foreign_column: String,
        on_delete: ReferentialAction,
        on_update: ReferentialAction,
    },
    DropForeignKey {
        column: String,
    },
    /// `definition` is the whole new column definition (`"name" type ...`).
    ReplaceColumn {
        column: String,
        definition: String,
    },
    DropColumn {
        column: String,
    },
}

pub fn quote(ident: &str) -> String {
    format!("\"{}\"", ident.replace('"', "\"\""))
}

fn failed(message: impl Into<String>) -> DbError {
    DbError::query(message, None)
}

/// The new `CREATE TABLE` text for `table` after `changes`, named `new_name`.
pub fn rewrite(
    create_sql: &str,
    new_name: &str,
    changes: &[TableChange],
) -> Result<String, DbError> {
    let mut statements = Parser::parse_sql(&SQLiteDialect {}, create_sql)
        .map_err(|e| failed(format!("cannot read the table definition: {e}")))?;
    let Some(Statement::CreateTable(create)) = statements.pop() else {
        return Err(failed("the table definition is not a CREATE TABLE"));
    };
    let mut columns: Vec<String> = Vec::new();
    for column in &create.columns {
        let name = column.name.value.clone();
        if changes
            .iter()
            .any(|c| matches!(c, TableChange::DropColumn { column } if *column == name))
        {
            continue;
        }
        if let Some(definition) = changes.iter().find_map(|c| match c {
            TableChange::ReplaceColumn { column, definition } if *column == name => {
                Some(definition)
            }
            _ => None,
        }) {
            // The replaced column keeps its inline references unless they are dropped too.
            let keep: Vec<String> = column
                .options
                .iter()
                .filter(|o| matches!(o.option, ColumnOption::ForeignKey(_)))
                .filter(|_| !drops_fk(changes, &name))
                .map(|o| o.to_string())
                .collect();
            columns.push(
                std::iter::once(definition.clone())
                    .chain(keep)
                    .collect::<Vec<_>>()
                    .join(" "),
            );
            continue;
        }
        let mut column = column.clone();
        if drops_fk(changes, &name) {
            column
                .options
                .retain(|o| !matches!(o.option, ColumnOption::ForeignKey(_)));
        }
        columns.push(column.to_string());
    }
    let mut constraints: Vec<String> = Vec::new();
    for constraint in &create.constraints {
        let text = constraint.to_string();
        // A constraint on a dropped column goes with it.
        let on_dropped = changes.iter().any(|ch| match ch {
            TableChange::DropColumn { column } => mentions(&text, column),
            _ => false,
        });
        match constraint {
            _ if on_dropped => {}
            TableConstraint::ForeignKey(fk)
                if fk.columns.len() == 1 && drops_fk(changes, &fk.columns[0].value) => {}
            _ => constraints.push(text),
        }
    }
    for change in changes {
        if let TableChange::AddForeignKey {
            column,
            foreign_table,
            foreign_column,
            on_delete,
            on_update,
        } = change
        {
            constraints.push(format!(
                "FOREIGN KEY ({}) REFERENCES {} ({}) ON DELETE {} ON UPDATE {}",
                quote(column),
                quote(foreign_table),
                quote(foreign_column),
                on_delete.as_sql(),
                on_update.as_sql()
            ));
        }
    }
    let mut body = columns;
    body.extend(constraints);
    let options = create.table_options.to_string();
    let mut sql = format!("CREATE TABLE {} ({})", quote(new_name), body.join(", "));
    if !options.trim().is_empty() {
        sql.push(' ');
        sql.push_str(options.trim());
    }
    if create.without_rowid {
        sql.push_str(" WITHOUT ROWID");
    }
    if create.strict {
        sql.push_str(" STRICT");
    }
    Ok(sql)
}

/// Whether SQL text names the identifier `column` (bare or quoted), as a whole word.
pub fn mentions(sql: &str, column: &str) -> bool {
    sql.split(|c: char| !(c.is_alphanumeric() || c == '_'))
        .any(|word| word.eq_ignore_ascii_case(column))
}

fn drops_fk(changes: &[TableChange], name: &str) -> bool {
    changes.iter().any(|c| match c {
        TableChange::DropForeignKey { column } | TableChange::AddForeignKey { column, .. } => {
            column == name
        }
        _ => false,
    })
}

/// Rebuilds `table` with `changes` on a SQLite connection that is not inside a transaction.
pub async fn rebuild(conn: &mut Conn, table: &str, changes: &[TableChange]) -> Result<(), DbError> {
    if conn.dialect() != Dialect::Sqlite {
        return Err(failed("a table rebuild is for SQLite only"));
    }
    let rows = conn
        .query(
            &Stmt::new(
                "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ?1 AND sql IS NOT NULL",
            )
            .bind(table),
        )
        .await?;
    let mut create_sql = None;
    let mut extras = Vec::new();
    for row in &rows {
        let kind: String = row.get("type")?;
        let sql: String = row.get("sql")?;
        if kind == "table" {
            create_sql = Some(sql);
        } else {
            extras.push(sql);
        }
    }
    let create_sql = create_sql.ok_or_else(|| failed(format!("no table {table}")))?;
    let temporary = format!("__rectus_rebuild_{table}");
    let new_sql = rewrite(&create_sql, &temporary, changes)?;
    let kept: Vec<String> = conn
        .query(&Stmt::new("SELECT name FROM pragma_table_info(?1) ORDER BY cid").bind(table))
        .await?
        .iter()
        .map(|r| r.get::<String>("name"))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|c| {
            !changes
                .iter()
                .any(|ch| matches!(ch, TableChange::DropColumn { column } if column == c))
        })
        .collect();
    let column_list = kept.iter().map(|c| quote(c)).collect::<Vec<_>>().join(", ");

    conn.batch("PRAGMA foreign_keys = OFF").await?;
    let result = async {
        conn.begin().await?;
        conn.batch(&new_sql).await?;
        conn.batch(&format!(
            "INSERT INTO {} ({column_list}) SELECT {column_list} FROM {}",
            quote(&temporary),
            quote(table)
        ))
        .await?;
        conn.batch(&format!("DROP TABLE {}", quote(table))).await?;
        conn.batch(&format!(
            "ALTER TABLE {} RENAME TO {}",
            quote(&temporary),
            quote(table)
        ))
        .await?;
        for sql in &extras {
            let mentions_dropped = changes.iter().any(|c| match c {
                TableChange::DropColumn { column } => mentions(sql, column),
                _ => false,
            });
            if !mentions_dropped {
                conn.batch(sql).await?;
            }
        }
        let violations = conn
            .query(&Stmt::new("SELECT COUNT(*) AS n FROM pragma_foreign_key_check(?1)").bind(table))
            .await?;
        let n: i64 = violations
            .first()
            .map(|r| r.get("n"))
            .transpose()?
            .unwrap_or(0);
        if n > 0 {
            return Err(failed(format!(
                "{n} rows of {table} refer to items that do not exist"
            )));
        }
        conn.commit().await
    }
    .await;
    if result.is_err() {
        let _ = conn.rollback().await;
    }
    conn.batch("PRAGMA foreign_keys = ON").await?;
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn foreign_keys_are_added_and_dropped_keeping_the_rest() {
        let original = "CREATE TABLE \"orders\" (\"id\" integer PRIMARY KEY AUTOINCREMENT, \"customer\" integer, \"total\" decimal(10,2) NOT NULL CHECK (total >= 0), UNIQUE (\"id\", \"total\"))";
        let added = rewrite(
            original,
            "new",
            &[TableChange::AddForeignKey {
                column: "customer".into(),
                foreign_table: "customers".into(),
                foreign_column: "id".into(),
                on_delete: ReferentialAction::SetNull,
                on_update: ReferentialAction::NoAction,
            }],
        )
        .unwrap();
        assert!(added.starts_with("CREATE TABLE \"new\" ("), "{added}");
        assert!(added.contains("CHECK (total >= 0)"), "{added}");
        assert!(added.contains("UNIQUE (\"id\", \"total\")"), "{added}");
        assert!(
            added.contains("FOREIGN KEY (\"customer\") REFERENCES \"customers\" (\"id\") ON DELETE SET NULL ON UPDATE NO ACTION"),
            "{added}"
        );
        let dropped = rewrite(
            &added.replace("\"new\"", "\"orders\""),
            "again",
            &[TableChange::DropForeignKey {
                column: "customer".into(),
            }],
        )
        .unwrap();
        assert!(!dropped.contains("FOREIGN KEY"), "{dropped}");
        let column = rewrite(
            original,
            "t",
            &[
                TableChange::ReplaceColumn {
                    column: "customer".into(),
                    definition: "\"customer\" bigint NOT NULL".into(),
                },
                TableChange::DropColumn {
                    column: "total".into(),
                },
            ],
        )
        .unwrap();
        assert!(column.contains("\"customer\" bigint NOT NULL"), "{column}");
        assert!(!column.contains("total"), "{column}");
    }
}
