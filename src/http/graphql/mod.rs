//! GraphQL as Directus serves it: `/graphql` for the user's collections and
//! `/graphql/system` for the system ones, `POST` (JSON body, or an `application/graphql`
//! body) and `GET` (`query`, `variables`, `operationName` parameters; queries only). The
//! schema is generated per permission set (async-graphql's dynamic schema), cached, and
//! answered by the REST planner through the items service.
//!
//! Answers: a document that cannot be read or breaks a limit is 400 `GRAPHQL_VALIDATION`
//! (as is one that names something the schema lacks); errors while resolving come back with
//! the data, each with Directus's `extensions.code`.

mod document;
mod resolve;
mod roots;
mod schema;
mod selection;
mod types;

use std::sync::Arc;

use async_graphql::Variables;
use async_graphql::dynamic::Schema;
use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use rectus_policies::SchemaOverview;
use serde_json::{Map, Value as Json, json};

use super::AppState;
use super::extract::{BodyBytes, json_text};
use crate::error::{ApiError, ErrorCode};
use crate::services::authz::Caller;

pub use schema::Scope;

/// Schemas kept at once: one per distinct permission set and endpoint.
const CACHED_SCHEMAS: u64 = 256;

/// What the checked documents kept may weigh, each weighed as 16 bytes per byte of its text
/// (about what its syntax tree takes): clients choose the documents, so the bound is on
/// memory, not on their number.
const CACHED_DOCUMENT_BYTES: u64 = 16 << 20;

/// Generated schemas by endpoint and permission set, valid for one generation of the data
/// model and permissions; and the documents that passed [`document::check`], by their text
/// and operation name (parsing is a tenth of a small query's cost, and clients send the
/// same few documents over and over).
pub struct Schemas {
    cache: moka::sync::Cache<SchemaKey, Arc<Schema>>,
    documents: moka::sync::Cache<(String, Option<String>), Arc<document::Checked>>,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct SchemaKey {
    scope: Scope,
    generation: u64,
    admin: bool,
    app: bool,
    policies: Vec<String>,
}

impl Default for Schemas {
    fn default() -> Self {
        Schemas {
            cache: moka::sync::Cache::new(CACHED_SCHEMAS),
            documents: moka::sync::Cache::builder()
                .max_capacity(CACHED_DOCUMENT_BYTES)
                .weigher(|(text, _): &(String, Option<String>), _| {
                    u32::try_from(text.len().saturating_mul(16)).unwrap_or(u32::MAX)
                })
                .build(),
        }
    }
}

impl Schemas {
    /// [`document::check`] of a document, kept when it passes (the limits are settings, fixed
    /// for the process).
    fn checked(
        &self,
        text: &str,
        operation_name: Option<&str>,
        settings: &crate::config::GraphqlSettings,
    ) -> Result<Arc<document::Checked>, document::Refusal> {
        let key = (text.to_string(), operation_name.map(str::to_string));
        if let Some(checked) = self.documents.get(&key) {
            return Ok(checked);
        }
        let checked = Arc::new(document::check(text, operation_name, settings)?);
        self.documents.insert(key, checked.clone());
        Ok(checked)
    }

    /// The schema the caller sees of `scope`, built from `overview` (the request's data
    /// model) when it is not cached.
    pub fn get(
        &self,
        state: &AppState,
        overview: &SchemaOverview,
        caller: &Caller,
        scope: Scope,
    ) -> Result<Arc<Schema>, ApiError> {
        let a = &caller.accountability;
        let key = SchemaKey {
            scope,
            generation: state.generation(),
            admin: a.admin,
            app: a.app,
            policies: a.policies.clone(),
        };
        if let Some(schema) = self.cache.get(&key) {
            return Ok(schema);
        }
        let built = schema::build(scope, overview, &caller.permissions, &state.config.graphql)
            .map_err(|e| {
                tracing::error!(error = %e, "the GraphQL schema cannot be built");
                ApiError::internal(&e)
            })?;
        let built = Arc::new(built);
        self.cache.insert(key, built.clone());
        Ok(built)
    }
}

/// Full paths, as `/items`'s: a nested router rebuilds every request's URI.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route(
            "/graphql",
            get(|s, c, q| get_request(s, c, q, Scope::Items))
                .post(|s, c, h, b| post_request(s, c, h, b, Scope::Items)),
        )
        .route(
            "/graphql/system",
            get(|s, c, q| get_request(s, c, q, Scope::System))
                .post(|s, c, h, b| post_request(s, c, h, b, Scope::System)),
        )
}

/// One GraphQL request as it arrived.
struct Incoming {
    query: String,
    variables: Option<Json>,
    operation_name: Option<String>,
}

fn payload_error(message: &str) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidPayload,
        format!("Invalid payload. {message}"),
    )
}

