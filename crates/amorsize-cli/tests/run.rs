//! `amorsize run`: ordering, batching, quoting, exit codes, plans.

use assert_cmd::Command;
use predicates::prelude::*;

fn amorsize() -> Command {
    Command::cargo_bin("amorsize").unwrap()
}

fn stdout_of(cmd: &mut Command) -> String {
    String::from_utf8(cmd.assert().get_output().stdout.clone()).unwrap()
}

#[test]
fn keep_order_prints_in_input_order() {
    // Later inputs finish first; -k still prints them in input order.
    let out = amorsize()
        .args([
            "run",
            "-k",
            "-j",
            "4",
            "--",
            "sh",
            "-c",
            "sleep $0; echo $0",
        ])
        .args([":::", "0.3", "0.2", "0.1", "0"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    assert_eq!(String::from_utf8(out).unwrap(), "0.3\n0.2\n0.1\n0\n");
}

#[test]
fn every_input_runs_exactly_once() {
    let input: String = (1..=300).map(|i| format!("{i}\n")).collect();
    let out = stdout_of(amorsize().args(["run", "--", "echo"]).write_stdin(input));
    let mut got: Vec<u32> = out.lines().map(|l| l.parse().unwrap()).collect();
    got.sort_unstable();
    assert_eq!(got, (1..=300).collect::<Vec<_>>());
}

#[test]
fn each_job_output_is_whole() {
    let out = stdout_of(
        amorsize()
            .args(["run", "-j", "8", "--", "sh", "-c"])
            .arg("echo $0-a; sleep 0.01; echo $0-b; sleep 0.01; echo $0-c")
            .args([":::", "1", "2", "3", "4", "5", "6", "7", "8"]),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 24);
    for block in lines.chunks(3) {
        let id = block[0].strip_suffix("-a").expect("a block starts with -a");
        assert_eq!(
            block,
            [format!("{id}-a"), format!("{id}-b"), format!("{id}-c")]
        );
    }
}

#[test]
fn nasty_inputs_pass_through_unchanged_with_null_separators() {
    let input = "a b\0it's\0\"q\"\0line1\nline2\0$HOME `x` \\n\0";
    let want = "[a b]\n[it's]\n[\"q\"]\n[line1\nline2]\n[$HOME `x` \\n]\n";
    // Directly, without a shell.
    let out = stdout_of(
        amorsize()
            .args(["run", "-0", "-k", "--", "printf", "[%s]\\n", "{}"])
            .write_stdin(input),
    );
    assert_eq!(out, want);
    // Through a shell: each input is quoted.
    let out = stdout_of(
        amorsize()
            .args(["run", "-0", "-k", "--", "printf '[%s]\\n' {}"])
            .write_stdin(input),
    );
    assert_eq!(out, want);
}

#[test]
fn lines_keep_their_spaces() {
    let out = stdout_of(
        amorsize()
            .args(["run", "-k", "--", "printf", "<%s>\\n"])
            .write_stdin("  two  spaces \nx\n"),
    );
    assert_eq!(out, "<  two  spaces >\n<x>\n");
}

#[test]
fn empty_input_runs_nothing_and_succeeds() {
    amorsize()
        .args(["run", "--", "echo", "never"])
        .write_stdin("")
        .assert()
        .success()
        .stdout("");
    amorsize()
        .args(["run", "--plan", "--", "echo"])
        .write_stdin("")
        .assert()
        .success()
        .stdout(predicate::str::contains("no inputs"));
}

#[test]
fn exit_status_counts_failed_jobs() {
    amorsize()
        .args([
            "run", "--", "sh", "-c", "exit $0", ":::", "0", "1", "0", "7", "0",
        ])
        .assert()
        .code(2);
    amorsize()
        .args(["run", "--", "sh", "-c", "exit $0", ":::", "0", "0"])
        .assert()
        .code(0);
    let input: String = (1..=150).map(|i| format!("{i}\n")).collect();
    amorsize()
        .args(["run", "--", "false"])
        .write_stdin(input)
        .assert()
        .code(101);
}

#[test]
fn a_missing_command_fails_once() {
    let out = amorsize()
        .args([
            "run",
            "--",
            "no-such-command-amorsize",
            "{}",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
        ])
        .assert()
        .code(127)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.matches("no-such-command-amorsize").count(), 1, "{err}");

    let out = amorsize()
        .args([
            "run",
            "--",
            "no-such-command-amorsize {}",
            ":::",
            "1",
            "2",
            "3",
            "4",
            "5",
        ])
        .assert()
        .code(127)
        .get_output()
        .clone();
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains("not found"), "{err}");
}

