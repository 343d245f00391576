//! Schema snapshots: the user's collections, fields and relations as one portable document
//! (no database-specific type names, constraint names or row ids), so a snapshot taken on
//! one database kind applies to another. A diff against the current schema carries the
//! hash of that schema, and applying it refuses when the schema has drifted since.

use serde_json::{Map, Value as Json, json};
use sha2::{Digest, Sha256};

use super::DataModel;
use crate::error::{ApiError, ErrorCode};

/// The snapshot format's version.
pub const SNAPSHOT_VERSION: i64 = 1;

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. {}", message.into()),
    )
}

fn strip(value: &mut Json, keys: &[&str]) {
    if let Some(map) = value.as_object_mut() {
        for k in keys {
            map.remove(*k);
        }
    }
}

fn user(item: &Json) -> bool {
    item["collection"]
        .as_str()
        .is_some_and(|c| !c.starts_with("directus_"))
}

fn sorted(mut items: Vec<Json>, key: impl Fn(&Json) -> String) -> Vec<Json> {
    items.sort_by_key(|i| key(i));
    items
}

fn field_key(i: &Json) -> String {
    format!(
        "{}\u{0}{}",
        i["collection"].as_str().unwrap_or(""),
        i["field"].as_str().unwrap_or("")
    )
}

fn collection_key(i: &Json) -> String {
    i["collection"].as_str().unwrap_or("").to_string()
}

/// The canonical text a hash is taken of: keys sorted at every level.
fn canonical(value: &Json) -> String {
    fn sort(value: &Json) -> Json {
        match value {
            Json::Object(map) => {
                let mut keys: Vec<&String> = map.keys().collect();
                keys.sort();
                Json::Object(
                    keys.into_iter()
                        .map(|k| (k.clone(), sort(&map[k])))
                        .collect(),
                )
            }
            Json::Array(items) => Json::Array(items.iter().map(sort).collect()),
            other => other.clone(),
        }
    }
    sort(value).to_string()
}

