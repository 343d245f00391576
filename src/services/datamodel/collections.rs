//! Creating, changing and deleting collections.

use rectus_policies::Collection;
use sea_query::{Condition, Expr, ExprTrait, Table};
use serde_json::{Value as Json, json};

use super::DataModel;
use super::change::{Change, Undo};
use super::read::client_meta;
use super::spec::*;
use crate::db::DialectExt;
use crate::error::ApiError;

impl DataModel<'_> {
    pub(super) fn require_admin(&self) -> Result<(), ApiError> {
        if self.caller.is_admin() {
            Ok(())
        } else {
            Err(ApiError::forbidden())
        }
    }

    pub(super) fn table(&self, name: &str) -> Result<&Collection, ApiError> {
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
        change.finish(outcome).await?;
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
        change.finish(outcome).await
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
        change.finish(outcome).await
    }
}
