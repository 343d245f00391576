//! The metadata rows Directus keeps beside the schema: `directus_collections`,
//! `directus_fields`, `directus_relations`. rectus never needs them to serve a table, but
//! honours them where they exist.

use std::collections::HashMap;

use sea_query::{Order, Query};

use super::RawSchema;
use crate::db::{Conn, DbError, DialectExt, Row};

/// Directus `special` flags that make a field without a column an alias field.
const ALIAS_SPECIALS: &[&str] = &[
    "alias",
    "o2m",
    "m2m",
    "m2a",
    "files",
    "translations",
    "group",
    "no-data",
];

#[derive(Debug, Clone, Default)]
pub struct CollectionMeta {
    pub singleton: bool,
    pub hidden: bool,
    pub sort_field: Option<String>,
    pub note: Option<String>,
    pub accountability: Option<String>,
}

#[derive(Debug, Clone, Default)]
pub struct FieldMeta {
    pub collection: String,
    pub field: String,
    pub special: Vec<String>,
    pub note: Option<String>,
    pub searchable: bool,
    pub validation: Option<serde_json::Value>,
    pub required: bool,
}

#[derive(Debug, Clone, Default)]
pub struct RelationMeta {
    pub many_collection: String,
    pub many_field: String,
    pub one_collection: Option<String>,
    pub one_field: Option<String>,
    pub one_collection_field: Option<String>,
    pub one_allowed_collections: Vec<String>,
    pub junction_field: Option<String>,
    pub sort_field: Option<String>,
    pub one_deselect_action: String,
}

#[derive(Debug, Default)]
pub struct Metadata {
    collections: HashMap<String, CollectionMeta>,
    fields: Vec<FieldMeta>,
    pub relations: Vec<RelationMeta>,
}

impl Metadata {
    pub fn collection(&self, name: &str) -> Option<&CollectionMeta> {
        self.collections.get(name)
    }

    pub fn field(&self, collection: &str, field: &str) -> Option<&FieldMeta> {
        self.fields
            .iter()
            .find(|f| f.collection == collection && f.field == field)
    }

    pub(super) fn add_field(&mut self, field: FieldMeta) {
        self.fields.push(field);
    }

    /// Fields of `collection` that Directus keeps without a column.
    pub fn aliases<'a>(&'a self, collection: &'a str) -> impl Iterator<Item = &'a FieldMeta> {
        self.fields.iter().filter(move |f| {
            f.collection == collection
                && f.special
                    .iter()
                    .any(|s| ALIAS_SPECIALS.contains(&s.as_str()))
        })
    }
}

/// Splits Directus's comma-separated lists (`special`, `one_allowed_collections`).
fn csv(value: Option<String>) -> Vec<String> {
    value
        .map(|s| {
            s.split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(String::from)
                .collect()
        })
        .unwrap_or_default()
}

/// JSON columns are text on MySQL/SQLite; an unreadable document counts as absent.
fn json(row: &Row, column: &str) -> Option<serde_json::Value> {
    row.get::<Option<serde_json::Value>>(column)
        .ok()
        .flatten()
        .filter(|v| !v.is_null())
}

pub async fn read(conn: &mut Conn, raw: &RawSchema) -> Result<Metadata, DbError> {
    let mut meta = Metadata::default();
    let dialect = conn.dialect();
    if raw.has_table("directus_collections") {
        let select = Query::select()
            .columns([
                "collection",
                "singleton",
                "hidden",
                "sort_field",
                "note",
                "accountability",
            ])
            .from("directus_collections")
            .to_owned();
        for row in conn.query(&dialect.build(&select)?).await? {
            meta.collections.insert(
                row.get("collection")?,
                CollectionMeta {
                    singleton: row.get::<Option<bool>>("singleton")?.unwrap_or(false),
                    hidden: row.get::<Option<bool>>("hidden")?.unwrap_or(false),
                    sort_field: row.get("sort_field")?,
                    note: row.get("note")?,
                    accountability: row.get("accountability")?,
                },
            );
        }
    }
    if raw.has_table("directus_fields") {
        let select = Query::select()
            .columns([
                "collection",
                "field",
                "special",
                "note",
                "searchable",
                "validation",
                "required",
            ])
            .from("directus_fields")
            .order_by("id", Order::Asc)
            .to_owned();
        for row in conn.query(&dialect.build(&select)?).await? {
            meta.fields.push(FieldMeta {
                collection: row.get("collection")?,
                field: row.get("field")?,
                special: csv(row.get("special")?),
                note: row.get("note")?,
                searchable: row.get::<Option<bool>>("searchable")?.unwrap_or(true),
                validation: json(&row, "validation"),
                required: row.get::<Option<bool>>("required")?.unwrap_or(false),
            });
        }
    }
    if raw.has_table("directus_relations") {
        let select = Query::select()
            .columns([
                "many_collection",
                "many_field",
                "one_collection",
                "one_field",
                "one_collection_field",
                "one_allowed_collections",
                "junction_field",
                "sort_field",
                "one_deselect_action",
            ])
            .from("directus_relations")
            .order_by("id", Order::Asc)
            .to_owned();
        for row in conn.query(&dialect.build(&select)?).await? {
            meta.relations.push(RelationMeta {
                many_collection: row.get("many_collection")?,
                many_field: row.get("many_field")?,
                one_collection: row.get("one_collection")?,
                one_field: row.get("one_field")?,
                one_collection_field: row.get("one_collection_field")?,
                one_allowed_collections: csv(row.get("one_allowed_collections")?),
                junction_field: row.get("junction_field")?,
                sort_field: row.get("sort_field")?,
                one_deselect_action: row
                    .get::<Option<String>>("one_deselect_action")?
                    .unwrap_or_else(|| "nullify".into()),
            });
        }
    }
    super::system_relations::add(&mut meta, raw);
    Ok(meta)
}
