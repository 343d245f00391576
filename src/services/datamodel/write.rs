//! Creating, changing and deleting collections, fields and relations: validation first,
//! then the DDL and the metadata rows as one [`Change`].

use rectus_policies::value::coerce;
use rectus_policies::{Collection, FieldType, ReferentialAction};
use sea_query::{
    ColumnDef, Condition, Expr, ExprTrait, ForeignKey, ForeignKeyAction, Index, Table,
};
use serde_json::{Map, Value as Json, json};

use super::DataModel;
use super::change::{Change, Undo};
use super::read::client_meta;
use crate::db::sqlite_rebuild::{TableChange, quote};
use crate::db::{Dialect, DialectExt, ddl};
use crate::error::{ApiError, ErrorCode};

fn invalid(message: impl Into<String>) -> ApiError {
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
    if name.to_ascii_lowercase().starts_with("directus_") {
        return Err(invalid(format!(
            "{kind} names starting with \"directus_\" are reserved for the system."
        )));
    }
    Ok(())
}

/// A constraint or index name within MySQL's 64 characters.
fn constraint_name(table: &str, field: &str, suffix: &str) -> String {
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

fn opt_u32(schema: &Json, key: &str) -> Result<Option<u32>, ApiError> {
    match schema.get(key) {
        None | Some(Json::Null) => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| invalid(format!("\"schema.{key}\" must be a positive whole number."))),
    }
}

fn flag(schema: &Json, key: &str, default: bool) -> Result<bool, ApiError> {
    match schema.get(key) {
        None | Some(Json::Null) => Ok(default),
        Some(Json::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("\"schema.{key}\" must be true or false."))),
    }
}

/// The specials Directus puts on a field of this type.
fn type_specials(kind: FieldType) -> &'static [&'static str] {
    match kind {
        FieldType::Uuid => &["uuid"],
        FieldType::Hash => &["hash"],
        FieldType::Csv => &["cast-csv"],
        FieldType::Json => &["cast-json"],
        FieldType::Boolean => &["cast-boolean"],
        _ => &[],
    }
}

