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

/// `GET /schema/snapshot` (`?export=yaml` for a YAML download), `POST /schema/diff`,
/// `POST /schema/apply`.
pub fn schema_routes() -> Router<AppState> {
    use axum::http::{HeaderValue, header};
    use axum::response::IntoResponse;

    use crate::services::datamodel::snapshot;

    Router::new()
        .route(
            "/snapshot",
            get(
                |State(s): State<AppState>, c: Caller, uri: axum::http::Uri| async move {
                    let snap = model(&s, &c).snapshot().await?;
                    let yaml = uri
                        .query()
                        .is_some_and(|q| q.split('&').any(|p| p == "export=yaml"));
                    if yaml {
                        let mut response = snapshot::to_yaml(&snap)?.into_response();
                        response.headers_mut().insert(
                            header::CONTENT_TYPE,
                            HeaderValue::from_static("text/yaml; charset=utf-8"),
                        );
                        response.headers_mut().insert(
                            header::CONTENT_DISPOSITION,
                            HeaderValue::from_static("attachment; filename=\"snapshot.yaml\""),
                        );
                        return Ok::<_, ApiError>(response);
                    }
                    Ok(one(snap))
                },
            ),
        )
        .route(
            "/diff",
            post(
                |State(s): State<AppState>, c: Caller, body: axum::body::Bytes| async move {
                    let text = std::str::from_utf8(&body).map_err(|_| {
                        ApiError::new(
                            crate::error::ErrorCode::InvalidPayload,
                            "Invalid payload. The snapshot is not text.",
                        )
                    })?;
                    let target = snapshot::parse(text)?;
                    match model(&s, &c).diff(&target).await? {
                        Some(diff) => Ok::<_, ApiError>(one(diff)),
                        None => Ok(no_content()),
                    }
                },
            ),
        )
        .route(
            "/apply",
            post(
                |State(s): State<AppState>, c: Caller, JsonBody(body): JsonBody| async move {
                    let result = model(&s, &c).apply(&body).await;
                    s.refresh_schema().await?;
                    result?;
                    Ok::<_, ApiError>(no_content())
                },
            ),
        )
}
