//! The resolvers. A root field that reads turns its whole selection into one planner query
//! and runs it through the items service — one SQL statement, JSON built by the database —
//! and every nested field only picks its value out of that JSON. Mutations write through
//! the same service (one transaction each) and read their result back the same way.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_graphql::dynamic::{Field, FieldFuture, FieldValue, Object, ResolverContext, TypeRef};
use async_graphql::indexmap::IndexMap;
use async_graphql::{ErrorExtensions, Name, Value};
use rectus_policies::{Collection, SchemaOverview};
use serde_json::Value as Json;
use tokio::sync::OnceCell;

use super::selection::{aggregate_query, group_key, items_query};
use super::types;
use crate::error::{ApiError, ErrorCode};
use crate::http::AppState;
use crate::planner::Query;
use crate::planner::cache::query_key;
use crate::services::authz::Caller;
use crate::services::items::{Items, ReadBack};

type Memo = Mutex<HashMap<String, Arc<OnceCell<Result<Value, ApiError>>>>>;

/// What the resolvers of one request share.
pub struct RequestData {
    pub state: AppState,
    pub caller: Caller,
    pub overview: Arc<SchemaOverview>,
    /// Results of read root fields by their planned query: identical fields under different
    /// aliases are read once.
    memo: Memo,
}

impl RequestData {
    pub fn new(state: AppState, caller: Caller, overview: Arc<SchemaOverview>) -> Self {
        RequestData {
            state,
            caller,
            overview,
            memo: Mutex::default(),
        }
    }

    fn items(&self) -> Items<'_> {
        crate::http::items::items(&self.state, &self.caller, &self.overview)
    }

    fn collection(&self, name: &str) -> Result<&Collection, ApiError> {
        self.overview
            .collection(name)
            .ok_or_else(ApiError::forbidden)
    }

    /// The planner query of the field being resolved, which reads `collection`.
    fn query(&self, ctx: &ResolverContext, collection: &str) -> Result<Query, ApiError> {
        items_query(&ctx.field(), &self.overview, self.collection(collection)?)
    }

    /// Runs `read` once per `key` in this request.
    async fn once<F>(&self, key: String, read: F) -> Result<Value, ApiError>
    where
        F: std::future::Future<Output = Result<Value, ApiError>>,
    {
        let cell = {
            let mut memo = match self.memo.lock() {
                Ok(m) => m,
                Err(poisoned) => poisoned.into_inner(),
            };
            memo.entry(key).or_default().clone()
        };
        cell.get_or_init(|| read).await.clone()
    }
}

/// An error as GraphQL answers it, with Directus's code in `extensions`.
pub fn error(e: ApiError) -> async_graphql::Error {
    let code = e.code.as_str();
    let extensions = e.extensions;
    async_graphql::Error::new(e.message).extend_with(move |_, ext| {
        ext.set("code", code);
        for (key, value) in &extensions {
            ext.set(
                key.as_str(),
                Value::from_json(value.clone()).unwrap_or(Value::Null),
            );
        }
    })
}

/// The answer of a root field. An error of a nullable field makes only that field null,
/// recorded with its path, as graphql-js (and so Directus) answers; an error of a non-null
/// field makes the whole `data` null.
fn answer<'a>(
    ctx: &ResolverContext<'a>,
    nullable: bool,
    result: Result<Value, ApiError>,
) -> Result<Option<FieldValue<'a>>, async_graphql::Error> {
    match (result, nullable) {
        (Ok(value), _) => Ok(Some(FieldValue::value(value))),
        (Err(e), true) => {
            ctx.add_error(ctx.set_error_path(error(e).into_server_error(ctx.item.pos)));
            Ok(None)
        }
        (Err(e), false) => Err(error(e)),
    }
}

fn data<'a>(ctx: &ResolverContext<'a>) -> Result<&'a RequestData, async_graphql::Error> {
    ctx.data::<RequestData>()
}

/// The database's JSON as a GraphQL value.
fn parse(text: &str) -> Result<Value, ApiError> {
    serde_json::from_str(text).map_err(|e| ApiError::internal(&e))
}

fn argument(ctx: &ResolverContext, name: &str) -> Json {
    ctx.args
        .get(name)
        .and_then(|v| v.as_value().clone().into_json().ok())
        .unwrap_or(Json::Null)
}

fn value_of<'v>(ctx: &'v ResolverContext, key: &str) -> Option<&'v Value> {
    match ctx.parent_value.as_value() {
        Some(Value::Object(map)) => map.get(key).filter(|v| **v != Value::Null),
        _ => None,
    }
}

