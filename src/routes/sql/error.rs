//! Errors returned to clients inside `response_error`, batch `step_errors` and cursor entries,
//! with the codes sqld uses (`SQL_PARSE_ERROR`, `ARGS_INVALID`, ...) and SQLite's own result
//! code names, extended when SQLite gives one (`SQLITE_CONSTRAINT_UNIQUE`, ...).

use rusqlite::ffi;

use super::proto::Error;

pub(crate) const SQL_PARSE_ERROR: &str = "SQL_PARSE_ERROR";
pub(crate) const SQL_NO_STATEMENT: &str = "SQL_NO_STATEMENT";
pub(crate) const SQL_MANY_STATEMENTS: &str = "SQL_MANY_STATEMENTS";
pub(crate) const ARGS_INVALID: &str = "ARGS_INVALID";
pub(crate) const TRANSACTION_TIMEOUT: &str = "TRANSACTION_TIMEOUT";
pub(crate) const RESPONSE_TOO_LARGE: &str = "RESPONSE_TOO_LARGE";
pub(crate) const STREAM_NOT_OPEN: &str = "STREAM_NOT_OPEN";
pub(crate) const CURSOR_NOT_OPEN: &str = "CURSOR_NOT_OPEN";
pub(crate) const STREAMS_TOO_MANY: &str = "STREAMS_TOO_MANY";
pub(crate) const SQL_STORE_TOO_MANY: &str = "SQL_STORE_TOO_MANY";
pub(crate) const AUTH_JWT_INVALID: &str = "AUTH_JWT_INVALID";
pub(crate) const AUTH_JWT_MISSING: &str = "AUTH_JWT_MISSING";
pub(crate) const INTERNAL: &str = "INTERNAL";
pub(crate) const SQLITE_READONLY: &str = "SQLITE_READONLY";
pub(crate) const SQLITE_INTERRUPT: &str = "SQLITE_INTERRUPT";

/// Where an error happened, which decides how a generic SQLite error is reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Phase {
    /// While compiling the SQL text: syntax errors become `SQL_PARSE_ERROR`.
    Prepare,
    /// While binding arguments: `ARGS_INVALID`.
    Bind,
    /// While running the statement.
    Step,
}

/// Converts a rusqlite error into a Hrana error.
pub(crate) fn from_sqlite(err: &rusqlite::Error, phase: Phase) -> Error {
    match err {
        rusqlite::Error::SqliteFailure(e, msg) => {
            let message = msg.clone().unwrap_or_else(|| e.to_string());
            if phase == Phase::Prepare && is_parse_error(e.extended_code, &message) {
                return Error::new(SQL_PARSE_ERROR, message);
            }
            if phase == Phase::Bind {
                return Error::new(ARGS_INVALID, message);
            }
            Error::new(code_name(e.extended_code), message)
        }
        rusqlite::Error::SqlInputError {
            error, msg, offset, ..
        } => {
            let code = if is_parse_error(error.extended_code, msg) {
                SQL_PARSE_ERROR
            } else {
                code_name(error.extended_code)
            };
            Error::new(code, format!("{msg} (at offset {offset})"))
        }
        rusqlite::Error::MultipleStatement => Error::new(
            SQL_MANY_STATEMENTS,
            "SQL string contains more than one statement",
        ),
        rusqlite::Error::InvalidParameterName(name) => Error::new(
            ARGS_INVALID,
            format!("the statement has no parameter named {name:?}"),
        ),
        rusqlite::Error::InvalidParameterCount(given, expected) => Error::new(
            ARGS_INVALID,
            format!("{given} arguments given, the statement has {expected} parameters"),
        ),
        rusqlite::Error::ToSqlConversionFailure(e) => Error::new(ARGS_INVALID, e.to_string()),
        rusqlite::Error::Utf8Error(_, e) => Error::new("SQLITE_MISMATCH", e.to_string()),
        rusqlite::Error::NulError(e) => Error::new(SQL_PARSE_ERROR, e.to_string()),
        other => Error::new(INTERNAL, other.to_string()),
    }
}

/// SQLite has no distinct result code for a syntax error (it is SQLITE_ERROR); recognise the
/// messages its tokenizer and parser produce.
fn is_parse_error(extended_code: i32, message: &str) -> bool {
    extended_code == ffi::SQLITE_ERROR
        && (message.contains("syntax error")
            || message.starts_with("incomplete input")
            || message.starts_with("unrecognized token"))
}

macro_rules! code_table {
    ($($name:ident),* $(,)?) => {
        /// The symbolic name of a SQLite (extended) result code, as in `sqlite3.h`.
        pub(crate) fn code_name(code: i32) -> &'static str {
            $(if code == ffi::$name { return stringify!($name); })*
            let primary = code & 0xff;
            if primary != code {
                return code_name(primary);
            }
            "SQLITE_UNKNOWN"
        }
    };
}

