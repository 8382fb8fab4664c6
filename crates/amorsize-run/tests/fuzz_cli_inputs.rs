//! Generated-input fuzzing of what `amorsize run` parses from its user: the command template
//! (replacement strings, shell scripts), `--halt` values and job logs read back for `--resume`. Every
//! call must return (no panic, no hang) and every accepted input must behave.
//!
//! The long run:
//!
//! ```sh
//! AMORSIZE_FUZZ_ITERS=1000000 cargo test --release -p amorsize-run --test fuzz_cli_inputs -- --nocapture
//! ```

// The command runner is Unix-only.
#![cfg(unix)]
#![allow(clippy::print_stdout)] // The figures are printed for the record (`--nocapture`).

use amorsize_run::{joblog, Halt, Job, Placeholder, Record, Template};
use std::ffi::OsString;
use std::io::Cursor;

mod common;
use common::fuzz::{fuzz, Corpus};

const CLI: Corpus = Corpus {
    seeds: &[
        // command words (split at '\u{1}' into words, inputs after '\u{2}')
        "gzip\u{1}-k\u{1}{}\u{2}a.txt\nb c.txt",
        "wc\u{1}-l\u{1}{+}\u{2}x\ny\nz",
        "echo {} > /dev/null\u{2}it's\n$HOME",
        "convert\u{1}{}\u{1}{}.png\u{2}img 1",
        "sh\u{1}-c\u{1}echo \"$1\"\u{1}_\u{1}{}\u{2}\"quoted\"",
        // --halt
        "now,fail=1",
        "soon,fail=10%",
        "now,success=3",
        "never",
        "2",
        // job logs
        "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
         1\t:\t1700000000.000\t0.010\t0\t0\t0\t0\techo a\n\
         2\t:\t1700000000.010\t0.020\t0\t0\t1\t0\techo b\n",
        "3\t:\t1700000000.000\t0.010\t0\t0\t0\t9\tsleep 9\n4\t:\t1",
    ],
    dictionary: &[
        "{}",
        "{+}",
        "{.}",
        "{/}",
        "{//}",
        "{/.}",
        "{#}",
        "{%}",
        "{1}",
        "{2/.}",
        "\u{3}",
        "{",
        "}",
        "{{}}",
        "\u{1}",
        "\u{2}",
        "\t",
        "\n",
        " ",
        "'",
        "\"",
        "\\",
        "$",
        "`",
        ";",
        "|",
        "&",
        ">",
        "*",
        "now",
        "soon",
        "fail=",
        "success=",
        "%",
        "0",
        "1",
        "100",
        "101",
        "-1",
        "1e309",
        "NaN",
        "18446744073709551616",
        "Seq\t",
        ":",
        "é",
        "\0",
    ],
};

#[test]
fn command_templates() {
    fuzz("command_template", &CLI, |text| {
        let (words, inputs) = text.split_once('\u{2}').unwrap_or((text, "in"));
        let words: Vec<&str> = words.split('\u{1}').collect();
        let Ok(template) = Template::parse(words.iter().copied()) else {
            return false;
        };
        let inputs: Vec<Record> = inputs
            .split('\n')
            .map(|i| i.split('\u{3}').map(OsString::from).collect())
            .collect();
        let job = Job {
            inputs: &inputs,
            seq: 1,
            slot: 1,
        };
        let argv = template.argv(&job);
        assert!(!argv.is_empty(), "a job always has a program");
        if !words[0].contains('{') {
            // (`{}` in the program word is substituted too, as GNU parallel does.)
            assert_eq!(argv[0], template.program());
        }
        let _ = template.display(&job);
        // Unless a replacement string takes part of it (`{.}`, `{/}`, `{2}`) or none takes it
        // (`{#}` alone), the input reaches the command whole.
        let whole = words.iter().any(|w| w.contains("{}") || w.contains("{+}"))
            || !words.iter().any(|w| w.contains('{'));
        for input in inputs.iter().filter(|_| whole) {
            // The argument area an input takes is at least the input itself.
            let len: usize = input.iter().map(|v| v.len()).sum();
            assert!(template.input_cost(input) >= len);
        }
        if !template.uses_shell() && template.placeholder() != Placeholder::Many {
            // One input per job: every input reaches the command as (part of) an argument.
            let one = Job {
                inputs: &inputs[..1],
                ..job
            };
            let argv = template.argv(&one);
            let joined: Vec<u8> = argv
                .iter()
                .flat_map(|a| a.as_encoded_bytes().to_vec())
                .collect();
            let needle = inputs[0][0].as_encoded_bytes();
            assert!(
                !whole || needle.is_empty() || joined.windows(needle.len()).any(|w| w == needle),
                "the input {:?} is in {argv:?}",
                inputs[0]
            );
        }
        true
    });
}

#[test]
fn halt_values() {
    fuzz("halt", &CLI, |text| text.parse::<Halt>().is_ok());
}

#[test]
fn job_logs() {
    fuzz("joblog", &CLI, |text| {
        match joblog::read(Cursor::new(text.as_bytes())) {
            Ok(jobs) => {
                // Every job number read comes from a line of the log.
                assert!(jobs.len() <= text.lines().count());
                true
            }
            Err(_) => false,
        }
    });
}
