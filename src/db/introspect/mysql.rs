//! MySQL/MariaDB catalog reader: `information_schema` of the connection's database.

use std::collections::{BTreeMap, HashSet};

use rectus_policies::ReferentialAction;

use super::{RawColumn, RawForeignKey, RawIndex, RawSchema, read_tables, referential_action};
use crate::db::{Conn, DbError, Stmt};

const TABLES: &str = "
SELECT TABLE_NAME AS name, TABLE_TYPE = 'VIEW' AS is_view
FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() ORDER BY TABLE_NAME";

const COLUMNS: &str = "
SELECT TABLE_NAME AS table_name, COLUMN_NAME AS column_name, DATA_TYPE AS data_type,
  COLUMN_TYPE AS column_type, IS_NULLABLE = 'YES' AS nullable, COLUMN_DEFAULT AS default_value,
  CHARACTER_MAXIMUM_LENGTH AS max_length, NUMERIC_PRECISION AS numeric_precision,
  NUMERIC_SCALE AS numeric_scale, EXTRA AS extra
FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE()
ORDER BY TABLE_NAME, ORDINAL_POSITION";

const INDEXES: &str = "
SELECT TABLE_NAME AS table_name, INDEX_NAME AS index_name, COLUMN_NAME AS column_name,
  SUB_PART IS NOT NULL AS prefix
FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() AND NON_UNIQUE = 0
ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX";

const FOREIGN_KEYS: &str = "
SELECT k.CONSTRAINT_NAME AS constraint_name, k.TABLE_NAME AS table_name, k.COLUMN_NAME AS column_name,
  k.REFERENCED_TABLE_NAME AS foreign_table, r.UPDATE_RULE AS on_update, r.DELETE_RULE AS on_delete,
  (SELECT COUNT(*) FROM information_schema.KEY_COLUMN_USAGE k2
   WHERE k2.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND k2.TABLE_NAME = k.TABLE_NAME
     AND k2.CONSTRAINT_NAME = k.CONSTRAINT_NAME) AS column_count
FROM information_schema.KEY_COLUMN_USAGE k
JOIN information_schema.REFERENTIAL_CONSTRAINTS r
  ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME
 AND r.TABLE_NAME = k.TABLE_NAME
WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_NAME IS NOT NULL
  AND k.REFERENCED_TABLE_SCHEMA = DATABASE()
ORDER BY k.TABLE_NAME, k.COLUMN_NAME";

/// MariaDB keeps JSON columns as LONGTEXT with a `json_valid(col)` check named after the
/// column. MySQL has no such checks here; its JSON columns say `json` themselves.
const JSON_CHECKS: &str = "
SELECT TABLE_NAME AS table_name, CONSTRAINT_NAME AS constraint_name, CHECK_CLAUSE AS check_clause
FROM information_schema.CHECK_CONSTRAINTS WHERE CONSTRAINT_SCHEMA = DATABASE()
  AND CHECK_CLAUSE LIKE 'json_valid(%'";

pub async fn read(conn: &mut Conn) -> Result<RawSchema, DbError> {
    let tables = read_tables(conn, TABLES).await?;

    let json_columns: HashSet<(String, String)> = match conn.query(&Stmt::new(JSON_CHECKS)).await {
        Ok(rows) => rows
            .iter()
            .filter_map(|r| {
                let table: String = r.get("table_name").ok()?;
                let clause: String = r.get("check_clause").ok()?;
                let column = clause
                    .strip_prefix("json_valid(`")?
                    .strip_suffix("`)")?
                    .to_string();
                Some((table, column))
            })
            .collect(),
        // MySQL before 8.0.16 has no CHECK_CONSTRAINTS view.
        Err(_) => HashSet::new(),
    };

    let columns = conn
        .query(&Stmt::new(COLUMNS))
        .await?
        .iter()
        .map(|r| {
            let table: String = r.get("table_name")?;
            let name: String = r.get("column_name")?;
            let extra: String = r.get::<Option<String>>("extra")?.unwrap_or_default();
            let column_type: String = r.get("column_type")?;
            let mut base_type: String = r.get("data_type")?;
            if column_type.ends_with(" unsigned") {
                base_type.push_str(" unsigned");
            }
            Ok(RawColumn {
                json_check: json_columns.contains(&(table.clone(), name.clone())),
                table,
                name,
                base_type,
                full_type: column_type,
                nullable: r.get("nullable")?,
                default: normalise_default(r.get("default_value")?, &extra),
                max_length: r
                    .get::<Option<i64>>("max_length")?
                    .and_then(|n| u32::try_from(n).ok()),
                precision: r.get("numeric_precision")?,
                scale: r.get("numeric_scale")?,
                auto_increment: extra.to_ascii_lowercase().contains("auto_increment"),
            })
        })
        .collect::<Result<_, DbError>>()?;

    let mut grouped: BTreeMap<(String, String), (Vec<String>, bool)> = BTreeMap::new();
    for r in conn.query(&Stmt::new(INDEXES)).await? {
        let key = (
            r.get::<String>("table_name")?,
            r.get::<String>("index_name")?,
        );
        let entry = grouped.entry(key).or_default();
        entry.0.push(r.get("column_name")?);
        // A unique index on a prefix of a column does not make the column unique.
        entry.1 |= r.get::<bool>("prefix")?;
    }
    let indexes = grouped
        .into_iter()
        .filter(|(_, (_, prefix))| !prefix)
        .map(|((table, index), (columns, _))| RawIndex {
            primary: index == "PRIMARY",
            table,
            columns,
        })
        .collect();

    let foreign_keys = conn
        .query(&Stmt::new(FOREIGN_KEYS))
        .await?
        .iter()
        .filter(|r| r.get::<i64>("column_count").is_ok_and(|n| n == 1))
        .map(|r| RawForeignKey::from_row(r, innodb_action))
        .collect::<Result<_, DbError>>()?;

    Ok(RawSchema {
        tables,
        columns,
        indexes,
        foreign_keys,
    })
}

/// InnoDB checks constraints immediately, so RESTRICT (MariaDB's name for the default) and
/// NO ACTION are the same rule; it reads as NO ACTION, as on the other databases.
fn innodb_action(text: &str) -> ReferentialAction {
    match referential_action(text) {
        ReferentialAction::Restrict => ReferentialAction::NoAction,
        other => other,
    }
}

/// MariaDB prints defaults as SQL (`'active'`, `NULL`, `current_timestamp()`); MySQL 8 prints
/// literals bare and marks expressions with `DEFAULT_GENERATED`. Both become SQL here.
fn normalise_default(default: Option<String>, extra: &str) -> Option<String> {
    let default = default?;
    let looks_like_sql = default.starts_with('\'')
        || default.eq_ignore_ascii_case("NULL")
        || default.parse::<f64>().is_ok()
        || default.contains('(')
        || default
            .to_ascii_lowercase()
            .starts_with("current_timestamp")
        || default.starts_with("b'");
    if looks_like_sql || extra.contains("DEFAULT_GENERATED") {
        Some(default)
    } else {
        Some(format!("'{}'", default.replace('\'', "''")))
    }
}
