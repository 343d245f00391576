//! The collection endpoints: `/items/:collection` for the user's collections and the system
//! collection routes (`/users`, `/roles`, `/policies`, `/access`, `/permissions`), with
//! Directus's paths, payload forms and response shapes. Thin: the items service decides.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use rectus_policies::SchemaOverview;
use serde_json::Value as Json;

use super::AppState;
use super::export::download;
use super::extract::{JsonBody, UrlQuery, data_response, no_content};
use crate::error::{ApiError, ErrorCode};
use crate::planner::Query;
use crate::services::authz::Caller;
use crate::services::items::{Items, ReadBack};

pub(super) fn items<'a>(
    state: &'a AppState,
    caller: &'a Caller,
    schema: &'a SchemaOverview,
) -> Items<'a> {
    Items {
        db: &state.db,
        schema,
        caller,
        authz: &state.authz,
        default_limit: state.config.query_limit_default,
        max_limit: state.config.query_limit_max,
        plans: Some((&state.plans, state.generation())),
    }
}

/// `/items/:collection` reaches user collections only, as in Directus.
fn user_collection(name: &str) -> Result<&str, ApiError> {
    if name.starts_with("directus_") {
        return Err(ApiError::forbidden());
    }
    Ok(name)
}

/// Full paths rather than a nested router: a nested router rebuilds every request's URI
/// without its prefix, and these are the routes most requests take.
pub fn items_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/items/{collection}",
            get(|s, c, Path(collection): Path<String>, q| async move {
                list(s, c, user_collection(&collection)?, q).await
            })
            .post(|s, c, Path(collection): Path<String>, q, b| async move {
                create(s, c, user_collection(&collection)?, q, b).await
            })
            .patch(|s, c, Path(collection): Path<String>, q, b| async move {
                update_many(s, c, user_collection(&collection)?, q, b).await
            })
            .delete(|s, c, Path(collection): Path<String>, b| async move {
                delete_many(s, c, user_collection(&collection)?, b).await
            }),
        )
        .route(
            "/items/{collection}/{id}",
            get(
                |s, c, Path((collection, id)): Path<(String, String)>, q| async move {
                    read_one(s, c, user_collection(&collection)?, id, q).await
                },
            )
            .patch(
                |s, c, Path((collection, id)): Path<(String, String)>, q, b| async move {
                    update_one(s, c, user_collection(&collection)?, id, q, b).await
                },
            )
            .delete(
                |s, c, Path((collection, id)): Path<(String, String)>| async move {
                    delete_one(s, c, user_collection(&collection)?, id).await
                },
            ),
        )
}

/// Read-only routes of a system collection the server writes itself (`/activity`,
/// `/revisions`).
pub fn read_only_routes(collection: &'static str) -> Router<AppState> {
    Router::new()
        .route("/", get(move |s, c, q| list(s, c, collection, q)))
        .route(
            "/{id}",
            get(move |s, c, Path(id): Path<String>, q| read_one(s, c, collection, id, q)),
        )
}

/// The routes of one system collection (`/roles`, `/policies`, ...).
pub fn system_routes(collection: &'static str) -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(move |s, c, q| list(s, c, collection, q))
                .post(move |s, c, q, b| create(s, c, collection, q, b))
                .patch(move |s, c, q, b| update_many(s, c, collection, q, b))
                .delete(move |s, c, b| delete_many(s, c, collection, b)),
        )
        .route(
            "/{id}",
            get(move |s, c, Path(id): Path<String>, q| read_one(s, c, collection, id, q))
                .patch(move |s, c, Path(id): Path<String>, q, b| {
                    update_one(s, c, collection, id, q, b)
                })
                .delete(move |s, c, Path(id): Path<String>| delete_one(s, c, collection, id)),
        )
}

pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    UrlQuery(query): UrlQuery,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let service = items(&state, &caller, &schema);
    if schema.collection(collection).is_some_and(|c| c.singleton) {
        let item = service.read_singleton(collection, &query).await?;
        return read_response(&query, collection, &item, None);
    }
    let listing = service.read_many(collection, &query).await?;
    read_response(&query, collection, &listing.data, listing.meta.as_ref())
}

/// A read's answer: `{"data": ...}`, or the download `export` asks for.
fn read_response(
    query: &Query,
    collection: &str,
    data: &str,
    meta: Option<&Json>,
) -> Result<Response, ApiError> {
    match query.export {
        Some(format) => download(format, collection, data),
        None => Ok(data_response(data, meta)),
    }
}

fn key_json(id: String) -> Json {
    Json::String(id)
}

pub async fn read_one(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    id: String,
    UrlQuery(query): UrlQuery,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let item = items(&state, &caller, &schema)
        .read_one(collection, &key_json(id), &query)
        .await?;
    read_response(&query, collection, &item, None)
}

