//! The one table of Directus error codes and their HTTP statuses, and the error type every
//! HTTP path returns. Bodies always have Directus's shape:
//! `{"errors":[{"message":..,"extensions":{"code":..}}]}`. What a client reads is written
//! here on purpose; internal causes go to the log, never into a response.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use rectus_policies::Collection;
use serde_json::Value as Json;

use crate::db::{DbError, DbErrorKind, ErrorDetail};
use crate::services::ServiceError;
use crate::services::auth::AuthError;

macro_rules! error_codes {
    ($($variant:ident => ($status:expr, $code:literal)),* $(,)?) => {
        /// Directus's error codes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorCode { $($variant),* }

        impl ErrorCode {
            pub fn status(self) -> StatusCode {
                match self { $(ErrorCode::$variant => $status),* }
            }

            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$variant => $code),* }
            }
        }
    };
}

error_codes! {
    ContainsNullValues => (StatusCode::BAD_REQUEST, "CONTAINS_NULL_VALUES"),
    ContentTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "CONTENT_TOO_LARGE"),
    FailedValidation => (StatusCode::BAD_REQUEST, "FAILED_VALIDATION"),
    Forbidden => (StatusCode::FORBIDDEN, "FORBIDDEN"),
    GraphqlValidation => (StatusCode::BAD_REQUEST, "GRAPHQL_VALIDATION"),
    IllegalAssetTransformation => (StatusCode::BAD_REQUEST, "ILLEGAL_ASSET_TRANSFORMATION"),
    Internal => (StatusCode::INTERNAL_SERVER_ERROR, "INTERNAL"),
    InvalidCredentials => (StatusCode::UNAUTHORIZED, "INVALID_CREDENTIALS"),
    InvalidForeignKey => (StatusCode::BAD_REQUEST, "INVALID_FOREIGN_KEY"),
    InvalidIp => (StatusCode::UNAUTHORIZED, "INVALID_IP"),
    InvalidOtp => (StatusCode::UNAUTHORIZED, "INVALID_OTP"),
    InvalidPayload => (StatusCode::BAD_REQUEST, "INVALID_PAYLOAD"),
    InvalidQuery => (StatusCode::BAD_REQUEST, "INVALID_QUERY"),
    InvalidToken => (StatusCode::FORBIDDEN, "INVALID_TOKEN"),
    MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "METHOD_NOT_ALLOWED"),
    NotNullViolation => (StatusCode::BAD_REQUEST, "NOT_NULL_VIOLATION"),
    RangeNotSatisfiable => (StatusCode::RANGE_NOT_SATISFIABLE, "RANGE_NOT_SATISFIABLE"),
    RecordNotUnique => (StatusCode::BAD_REQUEST, "RECORD_NOT_UNIQUE"),
    RequestsExceeded => (StatusCode::TOO_MANY_REQUESTS, "REQUESTS_EXCEEDED"),
    RouteNotFound => (StatusCode::NOT_FOUND, "ROUTE_NOT_FOUND"),
    ServiceUnavailable => (StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE"),
    TokenExpired => (StatusCode::UNAUTHORIZED, "TOKEN_EXPIRED"),
    UnprocessableContent => (StatusCode::UNPROCESSABLE_ENTITY, "UNPROCESSABLE_CONTENT"),
    UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "UNSUPPORTED_MEDIA_TYPE"),
    UserSuspended => (StatusCode::UNAUTHORIZED, "USER_SUSPENDED"),
    ValueOutOfRange => (StatusCode::BAD_REQUEST, "VALUE_OUT_OF_RANGE"),
    ValueTooLong => (StatusCode::BAD_REQUEST, "VALUE_TOO_LONG"),
}

/// An error as a client sees it.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code:?}: {message}")]
pub struct ApiError {
    pub code: ErrorCode,
    pub message: String,
    /// More members of `extensions` beside `code` (`field`, `type`, ... of a validation).
    pub extensions: serde_json::Map<String, serde_json::Value>,
}

impl ApiError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ApiError {
            code,
            message: message.into(),
            extensions: serde_json::Map::new(),
        }
    }

    pub fn with_extension(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.extensions.insert(key.to_string(), value.into());
        self
    }

    pub fn route_not_found(path: &str) -> Self {
        Self::new(
            ErrorCode::RouteNotFound,
            format!("Route {path} doesn't exist."),
        )
    }

    pub fn forbidden() -> Self {
        Self::new(
            ErrorCode::Forbidden,
            "You don't have permission to access this.",
        )
    }

    /// Logs `cause` and answers with a message that reveals nothing about it.
    pub fn internal(cause: &dyn std::fmt::Display) -> Self {
        tracing::error!(error = %cause, "internal error");
        Self::new(ErrorCode::Internal, "An unexpected error occurred.")
    }

    pub fn body(&self) -> serde_json::Value {
        let mut extensions = serde_json::Map::new();
        extensions.insert("code".into(), self.code.as_str().into());
        extensions.extend(self.extensions.clone());
        json!({
            "errors": [{
                "message": self.message,
                "extensions": extensions
            }]
        })
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.code.status(), axum::Json(self.body())).into_response()
    }
}

impl From<DbError> for ApiError {
    fn from(e: DbError) -> Self {
        ApiError::from_db(e, None)
    }
}

impl ApiError {
    /// A database error of a write to `collection`, worded as Directus words it: which field
    /// of which collection, and the value where the database named it.
    pub fn from_write(e: DbError, collection: &Collection) -> Self {
        ApiError::from_db(e, Some(collection))
    }