fn incoming(map: &Map<String, Json>) -> Result<Incoming, ApiError> {
    let query = match map.get("query") {
        Some(Json::String(q)) if !q.trim().is_empty() => q.clone(),
        _ => return Err(payload_error("\"query\" is required.")),
    };
    let variables = match map.get("variables") {
        None | Some(Json::Null) => None,
        Some(Json::String(text)) if text.trim().is_empty() => None,
        Some(Json::String(text)) => Some(
            serde_json::from_str::<Json>(text)
                .map_err(|_| payload_error("\"variables\" is not valid JSON."))?,
        ),
        Some(other) => Some(other.clone()),
    };
    if variables.as_ref().is_some_and(|v| !v.is_object()) {
        return Err(payload_error("\"variables\" must be an object."));
    }
    let operation_name = match map.get("operationName") {
        None | Some(Json::Null) => None,
        Some(Json::String(name)) if name.is_empty() => None,
        Some(Json::String(name)) => Some(name.clone()),
        Some(_) => return Err(payload_error("\"operationName\" must be a string.")),
    };
    Ok(Incoming {
        query,
        variables,
        operation_name,
    })
}

async fn get_request(
    State(state): State<AppState>,
    caller: Caller,
    RawQuery(raw): RawQuery,
    scope: Scope,
) -> Response {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let map: Map<String, Json> = params
        .into_iter()
        .map(|(k, v)| (k, Json::String(v)))
        .collect();
    match incoming(&map) {
        Ok(request) => execute(&state, caller, scope, request, true).await,
        Err(e) => e.into_response(),
    }
}

async fn post_request(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    BodyBytes(body): BodyBytes,
    scope: Scope,
) -> Response {
    let graphql_body = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("application/graphql"));
    let request = if graphql_body {
        match std::str::from_utf8(&body) {
            Ok(text) => incoming(&Map::from_iter([("query".into(), Json::from(text))])),
            Err(_) => Err(payload_error("The body is not UTF-8 text.")),
        }
    } else {
        match serde_json::from_slice::<Json>(&body) {
            Ok(Json::Object(map)) => incoming(&map),
            Ok(_) => Err(payload_error("Expected a JSON object.")),
            Err(e) => Err(payload_error(&format!("The body is not valid JSON: {e}."))),
        }
    };
    match request {
        Ok(request) => execute(&state, caller, scope, request, false).await,
        Err(e) => e.into_response(),
    }
}

/// Directus's 400 for a document that does not validate, with each problem listed.
fn validation_error(errors: Vec<Json>) -> Response {
    let code = ErrorCode::GraphqlValidation;
    let body = json!({"errors": [{
        "message": "GraphQL validation error.",
        "extensions": {"code": code.as_str(), "errors": errors},
    }]});
    json_text(code.status(), body.to_string())
}

async fn execute(
    state: &AppState,
    caller: Caller,
    scope: Scope,
    incoming: Incoming,
    via_get: bool,
) -> Response {
    let checked = match state.graphql.checked(
        &incoming.query,
        incoming.operation_name.as_deref(),
        &state.config.graphql,
    ) {
        Ok(checked) => checked,
        Err(document::Refusal::Syntax(message) | document::Refusal::Limit(message)) => {
            return validation_error(vec![json!({ "message": message })]);
        }
    };
    if via_get && checked.mutation {
        return ApiError::new(
            ErrorCode::MethodNotAllowed,
            "Can't perform a mutation with a GET request: use POST.",
        )
        .into_response();
    }
    let overview = state.schema();
    let schema = match state.graphql.get(state, &overview, &caller, scope) {
        Ok(schema) => schema,
        Err(e) => return e.into_response(),
    };
    let mut request = async_graphql::Request::new(incoming.query).data(resolve::RequestData::new(
        state.clone(),
        caller,
        overview,
    ));
    if let Some(variables) = incoming.variables {
        request = request.variables(Variables::from_json(variables));
    }
    if let Some(name) = incoming.operation_name {
        request = request.operation_name(name);
    }
    request.set_parsed_query(checked.document.clone());
    let response = schema.execute(request).await;
    let errors: Vec<Json> = response
        .errors
        .iter()
        .map(|e| serde_json::to_value(e).unwrap_or_else(|_| json!({"message": e.message})))
        .collect();
    // Errors of resolvers carry a Directus code; the rest come from validating the document
    // (unknown fields, wrong argument or variable types) before anything ran.
    let resolved = response.data != async_graphql::Value::Null
        || errors.iter().all(|e| e["extensions"]["code"].is_string());
    if !errors.is_empty() && !resolved {
        return validation_error(errors);
    }
    let mut body = Map::new();
    body.insert(
        "data".into(),
        response.data.into_json().unwrap_or(Json::Null),
    );
    if !errors.is_empty() {
        body.insert("errors".into(), Json::Array(errors));
    }
    json_text(StatusCode::OK, Json::Object(body).to_string())
}

/// The SDL of the schema the caller sees of `scope` (`/server/specs/graphql`).
pub fn sdl(state: &AppState, caller: &Caller, scope: Scope) -> Result<String, ApiError> {
    Ok(state
        .graphql
        .get(state, &state.schema(), caller, scope)?
        .sdl())
}
