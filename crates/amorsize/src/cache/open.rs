//! Opening the file: create it, check it, rebuild it when corrupt or of another schema.

use super::{schema, CacheWarning, BUSY_TIMEOUT};
use rusqlite::{Connection, ErrorCode, OpenFlags};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long opening waits, in all, for processes that set the same file up at the same time
/// (switching to the write-ahead log, creating or migrating the tables). SQLite answers some
/// of these steps "busy" at once, without waiting on its busy handler (switching the journal
/// mode needs the file alone; <https://sqlite.org/wal.html>), so opening retries them. It
/// happens once per file, when several processes create it together; a second is far more
/// than the milliseconds it takes.
pub(crate) const SETUP_WAIT: Duration = Duration::from_secs(1);

/// Why a first attempt to open failed.
enum Problem {
    /// The file is not a database, or a damaged one: rebuild it.
    Corrupt(String),
    /// Anything else (no permission, no directory, locked for too long): go without.
    Other(String),
}

/// Opens the file at `path`, rebuilding it once when it is corrupt. Returns the connection and,
/// when the file was rebuilt (damage, another schema version), why.
pub(crate) fn open(path: &Path) -> Result<(Connection, Option<String>), CacheWarning> {
    let unavailable = |reason: String| CacheWarning::Unavailable {
        path: path.to_owned(),
        reason,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .map_err(|e| unavailable(format!("cannot create {}: {e}", dir.display())))?;
    }
    match connect(path) {
        Ok(opened) => Ok(opened),
        Err(Problem::Other(reason)) => Err(unavailable(reason)),
        Err(Problem::Corrupt(reason)) => {
            for p in files_of(path) {
                match std::fs::remove_file(&p) {
                    Ok(()) => {}
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                    Err(e) => {
                        return Err(unavailable(format!(
                            "{reason}, and it cannot be removed to rebuild it: {e}"
                        )))
                    }
                }
            }
            match connect(path) {
                Ok((conn, _)) => Ok((conn, Some(reason))),
                Err(Problem::Corrupt(r) | Problem::Other(r)) => Err(unavailable(r)),
            }
        }
    }
}

/// The database file and the files SQLite keeps beside it: the write-ahead log, its
/// shared-memory index and a rollback journal (<https://sqlite.org/tempfiles.html>).
pub(crate) fn files_of(path: &Path) -> [PathBuf; 4] {
    let with = |suffix: &str| {
        let mut p = path.as_os_str().to_owned();
        p.push(suffix);
        PathBuf::from(p)
    };
    [
        path.to_owned(),
        with("-wal"),
        with("-shm"),
        with("-journal"),
    ]
}

fn connect(path: &Path) -> Result<(Connection, Option<String>), Problem> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags).map_err(classify)?;
    conn.busy_timeout(BUSY_TIMEOUT).map_err(classify)?;
    // SQLite opens a write-protected file read-only instead of failing; a cache that cannot
    // record is not worth the reads (and a WAL file cannot be read without its index).
    if conn.is_readonly(rusqlite::MAIN_DB).map_err(classify)? {
        return Err(Problem::Other("the file is read-only".into()));
    }
    // Write-ahead logging lets readers and one writer proceed at once across processes
    // (<https://sqlite.org/wal.html>); NORMAL synchronous is durable up to the last
    // checkpoint in WAL mode, which is what a cache of measurements needs.
    let deadline = Instant::now() + SETUP_WAIT;
    let mode: String = retry_busy(deadline, || {
        conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
    })
    .map_err(classify)?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(Problem::Other(format!(
            "the file system does not support a write-ahead log (journal mode {mode})"
        )));
    }
    conn.execute_batch("PRAGMA synchronous = NORMAL; PRAGMA foreign_keys = ON;")
        .map_err(classify)?;
    // A truncated or overwritten file often opens and only fails page by page; quick_check
    // reads every page once (milliseconds for a file this size) and reports damage as rows.
    let verdict: String = conn
        .query_row("PRAGMA quick_check(1)", [], |r| r.get(0))
        .map_err(classify)?;
    if verdict != "ok" {
        return Err(Problem::Corrupt(format!("the file is damaged: {verdict}")));
    }
    let found = retry_busy(deadline, || schema::ensure(&conn)).map_err(classify)?;
    let rebuilt = match found {
        schema::Found::Current | schema::Found::Migrated { .. } => None,
        schema::Found::Rebuilt { version } => Some(format!(
            "it held schema version {version}, this amorsize writes version {}",
            schema::VERSION
        )),
    };
    Ok((conn, rebuilt))
}

/// Runs `step` again while SQLite answers that the file is busy, until `deadline`.
fn retry_busy<T>(
    deadline: Instant,
    mut step: impl FnMut() -> rusqlite::Result<T>,
) -> rusqlite::Result<T> {
    loop {
        match step() {
            Err(e)
                if matches!(
                    e.sqlite_error_code(),
                    Some(ErrorCode::DatabaseBusy | ErrorCode::DatabaseLocked)
                ) && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(2));
            }
            done => return done,
        }
    }
}

fn classify(e: rusqlite::Error) -> Problem {
    match e.sqlite_error_code() {
        Some(ErrorCode::DatabaseCorrupt | ErrorCode::NotADatabase) => {
            Problem::Corrupt(format!("the file is not a valid database: {e}"))
        }
        _ => Problem::Other(e.to_string()),
    }
}
