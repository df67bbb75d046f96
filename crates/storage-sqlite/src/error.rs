use std::error::Error as StdError;

use thiserror::Error;

/// The driver's error behind [`StoreError::Busy`] and [`StoreError::Query`], boxed so that its
/// type stays out of this crate's API while [`source`](StdError::source) chains keep it.
type DriverError = Box<dyn StdError + Send + Sync>;

/// Why a [`Store`](crate::Store) operation failed.
///
/// Messages are lowercase and start with `storage:` so that they read well inside a caller's
/// own error chain. No type of the SQLite driver or the connection pool appears in this crate's
/// public API: variants carry text, or the driver's error boxed as a `dyn Error` source.
///
/// [`Busy`](Self::Busy) is the one transient failure: the same call may succeed if tried
/// again later. Everything else will fail the same way until something changes.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    /// A configuration value is out of range.
    #[error("storage: invalid configuration: {field} {expected}")]
    Config {
        /// The offending field of [`StoreConfig`](crate::StoreConfig).
        field: &'static str,
        /// What is accepted.
        expected: &'static str,
    },
    /// The database file could not be opened or configured.
    #[error("storage: cannot open {path}: {message}")]
    Open {
        /// The path (or `:memory:`) that was being opened.
        path: String,
        /// What the database said.
        message: String,
    },
    /// The file was written by a newer build; this build refuses to touch it.
    #[error(
        "storage: database schema version {found} is newer than version {supported}, the newest this build understands"
    )]
    SchemaTooNew {
        /// `PRAGMA user_version` found in the file.
        found: i64,
        /// The newest version this build can migrate to.
        supported: i64,
    },
    /// A schema migration step failed; the file is left at the previous version.
    #[error("storage: migration to schema version {version} failed: {message}")]
    Migration {
        /// The version the failed step would have produced.
        version: i64,
        /// What the database said.
        message: String,
    },
    /// No pooled connection became available within the busy timeout.
    #[error("storage: no database connection available: {0}")]
    Pool(String),
    /// Another connection held the database past the busy timeout (SQLite's `SQLITE_BUSY` or
    /// `SQLITE_LOCKED`). Transient: the call may be retried. The message is that of any failed
    /// statement; the driver's own words say busy or locked.
    #[error("storage: query failed: {0}")]
    Busy(#[source] DriverError),
    /// A statement failed for a reason that waiting does not cure (disk full, I/O error, a
    /// constraint, ...).
    #[error("storage: query failed: {0}")]
    Query(#[source] DriverError),
    /// A stored value could not be decoded.
    #[error("storage: corrupt {what} in the database: {message}")]
    Corrupt {
        /// What was being decoded.
        what: &'static str,
        /// Why it was rejected.
        message: String,
    },
    /// A value could not be encoded for storage.
    #[error("storage: cannot encode {what}: {message}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        message: String,
    },
    /// The span writer failed to commit some spans since the last flush.
    #[error("storage: span writer failed: {0}")]
    Writer(String),
    /// Another process (or another store in this one) has the database open: two writers on
    /// one file would fail each other's transactions.
    #[error(
        "storage: the database {path} is in use by another aiops process (it holds {lock}); stop it, or give this one another --db"
    )]
    InUse {
        /// The database file.
        path: String,
        /// The lock file held.
        lock: String,
    },
    /// The database file is no longer the one opened: deleted, or replaced by another file.
    /// What is written goes to the file opened, which no path names any more.
    #[error(
        "storage: the database file {path} was {what} while open; restart to use the file now there"
    )]
    FileChanged {
        /// The database file.
        path: String,
        /// `deleted` or `replaced`.
        what: &'static str,
    },
}

impl PartialEq for StoreError {
    /// Same variant, same message. Every field shows in the message, and a driver error can
    /// only be compared by what it says.
    fn eq(&self, other: &Self) -> bool {
        std::mem::discriminant(self) == std::mem::discriminant(other)
            && self.to_string() == other.to_string()
    }
}

impl Eq for StoreError {}

/// Turns driver errors into [`StoreError::Busy`] or [`StoreError::Query`] without a public
/// `From` impl, which would leak the driver's type into the API.
pub(crate) trait SqlResultExt<T> {
    fn sql(self) -> Result<T, StoreError>;
}

