//! Calibrations and past runs, remembered in an embedded database, so that the second run of
//! the same work decides without measuring again and every run improves the next prediction.
//!
//! The file is SQLite (bundled through `rusqlite`) at the [`Location`] the environment names:
//! `$AMORSIZE_CACHE` (a path, or `off`), else `amorsize/amorsize.db` in the platform's cache
//! directory (`$XDG_CACHE_HOME` or `$HOME/.cache` on Linux and other Unixes,
//! `$HOME/Library/Caches` on macOS, the local application data folder on Windows). It holds
//!
//! - per machine [`Fingerprint`] and backend, the measured [`Costs`]
//!   ([`Cache::load_costs`], [`Cache::store_costs`]);
//! - per [`WorkloadKey`], the recent samples, plans and measured runs, and the correction the
//!   model applies: contention between workers (the Universal Scalability Law's α), learned
//!   from measured ÷ predicted time of parallel runs, fading over serial runs, and tied to the
//!   load of other programs it was learned under and to its age (the arithmetic is the
//!   model's: `model::Learned`, `model::contention_now`)
//!   ([`Cache::workload`], [`Cache::record_run`], [`Cache::contention`]).
//!
//! **A cache problem never fails a run.** Every operation returns an `Option` or nothing; a
//! failure becomes a [`CacheWarning`] (each kind once per process, see [`take_warnings`]) and the
//! run goes on without the cache. A corrupt, truncated or other-version file is rebuilt empty;
//! a locked file is waited on for at most `BUSY_TIMEOUT`; a full disk or a read-only file
//! stops the writing, not the reading.
//!
//! Concurrent processes share the file through SQLite's write-ahead log (readers never block
//! the writer) and short write transactions.
//!
//! The file is optional three ways: the cargo feature `cache` (on by default) builds it in,
//! `AMORSIZE_CACHE=off` turns it off for a process, and [`Options::disk_cache`] for one call.
//! Without it, the calibration is measured once per process and what runs teach is kept in
//! the process's memory only (the same memory that keeps runs too short to be worth a write).
//!
//! [`Options::disk_cache`]: crate::Options::disk_cache
//!
//! # Examples
//!
//! ```
//! # #[cfg(feature = "cache")] {
//! use amorsize::cache::{Cache, Fingerprint, WorkloadKey};
//! use amorsize::model::{Backend, Costs};
//!
//! let dir = tempfile::tempdir().unwrap();
//! let cache = Cache::open_at(&dir.path().join("amorsize.db"), Fingerprint::current()).unwrap();
//! assert!(cache.load_costs(Backend::Threads).is_none());
//! let costs = Costs {
//!     backend: Backend::Threads,
//!     worker_start: 20e-6,
//!     chunk_dispatch: 1e-6,
//!     transfer_per_byte: 0.0,
//!     fallbacks: Default::default(),
//! };
//! assert!(cache.store_costs(&costs));
//! assert_eq!(cache.load_costs(Backend::Threads), Some(costs));
//! assert_eq!(cache.contention(&WorkloadKey::named("resize")), 0.0);
//! # }
//! ```

mod fingerprint;
mod key;
mod location;
#[cfg(feature = "cache")]
mod open;
mod records;
#[cfg(feature = "cache")]
mod schema;
mod warning;

pub use fingerprint::Fingerprint;
pub use key::WorkloadKey;
pub use location::{from_env as location, resolve as resolve_location, Location, ENV_VAR};
pub use records::{Calibration, RunFacts, RunRecord, Summary, WorkloadHistory, WorkloadSummary};
pub use warning::{take_warnings, CacheWarning};

#[cfg(feature = "cache")]
use crate::model::contention::{self, Learned};
#[cfg(feature = "cache")]
use crate::model::{Backend, Costs};
#[cfg(feature = "cache")]
use crate::sample::Sample;
#[cfg(feature = "cache")]
use rusqlite::{params, Connection, OptionalExtension, TransactionBehavior};
#[cfg(feature = "cache")]
use std::cell::{Cell, RefCell};
#[cfg(feature = "cache")]
use std::path::{Path, PathBuf};
#[cfg(feature = "cache")]
use std::sync::{Mutex, OnceLock};
#[cfg(feature = "cache")]
use std::time::Duration;
#[cfg(feature = "cache")]
use std::time::{SystemTime, UNIX_EPOCH};

