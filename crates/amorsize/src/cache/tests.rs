//! The cache's behaviour on good files and bad ones.

use super::*;
use crate::model::contention::CONTENTION_HALF_LIFE;
use crate::model::fade_contention;
use crate::Plan;
use std::num::NonZeroUsize;

fn machine(name: &str) -> Fingerprint {
    Fingerprint {
        cpu_model: name.into(),
        logical_cpus: 4,
        affinity_cpus: 4,
        usable_cores: 2,
        cpu_quota: None,
        memory_limit: Some(1 << 30),
        kernel: "6.1.0-test".into(),
        version: "0.1.0".into(),
    }
}

fn fresh() -> (tempfile::TempDir, Cache) {
    let dir = tempfile::tempdir().unwrap();
    let cache = Cache::open_at(&dir.path().join("a").join("amorsize.db"), machine("m")).unwrap();
    assert_eq!(cache.take_warnings(), vec![]);
    (dir, cache)
}

fn costs(backend: Backend, start: f64) -> Costs {
    Costs {
        backend,
        worker_start: start,
        chunk_dispatch: 2e-6,
        transfer_per_byte: 1e-9,
        fallbacks: Default::default(),
    }
}

/// A parallel plan on 4 workers for 100 items in chunks of 8, predicting `compute` seconds of
/// compute plus the contention term of `alpha`, built from its serialized form as a stored plan
/// would be.
fn parallel_plan(compute: f64, alpha: f64) -> Plan {
    let contention = compute * alpha * 3.0;
    serde_json::from_value(serde_json::json!({
        "mode": "parallel", "backend": "threads", "workers": 4, "chunk": 8, "items": 100,
        "item_time": compute * 4.0 / 100.0,
        "predicted_serial": compute * 4.0, "predicted": compute + contention,
        "prediction": {
            "candidate": {"workers": 4, "chunk": 8}, "serial": compute * 4.0,
            "worker_start": 0.0, "compute": compute, "contention": contention,
            "dispatch": 0.0, "transfer": 0.0, "tail": 0.0,
        },
    }))
    .unwrap()
}

/// `plan` as if planned beside `competing` runnable threads of other programs.
fn loaded(plan: Plan, competing: f64) -> Plan {
    let mut value = serde_json::to_value(&plan).unwrap();
    let mut caps = crate::plan::Caps::cores(2, "test");
    caps.load = Some(crate::plan::Load {
        competing,
        sharing: crate::model::Sharing::PerThread,
        source: "test".into(),
    });
    value["caps"] = serde_json::to_value(caps).unwrap();
    serde_json::from_value(value).unwrap()
}

fn serial_plan() -> Plan {
    Plan::fixed(NonZeroUsize::MIN, NonZeroUsize::new(100).unwrap())
}

fn sample(item_time: f64) -> Sample {
    Sample {
        count: 5,
        item_time,
        cv: 0.1,
        ..Default::default()
    }
}

fn secs(wall: f64) -> Duration {
    Duration::from_secs_f64(wall)
}

#[test]
fn costs_round_trip_per_backend_and_machine() {
    let (dir, cache) = fresh();
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    cache.store_costs(&costs(Backend::Processes, 1e-3));
    cache.store_costs(&costs(Backend::Threads, 2e-5));
    assert_eq!(
        cache.load_costs(Backend::Threads),
        Some(costs(Backend::Threads, 2e-5))
    );
    assert_eq!(
        cache.load_costs(Backend::Processes),
        Some(costs(Backend::Processes, 1e-3))
    );
    assert_eq!(cache.load_costs(Backend::Commands), None);
    let other = Cache::open_at(cache.path(), machine("another cpu")).unwrap();
    assert_eq!(other.load_costs(Backend::Threads), None);
    drop(dir);
}

#[test]
fn stale_calibrations_are_not_used() {
    let (_dir, cache) = fresh();
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    let old = now_secs() - CALIBRATION_MAX_AGE.as_secs() as i64 - 10;
    cache
        .conn
        .execute("UPDATE calibration SET measured_at = ?1", [old])
        .unwrap();
    assert_eq!(cache.load_costs(Backend::Threads), None);
}

#[test]
fn an_unknown_workload_has_no_history_and_no_contention() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("never ran");
    assert_eq!(cache.workload(&key), None);
    assert_eq!(cache.contention(&key), 0.0);
}

