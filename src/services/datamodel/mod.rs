//! The data model: collections, fields and relations, read in Directus's shape and changed
//! as real DDL plus Directus's metadata rows. Changes are admin-only, validated before any
//! DDL runs, and leave nothing behind when they fail.

mod change;
mod collections;
mod fields;
mod read;
mod relations;
pub mod snapshot;
mod spec;

use std::sync::Arc;

use rectus_policies::{Action, SchemaOverview};
use serde_json::Value as Json;

use super::authz::{Authz, Caller};
use super::items::Items;
use crate::db::Database;
use crate::error::ApiError;
use crate::planner::Query;
pub use read::MetaRows;

pub struct DataModel<'a> {
    pub db: &'a Database,
    pub schema: Arc<SchemaOverview>,
    pub caller: &'a Caller,
    pub authz: &'a Authz,
}

impl<'a> DataModel<'a> {
    fn system_items<'s>(&'s self, caller: &'s Caller) -> Items<'s> {
        Items {
            db: self.db,
            schema: &self.schema,
            caller,
            authz: self.authz,
            default_limit: -1,
            max_limit: -1,
            plans: None,
        }
    }

    /// The `directus_collections`, `directus_fields` and `directus_relations` rows.
    pub async fn meta_rows(&self) -> Result<MetaRows, ApiError> {
        let system = Caller::system();
        let items = self.system_items(&system);
        let all = Query {
            limit: Some(-1),
            ..Query::default()
        };
        let mut rows = MetaRows::default();
        for (table, target) in [
            ("directus_collections", &mut rows.collections),
            ("directus_fields", &mut rows.fields),
            ("directus_relations", &mut rows.relations),
        ] {
            if self.schema.collection(table).is_none() {
                continue;
            }
            let listing = items.read_many(table, &all).await?;
            *target = serde_json::from_str(&listing.data).map_err(|e| ApiError::internal(&e))?;
        }
        Ok(rows)
    }

    fn can_read(&self, collection: &str) -> bool {
        self.caller
            .permissions
            .rules(collection, Action::Read)
            .is_some()
    }

    pub async fn collections(&self) -> Result<Vec<Json>, ApiError> {
        let meta = self.meta_rows().await?;
        Ok(read::collections_json(&self.schema, &meta, |c| {
            self.can_read(c)
        }))
    }

    pub async fn collection(&self, name: &str) -> Result<Json, ApiError> {
        self.collections()
            .await?
            .into_iter()
            .find(|c| c["collection"] == name)
            .ok_or_else(ApiError::forbidden)
    }

    /// The fields of one collection, or of every collection, that the caller may read.
    pub async fn fields(&self, collection: Option<&str>) -> Result<Vec<Json>, ApiError> {
        let meta = self.meta_rows().await?;
        let mut out = Vec::new();
        for c in self.schema.collections.values() {
            if collection.is_some_and(|name| name != c.collection) {
                continue;
            }
            let Some(rules) = self.caller.permissions.rules(&c.collection, Action::Read) else {
                continue;
            };
            for f in c.fields.values().filter(|f| rules.field_allowed(&f.field)) {
                out.push(read::field_json(&self.schema, c, f, &meta));
            }
        }
        if let Some(name) = collection
            && out.is_empty()
            && !self
                .schema
                .collection(name)
                .is_some_and(|_| self.can_read(name))
        {
            return Err(ApiError::forbidden());
        }
        Ok(out)
    }

    pub async fn field(&self, collection: &str, field: &str) -> Result<Json, ApiError> {
        self.fields(Some(collection))
            .await?
            .into_iter()
            .find(|f| f["field"] == field)
            .ok_or_else(ApiError::forbidden)
    }

    pub async fn relations(&self, collection: Option<&str>) -> Result<Vec<Json>, ApiError> {
        let meta = self.meta_rows().await?;
        Ok(self
            .schema
            .relations
            .iter()
            .filter(|r| collection.is_none_or(|c| r.many_collection == c))
            .filter(|r| self.can_read(&r.many_collection))
            .map(|r| read::relation_json(&self.schema, r, &meta))
            .collect())
    }

    pub async fn relation(&self, collection: &str, field: &str) -> Result<Json, ApiError> {
        self.relations(Some(collection))
            .await?
            .into_iter()
            .find(|r| r["field"] == field)
            .ok_or_else(ApiError::forbidden)
    }
}