/// How long an operation waits for other processes' locks before it is skipped. Write
/// transactions here take well under a millisecond; a lock held longer than this belongs to
/// something stuck, and a run must not wait on it.
#[cfg(feature = "cache")]
pub(crate) const BUSY_TIMEOUT: Duration = Duration::from_millis(250);

/// A calibration older than this is measured again even on the same fingerprint: the
/// fingerprint catches changed hardware, kernels and limits, the age catches what it cannot
/// (firmware, a hypervisor's neighbours).
#[cfg(feature = "cache")]
pub(crate) const CALIBRATION_MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);

/// Samples and runs kept per workload; older ones are dropped. Only the newest run keeps its
/// plan (about 2 KB of JSON), so with `MAX_WORKLOADS` the file stays near a megabyte, and the
/// integrity check on opening it (which reads every page) within milliseconds.
pub const KEEP_RECENT: usize = 8;

/// Workloads kept per file, least recently run dropped first.
#[cfg(feature = "cache")]
pub(crate) const MAX_WORKLOADS: usize = 256;

#[cfg(feature = "cache")]
/// What the cache may still do after a failure.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    ReadWrite,
    /// The disk is full or the file read-only: reads still help.
    ReadOnly,
    /// Broken: every operation is skipped.
    Off,
}

#[cfg(feature = "cache")]
/// An open cache file, bound to one machine's fingerprint.
///
/// Every method is infallible for the caller: problems become [`CacheWarning`]s, collected on
/// the cache ([`Cache::take_warnings`]) and process-wide ([`take_warnings`]).
#[derive(Debug)]
pub struct Cache {
    conn: Connection,
    path: PathBuf,
    machine: Fingerprint,
    machine_key: String,
    state: Cell<State>,
    warnings: RefCell<Vec<CacheWarning>>,
}

#[cfg(feature = "cache")]
impl Cache {
    /// Opens the cache the environment names ([`location`]), for this machine. `None` when it is
    /// off or cannot be used; the reason is then in [`take_warnings`].
    pub fn open_default() -> Option<Cache> {
        let path = location().path()?.to_owned();
        match Cache::open_at(&path, Fingerprint::current()) {
            Ok(cache) => Some(cache),
            Err(warning) => {
                warning::report(warning);
                None
            }
        }
    }