    fn from_db(e: DbError, collection: Option<&Collection>) -> Self {
        if e.is_unavailable() {
            tracing::error!(error = %e, "database unavailable");
            return ApiError::new(
                ErrorCode::ServiceUnavailable,
                "The database is unavailable.",
            );
        }
        let detail = e.detail().cloned().unwrap_or_default();
        let table = detail
            .table
            .clone()
            .or_else(|| collection.map(|c| c.collection.clone()));
        let field = detail
            .column
            .clone()
            .or_else(|| field_of_constraint(&detail, collection));
        let (code, message) = match e.kind() {
            DbErrorKind::UniqueViolation => (ErrorCode::RecordNotUnique, "has to be unique."),
            DbErrorKind::ForeignKeyViolation => (ErrorCode::InvalidForeignKey, ""),
            DbErrorKind::NotNullViolation => (ErrorCode::NotNullViolation, "can't be null."),
            DbErrorKind::ValueTooLong => (ErrorCode::ValueTooLong, "is too long."),
            DbErrorKind::ValueOutOfRange => (ErrorCode::ValueOutOfRange, "is out of range."),
            DbErrorKind::Other => return ApiError::internal(&e),
        };
        tracing::debug!(error = %e, "a write broke a constraint");
        constraint_error(
            code,
            message,
            table.as_deref(),
            field.as_deref(),
            detail.value.as_deref(),
        )
    }
}

/// The Directus error of a value that breaks a constraint of `field` in `collection`.
pub fn constraint_error(
    code: ErrorCode,
    what: &str,
    collection: Option<&str>,
    field: Option<&str>,
    value: Option<&str>,
) -> ApiError {
    let quoted_value = value.map(|v| format!("\"{v}\" ")).unwrap_or_default();
    let place = match (field, collection) {
        (Some(f), Some(c)) => format!("for field \"{f}\" in collection \"{c}\" "),
        (Some(f), None) => format!("for field \"{f}\" "),
        (None, Some(c)) => format!("in collection \"{c}\" "),
        (None, None) => String::new(),
    };
    let message = match code {
        ErrorCode::InvalidForeignKey => {
            format!("Invalid foreign key {quoted_value}{place}")
                .trim_end()
                .to_string()
                + "."
        }
        ErrorCode::ValueOutOfRange => format!("Numeric value {quoted_value}{place}{what}"),
        ErrorCode::RecordNotUnique => format!("Value {quoted_value}{place}{what}"),
        _ => format!("Value {place}{what}"),
    };
    let mut error = ApiError::new(code, message);
    error = error.with_extension("collection", collection.map_or(Json::Null, Json::from));
    error = error.with_extension("field", field.map_or(Json::Null, Json::from));
    if let Some(v) = value {
        error = error.with_extension("value", v);
    }
    error
}

/// The field an index or constraint name stands for: Directus names them
/// `<collection>_<field>_unique` / `_foreign`; MariaDB names a column's own unique index
/// after the column.
fn field_of_constraint(detail: &ErrorDetail, collection: Option<&Collection>) -> Option<String> {
    let name = detail.constraint.as_deref()?;
    let collection = collection?;
    if collection.field(name).is_some() {
        return Some(name.to_string());
    }
    let bare = name
        .strip_prefix(&format!("{}_", collection.collection))
        .unwrap_or(name);
    let bare = bare
        .strip_suffix("_unique")
        .or_else(|| bare.strip_suffix("_foreign"))
        .or_else(|| bare.strip_suffix("_key"))
        .unwrap_or(bare);
    collection.field(bare).map(|f| f.field.clone())
}

impl From<AuthError> for ApiError {
    fn from(e: AuthError) -> Self {
        let message = e.to_string();
        match e {
            AuthError::InvalidCredentials => ApiError::new(ErrorCode::InvalidCredentials, message),
            AuthError::InvalidToken => ApiError::new(ErrorCode::InvalidToken, message),
            AuthError::TokenExpired => ApiError::new(ErrorCode::TokenExpired, message),
            AuthError::UserSuspended => ApiError::new(ErrorCode::UserSuspended, message),
            AuthError::TooManyAttempts => ApiError::new(ErrorCode::RequestsExceeded, message),
            AuthError::Db(e) => e.into(),
            AuthError::Internal(m) => ApiError::internal(&m),
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::Db(e) => e.into(),
            ServiceError::NotFound(_) => ApiError::forbidden(),
            ServiceError::Invalid(m) => ApiError::new(ErrorCode::InvalidPayload, m),
            ServiceError::Conflict(m) => ApiError::new(ErrorCode::RecordNotUnique, m),
            e @ (ServiceError::Migration(_) | ServiceError::Hash(_)) => ApiError::internal(&e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_directus_shape() {
        let e = ApiError::route_not_found("/nope");
        assert_eq!(e.code.status(), StatusCode::NOT_FOUND);
        assert_eq!(
            e.body(),
            json!({"errors":[{"message":"Route /nope doesn't exist.","extensions":{"code":"ROUTE_NOT_FOUND"}}]})
        );
    }

    #[test]
    fn database_failures_never_leak_their_message() {
        let e: ApiError = DbError::Decode("secret column value".into()).into();
        assert_eq!(e.code, ErrorCode::Internal);
        assert!(!e.message.contains("secret"));
        let e: ApiError = DbError::Timeout.into();
        assert_eq!(e.code.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
