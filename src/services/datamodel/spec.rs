//! What the data-model changes share: name rules, field descriptions from payloads, column
//! definitions per dialect, index and constraint names, activity rows.

use rectus_policies::value::coerce;
use rectus_policies::{FieldType, ReferentialAction};
use sea_query::{ColumnDef, Condition, Expr, ExprTrait, ForeignKeyAction, Index, Table};
use serde_json::{Map, Value as Json, json};

use super::DataModel;
use super::read::client_meta;
use crate::db::sqlite_rebuild::quote;
use crate::db::{Dialect, DialectExt, ddl};
use crate::error::{ApiError, ErrorCode};

pub(super) fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. {}", message.into()),
    )
}

/// Names rectus creates: letters, digits and `_`, not starting with a digit, at most 64
/// characters, never in the `directus_` namespace.
pub fn check_name(kind: &str, name: &str) -> Result<(), ApiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit());
    if !valid {
        return Err(invalid(format!(
            "\"{name}\" is not a valid {kind} name: use letters, digits and _, at most 64 characters, not starting with a digit."
        )));
    }
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(invalid(format!(
            "\"{name}\" is a reserved SQL word and cannot be a {kind} name."
        )));
    }
    if name.to_ascii_lowercase().starts_with("directus_") {
        return Err(invalid(format!(
            "{kind} names starting with \"directus_\" are reserved for the system."
        )));
    }
    Ok(())
}

/// Words every SQL dialect reserves. Names are always quoted by rectus, but SQL written by
/// people and tools (the wire endpoints, BI tools) would trip over them.
const RESERVED: &[&str] = &[
    "all",
    "alter",
    "and",
    "as",
    "between",
    "case",
    "constraint",
    "create",
    "delete",
    "distinct",
    "drop",
    "else",
    "end",
    "exists",
    "foreign",
    "from",
    "having",
    "in",
    "insert",
    "into",
    "is",
    "join",
    "not",
    "null",
    "on",
    "or",
    "primary",
    "references",
    "select",
    "table",
    "then",
    "union",
    "update",
    "values",
    "when",
    "where",
];

/// A constraint or index name within MySQL's 64 characters.
pub(super) fn constraint_name(table: &str, field: &str, suffix: &str) -> String {
    let name = format!("{table}_{field}_{suffix}");
    if name.len() <= 64 {
        return name;
    }
    let hash = name
        .bytes()
        .fold(0u32, |h, b| h.wrapping_mul(31).wrapping_add(u32::from(b)));
    format!("{}_{hash:08x}", &name[..55])
}

/// A field as a client describes it.
#[derive(Debug, Clone)]
pub struct NewField {
    pub field: String,
    pub kind: FieldType,
    pub column: Option<ColumnSpec>,
    pub meta: Map<String, Json>,
}

#[derive(Debug, Clone, Default)]
pub struct ColumnSpec {
    pub max_length: Option<u32>,
    pub precision: Option<u32>,
    pub scale: Option<u32>,
    pub nullable: bool,
    pub default: Option<Json>,
    pub unique: bool,
    pub indexed: bool,
    pub primary_key: bool,
    pub auto_increment: bool,
}

pub(super) fn opt_u32(schema: &Json, key: &str) -> Result<Option<u32>, ApiError> {
    match schema.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("\"schema.{key}\" must be a positive whole number."))),
    }
}

pub(super) fn flag(schema: &Json, key: &str, default: bool) -> Result<bool, ApiError> {
    match schema.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("\"schema.{key}\" must be true or false."))),
    }
}

/// The specials Directus puts on a field of this type.
pub(super) fn type_specials(kind: FieldType) -> &'static [&'static str] {
    match kind {
        FieldType::Uuid => &["uuid"],
        FieldType::Hash => &["hash"],
        FieldType::Csv => &["cast-csv"],
        FieldType::Json => &["cast-json"],
        FieldType::Boolean => &["cast-boolean"],
        _ => &[],
    }
}

