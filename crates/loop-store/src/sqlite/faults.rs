//! What a SQLite error means for the caller: busy (retry), the disk full (507), the file
//! unreadable or unwritable (503), or a bug.

use loop_core::Error;

/// Maps a SQLite result code (primary or extended) and its message to the domain's error.
pub(crate) fn classify(code: Option<i32>, message: String) -> Error {
    // SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE.
    if matches!(code, Some(1555 | 2067)) {
        return Error::conflict(crate::db::UNIQUE, message);
    }
    match code.map(|c| c & 0xff) {
        Some(5 | 6) => Error::Busy(message),     // SQLITE_BUSY, SQLITE_LOCKED
        Some(13) => Error::StorageFull(message), // SQLITE_FULL
        Some(8 | 10 | 11 | 14 | 26) => Error::Unavailable(message), // READONLY, IOERR, CORRUPT, CANTOPEN, NOTADB
        _ => Error::Internal(message),
    }
}

/// Maps a rusqlite error to the domain's.
pub(crate) fn sqlite(e: rusqlite::Error) -> Error {
    sqlite_doing("database", e)
}

/// Maps a rusqlite error met while `doing` something to the domain's.
pub(crate) fn sqlite_doing(doing: &str, e: rusqlite::Error) -> Error {
    let code = match &e {
        rusqlite::Error::SqliteFailure(f, _) => Some(f.extended_code),
        _ => None,
    };
    classify(code, format!("{doing}: {e}"))
}

/// True when the error means the connection it happened on may no longer be trusted: its
/// transaction state or its view of the file. Such a connection is closed and opened again.
pub(crate) fn discards_connection(e: &Error) -> bool {
    e.is_storage_fault()
}