pub fn hash(snapshot: &Json) -> String {
    Sha256::digest(canonical(snapshot).as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Reads a snapshot from JSON or YAML text (Directus writes YAML by default).
pub fn parse(text: &str) -> Result<Json, ApiError> {
    let value: Json = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(_) => yaml_serde::from_str(text)
            .map_err(|e| invalid(format!("the snapshot is neither JSON nor YAML: {e}")))?,
    };
    // `{data: snapshot}` as the snapshot endpoint answers it is accepted too.
    let value = match value.get("data") {
        Some(inner) if inner.get("collections").is_some() => inner.clone(),
        _ => value,
    };
    for key in ["collections", "fields", "relations"] {
        if !value.get(key).is_some_and(Json::is_array) {
            return Err(invalid(format!("a snapshot needs a \"{key}\" list")));
        }
    }
    Ok(value)
}

pub fn to_yaml(snapshot: &Json) -> Result<String, ApiError> {
    yaml_serde::to_string(snapshot).map_err(|e| ApiError::internal(&e))
}

/// One difference between the current schema and a target.
fn entry(current: Option<&Json>, target: Option<&Json>) -> Option<Json> {
    match (current, target) {
        (None, Some(t)) => Some(json!({"kind": "N", "rhs": t})),
        (Some(c), None) => Some(json!({"kind": "D", "lhs": c})),
        (Some(c), Some(t)) if canonical(c) != canonical(t) => {
            Some(json!({"kind": "E", "lhs": c, "rhs": t}))
        }
        _ => None,
    }
}

fn diff_list(
    current: &[Json],
    target: &[Json],
    key: impl Fn(&Json) -> String,
    ident: impl Fn(&Json) -> Map<String, Json>,
) -> Vec<Json> {
    let mut keys: Vec<String> = current.iter().chain(target).map(&key).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter_map(|k| {
            let c = current.iter().find(|i| key(i) == k);
            let t = target.iter().find(|i| key(i) == k);
            let change = entry(c, t)?;
            let mut out = ident(c.or(t)?);
            out.insert("diff".into(), Json::Array(vec![change]));
            Some(Json::Object(out))
        })
        .collect()
}

fn ident(item: &Json, keys: &[&str]) -> Map<String, Json> {
    keys.iter()
        .map(|k| (k.to_string(), item[*k].clone()))
        .collect()
}

impl DataModel<'_> {
    /// The portable snapshot of the user's data model.
    pub async fn snapshot(&self) -> Result<Json, ApiError> {
        if !self.caller.is_admin() {
            return Err(ApiError::forbidden());
        }
        let collections = self
            .collections()
            .await?
            .into_iter()
            .filter(user)
            .map(|mut c| {
                if let Some(schema) = c.get_mut("schema").filter(|s| s.is_object()) {
                    strip(schema, &["comment"]);
                }
                c
            })
            .collect();
        let fields = self
            .fields(None)
            .await?
            .into_iter()
            .filter(user)
            .map(|mut f| {
                strip(&mut f["meta"], &["id"]);
                if f["schema"].is_object() {
                    strip(
                        &mut f["schema"],
                        &[
                            "data_type",
                            "comment",
                            "is_generated",
                            "generation_expression",
                            "foreign_key_column",
                        ],
                    );
                }
                f
            })
            .collect();
        let relations = self
            .relations(None)
            .await?
            .into_iter()
            .filter(user)
            .map(|mut r| {
                strip(&mut r["meta"], &["id"]);
                if r["schema"].is_object() {
                    strip(&mut r["schema"], &["constraint_name", "foreign_key_column"]);
                }
                r
            })
            .collect();
        Ok(json!({
            "version": SNAPSHOT_VERSION,
            "collections": sorted(collections, collection_key),
            "fields": sorted(fields, field_key),
            "relations": sorted(relations, field_key),
        }))
    }

    /// What applying `target` would change: `{hash, diff}`, or `None` when nothing.
    pub async fn diff(&self, target: &Json) -> Result<Option<Json>, ApiError> {
        let current = self.snapshot().await?;
        let list = |s: &Json, k: &str| s[k].as_array().cloned().unwrap_or_default();
        let collections = diff_list(
            &list(&current, "collections"),
            &list(target, "collections"),
            collection_key,
            |i| ident(i, &["collection"]),
        );
        let fields = diff_list(
            &list(&current, "fields"),
            &list(target, "fields"),
            field_key,
            |i| ident(i, &["collection", "field"]),
        );
        let relations = diff_list(
            &list(&current, "relations"),
            &list(target, "relations"),
            field_key,
            |i| ident(i, &["collection", "field"]),
        );
        if collections.is_empty() && fields.is_empty() && relations.is_empty() {
            return Ok(None);
        }
        Ok(Some(json!({
            "hash": hash(&current),
            "diff": {"collections": collections, "fields": fields, "relations": relations},
        })))
    }

    /// Applies a diff made by [`diff`](Self::diff) against the schema as it still is.
    /// Each step is its own change: a failure stops the run and reports which step failed,
    /// the steps before it staying applied.
    pub async fn apply(&self, plan: &Json) -> Result<(), ApiError> {
        let db = self.db;
        let refresh =
            async || -> Result<std::sync::Arc<rectus_policies::SchemaOverview>, ApiError> {
                Ok(std::sync::Arc::new(
                    crate::db::introspect::introspect(db).await?,
                ))
            };
        if !self.caller.is_admin() {
            return Err(ApiError::forbidden());
        }
        let current = self.snapshot().await?;
        if plan["hash"].as_str() != Some(hash(&current).as_str()) {
            return Err(invalid(
                "the schema has changed since this diff was made: make a new diff",
            ));
        }
        let changes = |k: &str| -> Vec<(Json, Json)> {
            plan["diff"][k]
                .as_array()
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .filter_map(|item| {
                    let change = item["diff"].as_array()?.first()?.clone();
                    Some((item, change))
                })
                .collect()
        };
        let kind = |c: &Json, k: &str| c["kind"] == k;
        let collections = changes("collections");
        let fields = changes("fields");
        let relations = changes("relations");
        let mut model = DataModel {
            db: self.db,
            schema: self.schema.clone(),
            caller: self.caller,
            authz: self.authz,
        };

        // New collections come with their new fields (the primary key among them).
        for (item, change) in collections.iter().filter(|(_, c)| kind(c, "N")) {
            let target = &change["rhs"];
            let name = item["collection"].as_str().unwrap_or("");
            let own: Vec<Json> = fields
                .iter()
                .filter(|(f, c)| f["collection"] == name && kind(c, "N"))
                .map(|(_, c)| c["rhs"].clone())
                .collect();
            let mut payload = target.clone();
            payload["fields"] = Json::Array(own);
            if target["schema"].is_object() {
                payload["schema"] = json!({});
            }
            model
                .create_collection(&payload)
                .await
                .map_err(|e| step("create collection", name, e))?;
            model.schema = refresh().await?;
        }
        let new_collections: Vec<&str> = collections
            .iter()
            .filter(|(_, c)| kind(c, "N"))
            .filter_map(|(i, _)| i["collection"].as_str())
            .collect();
        for (item, change) in &fields {
            let (c, f) = (
                item["collection"].as_str().unwrap_or(""),
                item["field"].as_str().unwrap_or(""),
            );
            if kind(change, "N") && !new_collections.contains(&c) {
                model
                    .create_field(c, &change["rhs"])
                    .await
                    .map_err(|e| step("create field", &format!("{c}.{f}"), e))?;
                model.schema = refresh().await?;
            } else if kind(change, "E") {
                model
                    .update_field(c, f, &change["rhs"])
                    .await
                    .map_err(|e| step("update field", &format!("{c}.{f}"), e))?;
                model.schema = refresh().await?;
            }
        }
        for (item, change) in &relations {
            let (c, f) = (
                item["collection"].as_str().unwrap_or(""),
                item["field"].as_str().unwrap_or(""),
            );
            let name = format!("{c}.{f}");
            if kind(change, "D")
                || (kind(change, "E") && change["lhs"]["schema"] != change["rhs"]["schema"])
            {
                model
                    .delete_relation(c, f)
                    .await
                    .map_err(|e| step("delete relation", &name, e))?;
                model.schema = refresh().await?;
            }
            if kind(change, "N")
                || (kind(change, "E") && change["lhs"]["schema"] != change["rhs"]["schema"])
            {
                model
                    .create_relation(&change["rhs"])
                    .await
                    .map_err(|e| step("create relation", &name, e))?;
                model.schema = refresh().await?;
            } else if kind(change, "E") {
                model
                    .update_relation(c, f, &change["rhs"])
                    .await
                    .map_err(|e| step("update relation", &name, e))?;
                model.schema = refresh().await?;
            }
        }
        for (item, change) in fields.iter().filter(|(_, c)| kind(c, "D")) {
            let (c, f) = (
                item["collection"].as_str().unwrap_or(""),
                item["field"].as_str().unwrap_or(""),
            );
            let going = collections
                .iter()
                .any(|(i, ch)| i["collection"] == c && kind(ch, "D"));
            if !going {
                model
                    .delete_field(c, f)
                    .await
                    .map_err(|e| step("delete field", &format!("{c}.{f}"), e))?;
                model.schema = refresh().await?;
            }
            let _ = change;
        }
        for (item, change) in &collections {
            let name = item["collection"].as_str().unwrap_or("");
            if kind(change, "D") {
                model
                    .delete_collection(name)
                    .await
                    .map_err(|e| step("delete collection", name, e))?;
                model.schema = refresh().await?;
            } else if kind(change, "E") {
                model
                    .update_collection(name, &change["rhs"])
                    .await
                    .map_err(|e| step("update collection", name, e))?;
                model.schema = refresh().await?;
            }
        }
        Ok(())
    }
}

fn step(what: &str, name: &str, error: ApiError) -> ApiError {
    ApiError::new(
        error.code,
        format!(
            "Applying the schema stopped at \"{what} {name}\": {}",
            error.message
        ),
    )
}