#[test]
fn a_run_is_remembered_with_its_sample_and_plan() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    let plan = parallel_plan(1.0, 0.0);
    assert!(cache.record_run(&key, &sample(0.04), &plan.run_facts(secs(2.0), 100)));
    let h = cache.workload(&key).unwrap();
    assert_eq!((h.runs, h.learned), (1, 1));
    assert_eq!(h.samples, vec![sample(0.04)]);
    assert_eq!(h.item_time(), Some(0.04));
    assert_eq!(h.chunk_size(), Some(8));
    assert_eq!(
        h.last_plan()
            .map(|p| serde_json::from_str::<crate::Plan>(p).unwrap()),
        Some(plan)
    );
    let run = &h.recent[0];
    assert_eq!(run.error_ratio(), Some(2.0));
    assert_eq!(run.predicted_speedup(), Some(4.0));
    assert_eq!(run.measured_speedup(), Some(2.0));
    // 1 s more than predicted over 1 s of compute on 3 extra workers.
    assert!((h.contention - 1.0 / 3.0).abs() < 1e-12);
    assert_eq!(cache.contention(&key), h.contention);
    assert_eq!(cache.take_warnings(), vec![]);
}

#[test]
fn contention_learns_the_model_error_not_the_corrected_one() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    // Without contention the model says 1 s; the run takes 1.6 s: α = 0.6 / 3.
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.6), 100),
    );
    let alpha = cache.contention(&key);
    assert!((alpha - 0.2).abs() < 1e-12);
    // The next plan included it, predicted 1.6 s and was right: it stays.
    let plan = parallel_plan(1.0, alpha);
    assert!((plan.predicted_time().unwrap().as_secs_f64() - 1.6).abs() < 1e-9);
    cache.record_run(&key, &sample(0.04), &plan.run_facts(secs(1.6), 100));
    assert!((cache.contention(&key) - 0.2).abs() < 1e-9);
    let h = cache.workload(&key).unwrap();
    assert!((h.recent[1].contention_used - 0.2).abs() < 1e-9);
    assert_eq!(h.recent[0].contention_used, 0.0);
}

#[test]
fn serial_runs_fade_the_contention_without_learning_from_it() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.6), 100),
    );
    cache.record_run(
        &key,
        &sample(0.04),
        &serial_plan().run_facts(secs(9.0), 100),
    );
    let h = cache.workload(&key).unwrap();
    assert_eq!((h.runs, h.learned), (2, 1));
    assert!((h.contention - fade_contention(0.2)).abs() < 1e-12);
    assert!(!h.recent[1].parallel);
}

#[test]
fn serial_runs_measure_the_item_time_to_start_from() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    // The samples saw 10 ms items; two whole serial runs of 100 items took 2.5 s and 3 s.
    cache.record_run(
        &key,
        &sample(0.01),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.0), 100),
    );
    assert_eq!(cache.workload(&key).unwrap().item_time(), Some(0.01));
    cache.record_run(
        &key,
        &sample(0.01),
        &serial_plan().run_facts(secs(2.5), 100),
    );
    cache.record_run(
        &key,
        &sample(0.01),
        &serial_plan().run_facts(secs(3.0), 100),
    );
    let h = cache.workload(&key).unwrap();
    assert_eq!(h.item_time(), Some(0.03));
    assert_eq!(h.sample_item_time(), Some(0.01));
    // A light sample like the remembered ones confirms, and the runs' figure is used.
    let mut w = crate::model::Workload::new(90, 0.012);
    assert!(crate::plan::recall::inform(&h, &mut w, &sample(0.012)));
    assert_eq!(w.item_time, 0.03);
    assert_eq!(w.contention, h.contention);
    // One far from them does not.
    let mut changed = crate::model::Workload::new(90, 0.09);
    assert!(!crate::plan::recall::inform(
        &h,
        &mut changed,
        &sample(0.09)
    ));
    assert_eq!(changed.item_time, 0.09);
}

#[test]
fn only_the_most_recent_runs_are_kept() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    for i in 0..KEEP_RECENT + 5 {
        cache.record_run(
            &key,
            &sample(i as f64),
            &serial_plan().run_facts(secs(1.0), 100),
        );
    }
    let h = cache.workload(&key).unwrap();
    assert_eq!(h.runs, (KEEP_RECENT + 5) as u64);
    assert_eq!(h.samples.len(), KEEP_RECENT);
    assert_eq!(h.recent.len(), KEEP_RECENT);
    assert_eq!(h.samples[0].item_time, 5.0, "the oldest ones go first");
    let (last, older) = h.recent.split_last().unwrap();
    assert!(!last.plan.is_empty() && older.iter().all(|r| r.plan.is_empty()));
    assert!(older.iter().all(|r| r.wall == Duration::from_secs(1)));
}