pub(super) fn specials_of(meta: &Map<String, Json>) -> Vec<String> {
    match meta.get("special") {
        Some(Json::Array(items)) => items
            .iter()
            .filter_map(|i| i.as_str().map(String::from))
            .collect(),
        Some(Json::String(s)) => s
            .split(',')
            .map(|p| p.trim().to_string())
            .filter(|p| !p.is_empty())
            .collect(),
        _ => Vec::new(),
    }
}

pub fn parse_field(payload: &Json, fallback_name: Option<&str>) -> Result<NewField, ApiError> {
    let object = payload
        .as_object()
        .ok_or_else(|| invalid("A field must be an object."))?;
    let field = object
        .get("field")
        .and_then(Json::as_str)
        .or(fallback_name)
        .ok_or_else(|| invalid("\"field\" is required."))?
        .to_string();
    check_name("field", &field)?;
    let kind_name = object.get("type").and_then(Json::as_str).unwrap_or("alias");
    let kind = FieldType::parse(kind_name)
        .filter(|t| *t != FieldType::Unknown)
        .ok_or_else(|| invalid(format!("\"{kind_name}\" is not a field type.")))?;
    let mut meta = object.get("meta").map(client_meta).unwrap_or_default();
    let mut special = specials_of(&meta);
    for s in type_specials(kind) {
        if !special.iter().any(|x| x == s) {
            special.push((*s).to_string());
        }
    }
    if !special.is_empty() {
        meta.insert("special".into(), Json::from(special));
    }
    let column = if kind == FieldType::Alias {
        if object.get("schema").is_some_and(|s| !s.is_null()) {
            return Err(invalid(format!(
                "The alias field \"{field}\" has no column: \"schema\" must be null."
            )));
        }
        None
    } else {
        let schema = object
            .get("schema")
            .cloned()
            .unwrap_or(Json::Object(Map::new()));
        if !schema.is_object() {
            return Err(invalid("\"schema\" must be an object."));
        }
        let spec = ColumnSpec {
            max_length: opt_u32(&schema, "max_length")?,
            precision: opt_u32(&schema, "numeric_precision")?,
            scale: opt_u32(&schema, "numeric_scale")?,
            nullable: flag(&schema, "is_nullable", true)?,
            default: schema
                .get("default_value")
                .cloned()
                .filter(|d| !d.is_null()),
            unique: flag(&schema, "is_unique", false)?,
            indexed: flag(&schema, "is_indexed", false)?,
            primary_key: flag(&schema, "is_primary_key", false)?,
            auto_increment: flag(&schema, "has_auto_increment", false)?,
        };
        if let Some(default) = &spec.default {
            check_default(&field, kind, default)?;
        }
        if spec.auto_increment
            && !(spec.primary_key && matches!(kind, FieldType::Integer | FieldType::BigInteger))
        {
            return Err(invalid(format!(
                "Only an integer primary key can auto-increment (\"{field}\")."
            )));
        }
        if spec.primary_key
            && !matches!(
                kind,
                FieldType::Integer | FieldType::BigInteger | FieldType::Uuid | FieldType::String
            )
        {
            return Err(invalid(format!(
                "A primary key must be an integer, a big integer, a uuid or a string, not {kind}."
            )));
        }
        Some(spec)
    };
    Ok(NewField {
        field,
        kind,
        column,
        meta,
    })
}

pub(super) fn is_now(default: &Json) -> bool {
    default.as_str().is_some_and(|s| {
        matches!(
            s.to_ascii_uppercase().as_str(),
            "CURRENT_TIMESTAMP" | "NOW()"
        )
    })
}

pub(super) fn check_default(field: &str, kind: FieldType, default: &Json) -> Result<(), ApiError> {
    if is_now(default)
        && matches!(
            kind,
            FieldType::Timestamp | FieldType::DateTime | FieldType::Date | FieldType::Time
        )
    {
        return Ok(());
    }
    coerce(default, kind).map(drop).map_err(|e| {
        invalid(format!(
            "The default of \"{field}\" does not fit its type: {e}."
        ))
    })
}

