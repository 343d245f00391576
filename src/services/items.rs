//! Items of any collection (user or system), read and written under the caller's
//! permissions. Reads are one statement (plus meta counts); writes of one request run in one
//! transaction and either all happen or none does.

use rectus_policies::filter::{self, ParseOptions, SqlContext};
use rectus_policies::permissions::ValidationOutcome;
use rectus_policies::value::Scalar;
use rectus_policies::{Action, Collection, Field, FieldType, Rules, SchemaOverview};
use sea_query::{Condition, Expr, LockType, Query as Sql};
use serde_json::{Map, Value as Json};

use super::activity::{Recorder, insert_returning_key, masked, values_json};
use super::authz::{AUTHZ_TABLES, Authz, Caller};
use crate::auth::password::hash_password;
use crate::db::{Conn, Database, DbValue, Dialect, DialectExt};
use crate::error::{ApiError, ErrorCode};
use crate::planner::read::{filter_error, key_value};
use crate::planner::{PlanContext, Query, plan_read, write};

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
}

fn forbidden_field(collection: &str, field: &str) -> ApiError {
    filter_error(filter::FilterError::Forbidden {
        collection: collection.to_string(),
        field: field.to_string(),
    })
}

fn json_array(rows: Vec<String>) -> String {
    let mut out = String::with_capacity(rows.iter().map(|r| r.len() + 1).sum::<usize>() + 2);
    out.push('[');
    for (i, row) in rows.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(row);
    }
    out.push(']');
    out
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

    fn collection(&self, name: &str) -> Result<&'a Collection, ApiError> {
        self.schema.collection(name).ok_or_else(ApiError::forbidden)
    }

    async fn rows(&self, stmt: &crate::db::Stmt) -> Result<Vec<String>, ApiError> {
        self.db
            .query(stmt)
            .await?
            .iter()
            .map(|r| r.get::<String>("__json").map_err(ApiError::from))
            .collect()
    }

    async fn count(&self, stmt: Option<crate::db::Stmt>) -> Result<Option<i64>, ApiError> {
        let Some(stmt) = stmt else { return Ok(None) };
        let row = self.db.query_opt(&stmt).await?;
        Ok(Some(
            row.map(|r| r.get::<i64>("count")).transpose()?.unwrap_or(0),
        ))
    }

    pub async fn read_many(&self, collection: &str, query: &Query) -> Result<Listing, ApiError> {
        let plan = plan_read(&self.plan_context(), collection, query, None)?;
        let data = json_array(self.rows(&plan.data).await?);
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
        let plan = plan_read(&self.plan_context(), collection, query, Some(keys))?;
        Ok(json_array(self.rows(&plan.data).await?))
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
        let plan = plan_read(&self.plan_context(), collection, query, Some(&[key]))?;
        self.rows(&plan.data)
            .await?
            .into_iter()
            .next()
            .ok_or_else(ApiError::forbidden)
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
    async fn prepare(
        &self,
        collection: &Collection,
        rules: &Rules<'_>,
        action: Action,
        payload: &Json,
    ) -> Result<Vec<(String, DbValue)>, ApiError> {
        let Json::Object(payload) = payload else {
            return Err(ApiError::new(
                ErrorCode::InvalidPayload,
                "Invalid payload. An item must be an object.",
            ));
        };
        let name = collection.collection.as_str();
        // Keys that are no field of the collection are ignored, as Directus ignores them.
        let payload: Map<String, Json> = payload
            .iter()
            .filter(|(k, _)| collection.field(k).is_some())
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if let Some(field) = rules.disallowed_field(&payload) {
            return Err(forbidden_field(name, field));
        }
        let mut merged = rules.presets();
        for (k, v) in &payload {
            merged.insert(k.clone(), v.clone());
        }
        let merged_json = Json::Object(merged.clone());
        match rules.validate(name, &merged_json, &self.rule_options(true, "validation")) {
            Ok(()) => {}
            Err(ValidationOutcome::Failed(e)) => {
                let mut error = ApiError::new(ErrorCode::FailedValidation, e.to_string())
                    .with_extension("field", e.field.clone())
                    .with_extension("type", e.kind.clone());
                if let Some(valid) = e.valid {
                    error = error.with_extension("valid", valid);
                }
                return Err(error);
            }
            Err(ValidationOutcome::Rule(e)) => {
                tracing::warn!(error = %e, "a validation rule cannot be applied");
                return Err(ApiError::forbidden());
            }
        }
        if action == Action::Create && !rules.is_admin() {
            // What a role may create is limited by its create rule, checked on the item.
            if let Some(allowed) = rules
                .item_filter(name, &self.rule_options(false, "permissions"))
                .map_err(|_| ApiError::forbidden())?
                && !filter::matches(&allowed, &merged_json)
            {
                return Err(ApiError::forbidden());
            }
        }
        let user = self.caller.accountability.user.clone();
        for field in collection.fields.values() {
            let special = |s: &str| field.has_special(s);
            let stamp = match action {
                Action::Create => special("date-created"),
                _ => special("date-updated"),
            };
            let by = match action {
                Action::Create => special("user-created"),
                _ => special("user-updated"),
            };
            if stamp {
                merged.insert(field.field.clone(), write::now_for(field).to_json());
            }
            if by {
                merged.insert(
                    field.field.clone(),
                    user.clone().map_or(Json::Null, Json::String),
                );
            }
        }
        if action == Action::Create
            && let Some(pk) = collection.primary_key_field()
            && pk.kind == FieldType::Uuid
            && !pk.auto_increment
            && merged.get(&pk.field).is_none_or(Json::is_null)
        {
            merged.insert(
                pk.field.clone(),
                Json::String(uuid::Uuid::new_v4().to_string()),
            );
        }
        self.finish_values(collection, merged).await
    }

    /// Hashes what must be hashed and applies per-collection rules, then types the values.
    async fn finish_values(
        &self,
        collection: &Collection,
        mut values: Map<String, Json>,
    ) -> Result<Vec<(String, DbValue)>, ApiError> {
        if collection.collection == "directus_users"
            && let Some(Json::String(email)) = values.get("email")
        {
            let lower = email.trim().to_lowercase();
            values.insert("email".into(), Json::String(lower));
        }
        let hashed: Vec<&Field> = collection
            .fields
            .values()
            .filter(|f| {
                f.kind == FieldType::Hash && values.get(&f.field).is_some_and(|v| !v.is_null())
            })
            .collect();
        for field in hashed {
            let Some(Json::String(plain)) = values.get(&field.field).cloned() else {
                return Err(ApiError::new(
                    ErrorCode::InvalidPayload,
                    format!("Invalid payload. \"{}\" must be text.", field.field),
                ));
            };
            let hash = tokio::task::spawn_blocking(move || hash_password(&plain))
                .await
                .map_err(|e| ApiError::internal(&e))?
                .map_err(|e| ApiError::internal(&e))?;
            values.insert(field.field.clone(), Json::String(hash));
        }
        let values = write::row_values(collection, &values)?;
        write::check_limits(self.db.dialect(), collection, &values)?;
        Ok(values)
    }

    fn after_write(&self, collection: &Collection) {
        if AUTHZ_TABLES.contains(&collection.collection.as_str()) {
            self.authz.invalidate();
        }
    }

    /// Creates items; returns their keys.
    pub async fn create(&self, collection: &str, items: &[Json]) -> Result<Vec<Json>, ApiError> {
        let c = self.collection(collection)?;
        let rules = self.rules(c, Action::Create)?;
        let mut rows = Vec::with_capacity(items.len());
        for item in items {
            rows.push(self.prepare(c, &rules, Action::Create, item).await?);
        }
        let mut conn = self.begin().await?;
        let result = self.create_in(&mut conn, c, rows).await;
        let keys = finish(conn, result).await?;
        self.after_write(c);
        Ok(keys)
    }

    fn recorder(&self) -> Recorder<'_> {
        Recorder {
            schema: self.schema,
            caller: self.caller,
        }
    }

    async fn create_in(
        &self,
        conn: &mut Conn,
        c: &Collection,
        rows: Vec<Vec<(String, DbValue)>>,
    ) -> Result<Vec<Json>, ApiError> {
        let mut keys = Vec::with_capacity(rows.len());
        for values in rows {
            let written = masked(c, values_json(&values));
            let key = insert_returning_key(conn, c, values).await?;
            let mut data = written.clone();
            if let Json::Object(map) = &mut data {
                map.insert(c.primary_key.clone(), key.clone());
            }
            self.recorder()
                .record(conn, "create", c, &key, Some((data, written)))
                .await?;
            keys.push(key);
        }
        Ok(keys)
    }

    /// The keys among `keys` the caller may act on with `action`, locked for the write.
    async fn permitted_keys(
        &self,
        conn: &mut Conn,
        collection: &Collection,
        rules: &Rules<'_>,
        keys: &[Scalar],
    ) -> Result<Vec<Scalar>, ApiError> {
        let dialect = conn.dialect();
        let name = collection.collection.as_str();
        let condition = match rules
            .item_filter(name, &self.rule_options(false, "permissions"))
            .map_err(|_| ApiError::forbidden())?
        {
            None => Condition::all(),
            Some(f) => filter::to_condition(&f, name, name, &SqlContext::new(self.schema, dialect))
                .map_err(|_| ApiError::forbidden())?,
        };
        let pk = collection.primary_key.clone();
        let mut select = Sql::select();
        select
            .expr_as(Expr::col((name.to_string(), pk.clone())), "key")
            .from(name.to_string())
            .cond_where(crate::planner::read::key_condition(collection, keys))
            .cond_where(condition);
        if dialect != Dialect::Sqlite {
            select.lock(LockType::Update);
        }
        let pk_field = collection
            .primary_key_field()
            .ok_or_else(ApiError::forbidden)?;
        conn.query(&dialect.build(&select)?)
            .await?
            .iter()
            .map(|r| {
                let v = r.value("key")?.to_json();
                key_value(collection, &v).ok_or_else(|| {
                    ApiError::internal(&format!("unreadable key in {name}.{}", pk_field.field))
                })
            })
            .collect()
    }

    fn keys_of(&self, collection: &Collection, keys: &[Json]) -> Result<Vec<Scalar>, ApiError> {
        keys.iter()
            .map(|k| key_value(collection, k).ok_or_else(ApiError::forbidden))
            .collect()
    }

    /// Updates the items with these keys; all must be permitted, or nothing changes. Admins
    /// updating keys that do not exist change nothing and get no error, as in Directus.
    pub async fn update(
        &self,
        collection: &str,
        keys: &[Json],
        payload: &Json,
    ) -> Result<Vec<Json>, ApiError> {
        let c = self.collection(collection)?;
        let rules = self.rules(c, Action::Update)?;
        let keys = self.keys_of(c, keys)?;
        let values = self.prepare(c, &rules, Action::Update, payload).await?;
        let mut conn = self.begin().await?;
        let result = self.update_in(&mut conn, c, &rules, &keys, values).await;
        let done = finish(conn, result).await?;
        self.after_write(c);
        Ok(done.iter().map(scalar_json).collect())
    }

    async fn update_in(
        &self,
        conn: &mut Conn,
        c: &Collection,
        rules: &Rules<'_>,
        keys: &[Scalar],
        values: Vec<(String, DbValue)>,
    ) -> Result<Vec<Scalar>, ApiError> {
        let permitted = self.permitted_keys(conn, c, rules, keys).await?;
        if !rules.is_admin() && permitted.len() != dedup_len(keys) {
            return Err(ApiError::forbidden());
        }
        if !permitted.is_empty() && !values.is_empty() {
            let delta = masked(c, values_json(&values));
            let db_keys: Vec<DbValue> = permitted.iter().map(|k| key_db_value(c, k)).collect();
            conn.execute(&write::update(conn.dialect(), c, values, &db_keys)?)
                .await
                .map_err(|e| ApiError::from_write(e, c))?;
            // An update may not move a row out of what the role may update.
            if !rules.is_admin()
                && self.permitted_keys(conn, c, rules, &permitted).await?.len() != permitted.len()
            {
                return Err(ApiError::forbidden());
            }
            for (key, db_key) in permitted.iter().zip(&db_keys) {
                let data = masked(c, self.recorder().current(conn, c, db_key).await?);
                self.recorder()
                    .record(
                        conn,
                        "update",
                        c,
                        &key.to_json(),
                        Some((data, delta.clone())),
                    )
                    .await?;
            }
        }
        Ok(permitted)
    }

    /// Deletes the items with these keys; all must be permitted, or nothing is deleted.
    pub async fn delete(&self, collection: &str, keys: &[Json]) -> Result<(), ApiError> {
        let c = self.collection(collection)?;
        let rules = self.rules(c, Action::Delete)?;
        let keys = self.keys_of(c, keys)?;
        let mut conn = self.begin().await?;
        let result = self.delete_in(&mut conn, c, &rules, &keys).await;
        finish(conn, result).await?;
        self.after_write(c);
        Ok(())
    }

    async fn delete_in(
        &self,
        conn: &mut Conn,
        c: &Collection,
        rules: &Rules<'_>,
        keys: &[Scalar],
    ) -> Result<(), ApiError> {
        let permitted = self.permitted_keys(conn, c, rules, keys).await?;
        if !rules.is_admin() && permitted.len() != dedup_len(keys) {
            return Err(ApiError::forbidden());
        }
        if !permitted.is_empty() {
            let db_keys: Vec<DbValue> = permitted.iter().map(|k| key_db_value(c, k)).collect();
            conn.execute(&write::delete(conn.dialect(), c, &db_keys)?)
                .await
                .map_err(|e| ApiError::from_write(e, c))?;
            for key in &permitted {
                self.recorder()
                    .record(conn, "delete", c, &key.to_json(), None)
                    .await?;
            }
        }
        Ok(())
    }

    async fn begin(&self) -> Result<Conn, ApiError> {
        let mut conn = self.db.acquire().await?;
        conn.begin().await?;
        Ok(conn)
    }

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

/// Commits when the work succeeded, rolls back when it did not.
async fn finish<T>(mut conn: Conn, result: Result<T, ApiError>) -> Result<T, ApiError> {
    match result {
        Ok(value) => {
            conn.commit().await?;
            Ok(value)
        }
        Err(e) => {
            if let Err(rollback) = conn.rollback().await {
                tracing::warn!(error = %rollback, "rollback failed; the connection is discarded");
            }
            Err(e)
        }
    }
}

fn dedup_len(keys: &[Scalar]) -> usize {
    let mut seen: Vec<&Scalar> = Vec::with_capacity(keys.len());
    for k in keys {
        if !seen.contains(&k) {
            seen.push(k);
        }
    }
    seen.len()
}
