//! Request parts as rectus reads them: the query string (Directus's JSON and bracket
//! syntax), JSON bodies with Directus-shaped errors, the caller, and JSON responses whose
//! data the database already serialised.

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value as Json};

use crate::error::{ApiError, ErrorCode};
use crate::planner::Query;
use crate::services::authz::Caller;

/// The largest request body rectus reads (Directus's `MAX_PAYLOAD_SIZE` default, 1 MB).
pub const MAX_BODY: usize = 1024 * 1024;

/// URL parameters gathered into one JSON object: `filter[status][_eq]=x` becomes
/// `{"filter": {"status": {"_eq": "x"}}}`, `fields[]=a&fields[]=b` a list.
pub fn params_to_json(raw: Option<&str>) -> Result<Map<String, Json>, ApiError> {
    let pairs: Vec<(String, String)> =
        serde_urlencoded::from_str(raw.unwrap_or("")).map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidQuery,
                "Invalid query. The query string cannot be read.",
            )
        })?;
    let mut root = Json::Object(Map::new());
    for (key, value) in pairs {
        let (head, rest) = match key.find('[') {
            Some(i) => (&key[..i], &key[i..]),
            None => (key.as_str(), ""),
        };
        let mut path = vec![head.to_string()];
        let mut rest = rest;
        while let Some(stripped) = rest.strip_prefix('[') {
            let Some(end) = stripped.find(']') else {
                return Err(ApiError::new(
                    ErrorCode::InvalidQuery,
                    format!("Invalid query. \"{key}\" is not a valid parameter name."),
                ));
            };
            path.push(stripped[..end].to_string());
            rest = &stripped[end + 1..];
        }
        insert(&mut root, &path, Json::String(value), &key)?;
    }
    let Json::Object(map) = arrays(root) else {
        return Ok(Map::new());
    };
    Ok(map)
}

fn insert(node: &mut Json, path: &[String], value: Json, key: &str) -> Result<(), ApiError> {
    let bad = || {
        ApiError::new(
            ErrorCode::InvalidQuery,
            format!("Invalid query. \"{key}\" conflicts with another parameter."),
        )
    };
    let Some((first, rest)) = path.split_first() else {
        return Ok(());
    };
    let Json::Object(map) = node else {
        return Err(bad());
    };
    if rest.is_empty() {
        map.insert(first.clone(), value);
        return Ok(());
    }
    if rest.len() == 1 && rest[0].is_empty() {
        // `fields[]=a`: append.
        let entry = map
            .entry(first.clone())
            .or_insert_with(|| Json::Array(vec![]));
        let Json::Array(items) = entry else {
            return Err(bad());
        };
        items.push(value);
        return Ok(());
    }
    let entry = map
        .entry(first.clone())
        .or_insert_with(|| Json::Object(Map::new()));
    insert(entry, rest, value, key)
}

/// Objects whose keys are all indexes (`_or[0]`, `_or[1]`) become arrays.
fn arrays(node: Json) -> Json {
    match node {
        Json::Object(map) => {
            let indexed = !map.is_empty() && map.keys().all(|k| k.parse::<usize>().is_ok());
            if indexed {
                let mut items: Vec<(usize, Json)> = map
                    .into_iter()
                    .map(|(k, v)| (k.parse().unwrap_or(0), arrays(v)))
                    .collect();
                items.sort_by_key(|(i, _)| *i);
                Json::Array(items.into_iter().map(|(_, v)| v).collect())
            } else {
                Json::Object(map.into_iter().map(|(k, v)| (k, arrays(v))).collect())
            }
        }
        other => other,
    }
}

/// The Directus query of a request's URL.
pub struct UrlQuery(pub Query);

impl<S: Send + Sync> FromRequestParts<S> for UrlQuery {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        if let Some(SearchQuery(query)) = parts.extensions.get::<SearchQuery>() {
            return Ok(UrlQuery(query.clone()));
        }
        let params = params_to_json(parts.uri.query())?;
        Ok(UrlQuery(Query::from_json(&params)?))
    }
}

/// The query of a `SEARCH` request, taken from its body.
#[derive(Clone)]
pub struct SearchQuery(pub Query);

