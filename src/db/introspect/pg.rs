//! PostgreSQL catalog reader: `pg_catalog` of the current schema (faster than
//! `information_schema`, and it reports typmods, identity and partitions directly).

use super::{RawColumn, RawForeignKey, RawIndex, RawSchema, read_tables, referential_action};
use crate::db::{Conn, DbError, Stmt};

const TABLES: &str = "
SELECT c.relname AS name, c.relkind IN ('v', 'm') AS is_view
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
ORDER BY c.relname";

const COLUMNS: &str = "
SELECT c.relname AS table_name, a.attname AS column_name,
  CASE WHEN t.typcategory = 'A' THEN t.typname::text ELSE format_type(a.atttypid, NULL) END AS base_type,
  format_type(a.atttypid, a.atttypmod) AS full_type,
  NOT a.attnotnull AS nullable,
  pg_get_expr(d.adbin, d.adrelid) AS default_value,
  CASE WHEN a.atttypid IN (1042, 1043) AND a.atttypmod > 0 THEN a.atttypmod - 4 END AS max_length,
  CASE WHEN a.atttypid = 1700 AND a.atttypmod > 0 THEN ((a.atttypmod - 4) >> 16) & 65535 END AS numeric_precision,
  CASE WHEN a.atttypid = 1700 AND a.atttypmod > 0 THEN (a.atttypmod - 4) & 65535 END AS numeric_scale,
  a.attidentity <> '' OR COALESCE(pg_get_expr(d.adbin, d.adrelid), '') LIKE 'nextval(%' AS auto_increment
FROM pg_attribute a
JOIN pg_class c ON c.oid = a.attrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE n.nspname = current_schema() AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition
  AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY c.relname, a.attnum";

const INDEXES: &str = "
SELECT t.relname AS table_name, i.indisprimary AS is_primary,
  ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(attnum, ord)
        JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum ORDER BY k.ord) AS columns
FROM pg_index i
JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = t.relnamespace
WHERE n.nspname = current_schema() AND (i.indisprimary OR i.indisunique)
  AND i.indpred IS NULL AND i.indexprs IS NULL
ORDER BY t.relname";

const FOREIGN_KEYS: &str = "
SELECT con.conname AS constraint_name, c.relname AS table_name, a.attname AS column_name,
  fc.relname AS foreign_table, con.confupdtype::text AS on_update, con.confdeltype::text AS on_delete
FROM pg_constraint con
JOIN pg_class c ON c.oid = con.conrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_class fc ON fc.oid = con.confrelid
JOIN pg_namespace fn ON fn.oid = fc.relnamespace
JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = con.conkey[1]
WHERE con.contype = 'f' AND n.nspname = current_schema() AND fn.nspname = current_schema()
  AND array_length(con.conkey, 1) = 1
ORDER BY c.relname, a.attname";

pub async fn read(conn: &mut Conn) -> Result<RawSchema, DbError> {
    let tables = read_tables(conn, TABLES).await?;
    let columns = conn
        .query(&Stmt::new(COLUMNS))
        .await?
        .iter()
        .map(|r| {
            Ok(RawColumn {
                table: r.get("table_name")?,
                name: r.get("column_name")?,
                base_type: r.get("base_type")?,
                full_type: r.get("full_type")?,
                nullable: r.get("nullable")?,
                default: r.get("default_value")?,
                max_length: r.get("max_length")?,
                precision: r.get("numeric_precision")?,
                scale: r.get("numeric_scale")?,
                auto_increment: r.get("auto_increment")?,
                json_check: false,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let indexes = conn
        .query(&Stmt::new(INDEXES))
        .await?
        .iter()
        .map(|r| {
            let columns: serde_json::Value = r.get("columns")?;
            Ok(RawIndex {
                table: r.get("table_name")?,
                primary: r.get("is_primary")?,
                columns: serde_json::from_value(columns)
                    .map_err(|e| DbError::Decode(e.to_string()))?,
            })
        })
        .collect::<Result<_, DbError>>()?;
    let foreign_keys = conn
        .query(&Stmt::new(FOREIGN_KEYS))
        .await?
        .iter()
        .map(|r| RawForeignKey::from_row(r, referential_action))
        .collect::<Result<_, DbError>>()?;
    Ok(RawSchema {
        tables,
        columns,
        indexes,
        foreign_keys,
    })
}