code_table![
    SQLITE_ERROR,
    SQLITE_INTERNAL,
    SQLITE_PERM,
    SQLITE_ABORT,
    SQLITE_BUSY,
    SQLITE_LOCKED,
    SQLITE_NOMEM,
    SQLITE_READONLY,
    SQLITE_INTERRUPT,
    SQLITE_IOERR,
    SQLITE_CORRUPT,
    SQLITE_NOTFOUND,
    SQLITE_FULL,
    SQLITE_CANTOPEN,
    SQLITE_PROTOCOL,
    SQLITE_EMPTY,
    SQLITE_SCHEMA,
    SQLITE_TOOBIG,
    SQLITE_CONSTRAINT,
    SQLITE_MISMATCH,
    SQLITE_MISUSE,
    SQLITE_NOLFS,
    SQLITE_AUTH,
    SQLITE_FORMAT,
    SQLITE_RANGE,
    SQLITE_NOTADB,
    SQLITE_NOTICE,
    SQLITE_WARNING,
    SQLITE_ERROR_MISSING_COLLSEQ,
    SQLITE_ERROR_RETRY,
    SQLITE_ERROR_SNAPSHOT,
    SQLITE_IOERR_READ,
    SQLITE_IOERR_SHORT_READ,
    SQLITE_IOERR_WRITE,
    SQLITE_IOERR_FSYNC,
    SQLITE_IOERR_DIR_FSYNC,
    SQLITE_IOERR_TRUNCATE,
    SQLITE_IOERR_FSTAT,
    SQLITE_IOERR_UNLOCK,
    SQLITE_IOERR_RDLOCK,
    SQLITE_IOERR_DELETE,
    SQLITE_IOERR_BLOCKED,
    SQLITE_IOERR_NOMEM,
    SQLITE_IOERR_ACCESS,
    SQLITE_IOERR_CHECKRESERVEDLOCK,
    SQLITE_IOERR_LOCK,
    SQLITE_IOERR_CLOSE,
    SQLITE_IOERR_DIR_CLOSE,
    SQLITE_IOERR_SHMOPEN,
    SQLITE_IOERR_SHMSIZE,
    SQLITE_IOERR_SHMLOCK,
    SQLITE_IOERR_SHMMAP,
    SQLITE_IOERR_SEEK,
    SQLITE_IOERR_DELETE_NOENT,
    SQLITE_IOERR_MMAP,
    SQLITE_IOERR_GETTEMPPATH,
    SQLITE_IOERR_CONVPATH,
    SQLITE_IOERR_VNODE,
    SQLITE_IOERR_AUTH,
    SQLITE_IOERR_BEGIN_ATOMIC,
    SQLITE_IOERR_COMMIT_ATOMIC,
    SQLITE_IOERR_ROLLBACK_ATOMIC,
    SQLITE_IOERR_DATA,
    SQLITE_IOERR_CORRUPTFS,
    SQLITE_LOCKED_SHAREDCACHE,
    SQLITE_LOCKED_VTAB,
    SQLITE_BUSY_RECOVERY,
    SQLITE_BUSY_SNAPSHOT,
    SQLITE_BUSY_TIMEOUT,
    SQLITE_CANTOPEN_NOTEMPDIR,
    SQLITE_CANTOPEN_ISDIR,
    SQLITE_CANTOPEN_FULLPATH,
    SQLITE_CANTOPEN_CONVPATH,
    SQLITE_CANTOPEN_SYMLINK,
    SQLITE_CORRUPT_VTAB,
    SQLITE_CORRUPT_SEQUENCE,
    SQLITE_CORRUPT_INDEX,
    SQLITE_READONLY_RECOVERY,
    SQLITE_READONLY_CANTLOCK,
    SQLITE_READONLY_ROLLBACK,
    SQLITE_READONLY_DBMOVED,
    SQLITE_READONLY_CANTINIT,
    SQLITE_READONLY_DIRECTORY,
    SQLITE_ABORT_ROLLBACK,
    SQLITE_CONSTRAINT_CHECK,
    SQLITE_CONSTRAINT_COMMITHOOK,
    SQLITE_CONSTRAINT_FOREIGNKEY,
    SQLITE_CONSTRAINT_FUNCTION,
    SQLITE_CONSTRAINT_NOTNULL,
    SQLITE_CONSTRAINT_PRIMARYKEY,
    SQLITE_CONSTRAINT_TRIGGER,
    SQLITE_CONSTRAINT_UNIQUE,
    SQLITE_CONSTRAINT_VTAB,
    SQLITE_CONSTRAINT_ROWID,
    SQLITE_CONSTRAINT_PINNED,
    SQLITE_CONSTRAINT_DATATYPE,
    SQLITE_NOTICE_RECOVER_WAL,
    SQLITE_NOTICE_RECOVER_ROLLBACK,
    SQLITE_WARNING_AUTOINDEX,
    SQLITE_AUTH_USER,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_names() {
        assert_eq!(
            code_name(ffi::SQLITE_CONSTRAINT_UNIQUE),
            "SQLITE_CONSTRAINT_UNIQUE"
        );
        assert_eq!(code_name(ffi::SQLITE_CONSTRAINT), "SQLITE_CONSTRAINT");
        assert_eq!(code_name(ffi::SQLITE_BUSY_TIMEOUT), "SQLITE_BUSY_TIMEOUT");
        // An extended code this table does not know falls back to its primary code.
        assert_eq!(
            code_name(ffi::SQLITE_CONSTRAINT | (99 << 8)),
            "SQLITE_CONSTRAINT"
        );
        assert_eq!(code_name(4242), "SQLITE_UNKNOWN");
    }
}
