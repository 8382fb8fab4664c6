//! The library's modules import each other in one direction, along the pipeline
//! (`probe → sample → model → plan → exec → report`, with `cache` storing beside them and the
//! adaptors on top): this test reads the sources and fails on an import that goes against it.
//!
//! Edges that go the wrong way today are listed in [`KNOWN`], each one a debt to pay back (the
//! layering is drawn, with them, in `docs/ARCHITECTURE.md`). A new wrong-way import fails; so
//! does a listed one that is gone, so that the list only shrinks.

use std::collections::BTreeSet;
use std::path::Path;

/// The layers, lowest first. A module may use modules of its own layer or below.
const LAYERS: &[&[&str]] = &[
    &["error", "alloc", "units", "stats", "fmt"],
    &["probe"],
    &["sample"],
    &["model"],
    &["cache"],
    &["runtime"],
    &["calibrate"],
    &["plan"],
    &["report"],
    &["exec"],
    &["adaptor", "cluster"],
];

/// Imports that go against the layers today: (from, to). Each is a debt to pay back.
const KNOWN: &[(&str, &str)] = &[];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a crate-root name belongs to (`crate::Plan` is `plan`'s).
fn owner(name: &str) -> Option<&'static str> {
    Some(match name {
        "Plan" | "Options" | "Mode" | "Progress" => "plan",
        "Error" | "ErrorKind" | "Result" => "error",
        "Run" | "Stream" | "execute" | "execute_iter" | "try_execute" | "stream" | "tune"
        | "Tuning" => "exec",
        _ => return None,
    })
}

/// The first names after each `crate::` in a line of code, those of a group
/// (`crate::{a, b::c}`) included.
fn imported(code: &str) -> Vec<String> {
    let word = |s: &str| -> String {
        s.trim_start()
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_')
            .collect()
    };
    let mut names = Vec::new();
    for (at, _) in code.match_indices("crate::") {
        let rest = &code[at + 7..];
        match rest.strip_prefix('{') {
            Some(group) => {
                let group = group.split('}').next().unwrap_or("");
                names.extend(group.split(',').map(word).filter(|n| !n.is_empty()));
            }
            None => names.push(word(rest)),
        }
    }
    names
}

#[test]
fn groups_and_paths_are_both_read() {
    assert_eq!(
        imported("use crate::{Options, plan::Caps}; let x = crate::exec::pool::nested();"),
        ["Options", "plan", "exec"]
    );
}

fn edges() -> BTreeSet<(String, String)> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut found = BTreeSet::new();
    let mut stack = vec![src.clone()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("read the sources") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
                continue;
            }
            if path.extension().map_or(true, |e| e != "rs") {
                continue;
            }
            let rel = path.strip_prefix(&src).expect("under src");
            let first = rel.iter().next().and_then(|c| c.to_str()).unwrap_or("");
            let from = first.trim_end_matches(".rs");
            if layer(from).is_none() {
                continue;
            }
            // Unit tests may reach anywhere.
            if path.file_name().is_some_and(|n| n == "tests.rs") {
                continue;
            }
            let text = std::fs::read_to_string(&path).expect("read a source file");
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for name in imported(code) {
                    let to = if layer(&name).is_some() {
                        name
                    } else if let Some(owner) = owner(&name) {
                        owner.to_string()
                    } else {
                        continue;
                    };
                    if to != from {
                        found.insert((from.to_string(), to));
                    }
                }
            }
        }
    }
    found
}

#[test]
fn imports_run_one_way_along_the_pipeline() {
    let known: BTreeSet<(String, String)> = KNOWN
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect();
    let wrong: BTreeSet<(String, String)> = edges()
        .into_iter()
        .filter(|(from, to)| layer(to) > layer(from))
        .collect();
    let new: Vec<_> = wrong.difference(&known).collect();
    assert!(
        new.is_empty(),
        "imports against the layers (from → to): {new:?}; see docs/ARCHITECTURE.md"
    );
    let paid: Vec<_> = known.difference(&wrong).collect();
    assert!(
        paid.is_empty(),
        "these listed imports are gone: remove them from KNOWN: {paid:?}"
    );
}
