//! Database type names to Directus types, and raw column defaults to [`DefaultValue`]s, for
//! all three dialects. Follows Directus's `getLocalType`: a type map on the base type name,
//! then the `special` flags of `directus_fields`, then per-database special cases.

use rectus_policies::{DefaultValue, FieldType};

use super::RawColumn;
use crate::db::Dialect;

/// The Directus type of a column, before `special` flags are applied.
pub fn local_type(dialect: Dialect, column: &RawColumn) -> FieldType {
    let base = column.base_type.to_ascii_lowercase();
    let full = column.full_type.to_ascii_lowercase();
    if dialect == Dialect::MySql
        && (full.starts_with("tinyint(1)") || full == "bool" || full == "boolean")
    {
        return FieldType::Boolean;
    }
    if column.json_check {
        // MariaDB's JSON is LONGTEXT with a json_valid() check.
        return FieldType::Json;
    }
    if base.starts_with('_') || base.ends_with("[]") {
        // PostgreSQL arrays of text: Directus's csv.
        return match base.trim_start_matches('_').trim_end_matches("[]") {
            "varchar" | "text" | "bpchar" | "character varying" | "character" => FieldType::Csv,
            _ => FieldType::Unknown,
        };
    }
    let base = base
        .trim_end_matches(" unsigned")
        .trim_end_matches(" signed");
    match base {
        "boolean" | "bool" => FieldType::Boolean,
        "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "serial" | "int2" | "int4"
        | "serial4" | "smallserial" | "year" => FieldType::Integer,
        "bigint" | "int8" | "bigserial" | "serial8" => FieldType::BigInteger,
        "text" | "tinytext" | "mediumtext" | "longtext" | "clob" | "citext" | "ntext" => {
            FieldType::Text
        }
        "varchar" | "character varying" | "char" | "character" | "bpchar" | "nvarchar"
        | "nchar" | "varchar2" | "interval" | "enum" | "set" | "inet" | "cidr" => FieldType::String,
        "date" => FieldType::Date,
        "datetime" | "timestamp without time zone" => FieldType::DateTime,
        "timestamp" | "timestamptz" | "timestamp with time zone" => FieldType::Timestamp,
        "time" | "time without time zone" | "time with time zone" | "timetz" => FieldType::Time,
        "float" | "double" | "double precision" | "real" | "float4" | "float8" => FieldType::Float,
        "decimal" | "numeric" => FieldType::Decimal,
        "json" | "jsonb" => FieldType::Json,
        "uuid" => FieldType::Uuid,
        "bytea" | "blob" | "tinyblob" | "mediumblob" | "longblob" | "binary" | "varbinary" => {
            FieldType::Binary
        }
        _ => FieldType::Unknown,
    }
}

/// The type after `directus_fields.special` is taken into account.
pub fn with_special(local: FieldType, special: &[String]) -> FieldType {
    let has = |flag: &str| special.iter().any(|s| s == flag);
    if has("cast-json") {
        FieldType::Json
    } else if has("hash") {
        FieldType::Hash
    } else if has("csv") {
        FieldType::Csv
    } else if has("uuid") {
        FieldType::Uuid
    } else {
        local
    }
}

/// Normalises a default as the database prints it into the same value on every database.
pub fn parse_default(dialect: Dialect, raw: &str, field_type: FieldType) -> Option<DefaultValue> {
    let mut text = raw.trim();
    // PostgreSQL: 'active'::character varying, (-1), NULL::text
    if dialect == Dialect::Postgres {
        if let Some(i) = cast_position(text) {
            text = text[..i].trim();
        }
        while text.starts_with('(') && text.ends_with(')') {
            text = text[1..text.len() - 1].trim();
        }
    }
    let lower = text.to_ascii_lowercase();
    if lower == "null" {
        return None;
    }
    if matches!(
        lower.as_str(),
        "current_timestamp" | "current_timestamp()" | "now()" | "localtimestamp"
    ) || lower.starts_with("current_timestamp(")
        || lower == "datetime('now')"
    {
        return Some(DefaultValue::CurrentTimestamp);
    }
    let literal = if let Some(inner) = text.strip_prefix('\'').and_then(|t| t.strip_suffix('\'')) {
        let unescaped = if dialect == Dialect::MySql {
            inner.replace("''", "'").replace("\\'", "'")
        } else {
            inner.replace("''", "'")
        };
        Some(unescaped)
    } else if lower == "true" || lower == "false" || text.parse::<f64>().is_ok() {
        Some(text.to_string())
    } else if lower.starts_with("b'") {
        // MySQL bit literal b'1'
        Some(text[2..text.len().saturating_sub(1)].to_string())
    } else {
        None
    };
    let Some(literal) = literal else {
        return Some(DefaultValue::Expression(text.to_string()));
    };
    Some(DefaultValue::Literal(typed_literal(&literal, field_type)))
}

/// Finds a PostgreSQL `::type` cast outside quotes.
fn cast_position(text: &str) -> Option<usize> {
    let mut quoted = false;
    let bytes = text.as_bytes();
    for i in 0..bytes.len() {
        match bytes[i] {
            b'\'' => quoted = !quoted,
            b':' if !quoted && bytes.get(i + 1) == Some(&b':') => return Some(i),
            _ => {}
        }
    }
    None
}

