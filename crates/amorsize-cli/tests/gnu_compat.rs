//! GNU parallel compatibility: the same invocations run through GNU parallel and through
//! `amorsize run`, their standard output and exit status compared byte for byte.
//!
//! Where `amorsize run` differs on purpose, the case is listed with [`Expect::Differs`] and its
//! reason (the same list is in the README): the test checks that those still differ, so that
//! the list stays true. `.ci/run` installs GNU parallel (Debian's `parallel` package) when it
//! is missing; without it, this test prints why and checks nothing.

#![allow(clippy::print_stderr)] // The skip reason and the differences are printed for people.

use std::path::Path;
use std::process::{Command, Output, Stdio};

use assert_cmd::cargo::CommandCargoExt;

/// What a case should show.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Expect {
    /// The same output and exit status.
    Same,
    /// A deliberate difference, for this reason.
    Differs(&'static str),
}

use Expect::{Differs, Same};

/// `FILE` in a case's words stands for a file holding `f1\nf2.txt\nd/f3.tar.gz\n`.
const CASES: &[(&[&str], Option<&str>, Expect)] = &[
    // Input sources.
    (&["-k", "echo", ":::", "a", "b", "c"], None, Same),
    (&["-k", "echo", "{}", ":::", "a", "b", "c"], None, Same),
    (&["-k", "echo", "x{}y"], Some("1\n2\n3\n"), Same),
    (&["-k", "-0", "echo", "[{}]"], Some("a b\0c\0"), Same),
    (
        &["-k", "echo", ":::", "a", "b", ":::", "1", "2", ":::", "X"],
        None,
        Same,
    ),
    (&["-k", "echo", "{}", "::::", "FILE"], None, Same),
    (
        &["-k", "echo", "{1}", "{2}", "::::", "FILE", ":::", "x", "y"],
        None,
        Same,
    ),
    (&["-k", "-a", "FILE", "echo", "got"], None, Same),
    (
        &[
            "-k", "--colsep", ",", "echo", "{2}", "{1}", ":::", "a,b", "c,d",
        ],
        None,
        Same,
    ),
    (
        &["-k", "--colsep", "\t", "echo", "{2}:{1}"],
        Some("a\tb\nc\td\n"),
        Same,
    ),
    // Replacement strings.
    (
        &[
            "-k", "echo", "{.}", ":::", "a.txt", "b.tar.gz", "c", "d.e/f",
        ],
        None,
        Same,
    ),
    (
        &["-k", "echo", "{/}", ":::", "dir/a.txt", "/x/y", "b"],
        None,
        Same,
    ),
    (
        &[
            "-k",
            "echo",
            "{//}",
            ":::",
            "dir/a.txt",
            "/x/y",
            "b",
            "/top",
        ],
        None,
        Same,
    ),
    (
        &["-k", "echo", "{/.}", ":::", "dir/a.txt", "/x/y.z", "b"],
        None,
        Same,
    ),
    (
        &["-k", "echo", "{#}", "{}", ":::", "a", "b", "c"],
        None,
        Same,
    ),
    (
        &["-j1", "-k", "echo", "{%}", "{}", ":::", "a", "b", "c"],
        None,
        Same,
    ),
    (
        &["-k", "echo", "{1}", "{2}", ":::", "a", "b", ":::", "x", "y"],
        None,
        Same,
    ),
    (
        &[
            "-k", "echo", "{2}-{1}", ":::", "a", "b", ":::", "x", "y", "z",
        ],
        None,
        Same,
    ),
    (
        &[
            "-k", "echo", "{1.}", "{2/}", ":::", "a.b", "c.d", ":::", "e/f",
        ],
        None,
        Same,
    ),
    (&["-k", "echo", "[{3}]", ":::", "a", "b"], None, Same),
    (
        &["-k", "echo", "{}", ":::", "a  b", "it's", "$HOME", "*"],
        None,
        Same,
    ),
    (
        &["-k", "echo {} | tr a-z A-Z", ":::", "ab", "c d"],
        None,
        Same,
    ),
    // Inputs per job.
    (
        &["-k", "-N2", "echo", "{2}", "{1}", ":::", "a", "b", "c", "d"],
        None,
        Same,
    ),
    (
        &[
            "-k", "-N", "3", "echo", "{}", ":::", "a", "b", "c", "d", "e", "f", "g",
        ],
        None,
        Same,
    ),
    (
        &["-k", "-X", "-N2", "echo", ":::", "a", "b", "c", "d", "e"],
        None,
        Same,
    ),
    (
        &[
            "-j1",
            "-k",
            "-X",
            "-N2",
            "echo",
            "pre{}post",
            ":::",
            "a",
            "b",
            "c",
            "d",
        ],
        None,
        Same,
    ),
    (
        &[
            "-k", "-m", "-N2", "echo", "{}", ":::", "a", "b", "c", "d", "e",
        ],
        None,
        Same,
    ),
    // Job counts.
    (&["-j1", "-k", "echo", ":::", "a", "b"], None, Same),
    (&["-j", "2", "-k", "echo", ":::", "a", "b", "c"], None, Same),
    (&["-j+1", "-k", "echo", ":::", "a", "b", "c"], None, Same),
    (
        &["-j", "-1", "-k", "echo", ":::", "a", "b", "c"],
        None,
        Same,
    ),
    (
        &["-j", "50%", "-k", "echo", ":::", "a", "b", "c"],
        None,
        Same,
    ),
    (&["-j0", "-k", "echo", ":::", "a", "b", "c"], None, Same),
    (
        &["--will-cite", "-k", "-j2", "echo", ":::", "a"],
        None,
        Same,
    ),
    // Output.
    (
        &[
            "--dry-run",
            "-k",
            "echo",
            "{}",
            ":::",
            "it's",
            "a b",
            "$x",
            "",
            "ok",
        ],
        None,
        Same,
    ),
    (
        &["--dry-run", "-k", "gzip", "-9", "{}", ":::", "x.txt", "a,b"],
        None,
        Same,
    ),
    (
        &[
            "--dry-run",
            "-k",
            "-X",
            "-N2",
            "echo",
            "{}",
            ":::",
            "a",
            "b",
            "c",
        ],
        None,
        Same,
    ),
    (
        &["-k", "--tag", "echo", "hi", "{}", ":::", "a", "b"],
        None,
        Same,
    ),
    (
        &["-k", "--tag", "echo", ":::", "a", "b", ":::", "1", "2"],
        None,
        Same,
    ),
    // Exit status: the number of failed jobs.
    (
        &["-k", "exit {}", ":::", "0", "1", "2", "0", "3"],
        None,
        Same,
    ),
    (&["-k", "echo {}; exit {}", ":::", "0", "1"], None, Same),
    // Deliberate differences.
    (
        &["-k", "echo", "{}", ">", "/dev/null", ":::", "a"],
        None,
        Differs(
            "several words run directly, each one argument: `>` is not a redirection (write \
             shell syntax as one quoted word, `'echo {} > /dev/null'`)",
        ),
    ),
    (
        &["--line-buffer", "-k", "echo", ":::", "a"],
        None,
        Differs(
            "--line-buffer with -k is refused: lines as jobs write them and whole jobs in \
             input order do not go together (GNU parallel line-buffers only the oldest job)",
        ),
    ),
    (
        &["-j1", "-k", "-X", "echo", ":::", "a", "b", "c", "d", "e"],
        None,
        Differs(
            "-X and -m without -N measure how many inputs pay per job (the first jobs of \
             the sample take one input); GNU parallel fills the command line",
        ),
    ),
];

