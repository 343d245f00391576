//! Collections, fields and relations in Directus's response shape: `{collection, meta,
//! schema}`, `{collection, field, type, meta, schema}`, `{collection, field,
//! related_collection, meta, schema}`. `schema` comes from the database (introspection),
//! `meta` from the `directus_*` rows; either may be `null`.

use rectus_policies::{Collection, DefaultValue, Field, Relation, SchemaOverview};
use serde_json::{Map, Value as Json, json};

/// The metadata rows, keyed for lookup.
#[derive(Debug, Default)]
pub struct MetaRows {
    pub collections: Vec<Json>,
    pub fields: Vec<Json>,
    pub relations: Vec<Json>,
}

impl MetaRows {
    fn collection(&self, name: &str) -> Option<&Json> {
        self.collections.iter().find(|r| r["collection"] == name)
    }

    fn field(&self, collection: &str, field: &str) -> Option<&Json> {
        self.fields
            .iter()
            .find(|r| r["collection"] == collection && r["field"] == field)
    }

    fn relation(&self, collection: &str, field: &str) -> Option<&Json> {
        self.relations
            .iter()
            .find(|r| r["many_collection"] == collection && r["many_field"] == field)
    }
}

/// Directus keeps `special` as a comma-separated string and answers it as a list.
fn meta_out(row: &Json) -> Json {
    let mut row = row.clone();
    if let Some(Json::String(s)) = row.get("special") {
        let list: Vec<Json> = s
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Json::String(s.to_string()))
            .collect();
        row["special"] = Json::Array(list);
    }
    row
}

fn system_meta(collection: &str) -> Json {
    json!({"collection": collection, "hidden": false, "singleton": false, "icon": null,
           "note": null, "accountability": null, "system": true})
}

pub fn collection_json(collection: &Collection, meta: &MetaRows) -> Json {
    let meta = match meta.collection(&collection.collection) {
        Some(row) => meta_out(row),
        None if collection.system => system_meta(&collection.collection),
        None => Json::Null,
    };
    json!({
        "collection": collection.collection,
        "meta": meta,
        "schema": {"name": collection.collection, "comment": null},
    })
}

/// Every collection: tables and views, then folders (metadata rows without a table).
pub fn collections_json(
    schema: &SchemaOverview,
    meta: &MetaRows,
    visible: impl Fn(&str) -> bool,
) -> Vec<Json> {
    let mut out: Vec<Json> = schema
        .collections
        .values()
        .filter(|c| visible(&c.collection))
        .map(|c| collection_json(c, meta))
        .collect();
    for row in &meta.collections {
        let Some(name) = row["collection"].as_str() else {
            continue;
        };
        if schema.collection(name).is_none() && visible(name) {
            out.push(json!({"collection": name, "meta": meta_out(row), "schema": null}));
        }
    }
    out
}

fn default_json(default: &Option<DefaultValue>) -> Json {
    match default {
        None => Json::Null,
        Some(DefaultValue::Literal(v)) => v.clone(),
        Some(DefaultValue::CurrentTimestamp) => Json::String("CURRENT_TIMESTAMP".into()),
        Some(DefaultValue::Expression(e)) => Json::String(e.clone()),
    }
}

pub fn field_json(
    schema: &SchemaOverview,
    collection: &Collection,
    field: &Field,
    meta: &MetaRows,
) -> Json {
    let name = collection.collection.as_str();
    let relation = schema.many_to_one(name, &field.field);
    let column = (!field.is_alias()).then(|| {
        json!({
            "name": field.field,
            "table": name,
            "data_type": field.db_type,
            "default_value": default_json(&field.default_value),
            "max_length": field.max_length,
            "numeric_precision": field.precision,
            "numeric_scale": field.scale,
            "is_nullable": field.nullable,
            "is_unique": field.unique,
            "is_primary_key": field.primary_key,
            "is_generated": false,
            "generation_expression": null,
            "has_auto_increment": field.auto_increment,
            "foreign_key_table": relation.and_then(|r| r.foreign_key.as_ref().and(r.one_collection.clone())),
            "foreign_key_column": relation
                .filter(|r| r.foreign_key.is_some())
                .and_then(|r| r.one_collection.as_deref())
                .and_then(|c| schema.collection(c))
                .map(|c| c.primary_key.clone()),
            "comment": null,
        })
    });
    json!({
        "collection": name,
        "field": field.field,
        "type": field.kind.as_str(),
        "meta": meta.field(name, &field.field).map(meta_out).unwrap_or(Json::Null),
        "schema": column.unwrap_or(Json::Null),
    })
}

pub fn relation_json(schema: &SchemaOverview, relation: &Relation, meta: &MetaRows) -> Json {
    let fk = relation.foreign_key.as_ref().map(|fk| {
        json!({
            "table": relation.many_collection,
            "column": relation.many_field,
            "foreign_key_table": relation.one_collection,
            "foreign_key_column": relation.one_collection.as_deref()
                .and_then(|c| schema.collection(c)).map(|c| c.primary_key.clone()),
            "constraint_name": fk.constraint_name,
            "on_update": fk.on_update.as_sql(),
            "on_delete": fk.on_delete.as_sql(),
        })
    });
    json!({
        "collection": relation.many_collection,
        "field": relation.many_field,
        "related_collection": relation.one_collection,
        "meta": meta.relation(&relation.many_collection, &relation.many_field).cloned().unwrap_or(Json::Null),
        "schema": fk.unwrap_or(Json::Null),
    })
}

/// The `meta` object a client sends, without the keys rectus owns.
pub fn client_meta(meta: &Json) -> Map<String, Json> {
    let mut map = meta.as_object().cloned().unwrap_or_default();
    for owned in ["id", "collection", "field", "system"] {
        map.remove(owned);
    }
    map
}