fn counts(out: &str) -> Vec<usize> {
    out.lines().map(|l| l.trim().parse().unwrap()).collect()
}

#[test]
fn fixed_batches_take_that_many_inputs() {
    let input: String = (1..=1000).map(|i| format!("{i}\n")).collect();
    let out = stdout_of(
        amorsize()
            .args([
                "run", "--batch", "100", "--", "sh", "-c", "echo $#", "sh", "{+}",
            ])
            .write_stdin(input),
    );
    assert_eq!(counts(&out), vec![100; 10]);
}

#[test]
fn automatic_batches_cover_every_input_in_fewer_jobs() {
    let input: String = (1..=5000).map(|i| format!("{i}\n")).collect();
    let out = stdout_of(
        amorsize()
            .args([
                "run",
                "-k",
                "--",
                "sh",
                "-c",
                "printf '%s\\n' \"$@\"",
                "sh",
                "{+}",
            ])
            .write_stdin(input.clone()),
    );
    assert_eq!(out, input);
    let out = stdout_of(
        amorsize()
            .args(["run", "--", "sh", "-c", "echo $#", "sh", "{+}"])
            .write_stdin(input),
    );
    let c = counts(&out);
    assert_eq!(c.iter().sum::<usize>(), 5000);
    assert!(c.len() < 2500, "{} jobs for 5000 inputs", c.len());
}

#[test]
fn batches_respect_the_command_line_limit() {
    // 3000 inputs of 1000 bytes: 3 MB, more than any usual ARG_MAX (2 MB on Linux).
    let long = "x".repeat(999);
    let input: String = (0..3000).map(|_| format!("{long}\n")).collect();
    let out = stdout_of(
        amorsize()
            .args([
                "run", "--batch", "3000", "--", "sh", "-c", "echo $#", "sh", "{+}",
            ])
            .write_stdin(input),
    );
    let c = counts(&out);
    assert!(c.len() >= 2);
    assert_eq!(c.iter().sum::<usize>(), 3000);
    // A shell script is a single argument: at most 128 KiB on Linux.
    let input: String = (0..1000).map(|_| format!("{}\n", &long[..200])).collect();
    let out = stdout_of(
        amorsize()
            .args(["run", "--batch", "1000", "--", "echo {+} | wc -w"])
            .write_stdin(input),
    );
    let c = counts(&out);
    assert!(c.len() >= 2);
    assert_eq!(c.iter().sum::<usize>(), 1000);
}

#[test]
fn plan_reports_without_running_the_rest() {
    let out = stdout_of(
        amorsize()
            .args([
                "run",
                "--plan",
                "--json",
                "--",
                "sh",
                "-c",
                "echo RAN; sleep 0.1",
            ])
            .args([":::", "1", "2", "3", "4", "5", "6", "7", "8", "9", "10"]),
    );
    assert!(!out.contains("RAN"), "--plan shows the plan only");
    let plan: serde_json::Value = serde_json::from_str(&out).unwrap();
    let jobs = plan["jobs"].as_u64().unwrap();
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    // Waiting work gets more jobs than CPUs (capped by the jobs left to run).
    assert!(jobs > cpus.min(6) || jobs >= plan["inputs_left"].as_u64().unwrap());
    assert_eq!(plan["batch"], 1);

    amorsize()
        .args([
            "run", "--plan", "-j", "3", "--", "true", ":::", "a", "b", "c", "d", "e", "f",
        ])
        .assert()
        .success()
        .stdout(predicate::str::contains("3 jobs at once").and(predicate::str::contains("-j")));
}

