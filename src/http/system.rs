//! System collection routes beyond plain CRUD: `/users/me` and `/permissions/me`.

use axum::Router;
use axum::extract::State;
use axum::response::Response;
use axum::routing::get;
use rectus_policies::Action;
use serde_json::{Map, Value as Json, json};

use super::AppState;
use super::extract::{JsonBody, UrlQuery, data_response};
use super::items::{read_one, system_routes, update_one};
use crate::error::{ApiError, ErrorCode};
use crate::services::authz::Caller;

pub fn users_routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(me).patch(update_me))
        .merge(system_routes("directus_users"))
}

pub fn permissions_routes() -> Router<AppState> {
    Router::new()
        .route("/me", get(my_permissions))
        .merge(system_routes("directus_permissions"))
}

fn current_user(caller: &Caller) -> Result<String, ApiError> {
    caller
        .accountability
        .user
        .clone()
        .ok_or_else(|| ApiError::new(ErrorCode::InvalidCredentials, "Invalid user credentials."))
}

async fn me(state: State<AppState>, caller: Caller, query: UrlQuery) -> Result<Response, ApiError> {
    let id = current_user(&caller)?;
    read_one(state, caller, "directus_users", id, query).await
}

async fn update_me(
    state: State<AppState>,
    caller: Caller,
    query: UrlQuery,
    body: JsonBody,
) -> Result<Response, ApiError> {
    let id = current_user(&caller)?;
    update_one(state, caller, "directus_users", id, query, body).await
}

/// What the caller may do, per collection and action: `full` (every item), `partial` (some
/// items), with the fields and presets.
async fn my_permissions(
    State(state): State<AppState>,
    caller: Caller,
) -> Result<Response, ApiError> {
    let schema = state.schema();
    let mut out = Map::new();
    for collection in schema.collections.values() {
        let mut actions = Map::new();
        for action in Action::ALL {
            let Some(rules) = caller.permissions.rules(&collection.collection, action) else {
                continue;
            };
            let full = rules.is_admin()
                || caller.permissions.records().any(|r| {
                    r.collection == collection.collection
                        && r.action == action
                        && r.permissions
                            .as_ref()
                            .is_none_or(|p| p.as_object().is_none_or(Map::is_empty))
                });
            let fields: Vec<&str> = rules.allowed_fields(collection);
            let fields: Vec<Json> = if rules.is_admin() {
                vec![json!("*")]
            } else {
                fields.into_iter().map(Json::from).collect()
            };
            actions.insert(
                action.as_str().into(),
                json!({
                    "access": if full { "full" } else { "partial" },
                    "fields": fields,
                    "presets": Json::Object(rules.presets()),
                }),
            );
        }
        if !actions.is_empty() {
            out.insert(collection.collection.clone(), Json::Object(actions));
        }
    }
    Ok(data_response(&Json::Object(out).to_string(), None))
}