fn specials_of(meta: &Map<String, Json>) -> Vec<String> {
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

fn is_now(default: &Json) -> bool {
    default.as_str().is_some_and(|s| {
        matches!(
            s.to_ascii_uppercase().as_str(),
            "CURRENT_TIMESTAMP" | "NOW()"
        )
    })
}

fn check_default(field: &str, kind: FieldType, default: &Json) -> Result<(), ApiError> {
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

fn default_value(kind: FieldType, default: &Json) -> Option<Expr> {
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

fn fk_action(action: ReferentialAction) -> ForeignKeyAction {
    match action {
        ReferentialAction::NoAction => ForeignKeyAction::NoAction,
        ReferentialAction::Restrict => ForeignKeyAction::Restrict,
        ReferentialAction::Cascade => ForeignKeyAction::Cascade,
        ReferentialAction::SetNull => ForeignKeyAction::SetNull,
        ReferentialAction::SetDefault => ForeignKeyAction::SetDefault,
    }
}

fn field_meta_row(collection: &str, field: &NewField) -> Map<String, Json> {
    let mut row = field.meta.clone();
    row.insert("collection".into(), collection.into());
    row.insert("field".into(), field.field.clone().into());
    row
}

fn index_statements(dialect: Dialect, table: &str, field: &NewField) -> Vec<(String, String)> {
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

fn activity(model: &DataModel, action: &str, collection: &str, item: &str) -> Map<String, Json> {
    let mut row = Map::new();
    row.insert("action".into(), action.into());
    row.insert(
        "user".into(),
        model
            .caller
            .accountability
            .user
            .clone()
            .map_or(Json::Null, Json::String),
    );
    row.insert(
        "ip".into(),
        model
            .caller
            .accountability
            .ip
            .map_or(Json::Null, |ip| ip.to_string().into()),
    );
    row.insert("collection".into(), collection.into());
    row.insert("item".into(), item.into());
    row
}

fn where_eq(pairs: &[(&str, &str)]) -> Condition {
    pairs.iter().fold(Condition::all(), |c, (k, v)| {
        c.add(Expr::col(k.to_string()).eq(*v))
    })
}

fn exists_folder(meta: &super::MetaRows, name: &str) -> bool {
    meta.collections.iter().any(|r| r["collection"] == name)
}

impl DataModel<'_> {
    fn require_admin(&self) -> Result<(), ApiError> {
        if self.caller.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    fn table(&self, name: &str) -> Result<&Collection, ApiError> {
        self.schema
            .collection(name)
            .filter(|c| !c.system)
            .ok_or_else(ApiError::forbidden)
    }

    /// `POST /collections`.
    pub async fn create_collection(&self, payload: &Json) -> Result<String, ApiError> {
        self.require_admin()?;
        let object = payload
            .as_object()
            .ok_or_else(|| invalid("A collection must be an object."))?;
        let name = object
            .get("collection")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("\"collection\" is required."))?
            .to_string();
        check_name("collection", &name)?;
        let meta_rows = self.meta_rows().await?;
        if self.schema.collection(&name).is_some() || exists_folder(&meta_rows, &name) {
            return Err(invalid(format!(
                "The collection \"{name}\" already exists."
            )));
        }
        let mut collection_meta = object.get("meta").map(client_meta).unwrap_or_default();
        collection_meta.insert("collection".into(), name.clone().into());
        let folder = object.get("schema").is_none_or(Json::is_null);
        let fields: Vec<NewField> = match object.get("fields") {
            Some(Json::Array(list)) if !list.is_empty() => list
                .iter()
                .map(|f| parse_field(f, None))
                .collect::<Result<_, _>>()?,
            _ if folder => Vec::new(),
            _ => vec![parse_field(
                &json!({"field": "id", "type": "integer", "meta": {"hidden": true, "interface": "input", "readonly": true},
                        "schema": {"is_primary_key": true, "has_auto_increment": true}}),
                None,
            )?],
        };
        if folder && fields.iter().any(|f| f.column.is_some()) {
            return Err(invalid(
                "A folder collection (\"schema\": null) has no fields.",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for f in &fields {
            if !seen.insert(f.field.as_str()) {
                return Err(invalid(format!(
                    "The field \"{}\" is given twice.",
                    f.field
                )));
            }
        }
        let primary: Vec<&NewField> = fields
            .iter()
            .filter(|f| f.column.as_ref().is_some_and(|c| c.primary_key))
            .collect();
        if !folder && primary.len() != 1 {
            return Err(invalid("A collection needs exactly one primary key field."));
        }

        let dialect = self.db.dialect();
        let mut statements = Vec::new();
        if !folder {
            let mut create = Table::create();
            create.table(name.clone());
            for f in fields.iter().filter(|f| f.column.is_some()) {
                create.col(column_def(dialect, f)?);
            }
            statements.push(dialect.build_schema(&create));
        }
        let indexes: Vec<String> = fields
            .iter()
            .flat_map(|f| index_statements(dialect, &name, f))
            .map(|(create, _)| create)
            .collect();

        let mut change = Change::start(self.db, &self.schema).await?;
        let outcome = async {
            for (i, sql) in statements.iter().enumerate() {
                let undo = (i == 0)
                    .then(|| Undo::Sql(format!("DROP TABLE {}", quote_for(dialect, &name))));
                change.ddl(sql, undo).await?;
            }
            for sql in &indexes {
                change.ddl(sql, None).await?;
            }
            change
                .insert("directus_collections", collection_meta.clone())
                .await?;
            for f in &fields {
                change
                    .insert("directus_fields", field_meta_row(&name, f))
                    .await?;
            }
            change
                .insert(
                    "directus_activity",
                    activity(self, "create", "directus_collections", &name),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await?,
            Err(e) => return Err(change.fail(e).await),
        }
        Ok(name)
    }

    /// `PATCH /collections/:collection`: the metadata only.
    pub async fn update_collection(&self, name: &str, payload: &Json) -> Result<(), ApiError> {
        self.require_admin()?;
        let meta_rows = self.meta_rows().await?;
        if self.schema.collection(name).filter(|c| !c.system).is_none()
            && !exists_folder(&meta_rows, name)
        {
            return Err(ApiError::forbidden());
        }
        let meta = payload.get("meta").map(client_meta).unwrap_or_default();
        let mut change = Change::start(self.db, &self.schema).await?;
        let outcome = async {
            if exists_folder(&meta_rows, name) {
                change
                    .update(
                        "directus_collections",
                        meta.clone(),
                        where_eq(&[("collection", name)]),
                    )
                    .await?;
            } else {
                let mut row = meta.clone();
                row.insert("collection".into(), name.into());
                change.insert("directus_collections", row).await?;
            }
            change
                .insert(
                    "directus_activity",
                    activity(self, "update", "directus_collections", name),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }

    /// `DELETE /collections/:collection`: the table, its metadata, its relations (foreign
    /// keys of other tables pointing at it first), its permissions and presets.
    pub async fn delete_collection(&self, name: &str) -> Result<(), ApiError> {
        self.require_admin()?;
        let meta_rows = self.meta_rows().await?;
        let table = self.schema.collection(name).filter(|c| !c.system);
        if table.is_none() && !exists_folder(&meta_rows, name) {
            return Err(ApiError::forbidden());
        }
        let dialect = self.db.dialect();
        let incoming: Vec<_> = self
            .schema
            .relations
            .iter()
            .filter(|r| {
                r.one_collection.as_deref() == Some(name)
                    && r.many_collection != name
                    && r.foreign_key.is_some()
            })
            .cloned()
            .collect();
        let mut change = Change::start(self.db, &self.schema).await?;
        let outcome = async {
            for r in &incoming {
                self.drop_foreign_key(
                    &mut change,
                    &r.many_collection,
                    &r.many_field,
                    r.foreign_key
                        .as_ref()
                        .and_then(|f| f.constraint_name.clone()),
                    None,
                )
                .await?;
            }
            if let Some(table) = table {
                let kind = if table.view { "VIEW" } else { "TABLE" };
                change
                    .ddl(&format!("DROP {kind} {}", quote_for(dialect, name)), None)
                    .await?;
            }
            change
                .delete("directus_fields", where_eq(&[("collection", name)]))
                .await?;
            change
                .delete(
                    "directus_relations",
                    Condition::any()
                        .add(Expr::col("many_collection").eq(name))
                        .add(Expr::col("one_collection").eq(name)),
                )
                .await?;
            change
                .delete("directus_permissions", where_eq(&[("collection", name)]))
                .await?;
            change
                .delete("directus_presets", where_eq(&[("collection", name)]))
                .await?;
            change
                .delete("directus_collections", where_eq(&[("collection", name)]))
                .await?;
            change
                .insert(
                    "directus_activity",
                    activity(self, "delete", "directus_collections", name),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }

    /// `POST /fields/:collection`.
    pub async fn create_field(&self, collection: &str, payload: &Json) -> Result<String, ApiError> {
        self.require_admin()?;
        let table = self.table(collection)?;
        if table.view {
            return Err(invalid("Views cannot get fields."));
        }
        let field = parse_field(payload, None)?;
        if table.field(&field.field).is_some() {
            return Err(invalid(format!(
                "The field \"{}\" already exists in \"{collection}\".",
                field.field
            )));
        }
        let dialect = self.db.dialect();
        let mut ddl_statements = Vec::new();
        if let Some(spec) = &field.column {
            if spec.primary_key {
                return Err(invalid(
                    "A collection's primary key is set when it is created.",
                ));
            }
            if dialect == Dialect::Sqlite && !spec.nullable && spec.default.is_none() {
                return Err(invalid(format!(
                    "On SQLite a new required field needs a default value (\"{}\").",
                    field.field
                )));
            }
            let mut alter = Table::alter();
            alter
                .table(collection.to_string())
                .add_column(column_def(dialect, &field)?);
            let mut drop = Table::alter();
            drop.table(collection.to_string())
                .drop_column(field.field.clone());
            ddl_statements.push((
                dialect.build_schema(&alter),
                Some(Undo::Sql(dialect.build_schema(&drop))),
            ));
            for (create, undo) in index_statements(dialect, collection, &field) {
                ddl_statements.push((create, Some(Undo::Sql(undo))));
            }
        }
        let mut change = Change::start(self.db, &self.schema).await?;
        let outcome = async {
            for (sql, undo) in ddl_statements {
                change.ddl(&sql, undo).await?;
            }
            change
                .insert("directus_fields", field_meta_row(collection, &field))
                .await?;
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "create",
                        "directus_fields",
                        &format!("{collection}.{}", field.field),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await?,
            Err(e) => return Err(change.fail(e).await),
        }
        Ok(field.field)
    }

    /// `PATCH /fields/:collection/:field`: nullability, default, length or type, and the
    /// metadata. A field is never renamed.
    pub async fn update_field(
        &self,
        collection: &str,
        name: &str,
        payload: &Json,
    ) -> Result<(), ApiError> {
        self.require_admin()?;
        let table = self.table(collection)?;
        let current = table.field(name).ok_or_else(ApiError::forbidden)?;
        if payload
            .get("field")
            .and_then(Json::as_str)
            .is_some_and(|f| f != name)
        {
            return Err(invalid("Fields cannot be renamed."));
        }
        let meta_rows = self.meta_rows().await?;
        let has_meta = meta_rows
            .fields
            .iter()
            .any(|r| r["collection"] == collection && r["field"] == name);
        let meta_patch = payload.get("meta").map(client_meta);
        let schema_patch = payload.get("schema").filter(|s| s.is_object());
        let type_patch = payload.get("type").and_then(Json::as_str);
        let dialect = self.db.dialect();

        let mut column_change = None;
        if !current.is_alias()
            && (schema_patch.is_some() || type_patch.is_some_and(|t| t != current.kind.as_str()))
        {
            let schema = schema_patch.cloned().unwrap_or(json!({}));
            let merged = json!({
                "field": name,
                "type": type_patch.unwrap_or(current.kind.as_str()),
                "schema": {
                    "max_length": schema.get("max_length").cloned().unwrap_or(json!(current.max_length)),
                    "numeric_precision": schema.get("numeric_precision").cloned().unwrap_or(json!(current.precision)),
                    "numeric_scale": schema.get("numeric_scale").cloned().unwrap_or(json!(current.scale)),
                    "is_nullable": schema.get("is_nullable").cloned().unwrap_or(json!(current.nullable)),
                    "default_value": schema.get("default_value").cloned().unwrap_or_else(|| current_default(current)),
                },
            });
            let wanted = parse_field(&merged, None)?;
            if current.primary_key {
                return Err(invalid("A primary key cannot be changed."));
            }
            column_change = Some(wanted);
        }

        let mut change = Change::start(self.db, &self.schema).await?;
        if let Some(wanted) = &column_change
            && dialect == Dialect::Sqlite
        {
            let definition = sqlite_column_text(&column_def(dialect, wanted)?);
            let old = sqlite_column_text(&column_def(dialect, &existing_as_new(current))?);
            let outcome = change
                .rebuild(
                    collection,
                    vec![TableChange::ReplaceColumn {
                        column: name.into(),
                        definition,
                    }],
                    vec![TableChange::ReplaceColumn {
                        column: name.into(),
                        definition: old,
                    }],
                )
                .await;
            if let Err(e) = outcome {
                return Err(change.fail(e).await);
            }
        }
        let outcome = async {
            if let Some(wanted) = &column_change
                && dialect != Dialect::Sqlite
            {
                if dialect == Dialect::Postgres {
                    // Type (with a cast for the rows there are), nullability, default: each
                    // its own clause, all rolled back together on failure.
                    for sql in
                        pg_alter_column(collection, name, wanted, current.kind != wanted.kind)
                    {
                        change.ddl(&sql, None).await?;
                    }
                } else {
                    let mut alter = Table::alter();
                    alter
                        .table(collection.to_string())
                        .modify_column(column_def(dialect, wanted)?);
                    let mut undo = Table::alter();
                    undo.table(collection.to_string())
                        .modify_column(column_def(dialect, &existing_as_new(current))?);
                    change
                        .ddl(
                            &dialect.build_schema(&alter),
                            Some(Undo::Sql(dialect.build_schema(&undo))),
                        )
                        .await?;
                }
            }
            if let Some(mut meta) = meta_patch.clone() {
                if let Some(special) = meta.get("special").cloned() {
                    meta.insert("special".into(), special);
                }
                if has_meta {
                    change
                        .update(
                            "directus_fields",
                            meta,
                            where_eq(&[("collection", collection), ("field", name)]),
                        )
                        .await?;
                } else {
                    meta.insert("collection".into(), collection.into());
                    meta.insert("field".into(), name.into());
                    change.insert("directus_fields", meta).await?;
                }
            }
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "update",
                        "directus_fields",
                        &format!("{collection}.{name}"),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }

    /// `DELETE /fields/:collection/:field`: the column (its foreign key first), its metadata
    /// and its relations.
    pub async fn delete_field(&self, collection: &str, name: &str) -> Result<(), ApiError> {
        self.require_admin()?;
        let table = self.table(collection)?;
        let field = table.field(name).ok_or_else(ApiError::forbidden)?;
        if field.primary_key {
            return Err(invalid(
                "The primary key cannot be deleted; delete the collection instead.",
            ));
        }
        let dialect = self.db.dialect();
        let relation = self.schema.many_to_one(collection, name).cloned();
        let mut change = Change::start(self.db, &self.schema).await?;
        if dialect == Dialect::Sqlite && !field.is_alias() {
            // One rebuild drops the column with its constraints and indexes.
            if let Err(e) = change
                .rebuild(
                    collection,
                    vec![TableChange::DropColumn {
                        column: name.into(),
                    }],
                    vec![],
                )
                .await
            {
                return Err(change.fail(e).await);
            }
        }
        let outcome = async {
            if dialect != Dialect::Sqlite && !field.is_alias() {
                if let Some(fk) = relation.as_ref().and_then(|r| r.foreign_key.as_ref()) {
                    self.drop_foreign_key(
                        &mut change,
                        collection,
                        name,
                        fk.constraint_name.clone(),
                        None,
                    )
                    .await?;
                }
                let mut alter = Table::alter();
                alter
                    .table(collection.to_string())
                    .drop_column(name.to_string());
                change.ddl(&dialect.build_schema(&alter), None).await?;
            }
            change
                .delete(
                    "directus_fields",
                    where_eq(&[("collection", collection), ("field", name)]),
                )
                .await?;
            change
                .delete(
                    "directus_relations",
                    where_eq(&[("many_collection", collection), ("many_field", name)]),
                )
                .await?;
            let mut unlink = Map::new();
            unlink.insert("one_field".into(), Json::Null);
            change
                .update(
                    "directus_relations",
                    unlink,
                    where_eq(&[("one_collection", collection), ("one_field", name)]),
                )
                .await?;
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "delete",
                        "directus_fields",
                        &format!("{collection}.{name}"),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }

    async fn drop_foreign_key(
        &self,
        change: &mut Change<'_>,
        table: &str,
        field: &str,
        constraint: Option<String>,
        undo: Option<Undo>,
    ) -> Result<(), ApiError> {
        match change.dialect {
            Dialect::Sqlite => {
                change
                    .rebuild(
                        table,
                        vec![TableChange::DropForeignKey {
                            column: field.into(),
                        }],
                        vec![],
                    )
                    .await
            }
            dialect => {
                let name = constraint.unwrap_or_else(|| constraint_name(table, field, "foreign"));
                let drop = ForeignKey::drop()
                    .name(name)
                    .table(table.to_string())
                    .to_owned();
                change.ddl(&dialect.build_schema(&drop), undo).await
            }
        }
    }

    /// `POST /relations`: a real foreign key (unless `schema` is null) and the metadata row.
    pub async fn create_relation(&self, payload: &Json) -> Result<(String, String), ApiError> {
        self.require_admin()?;
        let collection = payload
            .get("collection")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("\"collection\" is required."))?;
        let field = payload
            .get("field")
            .and_then(Json::as_str)
            .ok_or_else(|| invalid("\"field\" is required."))?;
        let table = self.table(collection)?;
        let column = table
            .field(field)
            .filter(|f| !f.is_alias())
            .ok_or_else(|| {
                invalid(format!(
                    "\"{collection}.{field}\" is not a field with a column."
                ))
            })?;
        if self.schema.many_to_one(collection, field).is_some() {
            return Err(invalid(format!(
                "\"{collection}.{field}\" already has a relation."
            )));
        }
        let related = payload.get("related_collection").and_then(Json::as_str);
        let related_table = match related {
            Some(r) => Some(
                self.schema
                    .collection(r)
                    .ok_or_else(|| invalid(format!("The collection \"{r}\" does not exist.")))?,
            ),
            None => None,
        };
        let schema = payload.get("schema").filter(|s| !s.is_null());
        let action = |key: &str| -> Result<ReferentialAction, ApiError> {
            match schema.and_then(|s| s.get(key)).and_then(Json::as_str) {
                None => Ok(ReferentialAction::NoAction),
                Some(text) => ReferentialAction::parse(text).ok_or_else(|| {
                    invalid(format!("\"schema.{key}\" is not a referential action."))
                }),
            }
        };
        let (on_delete, on_update) = (action("on_delete")?, action("on_update")?);
        if schema.is_some() {
            let Some(target) = related_table else {
                return Err(invalid("A foreign key needs \"related_collection\"."));
            };
            let pk = target.primary_key_field().ok_or_else(ApiError::forbidden)?;
            let compatible = column.kind == pk.kind
                || (column.kind.is_integer() && pk.kind.is_integer())
                || (matches!(column.kind, FieldType::String | FieldType::Uuid)
                    && matches!(pk.kind, FieldType::String | FieldType::Uuid));
            if !compatible {
                return Err(invalid(format!(
                    "\"{collection}.{field}\" ({}) cannot refer to \"{}.{}\" ({}).",
                    column.kind, target.collection, pk.field, pk.kind
                )));
            }
            if on_delete == ReferentialAction::SetNull && !column.nullable {
                return Err(invalid(format!(
                    "\"{collection}.{field}\" is required, so it cannot be set to null on delete."
                )));
            }
        }
        let meta = payload.get("meta").map(client_meta).unwrap_or_default();
        let mut row = Map::new();
        for key in [
            "one_field",
            "one_collection_field",
            "junction_field",
            "sort_field",
            "one_deselect_action",
        ] {
            if let Some(v) = meta.get(key) {
                row.insert(key.into(), v.clone());
            }
        }
        if let Some(v) = meta.get("one_allowed_collections") {
            row.insert("one_allowed_collections".into(), v.clone());
        }
        row.insert("many_collection".into(), collection.into());
        row.insert("many_field".into(), field.into());
        row.insert(
            "one_collection".into(),
            related.map_or(Json::Null, Json::from),
        );

        let dialect = self.db.dialect();
        let mut change = Change::start(self.db, &self.schema).await?;
        if let (Some(_), Some(target)) = (schema, related_table) {
            let pk = target.primary_key.clone();
            let outcome = match dialect {
                Dialect::Sqlite => {
                    change
                        .rebuild(
                            collection,
                            vec![TableChange::AddForeignKey {
                                column: field.into(),
                                foreign_table: target.collection.clone(),
                                foreign_column: pk,
                                on_delete,
                                on_update,
                            }],
                            vec![TableChange::DropForeignKey {
                                column: field.into(),
                            }],
                        )
                        .await
                }
                _ => {
                    let name = constraint_name(collection, field, "foreign");
                    let create = ForeignKey::create()
                        .name(name.clone())
                        .from(collection.to_string(), field.to_string())
                        .to(target.collection.clone(), pk)
                        .on_delete(fk_action(on_delete))
                        .on_update(fk_action(on_update))
                        .to_owned();
                    let drop = ForeignKey::drop()
                        .name(name)
                        .table(collection.to_string())
                        .to_owned();
                    change
                        .ddl(
                            &dialect.build_schema(&create),
                            Some(Undo::Sql(dialect.build_schema(&drop))),
                        )
                        .await
                }
            };
            if let Err(e) = outcome {
                return Err(change.fail(e).await);
            }
        }
        let outcome = async {
            change.insert("directus_relations", row).await?;
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "create",
                        "directus_relations",
                        &format!("{collection}.{field}"),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await?,
            Err(e) => return Err(change.fail(e).await),
        }
        Ok((collection.to_string(), field.to_string()))
    }

    /// `PATCH /relations/:collection/:field`: the metadata.
    pub async fn update_relation(
        &self,
        collection: &str,
        field: &str,
        payload: &Json,
    ) -> Result<(), ApiError> {
        self.require_admin()?;
        if self.schema.many_to_one(collection, field).is_none() {
            return Err(ApiError::forbidden());
        }
        let meta = payload.get("meta").map(client_meta).unwrap_or_default();
        let has_meta = self
            .meta_rows()
            .await?
            .relations
            .iter()
            .any(|r| r["many_collection"] == collection && r["many_field"] == field);
        let mut change = Change::start(self.db, &self.schema).await?;
        let outcome = async {
            if has_meta {
                change
                    .update(
                        "directus_relations",
                        meta,
                        where_eq(&[("many_collection", collection), ("many_field", field)]),
                    )
                    .await?;
            } else {
                let mut row = meta;
                row.insert("many_collection".into(), collection.into());
                row.insert("many_field".into(), field.into());
                row.insert(
                    "one_collection".into(),
                    self.schema
                        .many_to_one(collection, field)
                        .and_then(|r| r.one_collection.clone())
                        .map_or(Json::Null, Json::from),
                );
                change.insert("directus_relations", row).await?;
            }
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "update",
                        "directus_relations",
                        &format!("{collection}.{field}"),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }

    /// `DELETE /relations/:collection/:field`: the foreign key and the metadata row.
    pub async fn delete_relation(&self, collection: &str, field: &str) -> Result<(), ApiError> {
        self.require_admin()?;
        let relation = self
            .schema
            .many_to_one(collection, field)
            .cloned()
            .ok_or_else(ApiError::forbidden)?;
        let mut change = Change::start(self.db, &self.schema).await?;
        if let Some(fk) = &relation.foreign_key
            && change.dialect == Dialect::Sqlite
        {
            let target = relation.one_collection.clone().unwrap_or_default();
            let pk = self
                .schema
                .collection(&target)
                .map(|c| c.primary_key.clone())
                .unwrap_or_else(|| "id".into());
            let outcome = change
                .rebuild(
                    collection,
                    vec![TableChange::DropForeignKey {
                        column: field.into(),
                    }],
                    vec![TableChange::AddForeignKey {
                        column: field.into(),
                        foreign_table: target,
                        foreign_column: pk,
                        on_delete: fk.on_delete,
                        on_update: fk.on_update,
                    }],
                )
                .await;
            if let Err(e) = outcome {
                return Err(change.fail(e).await);
            }
        }
        let outcome = async {
            if let Some(fk) = &relation.foreign_key
                && change.dialect != Dialect::Sqlite
            {
                self.drop_foreign_key(
                    &mut change,
                    collection,
                    field,
                    fk.constraint_name.clone(),
                    None,
                )
                .await?;
            }
            change
                .delete(
                    "directus_relations",
                    where_eq(&[("many_collection", collection), ("many_field", field)]),
                )
                .await?;
            change
                .insert(
                    "directus_activity",
                    activity(
                        self,
                        "delete",
                        "directus_relations",
                        &format!("{collection}.{field}"),
                    ),
                )
                .await?;
            Ok::<_, ApiError>(())
        }
        .await;
        match outcome {
            Ok(()) => change.commit().await,
            Err(e) => Err(change.fail(e).await),
        }
    }
}

fn quote_for(dialect: Dialect, name: &str) -> String {
    match dialect {
        Dialect::MySql => format!("`{}`", name.replace('`', "``")),
        _ => quote(name),
    }
}

fn current_default(field: &rectus_policies::Field) -> Json {
    match &field.default_value {
        Some(rectus_policies::DefaultValue::Literal(v)) => v.clone(),
        Some(rectus_policies::DefaultValue::CurrentTimestamp) => json!("CURRENT_TIMESTAMP"),
        _ => Json::Null,
    }
}

/// The field as it is now, in the form a new one is described in.
fn existing_as_new(field: &rectus_policies::Field) -> NewField {
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
fn pg_alter_column(
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
fn pg_type_name(field: &NewField) -> String {
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
fn sqlite_column_text(def: &ColumnDef) -> String {
    let sql = Dialect::Sqlite.build_schema(Table::create().table("t").col(def.clone()));
    let start = sql.find('(').map_or(0, |i| i + 1);
    let end = sql.rfind(')').unwrap_or(sql.len());
    sql[start..end].trim().to_string()
}