#[test]
fn bad_options_are_named() {
    amorsize()
        .args(["run", "--batch", "5", "--", "echo", "{}", ":::", "a"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("{+}"));
    amorsize()
        .args(["run", "-j", "0x", "--", "echo", ":::", "a"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("-j"));
    amorsize()
        .args(["run", "--halt", "sometimes", "--", "echo", ":::", "a"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("--halt"));
    amorsize()
        .args(["run", "--", "cp", "{}", "{+}", ":::", "a"])
        .assert()
        .failure()
        .stderr(predicate::str::contains("both"));
}

#[test]
fn halt_now_stops_after_the_first_failure() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    amorsize()
        .args(["run", "-j", "1", "--halt", "now,fail=1", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", "exit $0", ":::", "0", "1"])
        .args(["0"; 20])
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&log).unwrap();
    // Header, the success, the failure; with one job at a time, nothing after it starts.
    assert!(text.contains("\t1\t0\tsh -c 'exit $0' 1\n"), "{text}");
    assert_eq!(text.lines().count(), 3, "{text}");
}

#[test]
fn halt_soon_lets_running_jobs_finish_and_starts_no_more() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("log");
    amorsize()
        .args(["run", "-j", "1", "--halt", "soon,fail=1", "--joblog"])
        .arg(&log)
        .args(["--", "sh", "-c", "exit $0", ":::", "1"])
        .args(["0"; 20])
        .assert()
        .code(1);
    let text = std::fs::read_to_string(&log).unwrap();
    // Header and the failure: with one job at a time, nothing after it starts.
    assert_eq!(text.lines().count(), 2, "{text}");
}

/// `find / | amorsize run …`: the first job's output comes while standard input is still open.
/// A runner that read its input whole would print nothing until the pipe closed; the bound
/// only ends a failing test.
#[test]
fn jobs_start_while_stdin_is_still_open() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    use std::time::Duration;

    for jobs in ["-j1", "-j3"] {
        let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("amorsize"))
            .args(["run", jobs, "echo", "got"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"first\n").unwrap();
        stdin.flush().unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let mut line = String::new();
            let _ = BufReader::new(stdout).read_line(&mut line);
            let _ = tx.send(line);
        });
        let line = rx.recv_timeout(Duration::from_secs(120));
        drop(stdin);
        child.wait().unwrap();
        assert_eq!(line.as_deref(), Ok("got first\n"), "{jobs}");
    }
}

#[test]
fn attached_job_counts_are_options_not_the_command() {
    for j in ["-j1", "-j2", "-j+1", "-j50%", "-j0"] {
        let out = stdout_of(amorsize().args(["run", j, "-k", "echo", ":::", "a", "b"]));
        assert_eq!(out, "a\nb\n", "{j}");
    }
    let out = stdout_of(amorsize().args(["run", "-k", "-j", "-1", "echo", ":::", "a"]));
    assert_eq!(out, "a\n");
}

/// `--line-buffer`: a job's first line comes out while the job still runs (it waits for a file
/// that the test creates only after reading that line; the bound only ends a failing test).
#[test]
fn line_buffer_prints_lines_while_the_job_runs() {
    use std::io::{BufRead, BufReader};
    use std::process::Stdio;
    use std::time::Duration;

    let dir = tempfile::tempdir().unwrap();
    let flag = dir.path().join("go");
    let script = format!(
        "echo first {{}}; while [ ! -e '{}' ]; do sleep 0.01; done; echo second {{}}",
        flag.display()
    );
    let mut child = std::process::Command::new(assert_cmd::cargo::cargo_bin("amorsize"))
        .args(["run", "--line-buffer", "--tag", "-j1", &script, ":::", "x"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let _ = tx.send(line.unwrap());
        }
    });
    let first = rx.recv_timeout(Duration::from_secs(120));
    std::fs::write(&flag, "").unwrap();
    let second = rx.recv_timeout(Duration::from_secs(120));
    assert!(child.wait().unwrap().success());
    assert_eq!(first.as_deref(), Ok("x\tfirst x"));
    assert_eq!(second.as_deref(), Ok("x\tsecond x"));
}

/// `--bar` and `--eta` read the whole input first (for the total) and draw only on a terminal:
/// the output is the jobs' output alone.
#[test]
fn bar_and_eta_leave_the_output_alone() {
    let out = stdout_of(
        amorsize()
            .args(["run", "--bar", "--eta", "-k", "echo"])
            .write_stdin("a\nb\nc\n"),
    );
    assert_eq!(out, "a\nb\nc\n");
    let out = stdout_of(amorsize().args(["run", "--progress", "-k", "echo", ":::", "x"]));
    assert_eq!(out, "x\n");
}
