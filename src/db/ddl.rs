//! Column types per dialect, the way Directus lays them out on each database (uuids as
//! `char(36)` outside PostgreSQL, timestamps as `timestamp with time zone` / `timestamp`), so tables rectus creates look like the ones Directus creates.

use rectus_policies::FieldType;
use sea_query::ColumnDef;

use super::Dialect;

/// The storage kinds rectus creates columns of.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    Uuid,
    String(u32),
    Text,
    Integer,
    BigInteger,
    Boolean,
    Json,
    Timestamp,
    /// An auto-incrementing integer primary key.
    Serial,
}

impl ColumnKind {
    /// The Directus type a column of this kind reads as.
    pub fn field_type(self) -> FieldType {
        match self {
            ColumnKind::Uuid => FieldType::Uuid,
            ColumnKind::String(_) => FieldType::String,
            ColumnKind::Text => FieldType::Text,
            ColumnKind::Integer | ColumnKind::Serial => FieldType::Integer,
            ColumnKind::BigInteger => FieldType::BigInteger,
            ColumnKind::Boolean => FieldType::Boolean,
            ColumnKind::Json => FieldType::Json,
            ColumnKind::Timestamp => FieldType::Timestamp,
        }
    }
}

/// Sets the column type of `def` for `kind` on `dialect`.
pub fn set_type(def: &mut ColumnDef, dialect: Dialect, kind: ColumnKind) {
    match (kind, dialect) {
        (ColumnKind::Uuid, Dialect::Postgres) => def.uuid(),
        (ColumnKind::Uuid, _) => def.char_len(36),
        (ColumnKind::String(n), _) => def.string_len(n),
        (ColumnKind::Text, _) => def.text(),
        (ColumnKind::Integer, _) => def.integer(),
        (ColumnKind::BigInteger, _) => def.big_integer(),
        (ColumnKind::Boolean, _) => def.boolean(),
        (ColumnKind::Json, _) => def.custom("json"),
        (ColumnKind::Timestamp, Dialect::Postgres) => def.custom("timestamp with time zone"),
        (ColumnKind::Timestamp, Dialect::MySql) => def.custom("timestamp"),
        // Same storage as Directus's `datetime` (NUMERIC affinity), but it reads back as a
        // timestamp rather than a dateTime.
        (ColumnKind::Timestamp, Dialect::Sqlite) => def.custom("timestamp"),
        (ColumnKind::Serial, _) => def.integer().auto_increment().primary_key(),
    };
}
