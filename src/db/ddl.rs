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

/// Why a column cannot be made.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct DdlError(pub String);

/// Sets the column type of `def` for a Directus field type on `dialect`, the way Directus
/// creates it: `string` is `varchar(max_length or 255)`, `decimal` `decimal(10, 5)` unless
/// given, `csv` text, `hash` `varchar(255)`. `alias` and `unknown` have no column.
pub fn set_field_type(
    def: &mut ColumnDef,
    dialect: Dialect,
    field_type: FieldType,
    max_length: Option<u32>,
    precision: Option<u32>,
    scale: Option<u32>,
) -> Result<(), DdlError> {
    match (field_type, dialect) {
        (FieldType::String, _) => def.string_len(max_length.unwrap_or(255)),
        (FieldType::Hash, _) => def.string_len(255),
        (FieldType::Text | FieldType::Csv, _) => def.text(),
        (FieldType::Integer, _) => def.integer(),
        (FieldType::BigInteger, _) => def.big_integer(),
        (FieldType::Float, Dialect::Postgres) => def.custom("real"),
        (FieldType::Float, _) => def.custom("float"),
        // sea-query writes SQLite decimals as `real`, which reads back as a float.
        (FieldType::Decimal, _) => def.custom(format!(
            "decimal({}, {})",
            precision.unwrap_or(10),
            scale.unwrap_or(5)
        )),
        (FieldType::Boolean, _) => def.boolean(),
        (FieldType::Date, _) => def.custom("date"),
        (FieldType::Time, Dialect::Postgres) => def.custom("time without time zone"),
        (FieldType::Time, _) => def.custom("time"),
        (FieldType::DateTime, Dialect::Postgres) => def.custom("timestamp without time zone"),
        (FieldType::DateTime, _) => def.custom("datetime"),
        (FieldType::Timestamp, _) => {
            set_type(def, dialect, ColumnKind::Timestamp);
            def
        }
        (FieldType::Json, _) => def.custom("json"),
        (FieldType::Uuid, _) => {
            set_type(def, dialect, ColumnKind::Uuid);
            def
        }
        (FieldType::Binary, Dialect::Postgres) => def.custom("bytea"),
        (FieldType::Binary, _) => def.custom("blob"),
        (FieldType::Alias | FieldType::Unknown, _) => {
            return Err(DdlError(format!("the type {field_type} has no column")));
        }
    };
    Ok(())
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