const FILE_LINES: &str = "f1\nf2.txt\nd/f3.tar.gz\n";

fn run(mut cmd: Command, stdin: Option<&str>) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut child = cmd.spawn().expect("starts");
    if let Some(text) = stdin {
        use std::io::Write;
        let mut pipe = child.stdin.take().expect("stdin is piped");
        pipe.write_all(text.as_bytes()).expect("stdin is written");
    }
    child.wait_with_output().expect("ends")
}

/// Whether `parallel` is GNU parallel (moreutils ships another program of that name).
fn gnu_parallel_present() -> bool {
    Command::new("parallel")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .is_ok_and(|o| o.status.success() && o.stdout.starts_with(b"GNU parallel"))
}

fn words(case: &[&str], file: &Path) -> Vec<String> {
    case.iter()
        .map(|w| {
            if *w == "FILE" {
                file.display().to_string()
            } else {
                (*w).to_owned()
            }
        })
        .collect()
}

#[test]
fn gnu_parallel_and_amorsize_run_agree() {
    if !gnu_parallel_present() {
        eprintln!(
            "SKIPPED: GNU parallel is not installed (`apt-get install parallel`; .ci/run \
             installs it), so there is nothing to compare with"
        );
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("inputs.txt");
    std::fs::write(&file, FILE_LINES).unwrap();
    let cache = dir.path().join("cache.db");
    // GNU parallel takes about a second to start, mostly waiting: the cases run a few at a
    // time. Each case's two runs are compared with each other only.
    let check = |(case, stdin, expect): &(&[&str], Option<&str>, Expect)| -> Option<String> {
        let args = words(case, &file);
        let mut gnu = Command::new("parallel");
        gnu.arg("--will-cite")
            .args(&args)
            // The shell GNU parallel runs commands with, as ours (it otherwise picks the
            // shell of the process that started it), and a home of its own for ~/.parallel.
            .env("PARALLEL_SHELL", "/bin/sh")
            .env("HOME", dir.path())
            .current_dir(dir.path());
        let mut ours = Command::cargo_bin("amorsize").unwrap();
        ours.arg("run")
            .args(&args)
            .env("AMORSIZE_CACHE", &cache)
            .current_dir(dir.path());
        let (g, o) = (run(gnu, *stdin), run(ours, *stdin));
        let same = g.stdout == o.stdout && g.status.code() == o.status.code();
        let shown = format!(
            "{args:?}\n  GNU parallel: status {:?}, stdout {:?}\n  amorsize run: status {:?}, stdout {:?}, stderr {:?}",
            g.status.code(),
            String::from_utf8_lossy(&g.stdout),
            o.status.code(),
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr),
        );
        match expect {
            Same if !same => Some(format!("differs: {shown}")),
            Differs(why) if same => {
                Some(format!("listed as differing ({why}) but agrees: {shown}"))
            }
            _ => None,
        }
    };
    let failures: Vec<String> = std::thread::scope(|scope| {
        let handles: Vec<_> = CASES
            .chunks(CASES.len().div_ceil(6))
            .map(|chunk| scope.spawn(move || chunk.iter().filter_map(check).collect::<Vec<_>>()))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a case panicked"))
            .collect()
    });
    assert!(
        failures.is_empty(),
        "{} of {} cases:\n{}",
        failures.len(),
        CASES.len(),
        failures.join("\n")
    );
}

#[test]
fn the_suite_is_large_enough() {
    // At least 25 invocations that must agree, so that the compatibility claim means something.
    assert!(CASES.iter().filter(|c| c.2 == Same).count() >= 25);
}
