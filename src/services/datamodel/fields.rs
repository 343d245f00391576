//! Creating, changing and deleting fields.

use sea_query::{ForeignKey, Table};
use serde_json::{Map, Value as Json, json};

use super::DataModel;
use super::change::{Change, Undo};
use super::read::client_meta;
use super::spec::*;
use crate::db::sqlite_rebuild::TableChange;
use crate::db::{Dialect, DialectExt};
use crate::error::ApiError;

impl DataModel<'_> {
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
        change.finish(outcome).await?;
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
        change.finish(outcome).await
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
        change.finish(outcome).await
    }

    pub(super) async fn drop_foreign_key(
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
}