fn typed_literal(text: &str, field_type: FieldType) -> serde_json::Value {
    use serde_json::Value;
    match field_type {
        FieldType::Boolean => match text.to_ascii_lowercase().as_str() {
            "true" | "1" | "t" => Value::Bool(true),
            "false" | "0" | "f" => Value::Bool(false),
            _ => Value::String(text.to_string()),
        },
        FieldType::Integer | FieldType::BigInteger => text
            .parse::<i64>()
            .map(Value::from)
            .unwrap_or_else(|_| Value::String(text.to_string())),
        FieldType::Float => text
            .parse::<f64>()
            .ok()
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .unwrap_or_else(|| Value::String(text.to_string())),
        FieldType::Json => {
            serde_json::from_str(text).unwrap_or_else(|_| Value::String(text.to_string()))
        }
        _ => Value::String(text.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn lit(v: serde_json::Value) -> Option<DefaultValue> {
        Some(DefaultValue::Literal(v))
    }

    #[test]
    fn the_same_default_reads_the_same_everywhere() {
        use Dialect::*;
        let cases = [
            (
                Postgres,
                "'active'::character varying",
                FieldType::String,
                lit(json!("active")),
            ),
            (MySql, "'active'", FieldType::String, lit(json!("active"))),
            (Sqlite, "'active'", FieldType::String, lit(json!("active"))),
            (Postgres, "0", FieldType::Integer, lit(json!(0))),
            (MySql, "0", FieldType::Integer, lit(json!(0))),
            (
                Postgres,
                "'-1'::integer",
                FieldType::Integer,
                lit(json!(-1)),
            ),
            (Postgres, "false", FieldType::Boolean, lit(json!(false))),
            (MySql, "0", FieldType::Boolean, lit(json!(false))),
            (Sqlite, "FALSE", FieldType::Boolean, lit(json!(false))),
            (
                Postgres,
                "CURRENT_TIMESTAMP",
                FieldType::Timestamp,
                Some(DefaultValue::CurrentTimestamp),
            ),
            (
                Postgres,
                "now()",
                FieldType::Timestamp,
                Some(DefaultValue::CurrentTimestamp),
            ),
            (
                MySql,
                "current_timestamp()",
                FieldType::Timestamp,
                Some(DefaultValue::CurrentTimestamp),
            ),
            (Postgres, "NULL::character varying", FieldType::String, None),
            (MySql, "NULL", FieldType::String, None),
            (
                Postgres,
                "'9.99'::numeric",
                FieldType::Decimal,
                lit(json!("9.99")),
            ),
            (MySql, "9.99", FieldType::Decimal, lit(json!("9.99"))),
            (
                Postgres,
                "'it''s'::text",
                FieldType::Text,
                lit(json!("it's")),
            ),
            (
                Postgres,
                "'{\"a\": 1}'::json",
                FieldType::Json,
                lit(json!({"a": 1})),
            ),
            (
                Postgres,
                "gen_random_uuid()",
                FieldType::Uuid,
                Some(DefaultValue::Expression("gen_random_uuid()".into())),
            ),
        ];
        for (dialect, raw, ty, expected) in cases {
            assert_eq!(
                parse_default(dialect, raw, ty),
                expected,
                "{dialect:?} {raw}"
            );
        }
    }

    fn column(base: &str, full: &str) -> RawColumn {
        RawColumn {
            base_type: base.into(),
            full_type: full.into(),
            ..RawColumn::default()
        }
    }

    #[test]
    fn types_map_like_directus() {
        use Dialect::*;
        assert_eq!(
            local_type(MySql, &column("tinyint", "tinyint(1)")),
            FieldType::Boolean
        );
        assert_eq!(
            local_type(MySql, &column("tinyint", "tinyint(4)")),
            FieldType::Integer
        );
        assert_eq!(
            local_type(Postgres, &column("_varchar", "character varying[]")),
            FieldType::Csv
        );
        assert_eq!(
            local_type(Postgres, &column("timestamp without time zone", "")),
            FieldType::DateTime
        );
        assert_eq!(
            local_type(MySql, &column("timestamp", "timestamp")),
            FieldType::Timestamp
        );
        assert_eq!(
            local_type(Sqlite, &column("datetime", "datetime")),
            FieldType::DateTime
        );
        assert_eq!(
            local_type(Sqlite, &column("timestamp", "timestamp")),
            FieldType::Timestamp
        );
        assert_eq!(
            local_type(MySql, &column("int unsigned", "int(10) unsigned")),
            FieldType::Integer
        );
        assert_eq!(
            local_type(Postgres, &column("point", "point")),
            FieldType::Unknown
        );
        let json = RawColumn {
            json_check: true,
            ..column("longtext", "longtext")
        };
        assert_eq!(local_type(MySql, &json), FieldType::Json);
    }

    #[test]
    fn special_flags_override_the_column_type() {
        let s = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(
            with_special(FieldType::Text, &s(&["cast-json"])),
            FieldType::Json
        );
        assert_eq!(
            with_special(FieldType::String, &s(&["hash"])),
            FieldType::Hash
        );
        assert_eq!(
            with_special(FieldType::String, &s(&["uuid"])),
            FieldType::Uuid
        );
        assert_eq!(
            with_special(FieldType::String, &s(&["date-created"])),
            FieldType::String
        );
    }
}