/// A field of an item: its value is in the parent's JSON under its alias, or its name (the
/// selection asked the planner for exactly that key). Keys are IDs, which GraphQL answers
/// as strings.
pub fn item_field(name: &str, ty: TypeRef) -> Field {
    let field_name = name.to_string();
    let is_id = ty.type_name() == TypeRef::ID;
    Field::new(name, ty, move |ctx| {
        let key = ctx.field().alias().unwrap_or(&field_name).to_string();
        let value = value_of(&ctx, &key).cloned().map(|v| match (is_id, v) {
            (true, Value::Number(n)) => Value::String(n.to_string()),
            (_, v) => v,
        });
        FieldFuture::Value(value.map(FieldValue::value))
    })
}

/// `<field>_func`: the date parts (or the count) the planner answered as `<field>_<part>`.
pub fn function_field(base: &str, functions: &'static str) -> Field {
    let base = base.to_string();
    Field::new(
        format!("{base}_func"),
        TypeRef::named(functions),
        move |ctx| {
            let parts: &[&str] = match functions {
                types::COUNT_FUNCTIONS => &["count"],
                other => types::parts_of(other),
            };
            let object: IndexMap<Name, Value> = parts
                .iter()
                .map(|part| {
                    let value = value_of(&ctx, &format!("{base}_{part}"))
                        .cloned()
                        .unwrap_or(Value::Null);
                    (Name::new(part), value)
                })
                .collect();
            FieldFuture::Value(Some(FieldValue::value(Value::Object(object))))
        },
    )
}

/// An aggregate's number: databases answer big counts and sums as text.
pub fn number_field(name: &str, ty: &str) -> Field {
    let key = name.to_string();
    let float = ty == TypeRef::FLOAT;
    Field::new(name, TypeRef::named(ty), move |ctx| {
        let value = value_of(&ctx, &key).cloned().map(|v| match v {
            Value::String(s) => match (float, s.parse::<i64>(), s.parse::<f64>()) {
                (false, Ok(i), _) => Value::from(i),
                (_, _, Ok(f)) => Value::from(f),
                _ => Value::String(s),
            },
            v => v,
        });
        FieldFuture::Value(value.map(FieldValue::value))
    })
}

/// A key as GraphQL's `ID` answers it: text.
fn id_value(key: &Json) -> Value {
    match key {
        Json::String(s) => Value::String(s.clone()),
        other => Value::String(other.to_string()),
    }
}

fn object<const N: usize>(entries: [(&str, Value); N]) -> Value {
    Value::Object(
        entries
            .into_iter()
            .map(|(k, v)| (Name::new(k), v))
            .collect(),
    )
}

/// The root fields that read a collection.
#[derive(Clone)]
pub struct Read {
    pub collection: String,
}

async fn read_list(ctx: &ResolverContext<'_>, read: &Read) -> Result<Value, ApiError> {
    let data = data(ctx).map_err(|e| ApiError::internal(&e.message))?;
    let query = data.query(ctx, &read.collection)?;
    let key = format!("list\u{0}{}\u{0}{}", read.collection, query_key(&query));
    data.once(key, async {
        let listing = data.items().read_many(&read.collection, &query).await?;
        parse(&listing.data)
    })
    .await
}

pub fn list(name: &str, collection: &str, read: Read) -> Field {
    Field::new(name, TypeRef::named_nn_list_nn(collection), move |ctx| {
        let read = read.clone();
        FieldFuture::new(async move {
            let value = read_list(&ctx, &read).await;
            answer(&ctx, false, value)
        })
    })
}

pub fn singleton(name: &str, collection: &str, read: Read) -> Field {
    Field::new(name, TypeRef::named(collection), move |ctx| {
        let read = read.clone();
        FieldFuture::new(async move {
            let data = data(&ctx)?;
            let value = async {
                let query = data.query(&ctx, &read.collection)?;
                parse(
                    &data
                        .items()
                        .read_singleton(&read.collection, &query)
                        .await?,
                )
            }
            .await;
            answer(&ctx, true, value)
        })
    })
}

