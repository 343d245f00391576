//! Items of any collection (user or system), read and written under the caller's
//! permissions. Reads are one statement (plus meta counts); writes of one request run in one
//! transaction and either all happen or none does.

use rectus_policies::filter::ParseOptions;
use rectus_policies::value::Scalar;
use rectus_policies::{Action, Collection, FieldType, Rules, SchemaOverview};
use serde_json::{Map, Value as Json};

use super::authz::{Authz, Caller};
use crate::db::{Database, DbValue};
use crate::error::ApiError;
pub(crate) use crate::planner::read::forbidden_field;
use crate::planner::read::key_value;
use crate::planner::{PlanCache, PlanContext, Query, ReadPlan, plan_read};

/// A page of items as JSON text, and the meta Directus returns when asked.
pub struct Listing {
    pub data: String,
    pub meta: Option<Json>,
}

pub struct Items<'a> {
    pub db: &'a Database,
    pub schema: &'a SchemaOverview,
    pub caller: &'a Caller,
    pub authz: &'a Authz,
    pub default_limit: i64,
    pub max_limit: i64,
    /// Plans kept for reuse, and the generation of data model and permissions they are
    /// valid for; `None` plans every read afresh.
    pub plans: Option<(&'a PlanCache, u64)>,
}

fn scalar_json(s: &Scalar) -> Json {
    s.to_json()
}

fn key_db_value(collection: &Collection, key: &Scalar) -> DbValue {
    match (key, collection.primary_key_field().map(|f| f.kind)) {
        (Scalar::Text(s), Some(FieldType::Uuid)) => {
            uuid::Uuid::parse_str(s).map_or_else(|_| DbValue::Text(s.clone()), DbValue::Uuid)
        }
        (Scalar::Int(i), _) => DbValue::Int(*i),
        (other, _) => DbValue::Text(match other.to_json() {
            Json::String(s) => s,
            j => j.to_string(),
        }),
    }
}