#[test]
fn workloads_of_other_machines_are_separate() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(2.0), 100),
    );
    let other = Cache::open_at(cache.path(), machine("another cpu")).unwrap();
    assert_eq!(other.workload(&key), None);
    let summary = other.summary().unwrap();
    assert_eq!(summary.workloads.len(), 1);
    assert!(!summary.workloads[0].this_machine);
}

#[test]
fn summary_lists_calibrations_and_workloads() {
    let (_dir, cache) = fresh();
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    cache.record_run(
        &WorkloadKey::named("a"),
        &sample(0.01),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.5), 100),
    );
    cache.record_run(
        &WorkloadKey::named("b"),
        &sample(0.02),
        &serial_plan().run_facts(secs(2.0), 100),
    );
    let s = cache.summary().unwrap();
    assert_eq!(s.calibrations.len(), 1);
    assert_eq!(s.calibrations[0].machine.as_ref(), Some(cache.machine()));
    assert!(s.calibrations[0].this_machine);
    let a = s.workloads.iter().find(|w| w.key == "a").unwrap();
    assert_eq!(
        (a.runs, a.last_workers, a.last_error_ratio),
        (1, Some(4), Some(1.5))
    );
    let b = s.workloads.iter().find(|w| w.key == "b").unwrap();
    assert_eq!((b.item_time, b.last_error_ratio), (Some(0.02), None));
}

#[test]
fn a_full_disk_stops_writing_but_not_reading() {
    // SQLite reports a write past `max_page_count` with SQLITE_FULL, the code its unix VFS
    // returns when write(2) fails with ENOSPC (os_unix.c, unixWrite): the same error path as a
    // full disk, reached without filling one.
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(2.0), 100),
    );
    let pages: u32 = cache
        .conn
        .query_row("PRAGMA page_count", [], |r| r.get(0))
        .unwrap();
    cache.limit_pages(pages);
    let big = WorkloadKey::named("x".repeat(64 * 1024));
    assert!(!cache.record_run(
        &big,
        &sample(0.04),
        &serial_plan().run_facts(secs(1.0), 100)
    ));
    assert_eq!(
        cache.take_warnings(),
        vec![CacheWarning::Full {
            path: cache.path().to_owned()
        }]
    );
    assert_eq!(
        cache.workload(&big),
        None,
        "the failed transaction left nothing"
    );
    // Writing stops (no second warning), reading goes on.
    assert!(!cache.record_run(
        &key,
        &sample(0.04),
        &serial_plan().run_facts(secs(1.0), 100)
    ));
    assert_eq!(cache.take_warnings(), vec![]);
    assert_eq!(cache.workload(&key).unwrap().runs, 1);
    assert!((cache.contention(&key) - 1.0 / 3.0).abs() < 1e-12);
    assert!(cache.load_costs(Backend::Threads).is_some());
}

#[test]
fn a_file_that_is_not_a_database_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    std::fs::write(
        &path,
        b"this is not an SQLite file, but it is long enough to be read as one; ".repeat(100),
    )
    .unwrap();
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    let warnings = cache.take_warnings();
    assert!(
        matches!(&warnings[..], [CacheWarning::Rebuilt { path: p, .. }] if p == &path),
        "{warnings:?}"
    );
    let key = WorkloadKey::named("w");
    cache.record_run(
        &key,
        &sample(0.04),
        &serial_plan().run_facts(secs(1.0), 100),
    );
    assert_eq!(cache.workload(&key).unwrap().runs, 1);
}

