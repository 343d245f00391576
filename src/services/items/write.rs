//! Creating, updating and deleting items under the caller's permissions, in one
//! transaction per request.

use rectus_policies::filter::{self, SqlContext};
use rectus_policies::permissions::{ValidationOutcome, validate_fields};
use rectus_policies::value::Scalar;
use rectus_policies::{Action, Collection, Field, FieldType, Rules};
use sea_query::{Condition, Expr, LockType, Query as Sql};
use serde_json::{Map, Value as Json};

use super::nested::has_relational;
use super::{Items, forbidden_field, key_db_value, scalar_json};
use crate::auth::password;
use crate::db::{Conn, DbValue, Dialect, DialectExt};
use crate::error::{ApiError, ErrorCode};
use crate::planner::cache::create_statement_afresh;
use crate::planner::query::Query;
use crate::planner::read::key_value;
use crate::planner::write;
use crate::services::activity::{Recorder, insert_returning_key, masked, values_json};
use crate::services::authz::AUTHZ_TABLES;

/// What a create answers: the new keys, and maybe the new item as the caller reads it.
pub struct Created {
    pub keys: Vec<Json>,
    pub read_back: ReadBack,
}

pub enum ReadBack {
    /// Not read yet: the caller reads the keys.
    Later,
    /// Read in the create's statement; `None`: the caller may not read it.
    Read(Option<String>),
}

impl Items<'_> {
    pub(super) async fn prepare(
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
        rules
            .validate(name, &merged_json, &self.rule_options(true, "validation"))
            .map_err(validation_error)?;
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
        validate_fields(
            collection,
            &Json::Object(merged.clone()),
            action == Action::Create,
            &self.rule_options(true, "validation"),
        )
        .map_err(validation_error)?;
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
            let hash = password::hash(plain)
                .await
                .map_err(|e| ApiError::internal(&e))?;
            values.insert(field.field.clone(), Json::String(hash));
        }
        let values = write::row_values(collection, &values)?;
        write::check_limits(self.db.dialect(), collection, &values)?;
        Ok(values)
    }

    /// Permissions are cached: a write to a table they come from (directly or as a related
    /// item) drops the cache.
    fn after_write(&self, collection: &Collection, payloads: &[Json]) {
        if AUTHZ_TABLES.contains(&collection.collection.as_str())
            || payloads.iter().any(|p| has_relational(self, collection, p))
        {
            self.authz.invalidate();
        }
    }

    /// Creates items with their related items, all in one transaction; returns their keys.
    pub async fn create(&self, collection: &str, items: &[Json]) -> Result<Vec<Json>, ApiError> {
        Ok(self.create_and_read(collection, items, None).await?.keys)
    }

    /// Creates items as [`Self::create`] does; a single item is also read back with `read`
    /// as the caller sees it when that can happen in the create's own statement.
    pub async fn create_and_read(
        &self,
        collection: &str,
        items: &[Json],
        read: Option<&Query>,
    ) -> Result<Created, ApiError> {
        let c = self.collection(collection)?;
        let rules = self.rules(c, Action::Create)?;
        if let [item] = items
            && self.db.dialect() == Dialect::Postgres
            && !has_relational(self, c, item)
        {
            let created = self.create_alone(c, &rules, item, read).await?;
            self.after_write(c, items);
            return Ok(created);
        }
        let mut conn = self.begin().await?;
        let mut result = Ok(Vec::with_capacity(items.len()));
        for item in items {
            match self.create_item(&mut conn, c, item, 0).await {
                Ok(key) => {
                    if let Ok(keys) = &mut result {
                        keys.push(key);
                    }
                }
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        let keys = finish(conn, result).await?;
        self.after_write(c, items);
        Ok(Created {
            keys,
            read_back: ReadBack::Later,
        })
    }

    fn recorder(&self) -> Recorder<'_> {
        Recorder {
            schema: self.schema,
            caller: self.caller,
        }
    }

    /// One item with no related items, written with its activity and revision in ONE
    /// statement (PostgreSQL), outside any transaction of its own: creates arriving
    /// together share one (see [`crate::db::Database::query_grouped`]).
    async fn create_alone(
        &self,
        c: &Collection,
        rules: &Rules<'_>,
        item: &Json,
        read: Option<&Query>,
    ) -> Result<Created, ApiError> {
        // Without relational values, splitting the payload reads and writes nothing.
        let split = self.split(None, c, rules, item, 0).await?;
        let values = self.prepare(c, rules, Action::Create, &split.own).await?;
        let recorder = self.recorder();
        let parts = recorder.create_parts(c, values)?;
        let build = |read_back, inputs| recorder.create_statement(c, &parts, inputs, read_back);
        let ctx = self.plan_context();
        let (stmt, folded) = match self.plans {
            Some((cache, generation)) => cache.create_statement(
                &ctx,
                generation,
                &c.collection,
                read,
                &parts.shape_key(),
                &parts.values,
                build,
            )?,
            None => create_statement_afresh(&ctx, &c.collection, read, &parts.values, build)?,
        };
        let row = self
            .db
            .query_grouped(stmt)
            .await
            .map_err(|e| ApiError::from_write(e, c))?
            .into_iter()
            .next()
            .ok_or_else(|| ApiError::internal(&"the insert returned no key"))?;
        let key = row.value(&c.primary_key)?.to_json();
        let read_back = match folded {
            true => ReadBack::Read(row.get::<Option<String>>("__json")?),
            false => ReadBack::Later,
        };
        Ok(Created {
            keys: vec![key],
            read_back,
        })
    }

    pub(super) async fn create_in(
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
        self.update_batch(collection, &[(keys.to_vec(), payload.clone())])
            .await
    }

    /// Several updates (`PATCH` with a list of items) in one transaction: all or nothing.
    pub async fn update_batch(
        &self,
        collection: &str,
        batch: &[(Vec<Json>, Json)],
    ) -> Result<Vec<Json>, ApiError> {
        let c = self.collection(collection)?;
        self.rules(c, Action::Update)?;
        let mut conn = self.begin().await?;
        let mut done = Vec::new();
        let mut result = Ok(());
        for (keys, payload) in batch {
            let step = match self.keys_of(c, keys) {
                Ok(keys) => self.update_items(&mut conn, c, &keys, payload, 0).await,
                Err(e) => Err(e),
            };
            match step {
                Ok(keys) => done.extend(keys.iter().map(scalar_json)),
                Err(e) => {
                    result = Err(e);
                    break;
                }
            }
        }
        finish(conn, result).await?;
        let payloads: Vec<Json> = batch.iter().map(|(_, p)| p.clone()).collect();
        self.after_write(c, &payloads);
        Ok(done)
    }

    pub(super) async fn update_in(
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
        self.after_write(c, &[]);
        Ok(())
    }

    pub(super) async fn delete_in(
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
}

fn validation_error(outcome: ValidationOutcome) -> ApiError {
    match outcome {
        ValidationOutcome::Failed(e) => {
            let mut error = ApiError::new(ErrorCode::FailedValidation, e.to_string())
                .with_extension("field", e.field.clone())
                .with_extension("type", e.kind.clone());
            if let Some(valid) = e.valid {
                error = error.with_extension("valid", valid);
            }
            error
        }
        ValidationOutcome::Rule(e) => {
            tracing::warn!(error = %e, "a validation rule cannot be applied");
            ApiError::forbidden()
        }
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
