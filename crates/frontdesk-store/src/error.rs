//! What the store can fail with. The server maps each variant to HTTP once.

use diesel::result::{DatabaseErrorKind, Error as DieselError};
use frontdesk_domain::DomainError;

/// What a `NotFound` was looking for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entity {
    Conversation,
    Customer,
    Partner,
    /// A row a statement expected, of no entity in particular (diesel's own `NotFound`).
    Row,
}

impl std::fmt::Display for Entity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Entity::Conversation => "conversation",
            Entity::Customer => "customer",
            Entity::Partner => "partner",
            Entity::Row => "row",
        })
    }
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist, or is not visible to the caller (another partner's).
    #[error("{0} not found")]
    NotFound(Entity),
    /// A unique value (an agent's email) is taken.
    #[error("{0} already in use")]
    Duplicate(&'static str),
    /// The request breaks a domain rule against the current state.
    #[error(transparent)]
    Rule(#[from] DomainError),
    /// The database cannot be reached, the pool is exhausted or a statement ran out of time:
    /// try again later.
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The whole database is locked by someone else (SQLite: another process's write lock
    /// outlasted the busy timeout): try again shortly.
    #[error("database busy: {0}")]
    Busy(String),
    /// A row this write needs is locked by another session past `lock_timeout` (PostgreSQL):
    /// only writes touching that row are affected.
    #[error("row locked: {0}")]
    RowLocked(String),
    /// The disk (or the database's space) is full.
    #[error("storage full: {0}")]
    StorageFull(String),
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
    Database(DatabaseError),
}

/// What the database said when it was none of the states above, kept for the logs. Opaque, so
/// that the store's callers never depend on diesel: they see its text (`Display`) and whatever
/// it was caused by (`source`), never its type.
#[derive(Debug)]
pub struct DatabaseError {
    error: DieselError,
}

impl std::fmt::Display for DatabaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.error.fmt(f)
    }
}

impl std::error::Error for DatabaseError {
    // The diesel error itself is what `Display` shows already; its own cause, if any, follows.
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        std::error::Error::source(&self.error)
    }
}

/// A diesel error that means nothing more particular.
fn plain(error: DieselError) -> StoreError {
    StoreError::Database(DatabaseError { error })
}

impl From<DieselError> for StoreError {
    fn from(error: DieselError) -> Self {
        match error {
            DieselError::NotFound => StoreError::NotFound(Entity::Row),
            DieselError::DatabaseError(
                DatabaseErrorKind::ClosedConnection | DatabaseErrorKind::UnableToSendCommand,
                info,
            ) => StoreError::Unavailable(info.message().to_owned()),
            DieselError::DatabaseError(DatabaseErrorKind::Unknown, info) => {
                classify(info.message()).unwrap_or_else(|| {
                    plain(DieselError::DatabaseError(DatabaseErrorKind::Unknown, info))
                })
            }
            DieselError::BrokenTransactionManager => {
                StoreError::Unavailable("connection left in a broken transaction".into())
            }
            other => plain(other),
        }
    }
}