#[test]
fn a_truncated_file_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    {
        let cache = Cache::open_at(&path, machine("m")).unwrap();
        for i in 0..200 {
            cache.record_run(
                &WorkloadKey::named(format!("workload {i} {}", "x".repeat(200))),
                &sample(0.04),
                &parallel_plan(1.0, 0.0).run_facts(secs(2.0), 100),
            );
        }
        // Fold the log into the file, so that cutting the file loses committed pages.
        cache
            .conn
            .execute_batch("PRAGMA wal_checkpoint(TRUNCATE)")
            .unwrap();
    }
    let len = std::fs::metadata(&path).unwrap().len();
    assert!(len > 64 * 1024, "the file should span many pages: {len}");
    let file = std::fs::OpenOptions::new().write(true).open(&path).unwrap();
    file.set_len(len / 3).unwrap();
    drop(file);
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    let warnings = cache.take_warnings();
    assert!(
        matches!(&warnings[..], [CacheWarning::Rebuilt { .. }]),
        "{warnings:?}"
    );
    assert_eq!(cache.summary().unwrap().workloads, vec![]);
}

#[test]
fn an_empty_file_becomes_a_cache_without_warning() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    std::fs::write(&path, b"").unwrap();
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    assert_eq!(cache.take_warnings(), vec![]);
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    assert!(cache.load_costs(Backend::Threads).is_some());
}

#[test]
fn an_older_schema_is_rebuilt() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    {
        // What an earlier layout could have looked like: one table, version 0 left unset.
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(
            "CREATE TABLE runs (key TEXT, seconds REAL);
             INSERT INTO runs VALUES ('w', 1.0);",
        )
        .unwrap();
    }
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    let warnings = cache.take_warnings();
    assert!(
        matches!(&warnings[..], [CacheWarning::Rebuilt { reason, .. }] if reason.contains("version 0")),
        "{warnings:?}"
    );
    let tables: i64 = cache
        .conn
        .query_row(
            "SELECT count(*) FROM sqlite_schema WHERE name = 'runs'",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(tables, 0, "the old table is gone");
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    assert!(cache.load_costs(Backend::Threads).is_some());
    drop(cache);
    // A file of a newer version is rebuilt too, and the current one is kept as it is.
    {
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", schema::VERSION + 1)
            .unwrap();
    }
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    assert_eq!(cache.take_warnings().len(), 1);
    assert_eq!(cache.load_costs(Backend::Threads), None);
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    drop(cache);
    let cache = Cache::open_at(&path, machine("m")).unwrap();
    assert_eq!(cache.take_warnings(), vec![]);
    assert!(cache.load_costs(Backend::Threads).is_some());
}

// Linux's procfs; elsewhere no directory refuses files to root.
#[cfg(target_os = "linux")]
#[test]
fn a_directory_that_cannot_hold_files_leaves_the_run_without_a_cache() {
    // procfs refuses new files to every user, root included, unlike a chmod-ed directory.
    let path = Path::new("/proc/self/amorsize/amorsize.db");
    let warning = Cache::open_at(path, machine("m")).unwrap_err();
    assert!(
        matches!(&warning, CacheWarning::Unavailable { path: p, .. } if p == path),
        "{warning:?}"
    );
}

// Unix permission bits.
#[cfg(unix)]
#[test]
fn a_read_only_directory_leaves_the_run_without_a_cache() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let ro = dir.path().join("ro");
    std::fs::create_dir(&ro).unwrap();
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o555)).unwrap();
    let path = ro.join("amorsize.db");
    let privileged = std::fs::write(ro.join("probe"), b"").is_ok();
    let opened = Cache::open_at(&path, machine("m"));
    std::fs::set_permissions(&ro, std::fs::Permissions::from_mode(0o755)).unwrap();
    if privileged {
        // Root writes through the mode bits; the procfs test covers a directory root cannot
        // write. Here the cache must then simply work.
        assert!(opened.is_ok());
    } else {
        assert!(matches!(opened, Err(CacheWarning::Unavailable { .. })));
        // A write-protected file in a writable directory is not used either.
        let file = dir.path().join("amorsize.db");
        drop(Cache::open_at(&file, machine("m")).unwrap());
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o444)).unwrap();
        let opened = Cache::open_at(&file, machine("m"));
        assert!(
            matches!(&opened, Err(CacheWarning::Unavailable { reason, .. }) if reason.contains("read-only")),
            "{opened:?}"
        );
    }
}

#[test]
fn remove_deletes_the_file_and_its_companions() {
    let (dir, cache) = fresh();
    cache.store_costs(&costs(Backend::Threads, 1e-5));
    let path = cache.path().to_owned();
    assert!(Path::new(&format!("{}-wal", path.display())).exists());
    drop(cache);
    assert!(remove(&path).unwrap());
    for p in open::files_of(&path) {
        assert!(!p.exists(), "{}", p.display());
    }
    assert!(!remove(&path).unwrap());
    drop(dir);
}

