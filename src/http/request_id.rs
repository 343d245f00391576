//! A request id for every HTTP request: a span carrying it wraps the handler, so every log
//! line of the request has it, and the response returns it in `X-Request-Id`.

use std::time::Instant;

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::response::Response;
use tracing::Instrument;

/// Runs `handle` on the request inside the request's span and adds the id to its answer.
pub async fn with_request_id(
    request: Request,
    handle: impl AsyncFnOnce(Request) -> Response,
) -> Response {
    let id = uuid::Uuid::new_v4().to_string();
    let span = tracing::info_span!(
        "request",
        request_id = %id,
        method = %request.method(),
        path = %request.uri().path()
    );
    let started = Instant::now();
    let mut response = handle(request).instrument(span.clone()).await;
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            ms = started.elapsed().as_secs_f64() * 1000.0,
            "request"
        )
    });
    if let Ok(value) = HeaderValue::from_str(&id) {
        response.headers_mut().insert("x-request-id", value);
    }
    response
}
