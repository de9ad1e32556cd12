use lectern_core::Error;
use sea_orm::{DbErr, RuntimeErr, SqlErr};

/// Sorts a database error by what the caller can do about it.
pub(crate) fn db_error(context: &str, err: DbErr) -> Error {
    if let Some(SqlErr::UniqueConstraintViolation(_)) = err.sql_err() {
        return Error::Conflict(format!("{context}: it already exists"));
    }
    match err {
        DbErr::RecordNotFound(what) => Error::NotFound(format!("{context}: {what} not found")),
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            Error::unavailable(format!("{context}: the database is unavailable"), err)
        }
        DbErr::Exec(RuntimeErr::SqlxError(ref e)) | DbErr::Query(RuntimeErr::SqlxError(ref e))
            if is_transient(e.to_string().as_str()) =>
        {
            Error::unavailable(format!("{context}: the database is unavailable"), err)
        }
        other => Error::internal(format!("{context}: database error"), other),
    }
}

fn is_transient(message: &str) -> bool {
    [
        "database is locked",
        "connection refused",
        "pool timed out",
        "broken pipe",
        "connection reset",
    ]
    .iter()
    .any(|m| message.to_ascii_lowercase().contains(m))
}
