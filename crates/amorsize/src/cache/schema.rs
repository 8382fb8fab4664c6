//! The database schema and its version, kept in SQLite's `user_version` header field
//! (<https://sqlite.org/pragma.html#pragma_user_version>). A file of the previous version is
//! migrated in place ([`MIGRATIONS`]); a file of any other version is a cache of another
//! amorsize and is rebuilt — it only holds measurements.

use rusqlite::{Connection, Transaction, TransactionBehavior};

/// The schema this code writes. Bump it on any change to the tables below.
/// 2: the learned correction is the contention α, not a ratio.
/// 3: the contention remembers the load it was learned under and when.
pub(crate) const VERSION: i64 = 3;

/// In-place migrations: `(from, statements)` turn a file of version `from` into one of
/// `from + 1`, in the same transaction as the version change.
///
/// 2 → 3: the workload's contention gains the load of other programs it was learned under
/// (`load`, runnable threads) and its time (`learned_at`). A version-2 contention was learned
/// blind to load — on a loaded machine it is that load, which has gone — so it is forgotten;
/// calibrations, samples and runs are kept.
const MIGRATIONS: &[(i64, &str)] = &[(
    2,
    "ALTER TABLE workload ADD COLUMN load REAL NOT NULL DEFAULT 0;
     ALTER TABLE workload ADD COLUMN learned_at INTEGER NOT NULL DEFAULT 0;
     UPDATE workload SET contention = 0, learned = 0;",
)];

/// The tables. A workload's samples and runs are kept for its [`super::KEEP_RECENT`] most recent
/// runs; figures the planner may extend (samples, plans) are stored as JSON beside the columns
/// `amorsize cache show` needs, so that a new field does not need a new schema.
const TABLES: &str = "
CREATE TABLE calibration (
    machine     TEXT    NOT NULL,
    backend     TEXT    NOT NULL,
    costs       TEXT    NOT NULL,
    measured_at INTEGER NOT NULL,
    PRIMARY KEY (machine, backend)
);
CREATE TABLE workload (
    id          INTEGER PRIMARY KEY,
    machine     TEXT    NOT NULL,
    key         TEXT    NOT NULL,
    runs        INTEGER NOT NULL,
    learned     INTEGER NOT NULL,
    contention  REAL    NOT NULL,
    updated_at  INTEGER NOT NULL,
    load        REAL    NOT NULL DEFAULT 0,
    learned_at  INTEGER NOT NULL DEFAULT 0,
    UNIQUE (machine, key)
);
CREATE TABLE sample (
    id          INTEGER PRIMARY KEY,
    workload    INTEGER NOT NULL REFERENCES workload(id) ON DELETE CASCADE,
    item_time   REAL    NOT NULL,
    figures     TEXT    NOT NULL,
    at          INTEGER NOT NULL
);
CREATE INDEX sample_by_workload ON sample (workload, id);
CREATE TABLE run (
    id               INTEGER PRIMARY KEY,
    workload         INTEGER NOT NULL REFERENCES workload(id) ON DELETE CASCADE,
    plan             TEXT    NOT NULL,
    parallel         INTEGER NOT NULL,
    workers          INTEGER NOT NULL,
    chunk            INTEGER NOT NULL,
    items            INTEGER NOT NULL,
    wall             REAL    NOT NULL,
    predicted        REAL,
    predicted_serial REAL,
    contention_used  REAL    NOT NULL,
    at               INTEGER NOT NULL
);
CREATE INDEX run_by_workload ON run (workload, id);
";

/// What [`ensure`] found.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    /// The current schema, or a new empty file now holding it.
    Current,
    /// The previous version, migrated in place.
    Migrated {
        /// The `user_version` the file had.
        version: i64,
    },
    /// Another version (older or newer), or tables of unknown origin: dropped and recreated.
    Rebuilt {
        /// The `user_version` the file had.
        version: i64,
    },
}

/// Makes sure the file holds the current schema, creating or rebuilding it inside one
/// `IMMEDIATE` transaction, so that processes opening a new file at once create it once.
pub(crate) fn ensure(conn: &Connection) -> rusqlite::Result<Found> {
    // The common case reads one header field, without a write lock.
    if user_version(conn)? == VERSION {
        return Ok(Found::Current);
    }
    // The unchecked form takes a shared reference, so the version can be read again on failure;
    // no other transaction is open on this new connection.
    let tx = match Transaction::new_unchecked(conn, TransactionBehavior::Immediate) {
        Ok(tx) => tx,
        // Processes opening a new file at once all see version 0 and queue for the write lock
        // while the first creates the tables and then writes runs; a waiter that times out
        // usually finds the schema made by then.
        Err(e) if e.sqlite_error_code() == Some(rusqlite::ErrorCode::DatabaseBusy) => {
            return if user_version(conn)? == VERSION {
                Ok(Found::Current)
            } else {
                Err(e)
            };
        }
        Err(e) => return Err(e),
    };
    let version = user_version(&tx)?;
    if version == VERSION {
        return Ok(Found::Current);
    }
    if let Some((_, statements)) = MIGRATIONS.iter().find(|(from, _)| *from == version) {
        if version + 1 == VERSION && tx.execute_batch(statements).is_ok() {
            tx.pragma_update(None, "user_version", VERSION)?;
            tx.commit()?;
            return Ok(Found::Migrated { version });
        }
        // A file that claims the version but lacks its tables is rebuilt below; the failed
        // statements changed nothing that the rebuild keeps.
    }
    let objects: Vec<(String, String)> = {
        let mut stmt = tx.prepare(
            "SELECT type, name FROM sqlite_schema
             WHERE type IN ('table', 'view') AND name NOT LIKE 'sqlite_%'",
        )?;
        let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
        rows.collect::<rusqlite::Result<_>>()?
    };
    let found = if version == 0 && objects.is_empty() {
        Found::Current
    } else {
        Found::Rebuilt { version }
    };
    for (kind, name) in &objects {
        let kind = if kind == "view" { "VIEW" } else { "TABLE" };
        tx.execute_batch(&format!(
            "DROP {kind} IF EXISTS \"{}\"",
            name.replace('"', "\"\"")
        ))?;
    }
    tx.execute_batch(TABLES)?;
    tx.pragma_update(None, "user_version", VERSION)?;
    tx.commit()?;
    Ok(found)
}

fn user_version(conn: &Connection) -> rusqlite::Result<i64> {
    conn.pragma_query_value(None, "user_version", |r| r.get(0))
}