/// The tables of schema version 2, as that version wrote them.
const V2_TABLES: &str = "
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

#[test]
fn a_version_2_file_is_migrated_and_forgets_the_contention_it_learned_blind_to_load() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("amorsize.db");
    let m = machine("m");
    {
        let conn = Connection::open(&path).unwrap();
        conn.execute_batch(V2_TABLES).unwrap();
        conn.pragma_update(None, "user_version", 2).unwrap();
        conn.execute(
            "INSERT INTO calibration VALUES (?1, 'threads', ?2, ?3)",
            params![
                m.key(),
                serde_json::to_string(&costs(Backend::Threads, 3e-5)).unwrap(),
                now_secs()
            ],
        )
        .unwrap();
        // A contention of 0.8 learned on a loaded machine, with one run.
        conn.execute(
            "INSERT INTO workload VALUES (1, ?1, 'w', 1, 1, 0.8, ?2)",
            params![m.key(), now_secs()],
        )
        .unwrap();
        conn.execute(
            "INSERT INTO run VALUES (1, 1, '', 1, 2, 8, 100, 1.6, 1.0, 2.0, 0.0, ?1)",
            [now_secs()],
        )
        .unwrap();
    }
    let cache = Cache::open_at(&path, m).unwrap();
    assert_eq!(
        cache.take_warnings(),
        vec![],
        "a migration is not a rebuild"
    );
    assert_eq!(
        cache.load_costs(Backend::Threads),
        Some(costs(Backend::Threads, 3e-5))
    );
    let key = WorkloadKey::named("w");
    let h = cache.workload(&key).unwrap();
    assert_eq!((h.runs, h.learned, h.contention), (1, 0, 0.0));
    assert_eq!(h.recent.len(), 1, "the runs are kept");
    // It learns again, now with the load it learned under.
    assert!(cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.6), 100)
    ));
    let h = cache.workload(&key).unwrap();
    assert!((h.contention - 0.2).abs() < 1e-12);
    assert_eq!(h.contention_load, 0.0);
    drop(cache);
    let conn = Connection::open(&path).unwrap();
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |r| r.get(0))
        .unwrap();
    assert_eq!(version, schema::VERSION);
}

#[test]
fn contention_learned_beside_other_load_is_not_applied_without_it() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    // Planned beside one other busy thread on 2 cores; the run took 1.6 s for 1 s predicted.
    cache.record_run(
        &key,
        &sample(0.04),
        &loaded(parallel_plan(1.0, 0.0), 1.0).run_facts(secs(1.6), 100),
    );
    let h = cache.workload(&key).unwrap();
    assert!((h.contention - 0.2).abs() < 1e-12);
    assert_eq!(h.contention_load, 1.0);
    assert!((h.contention_at(1.0) - 0.2).abs() < 1e-6);
    assert_eq!(
        h.contention_at(0.0),
        0.0,
        "the load is gone, and what it caused"
    );
    // A quiet run starts the learning over instead of averaging with the loaded one.
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.0), 100),
    );
    let h = cache.workload(&key).unwrap();
    assert_eq!((h.learned, h.contention, h.contention_load), (1, 0.0, 0.0));
    // Under the same load again, estimates join.
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.3), 100),
    );
    let h = cache.workload(&key).unwrap();
    assert_eq!(h.learned, 2);
    assert!(h.contention > 0.0 && h.contention < 0.1, "{}", h.contention);
}

#[test]
fn learned_contention_fades_with_age() {
    let (_dir, cache) = fresh();
    let key = WorkloadKey::named("w");
    cache.record_run(
        &key,
        &sample(0.04),
        &parallel_plan(1.0, 0.0).run_facts(secs(1.6), 100),
    );
    let fresh_h = cache.workload(&key).unwrap();
    assert!(fresh_h.contention_age < Duration::from_secs(60));
    // As if learned two half-lives ago.
    let ago = 2 * CONTENTION_HALF_LIFE.as_secs() as i64;
    cache
        .conn
        .execute("UPDATE workload SET learned_at = learned_at - ?1", [ago])
        .unwrap();
    let old = cache.workload(&key).unwrap();
    assert_eq!(old.contention, fresh_h.contention, "stored as learned");
    let applied = old.contention_at(0.0);
    assert!(
        (applied - fresh_h.contention / 4.0).abs() < 0.01,
        "{applied}"
    );
}
