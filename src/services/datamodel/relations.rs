//! Creating, changing and deleting relations.

use rectus_policies::{FieldType, ReferentialAction};
use sea_query::ForeignKey;
use serde_json::{Map, Value as Json};

use super::DataModel;
use super::change::{Change, Undo};
use super::read::client_meta;
use super::spec::*;
use crate::db::sqlite_rebuild::TableChange;
use crate::db::{Dialect, DialectExt};
use crate::error::ApiError;

impl DataModel<'_> {
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
        change.finish(outcome).await?;
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
        change.finish(outcome).await
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
        change.finish(outcome).await
    }
}
