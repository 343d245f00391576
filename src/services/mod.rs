//! Business rules over the database: bootstrap, users, settings. Handlers and CLI commands
//! stay thin and call these.

pub mod activity;
pub mod auth;
pub mod authz;
pub mod bootstrap;
pub mod datamodel;
pub mod items;
pub mod settings;
pub mod users;
pub mod wire;

use crate::auth::password::HashError;
use crate::db::DbError;
use crate::db::migrations::MigrationError;

#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    #[error(transparent)]
    Db(#[from] DbError),
    #[error(transparent)]
    Migration(#[from] MigrationError),
    #[error(transparent)]
    Hash(#[from] HashError),
    /// Something named does not exist; the message says what.
    #[error("{0}")]
    NotFound(String),
    /// Input that cannot be accepted; the message says why.
    #[error("{0}")]
    Invalid(String),
    /// The change would duplicate something unique.
    #[error("{0}")]
    Conflict(String),
}