pub fn by_id(name: &str, collection: &str, read: Read) -> Field {
    Field::new(name, TypeRef::named(collection), move |ctx| {
        let read = read.clone();
        FieldFuture::new(async move {
            let data = data(&ctx)?;
            let value = async {
                let query = data.query(&ctx, &read.collection)?;
                let id = argument(&ctx, "id");
                let key = format!(
                    "one\u{0}{}\u{0}{id}\u{0}{}",
                    read.collection,
                    query_key(&query)
                );
                data.once(key, async {
                    parse(&data.items().read_one(&read.collection, &id, &query).await?)
                })
                .await
            }
            .await;
            answer(&ctx, true, value)
        })
    })
    .argument(async_graphql::dynamic::InputValue::new(
        "id",
        TypeRef::named_nn(TypeRef::ID),
    ))
}

/// Moves the group-by keys of each aggregate row into `group`, as Directus's GraphQL
/// answers them.
fn grouped(rows: Value, group_by: &[String]) -> Value {
    let Value::List(rows) = rows else { return rows };
    let keys: Vec<String> = group_by.iter().map(|g| group_key(g)).collect();
    Value::List(
        rows.into_iter()
            .map(|row| match row {
                Value::Object(mut map) => {
                    let group: IndexMap<Name, Value> = keys
                        .iter()
                        .filter_map(|k| map.shift_remove(k.as_str()).map(|v| (Name::new(k), v)))
                        .collect();
                    map.insert(Name::new("group"), Value::Object(group));
                    Value::Object(map)
                }
                other => other,
            })
            .collect(),
    )
}

pub fn aggregated(name: &str, collection: &str, read: Read) -> Field {
    Field::new(
        name,
        TypeRef::named_nn_list_nn(format!("{collection}_aggregated")),
        move |ctx| {
            let read = read.clone();
            FieldFuture::new(async move {
                let data = data(&ctx)?;
                let value = async {
                    let query = aggregate_query(&ctx.field())?;
                    let key = format!(
                        "aggregate\u{0}{}\u{0}{}",
                        read.collection,
                        query_key(&query)
                    );
                    data.once(key, async {
                        let listing = data.items().read_many(&read.collection, &query).await?;
                        Ok(grouped(parse(&listing.data)?, &query.group_by))
                    })
                    .await
                }
                .await;
                answer(&ctx, false, value)
            })
        },
    )
}

/// The mutation root fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    CreateMany,
    CreateOne,
    UpdateMany,
    UpdateBatch,
    UpdateOne,
    UpdateSingleton,
    DeleteMany,
    DeleteOne,
}

#[derive(Clone)]
pub struct Mutation {
    pub collection: String,
    pub kind: Kind,
}

fn list_argument(ctx: &ResolverContext, name: &str) -> Vec<Json> {
    match argument(ctx, name) {
        Json::Array(items) => items,
        Json::Null => Vec::new(),
        other => vec![other],
    }
}

/// What a mutation answers: the written items as the selection reads them (nothing when the
/// caller may not read them), or the deleted keys.
async fn mutate(ctx: &ResolverContext<'_>, m: &Mutation) -> Result<Value, ApiError> {
    let data = data(ctx).map_err(|e| ApiError::internal(&e.message))?;
    let items = data.items();
    let c = m.collection.as_str();
    let keys = match m.kind {
        Kind::CreateMany => items.create(c, &list_argument(ctx, "data")).await?,
        Kind::CreateOne => {
            // The answer may come back with the create itself (see `create_and_read`).
            let query = data.query(ctx, c).ok();
            let created = items
                .create_and_read(c, &[argument(ctx, "data")], query.as_ref())
                .await?;
            match created.read_back {
                ReadBack::Read(Some(item)) => return parse(&item),
                ReadBack::Read(None) => return Ok(Value::Null),
                ReadBack::Later => created.keys,
            }
        }
        Kind::UpdateMany => {
            items
                .update(c, &list_argument(ctx, "ids"), &argument(ctx, "data"))
                .await?
        }
        Kind::UpdateOne => {
            items
                .update(c, &[argument(ctx, "id")], &argument(ctx, "data"))
                .await?
        }
        Kind::UpdateBatch => {
            let collection = data.collection(c)?;
            let mut batch = Vec::new();
            for item in list_argument(ctx, "data") {
                let Json::Object(mut map) = item else {
                    continue;
                };
                let key = map.remove(&collection.primary_key).ok_or_else(|| {
                    ApiError::new(
                        ErrorCode::InvalidPayload,
                        format!(
                            "Invalid payload. Each item needs its \"{}\".",
                            collection.primary_key
                        ),
                    )
                })?;
                batch.push((vec![key], Json::Object(map)));
            }
            items.update_batch(c, &batch).await?
        }
        Kind::UpdateSingleton => {
            items.upsert_singleton(c, &argument(ctx, "data")).await?;
            let query = data.query(ctx, c)?;
            return match items.read_singleton(c, &query).await {
                Ok(item) => parse(&item),
                Err(e) if e.code == ErrorCode::Forbidden => Ok(Value::Null),
                Err(e) => Err(e),
            };
        }
        Kind::DeleteMany => {
            let ids = list_argument(ctx, "ids");
            items.delete(c, &ids).await?;
            let ids: Vec<Value> = ids.iter().map(id_value).collect();
            return Ok(object([("ids", Value::List(ids))]));
        }
        Kind::DeleteOne => {
            let id = argument(ctx, "id");
            items.delete(c, std::slice::from_ref(&id)).await?;
            return Ok(object([("id", id_value(&id))]));
        }
    };
    let collection = data.collection(c)?;
    if data
        .caller
        .permissions
        .rules(c, rectus_policies::Action::Read)
        .is_none()
    {
        return Ok(Value::Boolean(true));
    }
    let query = Query {
        limit: Some(-1),
        ..data.query(ctx, c)?
    };
    let scalars: Vec<_> = keys
        .iter()
        .filter_map(|k| crate::planner::read::key_value(collection, k))
        .collect();
    let read = match items.read_by_keys(c, &scalars, &query).await {
        Ok(array) => parse(&array)?,
        Err(e) if e.code == ErrorCode::Forbidden => Value::List(Vec::new()),
        Err(e) => return Err(e),
    };
    let many = matches!(
        m.kind,
        Kind::CreateMany | Kind::UpdateMany | Kind::UpdateBatch
    );
    Ok(match (many, read) {
        (true, list) => list,
        (false, Value::List(list)) => list.into_iter().next().unwrap_or(Value::Null),
        (false, other) => other,
    })
}

