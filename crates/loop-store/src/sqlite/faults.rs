//! What a SQLite error means for the caller: busy (retry), the disk full (507), the file
//! unreadable or unwritable (503), or a bug.

use std::path::Path;

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

/// Below this much free space in the data directory, an I/O error on a write is a full disk.
const ROOM: u64 = 1 << 20;

/// An I/O error on a write while the data directory has no room left is a full disk (507, not
/// 503): SQLite reports some out-of-space failures, such as growing its shared-memory file, as
/// I/O errors rather than `SQLITE_FULL`.
pub(crate) fn full_if_no_room(e: Error, database: &Path) -> Error {
    match e {
        Error::Unavailable(m) if free_bytes(database.parent().unwrap_or(Path::new("."))).is_some_and(|f| f < ROOM) => {
            Error::StorageFull(m)
        }
        other => other,
    }
}

/// The bytes an unprivileged writer may still use in `dir`'s filesystem.
fn free_bytes(dir: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let path = std::ffi::CString::new(dir.as_os_str().as_bytes()).ok()?;
    // SAFETY: statvfs only writes the struct it is given, which lives across the call.
    let mut stat: libc::statvfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statvfs(path.as_ptr(), &mut stat) } != 0 {
        return None;
    }
    Some((stat.f_bavail as u64).saturating_mul(stat.f_frsize as u64))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn io_errors_are_a_full_disk_only_when_there_is_no_room() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("loop.db");
        assert!(free_bytes(dir.path()).is_some_and(|f| f >= ROOM), "this test needs a disk with room");
        assert!(matches!(full_if_no_room(Error::Unavailable("io".into()), &db), Error::Unavailable(_)));
        assert!(matches!(full_if_no_room(Error::Busy("busy".into()), &db), Error::Busy(_)));
        assert_eq!(free_bytes(Path::new("/no/such/dir")), None);
    }
}