impl<T> SqlResultExt<T> for rusqlite::Result<T> {
    fn sql(self) -> Result<T, StoreError> {
        self.map_err(|error| match error.sqlite_error_code() {
            Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked) => {
                StoreError::Busy(Box::new(error))
            }
            _ => StoreError::Query(Box::new(error)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_are_lowercase_and_prefixed() {
        let cases = [
            (
                StoreError::Config {
                    field: "queue_capacity",
                    expected: "must be at least 1",
                },
                "storage: invalid configuration: queue_capacity must be at least 1",
            ),
            (
                StoreError::Open {
                    path: "/nope/aiops.db".into(),
                    message: "unable to open database file".into(),
                },
                "storage: cannot open /nope/aiops.db: unable to open database file",
            ),
            (
                StoreError::SchemaTooNew {
                    found: 9,
                    supported: 3,
                },
                "storage: database schema version 9 is newer than version 3, the newest this build understands",
            ),
            (
                StoreError::Migration {
                    version: 2,
                    message: "disk I/O error".into(),
                },
                "storage: migration to schema version 2 failed: disk I/O error",
            ),
            (
                StoreError::Pool("timed out waiting for connection".into()),
                "storage: no database connection available: timed out waiting for connection",
            ),
            (
                StoreError::Busy("database is locked".into()),
                "storage: query failed: database is locked",
            ),
            (
                StoreError::Query("database or disk is full".into()),
                "storage: query failed: database or disk is full",
            ),
            (
                StoreError::Corrupt {
                    what: "latency histogram",
                    message: "length 10 is not a multiple of 9".into(),
                },
                "storage: corrupt latency histogram in the database: length 10 is not a multiple of 9",
            ),
            (
                StoreError::Encode {
                    what: "span attributes",
                    message: "key must be a string".into(),
                },
                "storage: cannot encode span attributes: key must be a string",
            ),
            (
                StoreError::Writer("disk full".into()),
                "storage: span writer failed: disk full",
            ),
            (
                StoreError::InUse {
                    path: "aiops.db".into(),
                    lock: "aiops.db.lock".into(),
                },
                "storage: the database aiops.db is in use by another aiops process (it holds aiops.db.lock); stop it, or give this one another --db",
            ),
            (
                StoreError::FileChanged {
                    path: "aiops.db".into(),
                    what: "deleted",
                },
                "storage: the database file aiops.db was deleted while open; restart to use the file now there",
            ),
        ];
        for (error, expected) in cases {
            assert_eq!(error.to_string(), expected);
        }
    }

    fn sqlite_failure(code: std::ffi::c_int, message: &str) -> rusqlite::Error {
        rusqlite::Error::SqliteFailure(rusqlite::ffi::Error::new(code), Some(message.into()))
    }

    #[test]
    fn driver_errors_become_query_errors() {
        let result: rusqlite::Result<()> = Err(rusqlite::Error::QueryReturnedNoRows);
        assert!(matches!(result.sql(), Err(StoreError::Query(_))));
        let full: rusqlite::Result<()> = Err(sqlite_failure(
            rusqlite::ffi::SQLITE_FULL,
            "database or disk is full",
        ));
        assert!(matches!(full.sql(), Err(StoreError::Query(_))));
    }

    #[test]
    fn busy_and_locked_databases_are_busy_errors_that_keep_the_driver_error() {
        for code in [rusqlite::ffi::SQLITE_BUSY, rusqlite::ffi::SQLITE_LOCKED] {
            let result: rusqlite::Result<()> = Err(sqlite_failure(code, "database is locked"));
            let error = result.sql().expect_err("fails");
            assert!(matches!(error, StoreError::Busy(_)), "{error:?}");
            assert_eq!(
                error.to_string(),
                "storage: query failed: database is locked"
            );
            let source = error.source().expect("keeps the driver error");
            assert_eq!(source.to_string(), "database is locked");
            assert_ne!(error, StoreError::Query("database is locked".into()));
            assert_eq!(error, StoreError::Busy("database is locked".into()));
        }
    }
}