    /// Opens (creating, or rebuilding when corrupt or of another schema) the cache file at
    /// `path` for the machine `machine`.
    ///
    /// # Errors
    ///
    /// A [`CacheWarning::Unavailable`] when the file cannot be opened, created or rebuilt (the
    /// caller goes on without a cache). A rebuild that succeeded is reported as a
    /// [`CacheWarning::Rebuilt`] on the returned cache.
    pub fn open_at(path: &Path, machine: Fingerprint) -> Result<Cache, CacheWarning> {
        let (conn, rebuilt) = open::open(path)?;
        let cache = Cache {
            conn,
            path: path.to_owned(),
            machine_key: machine.key(),
            machine,
            state: Cell::new(State::ReadWrite),
            warnings: RefCell::new(Vec::new()),
        };
        if let Some(reason) = rebuilt {
            cache.warn(CacheWarning::Rebuilt {
                path: cache.path.clone(),
                reason,
            });
        }
        Ok(cache)
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The machine this cache reads and writes for.
    pub fn machine(&self) -> &Fingerprint {
        &self.machine
    }

    /// The warnings this cache raised and nobody took yet, each kind once.
    pub fn take_warnings(&self) -> Vec<CacheWarning> {
        std::mem::take(&mut self.warnings.borrow_mut())
    }

    /// The measured costs of `backend` on this machine, when a calibration younger than
    /// `CALIBRATION_MAX_AGE` is stored.
    pub fn load_costs(&self, backend: Backend) -> Option<Costs> {
        let oldest = now_secs() - CALIBRATION_MAX_AGE.as_secs() as i64;
        let text: String = self
            .read(|conn| {
                conn.query_row(
                    "SELECT costs FROM calibration
                     WHERE machine = ?1 AND backend = ?2 AND measured_at >= ?3",
                    params![self.machine_key, backend_name(backend), oldest],
                    |r| r.get(0),
                )
                .optional()
            })
            .flatten()?;
        serde_json::from_str::<Costs>(&text)
            .ok()
            .filter(|c| c.backend == backend)
    }

    /// Stores the measured costs of `costs.backend` on this machine, replacing older ones.
    /// Returns whether they were stored.
    pub fn store_costs(&self, costs: &Costs) -> bool {
        let Ok(text) = serde_json::to_string(costs) else {
            return false;
        };
        self.write(|conn| {
            conn.execute(
                "INSERT INTO calibration (machine, backend, costs, measured_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (machine, backend)
                 DO UPDATE SET costs = excluded.costs, measured_at = excluded.measured_at",
                params![
                    self.machine_key,
                    backend_name(costs.backend),
                    text,
                    now_secs()
                ],
            )
            .map(drop)
        })
    }

    /// What the cache remembers of the workload `key` on this machine.
    pub fn workload(&self, key: &WorkloadKey) -> Option<WorkloadHistory> {
        self.read(|conn| {
            let head = conn
                .query_row(
                    "SELECT id, runs, learned, contention, load, learned_at FROM workload
                     WHERE machine = ?1 AND key = ?2",
                    params![self.machine_key, key.as_str()],
                    |r| {
                        Ok((
                            r.get::<_, i64>(0)?,
                            r.get::<_, i64>(1)?,
                            r.get::<_, i64>(2)?,
                            r.get::<_, f64>(3)?,
                            r.get::<_, f64>(4)?,
                            r.get::<_, i64>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((id, runs, learned, alpha, load, learned_at)) = head else {
                return Ok(None);
            };
            let samples = {
                let mut stmt = conn
                    .prepare_cached("SELECT figures FROM sample WHERE workload = ?1 ORDER BY id")?;
                let rows = stmt.query_map([id], |r| r.get::<_, String>(0))?;
                let texts = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                texts
                    .iter()
                    .filter_map(|t| serde_json::from_str::<Sample>(t).ok())
                    .collect()
            };
            let recent = {
                let mut stmt = conn.prepare_cached(
                    "SELECT plan, parallel, workers, chunk, items, wall, predicted,
                            predicted_serial, contention_used
                     FROM run WHERE workload = ?1 ORDER BY id",
                )?;
                let rows = stmt.query_map([id], |r| {
                    Ok(RunRecord {
                        plan: r.get(0)?,
                        parallel: r.get(1)?,
                        workers: to_usize(r.get(2)?),
                        chunk: to_usize(r.get(3)?),
                        items: to_usize(r.get(4)?),
                        wall: secs(r.get(5)?).unwrap_or_default(),
                        predicted: r.get::<_, Option<f64>>(6)?.and_then(secs),
                        predicted_serial: r.get::<_, Option<f64>>(7)?.and_then(secs),
                        contention_used: r.get(8)?,
                    })
                })?;
                rows.collect::<rusqlite::Result<Vec<_>>>()?
            };
            Ok(Some(WorkloadHistory {
                runs: runs.max(0) as u64,
                contention: contention::sanitize(alpha),
                learned: learned.max(0) as u64,
                contention_load: if load.is_finite() { load.max(0.0) } else { 0.0 },
                contention_age: Duration::from_secs((now_secs() - learned_at).max(0) as u64),
                samples,
                recent,
            }))
        })
        .flatten()
    }

    /// The contention (α) learned for `key` on this machine: 0 for an unknown workload (or when
    /// the cache cannot be read).
    pub fn contention(&self, key: &WorkloadKey) -> f64 {
        self.read(|conn| {
            conn.query_row(
                "SELECT contention FROM workload WHERE machine = ?1 AND key = ?2",
                params![self.machine_key, key.as_str()],
                |r| r.get::<_, f64>(0),
            )
            .optional()
        })
        .flatten()
        .map_or(0.0, contention::sanitize)
    }

    /// Records a finished run of `key`: its sample, its plan and what it measured, and what
    /// the workload's contention becomes after it ([`Learned::after`]). One short
    /// transaction; returns whether it was stored.
    pub fn record_run(&self, key: &WorkloadKey, sample: &Sample, run: &RunFacts) -> bool {
        let Ok(figures) = serde_json::to_string(sample) else {
            return false;
        };
        let now = now_secs();
        self.write_tx(|tx| {
            let existing = tx
                .query_row(
                    "SELECT id, learned, contention, load, learned_at FROM workload
                     WHERE machine = ?1 AND key = ?2",
                    params![self.machine_key, key.as_str()],
                    |r| {
                        Ok(Learned {
                            runs: r.get::<_, i64>(1)?.max(0) as u64,
                            alpha: r.get(2)?,
                            load: r.get(3)?,
                            at: r.get(4)?,
                        })
                    },
                )
                .optional()?;
            let learned = existing
                .unwrap_or(Learned::nothing(now))
                .after(&run.contention, now);
            let id: i64 = tx.query_row(
                "INSERT INTO workload
                     (machine, key, runs, learned, contention, updated_at, load, learned_at)
                 VALUES (?1, ?2, 1, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (machine, key) DO UPDATE SET
                     runs = runs + 1, learned = excluded.learned,
                     contention = excluded.contention, updated_at = excluded.updated_at,
                     load = excluded.load, learned_at = excluded.learned_at
                 RETURNING id",
                params![
                    self.machine_key,
                    key.as_str(),
                    learned.runs as i64,
                    learned.alpha,
                    now,
                    learned.load,
                    learned.at
                ],
                |r| r.get(0),
            )?;
            tx.execute(
                "INSERT INTO sample (workload, item_time, figures, at) VALUES (?1, ?2, ?3, ?4)",
                params![id, sample.item_time, figures, now],
            )?;
            tx.execute(
                "INSERT INTO run (workload, plan, parallel, workers, chunk, items, wall,
                                  predicted, predicted_serial, contention_used, at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
                params![
                    id,
                    run.plan,
                    run.contention.parallel,
                    run.workers as i64,
                    run.chunk as i64,
                    run.items as i64,
                    run.wall.as_secs_f64(),
                    run.predicted.map(|d| d.as_secs_f64()),
                    run.predicted_serial.map(|d| d.as_secs_f64()),
                    run.contention_used,
                    now
                ],
            )?;
            self.trim(tx, id, existing.is_none())
        })
    }

    /// Keeps the newest runs and samples of workload `id`, the plan of its newest run only,
    /// and, after a new workload, the `MAX_WORKLOADS` most recently updated.
    fn trim(&self, tx: &rusqlite::Transaction<'_>, id: i64, added: bool) -> rusqlite::Result<()> {
        // Only the newest run keeps its plan (2 KB of JSON, where the other columns take
        // a few dozen bytes), so that the file and its check on opening stay small.
        tx.execute(
            "UPDATE run SET plan = '' WHERE workload = ?1 AND id < last_insert_rowid()
               AND plan != ''",
            [id],
        )?;
        let keep = KEEP_RECENT as i64;
        tx.execute(
            "DELETE FROM sample WHERE workload = ?1 AND id NOT IN
               (SELECT id FROM sample WHERE workload = ?1 ORDER BY id DESC LIMIT ?2)",
            params![id, keep],
        )?;
        tx.execute(
            "DELETE FROM run WHERE workload = ?1 AND id NOT IN
               (SELECT id FROM run WHERE workload = ?1 ORDER BY id DESC LIMIT ?2)",
            params![id, keep],
        )?;
        if added {
            tx.execute(
                "DELETE FROM workload WHERE id NOT IN
                   (SELECT id FROM workload ORDER BY updated_at DESC, id DESC LIMIT ?1)",
                [MAX_WORKLOADS as i64],
            )?;
        }
        Ok(())
    }

    /// Everything in the file, of every machine, for people (`amorsize cache show`).
    pub fn summary(&self) -> Option<Summary> {
        let now = now_secs();
        let age = |at: i64| (now - at).max(0) as u64;
        self.read(|conn| {
            let calibrations = {
                let mut stmt = conn.prepare(
                    "SELECT machine, costs, measured_at FROM calibration
                     ORDER BY machine, backend",
                )?;
                let rows = stmt.query_map([], |r| {
                    Ok((
                        r.get::<_, String>(0)?,
                        r.get::<_, String>(1)?,
                        r.get::<_, i64>(2)?,
                    ))
                })?;
                let rows = rows.collect::<rusqlite::Result<Vec<_>>>()?;
                rows.into_iter()
                    .filter_map(|(machine, costs, at)| {
                        Some(Calibration {
                            this_machine: machine == self.machine_key,
                            machine: Fingerprint::from_key(&machine),
                            costs: serde_json::from_str(&costs).ok()?,
                            age_secs: age(at),
                        })
                    })
                    .collect()
            };
            let mut stmt = conn.prepare(
                "SELECT w.key, w.machine, w.runs, w.contention, w.updated_at,
                        (SELECT item_time FROM sample s WHERE s.workload = w.id
                         ORDER BY s.id DESC LIMIT 1),
                        r.workers, r.chunk, r.wall, r.predicted, w.load
                 FROM workload w
                 LEFT JOIN run r ON r.id = (SELECT max(id) FROM run WHERE workload = w.id)
                 ORDER BY w.updated_at DESC, w.id DESC",
            )?;
            let rows = stmt.query_map([], |r| {
                let wall: Option<f64> = r.get(8)?;
                let predicted: Option<f64> = r.get(9)?;
                Ok(WorkloadSummary {
                    key: r.get(0)?,
                    this_machine: r.get::<_, String>(1)? == self.machine_key,
                    runs: r.get::<_, i64>(2)?.max(0) as u64,
                    contention: contention::sanitize(r.get(3)?),
                    contention_load: r.get::<_, f64>(10)?.max(0.0),
                    age_secs: age(r.get(4)?),
                    item_time: r.get(5)?,
                    last_workers: r.get::<_, Option<i64>>(6)?.map(to_usize),
                    last_chunk: r.get::<_, Option<i64>>(7)?.map(to_usize),
                    last_wall: wall,
                    last_error_ratio: match (wall, predicted) {
                        (Some(w), Some(p)) if p > 0.0 => Some(w / p),
                        _ => None,
                    },
                })
            })?;
            let workloads = rows.collect::<rusqlite::Result<Vec<_>>>()?;
            Ok(Summary {
                calibrations,
                workloads,
            })
        })
    }

    /// Runs a read; a failure becomes a warning and `None`.
    fn read<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Option<T> {
        if self.state.get() == State::Off {
            return None;
        }
        f(&self.conn).map_err(|e| self.fail(&e)).ok()
    }

    /// Runs a write; skipped once writing failed for good. Returns whether it was written.
    fn write(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<()>) -> bool {
        if self.state.get() != State::ReadWrite {
            return false;
        }
        match f(&self.conn) {
            Ok(()) => true,
            Err(e) => {
                self.fail(&e);
                false
            }
        }
    }

    /// Runs a write transaction, taking the write lock at its start (`BEGIN IMMEDIATE`), so that
    /// a read-then-write cannot be overtaken by another process between its read and its write.
    fn write_tx(&self, f: impl FnOnce(&rusqlite::Transaction<'_>) -> rusqlite::Result<()>) -> bool {
        self.write(|conn| {
            // `Connection::transaction_with_behavior` needs `&mut`; the unchecked form runs the
            // same BEGIN on a shared reference, and this type holds no other transaction open.
            let tx = rusqlite::Transaction::new_unchecked(conn, TransactionBehavior::Immediate)?;
            f(&tx)?;
            tx.commit()
        })
    }

    /// Turns an error into a warning (each kind once) and lowers what the cache may still do.
    fn fail(&self, e: &rusqlite::Error) {
        use rusqlite::ErrorCode as C;
        let path = self.path.clone();
        let (warning, state) = match e.sqlite_error_code() {
            Some(C::DatabaseBusy | C::DatabaseLocked) => {
                (CacheWarning::Busy { path }, self.state.get())
            }
            Some(C::DiskFull) => (CacheWarning::Full { path }, State::ReadOnly),
            Some(C::ReadOnly | C::PermissionDenied) => {
                (CacheWarning::ReadOnly { path }, State::ReadOnly)
            }
            // The system refused a write or its flush: EFBIG past a file size limit, EDQUOT,
            // EIO (an ENOSPC is reported as DiskFull above). Reading may still work.
            Some(C::SystemIoFailure) if is_write_failure(e) => (
                CacheWarning::WriteFailed {
                    path,
                    reason: e.to_string(),
                },
                State::ReadOnly,
            ),
            Some(C::DatabaseCorrupt | C::NotADatabase) => (
                CacheWarning::Failed {
                    path,
                    reason: "the file is corrupt; the next run rebuilds it".into(),
                },
                State::Off,
            ),
            _ => (
                CacheWarning::Failed {
                    path,
                    reason: e.to_string(),
                },
                State::Off,
            ),
        };
        self.state.set(state);
        self.warn(warning);
    }

    fn warn(&self, warning: CacheWarning) {
        let mut mine = self.warnings.borrow_mut();
        if !mine
            .iter()
            .any(|w| std::mem::discriminant(w) == std::mem::discriminant(&warning))
        {
            mine.push(warning.clone());
        }
        warning::report(warning);
    }

    /// Limits the file to `pages` pages, so that tests can fill the "disk".
    #[cfg(test)]
    pub(crate) fn limit_pages(&self, pages: u32) {
        self.conn
            .pragma_update(None, "max_page_count", pages)
            .expect("max_page_count");
    }
}

#[cfg(feature = "cache")]
/// This process's cache, opened from the environment on first use and shared by every plan of
/// the process; `None` when off or unusable (the reason is in [`take_warnings`]).
///
/// # Examples
///
/// ```
/// use amorsize::cache::{with_default, WorkloadKey};
///
/// // Turned off, there is no cache, and asking still does not fail.
/// std::env::set_var("AMORSIZE_CACHE", "off");
/// assert_eq!(with_default(|c| c.contention(&WorkloadKey::named("x"))), None);
/// ```
pub fn with_default<T>(f: impl FnOnce(&Cache) -> T) -> Option<T> {
    static DEFAULT: OnceLock<Option<Mutex<Cache>>> = OnceLock::new();
    let cache = DEFAULT
        .get_or_init(|| Cache::open_default().map(Mutex::new))
        .as_ref()?;
    // A panic while the lock was held leaves a connection with no transaction open (a failed
    // transaction is rolled back on drop), so the poisoned value is still usable.
    let guard = cache.lock().unwrap_or_else(|e| e.into_inner());
    Some(f(&guard))
}

#[cfg(feature = "cache")]
/// Removes the cache file at `path` with its write-ahead log and shared-memory index. Returns
/// whether there was a file. Processes that have it open keep their (now unlinked) copy until
/// they close it; the next open creates a new file.
///
/// # Errors
///
/// An [`Io`](crate::ErrorKind::Io) error naming the file that could not be removed.
pub fn remove(path: &Path) -> crate::Result<bool> {
    let mut existed = false;
    for p in open::files_of(path) {
        match std::fs::remove_file(&p) {
            Ok(()) => existed |= p == path,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                return Err(crate::Error::new(
                    crate::ErrorKind::Io,
                    format!("cannot remove the cache file: {e}"),
                )
                .with_path(p)
                .with_source(e))
            }
        }
    }
    Ok(existed)
}

#[cfg(feature = "cache")]
/// Whether an I/O error happened writing, extending or flushing a file (extended result codes,
/// <https://sqlite.org/rescode.html#ioerr_write>).
fn is_write_failure(e: &rusqlite::Error) -> bool {
    use rusqlite::ffi;
    matches!(
        e.sqlite_error().map(|e| e.extended_code),
        Some(
            ffi::SQLITE_IOERR_WRITE
                | ffi::SQLITE_IOERR_FSYNC
                | ffi::SQLITE_IOERR_DIR_FSYNC
                | ffi::SQLITE_IOERR_TRUNCATE
                | ffi::SQLITE_IOERR_SHMSIZE
        )
    )
}

#[cfg(feature = "cache")]
fn backend_name(b: Backend) -> &'static str {
    match b {
        Backend::Threads => "threads",
        Backend::Processes => "processes",
        Backend::Commands => "commands",
    }
}

#[cfg(feature = "cache")]
fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(feature = "cache")]
fn secs(s: f64) -> Option<Duration> {
    Duration::try_from_secs_f64(s).ok()
}

#[cfg(feature = "cache")]
fn to_usize(v: i64) -> usize {
    usize::try_from(v).unwrap_or(0)
}

#[cfg(all(test, feature = "cache"))]
mod tests;
