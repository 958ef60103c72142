//! What the store can fail with. The server maps each variant to HTTP once.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use frontdesk_domain::DomainError;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or is not visible to the caller (another partner's).
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value (an agent's email) is taken.
    #[error("{0} already in use")]
    Duplicate(&'static str),
    /// The request breaks a domain rule against the current state.
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// The database cannot be reached or the pool is exhausted: try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The configuration names no usable database.
    #[error("bad database configuration: {0}")]
    Config(String),
    /// Migrations failed at start.
    #[error("migration failed: {0}")]
    Migration(String),
    /// A stored value that cannot be read back (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else the database said.
    #[error("database error: {0}")]
    Database(DieselError),
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => StoreError::NotFound("row"),
            DieselError::DatabaseError(DatabaseErrorKind::ClosedConnection, info) => {
                StoreError::Unavailable(info.message().to_owned())
            }
            DieselError::BrokenTransactionManager => {
                StoreError::Unavailable("connection left in a broken transaction".into())
            }
            other => StoreError::Database(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl StoreError {
    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Database(DieselError::DatabaseError(
                DatabaseErrorKind::UniqueViolation,
                _
            ))
        )
    }
}
