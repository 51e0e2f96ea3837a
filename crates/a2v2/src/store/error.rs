//! The storage layer's one error type: database failures sorted once, here, into what callers
//! can act on.

/// Which kind of constraint a write violated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Constraint {
    /// A unique index: the value is taken.
    Unique,
    /// A foreign key: the referenced row is gone.
    ForeignKey,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the row was not found")]
    NotFound,
    #[error("the write violates a {0:?} constraint")]
    Conflict(Constraint),
    /// The database cannot be reached or cannot take writes right now; retrying later may work.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database did not answer in time.
    #[error("the database did not answer in time")]
    Timeout,
    #[error(transparent)]
    Other(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if super::failover::is_primary_lost(&err) {
            super::readers::connection_failed();
        }
        match &err {
            sqlx::Error::RowNotFound => Self::NotFound,
            sqlx::Error::Database(db) if db.is_unique_violation() => {
                Self::Conflict(Constraint::Unique)
            }
            sqlx::Error::Database(db) if db.is_foreign_key_violation() => {
                Self::Conflict(Constraint::ForeignKey)
            }
            sqlx::Error::Database(db) if db.code().is_some_and(|code| transient(&code)) => {
                Self::Unavailable(err)
            }
            sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::WorkerCrashed => Self::Unavailable(err),
            _ => Self::Other(err),
        }
    }
}

/// Error codes meaning "not now" rather than "never": a lost or refused connection, a server
/// shutting down or demoted to a read-only standby, a lock or statement timeout, a full disk.
fn transient(code: &str) -> bool {
    // PostgreSQL SQLSTATEs are five characters: class 08 connection exceptions; 57P01–57P03
    // shutdown and start-up; class 53 insufficient resources; 25006 read-only transaction (a
    // standby); 55P03 lock not available; 57014 statement cancelled by its timeout.
    if code.len() == 5 {
        return code.starts_with("08")
            || code.starts_with("53")
            || matches!(
                code,
                "57P01" | "57P02" | "57P03" | "25006" | "55P03" | "57014"
            );
    }
    // SQLite result codes have at most four digits; the primary code is the low byte of an
    // extended one: BUSY, LOCKED, READONLY, IOERR, FULL.
    code.parse::<u32>()
        .is_ok_and(|n| matches!(n & 0xff, 5 | 6 | 8 | 10 | 13))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transient_codes_of_both_back_ends() {
        for code in [
            "08006", "08001", "57P01", "25006", "53300", "55P03", "57014",
        ] {
            assert!(transient(code), "{code}");
        }
        for code in ["23505", "23503", "42P01", "22P02", "40001"] {
            assert!(!transient(code), "{code}");
        }
        for code in ["5", "261", "6", "13", "10", "8"] {
            assert!(transient(code), "sqlite {code}");
        }
        for code in ["19", "2067", "787", "1"] {
            assert!(!transient(code), "sqlite {code}");
        }
    }
}
