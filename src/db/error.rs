//! Errors of the database boundary, with the classification the layers above need (a unique
//! violation becomes `RECORD_NOT_UNIQUE`, a lost connection a 503) and nothing
//! driver-specific.

/// What kind of failure a database error is, independent of the database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DbErrorKind {
    UniqueViolation,
    ForeignKeyViolation,
    NotNullViolation,
    ValueTooLong,
    ValueOutOfRange,
    Other,
}

/// What the database said about the value that broke a constraint, as far as it said.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ErrorDetail {
    pub table: Option<String>,
    pub column: Option<String>,
    pub value: Option<String>,
    /// The constraint or index name, when the column itself is not named.
    pub constraint: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The database cannot be reached or refused the login.
    #[error("cannot connect to the database: {0}")]
    Connect(String),
    /// No connection became free in time.
    #[error("timed out waiting for a database connection")]
    Timeout,
    /// The database rejected a statement. `code` is the SQLSTATE (PostgreSQL), the error
    /// number (MySQL) or the extended result code (SQLite).
    #[error("database error{}: {message}", code.as_deref().map(|c| format!(" {c}")).unwrap_or_default())]
    Query {
        message: String,
        code: Option<String>,
        kind: DbErrorKind,
        detail: Box<ErrorDetail>,
    },
    /// A result cell could not be read as the expected type.
    #[error("cannot read the database's answer: {0}")]
    Decode(String),
    /// A value cannot be sent to this database.
    #[error("unsupported value for the database: {0}")]
    UnsupportedValue(String),
}

impl DbError {
    pub fn kind(&self) -> DbErrorKind {
        match self {
            DbError::Query { kind, .. } => *kind,
            _ => DbErrorKind::Other,
        }
    }

    pub fn detail(&self) -> Option<&ErrorDetail> {
        match self {
            DbError::Query { detail, .. } => Some(detail),
            _ => None,
        }
    }

    /// Whether the database (rather than the statement) is the problem.
    pub fn is_unavailable(&self) -> bool {
        matches!(self, DbError::Connect(_) | DbError::Timeout)
    }

    pub(super) fn query(message: impl Into<String>, code: Option<String>) -> DbError {
        Self::query_with(message, code, ErrorDetail::default())
    }

    pub(super) fn query_with(
        message: impl Into<String>,
        code: Option<String>,
        detail: ErrorDetail,
    ) -> DbError {
        let kind = match code.as_deref() {
            // PostgreSQL SQLSTATE, MySQL error numbers, SQLite extended result codes.
            Some("23505" | "1062" | "1586" | "2067" | "1555") => DbErrorKind::UniqueViolation,
            Some("23503" | "1451" | "1452" | "787") => DbErrorKind::ForeignKeyViolation,
            Some("23502" | "1048" | "1364" | "1299") => DbErrorKind::NotNullViolation,
            Some("22001" | "1406") => DbErrorKind::ValueTooLong,
            Some("22003" | "1264" | "1690") => DbErrorKind::ValueOutOfRange,
            _ => DbErrorKind::Other,
        };
        DbError::Query {
            message: message.into(),
            code,
            kind,
            detail: Box::new(detail),
        }
    }
}