pub(super) fn default_value(kind: FieldType, default: &Json) -> Option<Expr> {
    if is_now(default) {
        return Some(Expr::current_timestamp());
    }
    let scalar = coerce(default, kind).ok()?;
    Some(Expr::val(scalar.to_sea()))
}

/// The column definition of a new field.
pub fn column_def(dialect: Dialect, field: &NewField) -> Result<ColumnDef, ApiError> {
    let spec = field
        .column
        .as_ref()
        .ok_or_else(|| invalid("An alias field has no column."))?;
    let mut def = ColumnDef::new(field.field.clone());
    if spec.primary_key && spec.auto_increment {
        match (field.kind, dialect) {
            // SQLite's INTEGER PRIMARY KEY is 64-bit; it alone may AUTOINCREMENT.
            (FieldType::BigInteger, Dialect::Sqlite) | (FieldType::Integer, _) => {
                ddl::set_type(&mut def, dialect, ddl::ColumnKind::Serial)
            }
            _ => {
                def.big_integer().auto_increment().primary_key();
            }
        }
        def.not_null();
        return Ok(def);
    }
    ddl::set_field_type(
        &mut def,
        dialect,
        field.kind,
        spec.max_length,
        spec.precision,
        spec.scale,
    )
    .map_err(|e| invalid(e.0))?;
    if spec.primary_key {
        def.not_null().primary_key();
    } else if spec.nullable {
        def.null();
    } else {
        def.not_null();
    }
    if let Some(default) = &spec.default
        && let Some(expr) = default_value(field.kind, default)
    {
        def.default(expr);
    }
    Ok(def)
}

pub(super) fn fk_action(action: ReferentialAction) -> ForeignKeyAction {
    match action {
        ReferentialAction::NoAction => ForeignKeyAction::NoAction,
        ReferentialAction::Restrict => ForeignKeyAction::Restrict,
        ReferentialAction::Cascade => ForeignKeyAction::Cascade,
        ReferentialAction::SetNull => ForeignKeyAction::SetNull,
        ReferentialAction::SetDefault => ForeignKeyAction::SetDefault,
    }
}

pub(super) fn field_meta_row(collection: &str, field: &NewField) -> Map<String, Json> {
    let mut row = field.meta.clone();
    row.insert("collection".into(), collection.into());
    row.insert("field".into(), field.field.clone().into());
    row
}

pub(super) fn index_statements(
    dialect: Dialect,
    table: &str,
    field: &NewField,
) -> Vec<(String, String)> {
    let Some(spec) = &field.column else {
        return vec![];
    };
    let mut out = Vec::new();
    for (wanted, unique, suffix) in [
        (spec.unique && !spec.primary_key, true, "unique"),
        (spec.indexed, false, "index"),
    ] {
        if !wanted {
            continue;
        }
        let name = constraint_name(table, &field.field, suffix);
        let mut index = Index::create();
        index
            .name(name.clone())
            .table(table.to_string())
            .col(field.field.clone());
        if unique {
            index.unique();
        }
        let drop = match dialect {
            Dialect::MySql => format!("DROP INDEX `{name}` ON `{table}`"),
            _ => format!("DROP INDEX {}", quote(&name)),
        };
        out.push((dialect.build_schema(&index), drop));
    }
    out
}

pub(super) fn activity(
    model: &DataModel,
    action: &str,
    collection: &str,
    item: &str,
) -> Map<String, Json> {
    crate::services::activity::activity_row(model.caller, action, collection, item)
}

pub(super) fn where_eq(pairs: &[(&str, &str)]) -> Condition {
    pairs.iter().fold(Condition::all(), |c, (k, v)| {
        c.add(Expr::col(k.to_string()).eq(*v))
    })
}

pub(super) fn exists_folder(meta: &super::MetaRows, name: &str) -> bool {
    meta.collections.iter().any(|r| r["collection"] == name)
}