/// Reads written items back for the response; a caller who may not read them gets 204.
async fn respond_with(
    state: &AppState,
    caller: &Caller,
    schema: &SchemaOverview,
    collection: &str,
    keys: &[Json],
    query: &Query,
    single: bool,
) -> Result<Response, ApiError> {
    let service = items(state, caller, schema);
    let c = schema
        .collection(collection)
        .ok_or_else(ApiError::forbidden)?;
    let scalars: Vec<_> = keys
        .iter()
        .filter_map(|k| crate::planner::read::key_value(c, k))
        .collect();
    let query = Query {
        limit: Some(-1),
        ..query.clone()
    };
    match service.read_by_keys(collection, &scalars, &query).await {
        Ok(array) if single => {
            let items: Vec<Json> =
                serde_json::from_str(&array).map_err(|e| ApiError::internal(&e))?;
            match items.into_iter().next() {
                Some(item) => Ok(data_response(&item.to_string(), None)),
                None => Ok(no_content()),
            }
        }
        Ok(array) => Ok(data_response(&array, None)),
        Err(e) if e.code == ErrorCode::Forbidden => Ok(no_content()),
        Err(e) => Err(e),
    }
}

pub async fn create(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    UrlQuery(query): UrlQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let (payloads, single) = match body {
        Json::Array(list) => (list, false),
        Json::Object(_) => (vec![body], true),
        _ => {
            return Err(ApiError::new(
                ErrorCode::InvalidPayload,
                "Invalid payload. Expected an item or a list of items.",
            ));
        }
    };
    let created = items(&state, &caller, &schema)
        .create_and_read(collection, &payloads, single.then_some(&query))
        .await?;
    match created.read_back {
        ReadBack::Read(Some(item)) => Ok(data_response(&item, None)),
        ReadBack::Read(None) => Ok(no_content()),
        ReadBack::Later => {
            respond_with(
                &state,
                &caller,
                &schema,
                collection,
                &created.keys,
                &query,
                single,
            )
            .await
        }
    }
}

pub async fn update_one(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    id: String,
    UrlQuery(query): UrlQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let keys = items(&state, &caller, &schema)
        .update(collection, &[key_json(id)], &body)
        .await?;
    if keys.is_empty() {
        return Ok(no_content());
    }
    respond_with(&state, &caller, &schema, collection, &keys, &query, true).await
}

fn payload_error(message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. {message}"),
    )
}

/// `PATCH /collection`: `{keys, data}`, `{query, data}`, or a list of items with their keys.
pub async fn update_many(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    UrlQuery(query): UrlQuery,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let service = items(&state, &caller, &schema);
    let c = schema
        .collection(collection)
        .ok_or_else(ApiError::forbidden)?;
    if c.singleton {
        service.upsert_singleton(collection, &body).await?;
        return match service.read_singleton(collection, &query).await {
            Ok(item) => Ok(data_response(&item, None)),
            Err(e) if e.code == ErrorCode::Forbidden => Ok(no_content()),
            Err(e) => Err(e),
        };
    }
    let keys = match body {
        Json::Array(list) => {
            let mut batch = Vec::with_capacity(list.len());
            for item in list {
                let Json::Object(mut map) = item else {
                    return Err(payload_error("Each item must be an object."));
                };
                let key = map.remove(&c.primary_key).ok_or_else(|| {
                    payload_error(&format!("Each item needs its \"{}\".", c.primary_key))
                })?;
                batch.push((vec![key], Json::Object(map)));
            }
            service.update_batch(collection, &batch).await?
        }
        Json::Object(map) => {
            let data = map
                .get("data")
                .cloned()
                .ok_or_else(|| payload_error("\"data\" is required."))?;
            let keys = match (map.get("keys"), map.get("query")) {
                (Some(Json::Array(keys)), _) => keys.clone(),
                (None, Some(Json::Object(q))) => {
                    service
                        .keys_by_query(collection, &Query::from_json(q)?)
                        .await?
                }
                _ => return Err(payload_error("Either \"keys\" or \"query\" is required.")),
            };
            service.update(collection, &keys, &data).await?
        }
        _ => return Err(payload_error("Expected an object or a list of items.")),
    };
    respond_with(&state, &caller, &schema, collection, &keys, &query, false).await
}

pub async fn delete_one(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    id: String,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    items(&state, &caller, &schema)
        .delete(collection, &[key_json(id)])
        .await?;
    Ok(no_content())
}

/// `DELETE /collection`: a list of keys, `{keys}`, or `{query}`.
pub async fn delete_many(
    State(state): State<AppState>,
    caller: Caller,
    collection: &str,
    JsonBody(body): JsonBody,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let service = items(&state, &caller, &schema);
    let keys = match body {
        Json::Array(keys) => keys,
        Json::Object(map) => match (map.get("keys"), map.get("query")) {
            (Some(Json::Array(keys)), _) => keys.clone(),
            (None, Some(Json::Object(q))) => {
                service
                    .keys_by_query(collection, &Query::from_json(q)?)
                    .await?
            }
            _ => return Err(payload_error("Either \"keys\" or \"query\" is required.")),
        },
        _ => return Err(payload_error("Expected a list of keys.")),
    };
    service.delete(collection, &keys).await?;
    Ok(no_content())
}
