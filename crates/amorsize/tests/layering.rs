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
    &["error", "alloc", "stats", "fmt"],
    &["probe"],
    &["sample"],
    &["model"],
    &["cache"],
    &["plan"],
    &["exec"],
    &["report"],
    &["adaptor", "cluster"],
];

/// Imports that go against the layers today: (from, to).
const KNOWN: &[(&str, &str)] = &[
    // The overhead probes measure on the executor's pools, read the cache and warn in the plan.
    ("probe", "cache"),
    ("probe", "exec"),
    ("probe", "plan"),
    ("probe", "sample"),
    ("probe", "model"),
    // The sample reads the probe's clock facts.
    ("sample", "model"),
    // The cache stores plans and keeps the reuse and recall policy.
    ("cache", "plan"),
    // `Options` carries the execution settings (progress, chunk adaptation, in-flight bound).
    ("plan", "exec"),
    // The executor's chunk adjustments are a report type.
    ("exec", "report"),
];

fn layer(module: &str) -> Option<usize> {
    LAYERS.iter().position(|l| l.contains(&module))
}

/// The top-level module a crate-root name belongs to (`crate::Plan` is `plan`'s).
fn owner(name: &str) -> Option<&'static str> {
    Some(match name {
        "Plan" | "Options" | "Mode" => "plan",
        "Error" | "ErrorKind" | "Result" => "error",
        "Run" | "Stream" | "Progress" | "execute" | "execute_iter" | "try_execute" | "stream"
        | "tune" | "Tuning" => "exec",
        _ => return None,
    })
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
            let text = std::fs::read_to_string(&path).expect("read a source file");
            // Unit tests may reach anywhere.
            let text = text.split("#[cfg(test)]\nmod tests").next().unwrap_or("");
            for line in text.lines() {
                let code = line.split("//").next().unwrap_or("");
                for (at, _) in code.match_indices("crate::") {
                    let name: String = code[at + 7..]
                        .chars()
                        .take_while(|c| c.is_alphanumeric() || *c == '_')
                        .collect();
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
