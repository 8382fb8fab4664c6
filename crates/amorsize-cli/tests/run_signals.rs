//! `amorsize run` under timeouts and interruptions: no job, and nothing a job started, survives.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A generous bound for things that happen in milliseconds, so that a loaded CI machine does not
/// fail the tests (these are not timing checks: they only keep a broken build from hanging).
const PATIENCE: Duration = Duration::from_secs(20);

fn bin() -> std::path::PathBuf {
    assert_cmd::cargo::cargo_bin("amorsize")
}

/// Whether `pid` is a live process (a zombie is not).
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state follows the parenthesized command name (proc(5)).
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn pids_in(file: &Path) -> Vec<u32> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.trim().parse().ok())
        .collect()
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let start = Instant::now();
    while !cond() {
        assert!(start.elapsed() < PATIENCE, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn wait_exit(child: &mut Child) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > PATIENCE {
            let _ = child.kill();
            panic!("amorsize did not exit after the signal");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Starts three jobs that each record their shell's pid and a background `sleep`'s pid, waits
/// until all six are recorded, sends `signal`, and checks that none survives.
fn interrupt_with(signal: &str, code: i32) {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let log = dir.path().join("log");
    let script = format!(
        "sleep 60 & echo $! >> {p}; echo $$ >> {p}; wait # {{}}",
        p = pids.display()
    );
    let mut child = Command::new(bin())
        .args(["run", "-j", "3", "--joblog"])
        .arg(&log)
        .args(["--", &script, ":::", "a", "b", "c", "d", "e"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("six pids", || pids_in(&pids).len() >= 6);
    let status = Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let status = wait_exit(&mut child);
    assert_eq!(status.code(), Some(code));
    let recorded = pids_in(&pids);
    wait_for("every job and its children to end", || {
        recorded.iter().all(|&p| !alive(p))
    });
    // The log holds its header only: the stopped jobs are not done.
    let text = std::fs::read_to_string(&log).unwrap();
    assert_eq!(text.lines().count(), 1, "{text}");
}

#[test]
fn sigterm_stops_every_job_and_its_children() {
    interrupt_with("-TERM", 128 + 15);
}

#[test]
fn sigint_stops_every_job_and_its_children() {
    interrupt_with("-INT", 128 + 2);
}

#[test]
fn a_timeout_ends_the_whole_process_group() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "if [ $0 = slow ]; then sleep 60 & echo $! >> {p}; wait; fi; echo done $0",
        p = pids.display()
    );
    let out = assert_cmd::Command::cargo_bin("amorsize")
        .unwrap()
        .args(["run", "-k", "--timeout", "1", "--", "sh", "-c", &script])
        .args([":::", "fast", "slow", "fast2"])
        .timeout(PATIENCE)
        .assert()
        .code(1)
        .get_output()
        .clone();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(stdout, "done fast\ndone fast2\n");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("timed out"), "{stderr}");
    let recorded = pids_in(&pids);
    assert_eq!(recorded.len(), 1);
    wait_for("the timed-out job's child to end", || {
        recorded.iter().all(|&p| !alive(p))
    });
}

#[test]
fn an_interrupted_run_resumes_where_it_stopped() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    let marks = dir.path().join("marks");
    // Inputs 1-3 finish at once; 4 blocks until interrupted.
    let script = format!(
        "echo $0 >> {m}; if [ $0 = 4 ]; then exec sleep 60; fi",
        m = marks.display()
    );
    let mut child = Command::new(bin())
        .args(["run", "-j", "1", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", &script, ":::", "1", "2", "3", "4", "5"])
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    wait_for("input 4 to start", || {
        std::fs::read_to_string(&marks)
            .unwrap_or_default()
            .contains('4')
    });
    Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert_eq!(wait_exit(&mut child).code(), Some(130));
    let out = assert_cmd::Command::cargo_bin("amorsize")
        .unwrap()
        .args(["run", "-k", "--resume", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", "echo $0", ":::", "1", "2", "3", "4", "5"])
        .timeout(PATIENCE)
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), "4\n5\n");
}