pub(super) fn quote_for(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::MySql => format!("`{}`", name.replace('`', "``")),
        _ => quote(name),
    }
}

pub(super) fn current_default(field: &rectus_policies::Field) -> Json {
    match &field.default_value {
        Some(rectus_policies::DefaultValue::Literal(v)) => v.clone(),
        Some(rectus_policies::DefaultValue::CurrentTimestamp) => json!("CURRENT_TIMESTAMP"),
        _ => Json::Null,
    }
}

/// The field as it is now, in the form a new one is described in.
pub(super) fn existing_as_new(field: &rectus_policies::Field) -> NewField {
    NewField {
        field: field.field.clone(),
        kind: field.kind,
        column: Some(ColumnSpec {
            max_length: field.max_length,
            precision: field.precision,
            scale: field.scale,
            nullable: field.nullable,
            default: Some(current_default(field)).filter(|d| !d.is_null()),
            ..ColumnSpec::default()
        }),
        meta: Map::new(),
    }
}

/// PostgreSQL statements that make a column what `wanted` describes.
pub(super) fn pg_alter_column(
    table: &str,
    column: &str,
    wanted: &NewField,
    type_changed: bool,
) -> Vec<String> {
    let spec = wanted.column.clone().unwrap_or_default();
    let prefix = format!(
        "ALTER TABLE {} ALTER COLUMN {}",
        quote(table),
        quote(column)
    );
    let target = pg_type_name(wanted);
    let mut out = vec![format!("{prefix} DROP DEFAULT")];
    out.push(if type_changed {
        format!("{prefix} TYPE {target} USING {}::{target}", quote(column))
    } else {
        format!("{prefix} TYPE {target}")
    });
    out.push(format!(
        "{prefix} {} NOT NULL",
        if spec.nullable { "DROP" } else { "SET" }
    ));
    if let Some(default) = spec
        .default
        .as_ref()
        .and_then(|d| default_value(wanted.kind, d))
    {
        let rendered = Dialect::Postgres.build_schema(
            Table::alter()
                .table("t")
                .add_column(ColumnDef::new("c").text().default(default).to_owned()),
        );
        if let Some(at) = rendered.find(" DEFAULT ") {
            out.push(format!("{prefix} SET DEFAULT {}", &rendered[at + 9..]));
        }
    }
    out
}

/// The PostgreSQL type name a `USING` cast converts to.
pub(super) fn pg_type_name(field: &NewField) -> String {
    let spec = field.column.clone().unwrap_or_default();
    match field.kind {
        FieldType::String => format!("varchar({})", spec.max_length.unwrap_or(255)),
        FieldType::Hash => "varchar(255)".into(),
        FieldType::Text | FieldType::Csv => "text".into(),
        FieldType::Integer => "integer".into(),
        FieldType::BigInteger => "bigint".into(),
        FieldType::Float => "real".into(),
        FieldType::Decimal => format!(
            "numeric({},{})",
            spec.precision.unwrap_or(10),
            spec.scale.unwrap_or(5)
        ),
        FieldType::Boolean => "boolean".into(),
        FieldType::Date => "date".into(),
        FieldType::Time => "time".into(),
        FieldType::DateTime => "timestamp".into(),
        FieldType::Timestamp => "timestamptz".into(),
        FieldType::Json => "json".into(),
        FieldType::Uuid => "uuid".into(),
        FieldType::Binary => "bytea".into(),
        FieldType::Alias | FieldType::Unknown => "text".into(),
    }
}

/// A column definition as SQLite text, cut from sea-query's CREATE TABLE rendering.
pub(super) fn sqlite_column_text(def: &ColumnDef) -> String {
    let sql = Dialect::Sqlite.build_schema(Table::create().table("t").col(def.clone()));
    let start = sql.find('(').map_or(0, |i| i + 1);
    let end = sql.rfind(')').unwrap_or(sql.len());
    sql[start..end].trim().to_string()
}
