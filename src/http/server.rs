//! `/server`: ping, health and public project information, as Directus answers them.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde_json::json;

use super::AppState;
use super::graphql::Scope;
use crate::error::ApiError;
use crate::services::authz::Caller;
use crate::services::settings;

/// How long the health check waits for the database before calling it down.
const HEALTH_DB_TIMEOUT: Duration = Duration::from_secs(5);
/// Directus's `DB_HEALTHCHECK_THRESHOLD`: slower than this is a warning.
const HEALTH_DB_THRESHOLD_MS: f64 = 150.0;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/ping", get(ping))
        .route("/health", get(health))
        .route("/info", get(info))
        .route("/specs/oas", get(openapi))
        .route(
            "/specs/graphql",
            get(|s, c| graphql_sdl(s, c, Scope::Items)),
        )
        .route(
            "/specs/graphql/items",
            get(|s, c| graphql_sdl(s, c, Scope::Items)),
        )
        .route(
            "/specs/graphql/system",
            get(|s, c| graphql_sdl(s, c, Scope::System)),
        )
}

/// The OpenAPI document of the REST API as the caller may use it.
async fn openapi(State(state): State<AppState>, caller: Caller) -> Json<serde_json::Value> {
    Json(super::openapi::document(
        &state.schema(),
        &caller.permissions,
        &state.config.public_url,
    ))
}

/// The GraphQL schema the caller sees, as SDL (a `.graphql` download, as Directus sends it).
async fn graphql_sdl(
    State(state): State<AppState>,
    caller: Caller,
    scope: Scope,
) -> Result<Response, ApiError> {
    let sdl = super::graphql::sdl(&state, &caller, scope)?;
    let file = match scope {
        Scope::Items => "items.graphql",
        Scope::System => "system.graphql",
    };
    Ok((
        [
            (
                header::CONTENT_TYPE,
                "text/plain; charset=utf-8".to_string(),
            ),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{file}\""),
            ),
        ],
        sdl,
    )
        .into_response())
}

async fn ping() -> &'static str {
    "pong"
}

/// Directus's health document (`application/health+json`): `ok`, `warn` when the database
/// answers slowly, `error` with 503 when it does not answer. As in Directus, only admins see
/// the checks behind the status.
async fn health(State(state): State<AppState>, caller: Caller) -> Response {
    let (code, body) = health_document(&state, &caller).await;
    (
        code,
        [
            (header::CONTENT_TYPE, "application/health+json"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        body.to_string(),
    )
        .into_response()
}

/// The health status and document `/server/health` and GraphQL's `server_health` answer.
pub(crate) async fn health_document(
    state: &AppState,
    caller: &Caller,
) -> (StatusCode, serde_json::Value) {
    let started = Instant::now();
    let outcome = tokio::time::timeout(HEALTH_DB_TIMEOUT, state.db.ping()).await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let status = match outcome {
        Ok(Ok(())) if elapsed_ms > HEALTH_DB_THRESHOLD_MS => "warn",
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "health check: the database does not answer");
            "error"
        }
        Err(_) => {
            tracing::warn!("health check: the database did not answer in time");
            "error"
        }
    };
    let code = if status == "error" {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    let body = if caller.is_admin() {
        let client = state.db.dialect().client();
        let pool = state.db.pool_status();
        json!({
            "status": status,
            "releaseId": env!("CARGO_PKG_VERSION"),
            "serviceId": state.config.key,
            "checks": {
                format!("{client}:responseTime"): [{
                    "status": status,
                    "componentType": "datastore",
                    "observedUnit": "ms",
                    "observedValue": (elapsed_ms * 1000.0).round() / 1000.0,
                    "threshold": HEALTH_DB_THRESHOLD_MS,
                }],
                format!("{client}:connectionsAvailable"): [{
                    "status": "ok",
                    "componentType": "datastore",
                    "observedValue": pool.max.saturating_sub(pool.open) + pool.idle,
                }],
                format!("{client}:connectionsUsed"): [{
                    "status": "ok",
                    "componentType": "datastore",
                    "observedValue": pool.open.saturating_sub(pool.idle),
                }],
            }
        })
    } else {
        json!({ "status": status })
    };
    (code, body)
}

async fn info(State(state): State<AppState>) -> Result<Json<serde_json::Value>, ApiError> {
    let project = settings::public_project(&state.db).await?;
    Ok(Json(json!({ "data": { "project": project } })))
}