/// The failures that are about the database's state rather than the request, told apart by
/// message: diesel keeps neither SQLite's result code nor PostgreSQL's SQLSTATE for them. The
/// PostgreSQL texts are its English messages (`lc_messages` other than English would read as
/// plain database errors, 500).
fn classify(message: &str) -> Option<StoreError> {
    let owned = || message.to_owned();
    // SQLITE_BUSY, SQLITE_LOCKED.
    if message == "database is locked" || message == "database table is locked" {
        return Some(StoreError::Busy(owned()));
    }
    // SQLITE_FULL; PostgreSQL's 53100 disk_full ("could not extend file …: No space left on
    // device") and other writes failing with ENOSPC.
    if message == "database or disk is full" || message.contains("No space left on device") {
        return Some(StoreError::StorageFull(owned()));
    }
    // 55P03 lock_not_available from lock_timeout.
    if message.contains("canceling statement due to lock timeout") {
        return Some(StoreError::RowLocked(owned()));
    }
    // 57014 from statement_timeout; 57P01 and friends when the server goes away.
    if message.contains("canceling statement due to statement timeout")
        || message.starts_with("terminating connection")
    {
        return Some(StoreError::Unavailable(owned()));
    }
    None
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for StoreError {
    fn from(error: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        StoreError::Unavailable(error.to_string())
    }
}

impl StoreError {
    /// A failure that every write of this moment would meet (the database, not the row): the
    /// message writer fails a whole batch with it at once instead of retrying one by one, each
    /// waiting again. False for failures that may be particular to a row.
    pub(crate) fn is_shared_by_all(&self) -> bool {
        matches!(
            self,
            StoreError::Unavailable(_) | StoreError::Busy(_) | StoreError::StorageFull(_)
        )
    }

    /// The same failure again, for each append of a failed batch (diesel's errors are not
    /// `Clone`; the shared ones carry only text).
    pub(crate) fn replicate(&self) -> StoreError {
        match self {
            StoreError::Busy(why) => StoreError::Busy(why.clone()),
            StoreError::StorageFull(why) => StoreError::StorageFull(why.clone()),
            StoreError::RowLocked(why) => StoreError::RowLocked(why.clone()),
            StoreError::Unavailable(why) => StoreError::Unavailable(why.clone()),
            other => StoreError::Unavailable(other.to_string()),
        }
    }

    pub(crate) fn is_unique_violation(&self) -> bool {
        matches!(
            self,
            StoreError::Database(DatabaseError {
                error: DieselError::DatabaseError(DatabaseErrorKind::UniqueViolation, _)
            })
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kind(message: &str) -> &'static str {
        match classify(message) {
            Some(StoreError::Busy(_)) => "busy",
            Some(StoreError::RowLocked(_)) => "row locked",
            Some(StoreError::StorageFull(_)) => "full",
            Some(StoreError::Unavailable(_)) => "unavailable",
            Some(_) => "other",
            None => "database error",
        }
    }

    fn database(kind: DatabaseErrorKind, message: &str) -> DieselError {
        DieselError::DatabaseError(kind, Box::new(message.to_owned()))
    }

    /// The variant and its text, for comparison (diesel's errors are not `PartialEq`).
    fn shown(error: &StoreError) -> String {
        let variant = match error {
            StoreError::NotFound(_) => "NotFound",
            StoreError::Duplicate(_) => "Duplicate",
            StoreError::Rule(_) => "Rule",
            StoreError::Unavailable(_) => "Unavailable",
            StoreError::Busy(_) => "Busy",
            StoreError::RowLocked(_) => "RowLocked",
            StoreError::StorageFull(_) => "StorageFull",
            StoreError::Config(_) => "Config",
            StoreError::Migration(_) => "Migration",
            StoreError::Corrupt(_) => "Corrupt",
            StoreError::Database(_) => "Database",
        };
        format!("{variant}: {error}")
    }

    #[test]
    fn diesel_errors_map_to_what_the_server_answers() {
        let cases = [
            (DieselError::NotFound, "NotFound: row not found"),
            (
                database(DatabaseErrorKind::ClosedConnection, "server closed"),
                "Unavailable: database unavailable: server closed",
            ),
            (
                database(DatabaseErrorKind::UnableToSendCommand, "no route"),
                "Unavailable: database unavailable: no route",
            ),
            (
                database(DatabaseErrorKind::Unknown, "database is locked"),
                "Busy: database busy: database is locked",
            ),
            (
                database(DatabaseErrorKind::Unknown, "some other failure"),
                "Database: database error: some other failure",
            ),
            (
                database(DatabaseErrorKind::UniqueViolation, "duplicate key"),
                "Database: database error: duplicate key",
            ),
            (
                DieselError::BrokenTransactionManager,
                "Unavailable: database unavailable: connection left in a broken transaction",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(shown(&StoreError::from(error)), expected);
        }
        let closed: diesel_async::pooled_connection::deadpool::PoolError =
            deadpool::managed::PoolError::Closed;
        let text = closed.to_string();
        assert_eq!(
            shown(&StoreError::from(closed)),
            format!("Unavailable: database unavailable: {text}")
        );
    }

    #[test]
    fn only_database_wide_failures_fail_a_whole_batch() {
        let unique = || StoreError::from(database(DatabaseErrorKind::UniqueViolation, "dup"));
        let cases = [
            (StoreError::Unavailable("x".into()), true),
            (StoreError::Busy("x".into()), true),
            (StoreError::StorageFull("x".into()), true),
            (StoreError::RowLocked("x".into()), false),
            (StoreError::NotFound(Entity::Row), false),
            (StoreError::Corrupt("x".into()), false),
            (unique(), false),
        ];
        for (error, shared) in cases {
            assert_eq!(error.is_shared_by_all(), shared, "{}", shown(&error));
        }
        assert!(unique().is_unique_violation());
        assert!(
            !StoreError::from(database(DatabaseErrorKind::Unknown, "dup")).is_unique_violation()
        );
        assert!(!StoreError::Duplicate("email").is_unique_violation());
    }

    #[test]
    fn a_failed_batch_replicates_its_failure_for_every_append() {
        let cases = [
            (StoreError::Busy("b".into()), "Busy: database busy: b"),
            (
                StoreError::StorageFull("f".into()),
                "StorageFull: storage full: f",
            ),
            (
                StoreError::RowLocked("r".into()),
                "RowLocked: row locked: r",
            ),
            (
                StoreError::Unavailable("u".into()),
                "Unavailable: database unavailable: u",
            ),
            (
                StoreError::Corrupt("c".into()),
                "Unavailable: database unavailable: corrupt row: c",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(shown(&error.replicate()), expected);
        }
    }

    #[test]
    fn the_database_states_are_told_apart_from_bad_rows() {
        assert_eq!(kind("database is locked"), "busy");
        assert_eq!(kind("database table is locked"), "busy");
        assert_eq!(kind("database or disk is full"), "full");
        assert_eq!(
            kind(
                r#"could not extend file "pg_tblspc/16384/PG_15/16385/16390": No space left on device"#
            ),
            "full"
        );
        assert_eq!(
            kind("canceling statement due to lock timeout"),
            "row locked"
        );
        assert_eq!(
            kind("canceling statement due to statement timeout"),
            "unavailable"
        );
        assert_eq!(
            kind("terminating connection due to administrator command"),
            "unavailable"
        );
        assert_eq!(
            kind("invalid byte sequence for encoding \"UTF8\": 0x00"),
            "database error"
        );
        assert_eq!(
            kind("null value in column \"x\" violates not-null constraint"),
            "database error"
        );
    }
}