impl<'a> Items<'a> {
    fn plan_context(&self) -> PlanContext<'a> {
        PlanContext {
            schema: self.schema,
            dialect: self.db.dialect(),
            caller: self.caller,
            default_limit: self.default_limit,
            max_limit: self.max_limit,
        }
    }

    fn plan(
        &self,
        collection: &str,
        query: &Query,
        keys: Option<&[Scalar]>,
    ) -> Result<ReadPlan, ApiError> {
        let ctx = self.plan_context();
        match self.plans {
            Some((cache, generation)) => cache.plan(&ctx, generation, collection, query, keys),
            None => plan_read(&ctx, collection, query, keys),
        }
    }

    fn collection(&self, name: &str) -> Result<&'a Collection, ApiError> {
        self.schema.collection(name).ok_or_else(ApiError::forbidden)
    }

    async fn count(&self, stmt: Option<crate::db::Stmt>) -> Result<Option<i64>, ApiError> {
        let Some(stmt) = stmt else { return Ok(None) };
        let row = self.db.query_opt(&stmt).await?;
        Ok(Some(
            row.map(|r| r.get::<i64>("count")).transpose()?.unwrap_or(0),
        ))
    }

    pub async fn read_many(&self, collection: &str, query: &Query) -> Result<Listing, ApiError> {
        let plan = self.plan(collection, query, None)?;
        let data = plan.finish(match plan.data_is_array {
            true => match self.db.query_opt(&plan.data).await? {
                Some(row) => row.into_string("__json")?,
                None => "[]".to_string(),
            },
            false => self.db.json_array(&plan.data, "__json").await?,
        });
        let total = self.count(plan.total_count).await?;
        let filtered = self.count(plan.filter_count).await?;
        let meta = (total.is_some() || filtered.is_some()).then(|| {
            let mut m = Map::new();
            if let Some(t) = total {
                m.insert("total_count".into(), t.into());
            }
            if let Some(f) = filtered {
                m.insert("filter_count".into(), f.into());
            }
            Json::Object(m)
        });
        Ok(Listing { data, meta })
    }

    /// The one item of a singleton collection; the field defaults when it has none yet.
    pub async fn read_singleton(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<String, ApiError> {
        let c = self.collection(collection)?;
        let one = Query {
            limit: Some(1),
            offset: None,
            page: None,
            meta: vec![],
            ..query.clone()
        };
        let listing = self.read_many(collection, &one).await?;
        let items: Vec<Json> =
            serde_json::from_str(&listing.data).map_err(|e| ApiError::internal(&e))?;
        if let Some(item) = items.into_iter().next() {
            return Ok(item.to_string());
        }
        let rules = self.rules(c, Action::Read)?;
        let defaults: Map<String, Json> = c
            .fields
            .values()
            .filter(|f| !f.is_alias() && rules.field_allowed(&f.field))
            .map(|f| {
                let value = match &f.default_value {
                    Some(rectus_policies::DefaultValue::Literal(v)) => v.clone(),
                    _ => Json::Null,
                };
                (f.field.clone(), value)
            })
            .collect();
        Ok(Json::Object(defaults).to_string())
    }

    /// Writes the one item of a singleton collection: updates it, or creates it first.
    pub async fn upsert_singleton(&self, collection: &str, payload: &Json) -> Result<(), ApiError> {
        let c = self.collection(collection)?;
        let existing = self
            .keys_by_query(
                collection,
                &Query {
                    limit: Some(1),
                    sort: vec![c.primary_key.clone()],
                    ..Query::default()
                },
            )
            .await?;
        if existing.is_empty() {
            self.create(collection, std::slice::from_ref(payload))
                .await?;
        } else {
            self.update(collection, &existing, payload).await?;
        }
        Ok(())
    }

    /// Items by key, as a JSON array, in the order the query sorts them.
    pub async fn read_by_keys(
        &self,
        collection: &str,
        keys: &[Scalar],
        query: &Query,
    ) -> Result<String, ApiError> {
        let plan = self.plan(collection, query, Some(keys))?;
        Ok(plan.finish(self.db.json_array(&plan.data, "__json").await?))
    }

    /// One item; a missing item and one the caller may not see are both FORBIDDEN.
    pub async fn read_one(
        &self,
        collection: &str,
        key: &Json,
        query: &Query,
    ) -> Result<String, ApiError> {
        let c = self.collection(collection)?;
        let key = key_value(c, key).ok_or_else(ApiError::forbidden)?;
        let plan = self.plan(collection, query, Some(&[key]))?;
        let rows = match plan.small {
            true => self.db.query_small(&plan.data).await?,
            false => self.db.query(&plan.data).await?,
        };
        match rows.into_iter().next() {
            Some(row) => Ok(plan.finish(row.into_string("__json")?)),
            None => Err(ApiError::forbidden()),
        }
    }

    fn rules(&self, collection: &Collection, action: Action) -> Result<Rules<'a>, ApiError> {
        if collection.view && action != Action::Read {
            return Err(ApiError::forbidden());
        }
        self.caller
            .permissions
            .rules(&collection.collection, action)
            .ok_or_else(ApiError::forbidden)
    }

    fn rule_options(&self, allow_regex: bool, root: &'static str) -> ParseOptions<'a> {
        ParseOptions {
            schema: self.schema,
            variables: &self.caller.variables,
            allow_regex,
            access: None,
            root,
        }
    }

    /// Checks a payload against the rules and returns it completed: presets under it, the
    /// fields Directus fills itself (`user-created`, `date-updated`, ...) over it.
    /// The keys of the items a query selects (for updates and deletes by query).
    pub async fn keys_by_query(
        &self,
        collection: &str,
        query: &Query,
    ) -> Result<Vec<Json>, ApiError> {
        let c = self.collection(collection)?;
        let listing = self
            .read_many(
                collection,
                &Query {
                    fields: vec![c.primary_key.clone()],
                    meta: vec![],
                    ..query.clone()
                },
            )
            .await?;
        let items: Vec<Json> =
            serde_json::from_str(&listing.data).map_err(|e| ApiError::internal(&e))?;
        Ok(items
            .into_iter()
            .filter_map(|i| i.get(&c.primary_key).cloned())
            .collect())
    }
}

mod nested;
mod write;

pub use write::{Created, ReadBack};