pub fn mutation(name: &str, ty: TypeRef, m: Mutation) -> Field {
    let nullable = !matches!(ty, TypeRef::NonNull(_));
    Field::new(name, ty, move |ctx| {
        let m = m.clone();
        FieldFuture::new(async move {
            let value = mutate(&ctx, &m).await;
            answer(&ctx, nullable, value)
        })
    })
}

/// `/graphql/system`'s own fields: `users_me`, `server_info`, `server_health`,
/// `server_ping`.
pub fn system_fields(query: Object, users_readable: bool) -> Object {
    let mut query = query
        .field(Field::new(
            "server_info",
            TypeRef::named(types::JSON),
            |ctx| {
                FieldFuture::new(async move {
                    let data = data(&ctx)?;
                    let project = crate::services::settings::public_project(&data.state.db)
                        .await
                        .map_err(|e| error(ApiError::from(e)))?;
                    let project = Value::from_json(project).unwrap_or(Value::Null);
                    Ok(Some(FieldValue::value(object([("project", project)]))))
                })
            },
        ))
        .field(Field::new(
            "server_health",
            TypeRef::named(types::JSON),
            |ctx| {
                FieldFuture::new(async move {
                    let data = data(&ctx)?;
                    let (_, health) =
                        crate::http::server::health_document(&data.state, &data.caller).await;
                    Ok(Some(FieldValue::value(
                        Value::from_json(health).unwrap_or(Value::Null),
                    )))
                })
            },
        ))
        .field(Field::new(
            "server_ping",
            TypeRef::named(TypeRef::STRING),
            |_| FieldFuture::Value(Some(FieldValue::value(Value::from("pong")))),
        ));
    if users_readable {
        query = query.field(Field::new(
            "users_me",
            TypeRef::named("directus_users"),
            |ctx| {
                FieldFuture::new(async move {
                    let data = data(&ctx)?;
                    let Some(user) = data.caller.accountability.user.clone() else {
                        return Ok(None);
                    };
                    let value = async {
                        let query = data.query(&ctx, "directus_users")?;
                        let me = Json::String(user);
                        parse(&data.items().read_one("directus_users", &me, &query).await?)
                    }
                    .await;
                    answer(&ctx, true, value)
                })
            },
        ));
    }
    query
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn group_keys_move_into_group() {
        let rows = Value::from_json(serde_json::json!([
            {"status": "paid", "date_created_year": 2024, "count": 2}
        ]))
        .unwrap();
        let out = grouped(rows, &["status".into(), "year(date_created)".into()]);
        assert_eq!(
            out.into_json().unwrap(),
            serde_json::json!([{"count": 2, "group": {"status": "paid", "date_created_year": 2024}}])
        );
    }
}
