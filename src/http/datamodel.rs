//! `/collections`, `/fields`, `/relations` and `/utils/cache/clear`. Every change refreshes
//! the schema this instance serves, so the next request sees it.

use axum::Router;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::Value as Json;

use super::AppState;
use super::extract::{JsonBody, data_response, no_content};
use crate::error::ApiError;
use crate::services::authz::Caller;
use crate::services::datamodel::DataModel;

fn model<'a>(state: &'a AppState, caller: &'a Caller) -> DataModel<'a> {
    DataModel {
        db: &state.db,
        schema: state.schema(),
        caller,
        authz: &state.authz,
    }
}

fn list(items: Vec<Json>) -> Response {
    data_response(&Json::Array(items).to_string(), None)
}

fn one(item: Json) -> Response {
    data_response(&item.to_string(), None)
}

pub fn collections_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>, c: Caller| async move {
                Ok::<_, ApiError>(list(model(&s, &c).collections().await?))
            })
            .post(
                |State(s): State<AppState>, c: Caller, JsonBody(body): JsonBody| async move {
                    let name = model(&s, &c).create_collection(&body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).collection(&name).await?))
                },
            ),
        )
        .route(
            "/{collection}",
            get(
                |State(s): State<AppState>, c: Caller, Path(name): Path<String>| async move {
                    Ok::<_, ApiError>(one(model(&s, &c).collection(&name).await?))
                },
            )
            .patch(
                |State(s): State<AppState>,
                 c: Caller,
                 Path(name): Path<String>,
                 JsonBody(body): JsonBody| async move {
                    model(&s, &c).update_collection(&name, &body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).collection(&name).await?))
                },
            )
            .delete(
                |State(s): State<AppState>, c: Caller, Path(name): Path<String>| async move {
                    model(&s, &c).delete_collection(&name).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(no_content())
                },
            ),
        )
}

pub fn fields_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>, c: Caller| async move {
                Ok::<_, ApiError>(list(model(&s, &c).fields(None).await?))
            }),
        )
        .route(
            "/{collection}",
            get(
                |State(s): State<AppState>, c: Caller, Path(name): Path<String>| async move {
                    Ok::<_, ApiError>(list(model(&s, &c).fields(Some(&name)).await?))
                },
            )
            .post(
                |State(s): State<AppState>,
                 c: Caller,
                 Path(name): Path<String>,
                 JsonBody(body): JsonBody| async move {
                    let field = model(&s, &c).create_field(&name, &body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).field(&name, &field).await?))
                },
            ),
        )
        .route(
            "/{collection}/{field}",
            get(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>| async move {
                    Ok::<_, ApiError>(one(model(&s, &c).field(&name, &field).await?))
                },
            )
            .patch(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>,
                 JsonBody(body): JsonBody| async move {
                    model(&s, &c).update_field(&name, &field, &body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).field(&name, &field).await?))
                },
            )
            .delete(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>| async move {
                    model(&s, &c).delete_field(&name, &field).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(no_content())
                },
            ),
        )
}

pub fn relations_routes() -> Router<AppState> {
    Router::new()
        .route(
            "/",
            get(|State(s): State<AppState>, c: Caller| async move {
                Ok::<_, ApiError>(list(model(&s, &c).relations(None).await?))
            })
            .post(
                |State(s): State<AppState>, c: Caller, JsonBody(body): JsonBody| async move {
                    let (collection, field) = model(&s, &c).create_relation(&body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).relation(&collection, &field).await?))
                },
            ),
        )
        .route(
            "/{collection}",
            get(
                |State(s): State<AppState>, c: Caller, Path(name): Path<String>| async move {
                    Ok::<_, ApiError>(list(model(&s, &c).relations(Some(&name)).await?))
                },
            ),
        )
        .route(
            "/{collection}/{field}",
            get(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>| async move {
                    Ok::<_, ApiError>(one(model(&s, &c).relation(&name, &field).await?))
                },
            )
            .patch(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>,
                 JsonBody(body): JsonBody| async move {
                    model(&s, &c).update_relation(&name, &field, &body).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(one(model(&s, &c).relation(&name, &field).await?))
                },
            )
            .delete(
                |State(s): State<AppState>,
                 c: Caller,
                 Path((name, field)): Path<(String, String)>| async move {
                    model(&s, &c).delete_relation(&name, &field).await?;
                    s.refresh_schema().await?;
                    Ok::<_, ApiError>(no_content())
                },
            ),
        )
}

pub fn utils_routes() -> Router<AppState> {
    Router::new().route(
        "/cache/clear",
        post(|State(s): State<AppState>, c: Caller| async move {
            if !c.is_admin() {
                return Err(ApiError::forbidden());
            }
            s.refresh_schema().await?;
            s.authz.invalidate();
            Ok(no_content())
        }),
    )
}