/// Directus's `SEARCH` method carries the query in the body (`{"query": {...}}`); it is
/// answered as the `GET` of the same path with that query.
/// Any other request is returned as it came; an unreadable query is the error's response.
pub async fn search_as_get(request: Request) -> Result<Request, Response> {
    if request.method().as_str() != "SEARCH" {
        return Ok(request);
    }
    let (mut parts, body) = request.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => {
            return Err(ApiError::new(
                ErrorCode::ContentTooLarge,
                "Uploaded content is too large.",
            )
            .into_response());
        }
    };
    let query = match serde_json::from_slice::<Json>(&bytes) {
        Ok(body) => match body
            .get("query")
            .cloned()
            .unwrap_or(Json::Object(Map::new()))
        {
            Json::Object(params) => Query::from_json(&params),
            _ => Err(ApiError::new(
                ErrorCode::InvalidPayload,
                "Invalid payload. \"query\" must be an object.",
            )),
        },
        Err(e) => Err(ApiError::new(
            ErrorCode::InvalidPayload,
            format!("Invalid payload. {e}."),
        )),
    };
    match query {
        Ok(query) => {
            parts.method = axum::http::Method::GET;
            parts.extensions.insert(SearchQuery(query));
            Ok(Request::from_parts(parts, axum::body::Body::empty()))
        }
        Err(e) => Err(e.into_response()),
    }
}

/// The request body as bytes; an oversized or unreadable body is a Directus error, not a
/// plain-text 4xx.
pub struct BodyBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for BodyBytes {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        Bytes::from_request(request, state)
            .await
            .map(BodyBytes)
            .map_err(|e| {
                if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::new(ErrorCode::ContentTooLarge, "Uploaded content is too large.")
                } else {
                    ApiError::new(
                        ErrorCode::InvalidPayload,
                        "Invalid payload. The body cannot be read.",
                    )
                }
            })
    }
}

/// A JSON body; malformed or oversized bodies are Directus errors, not plain-text 4xx.
pub struct JsonBody(pub Json);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let BodyBytes(bytes) = BodyBytes::from_request(request, state).await?;
        if bytes.is_empty() {
            return Ok(JsonBody(Json::Null));
        }
        serde_json::from_slice(&bytes)
            .map(JsonBody)
            .map_err(|e| ApiError::new(ErrorCode::InvalidPayload, format!("Invalid payload. {e}.")))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    /// Taken rather than copied: the caller was resolved for this request alone.
    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, ApiError> {
        parts
            .extensions
            .remove::<Caller>()
            .ok_or_else(|| ApiError::internal(&"no caller resolved for the request"))
    }
}

/// `{"data": <json text>}` (plus `meta`), written without parsing the database's JSON.
pub fn data_response(data: &str, meta: Option<&Json>) -> Response {
    let mut body = String::with_capacity(data.len() + 32);
    body.push_str("{\"data\":");
    crate::db::json::compact_into(&mut body, data);
    if let Some(meta) = meta {
        body.push_str(",\"meta\":");
        body.push_str(&meta.to_string());
    }
    body.push('}');
    json_text(StatusCode::OK, body)
}

pub fn json_text(status: StatusCode, body: String) -> Response {
    let mut response = (status, body).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json; charset=utf-8"),
    );
    response
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bracket_syntax_builds_nested_json() {
        let p = params_to_json(Some(
            "filter[status][_eq]=Paid&filter[_or][0][a][_eq]=1&filter[_or][1][b][_null]=true&fields[]=id&fields[]=title&limit=5",
        ))
        .unwrap();
        assert_eq!(
            Json::Object(p),
            json!({"filter": {"status": {"_eq": "Paid"}, "_or": [{"a": {"_eq": "1"}}, {"b": {"_null": "true"}}]},
                   "fields": ["id", "title"], "limit": "5"})
        );
    }

    #[test]
    fn json_syntax_passes_through_and_bad_names_are_errors() {
        let p = params_to_json(Some("filter=%7B%22id%22%3A%7B%22_eq%22%3A1%7D%7D")).unwrap();
        assert_eq!(p["filter"], json!("{\"id\":{\"_eq\":1}}"));
        assert!(params_to_json(Some("filter[status=1")).is_err());
        assert!(params_to_json(Some("limit=1&limit[x]=2")).is_err());
    }
}
