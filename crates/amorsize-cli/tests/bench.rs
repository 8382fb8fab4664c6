//! `amorsize bench` end to end: a smoke-scale run completes and its JSON carries every figure
//! the README and the targets are built from. Timings are not checked.

use assert_cmd::Command;
use serde_json::Value;

fn bench(args: &[&str]) -> Value {
    let out = Command::cargo_bin("amorsize")
        .unwrap()
        .args(["bench", "--smoke", "--json"])
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "bench failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("bench --json prints one JSON document")
}

#[test]
fn smoke_run_emits_every_field_for_every_workload() {
    let dir = tempfile::tempdir().unwrap();
    let charts = dir.path().join("charts");
    let v = bench(&["--charts", charts.to_str().unwrap()]);
    assert_eq!(v["scale"], "smoke");
    assert!(v["logical_cpus"].as_u64().unwrap() >= 1);
    let workloads = v["workloads"].as_array().unwrap();
    let names: Vec<&str> = workloads
        .iter()
        .map(|w| w["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "tiny",
            "fast",
            "medium",
            "slow",
            "lognormal",
            "bimodal",
            "sorted",
            "memory",
            "waiting",
            "iterator",
            "records",
            "locked",
            "heavy",
            "small",
        ]
    );
    for w in workloads {
        let name = w["name"].as_str().unwrap();
        assert!(w["items"].as_u64().unwrap() > 0, "{name}");
        for s in ["serial", "rayon", "naive", "oracle", "amorsize"] {
            let t = w["time_s"][s].as_f64().unwrap_or(-1.0);
            assert!(t > 0.0, "{name} {s}: {t}");
            assert_eq!(w["times_s"][s].as_array().unwrap().len(), 1, "{name} {s}");
            assert!(w["speedup"][s].as_f64().unwrap() > 0.0, "{name} {s}");
        }
        assert!(w["ratio_to_best_other"].as_f64().unwrap() > 0.0, "{name}");
        assert!(w["measured_speedup"].as_f64().unwrap() > 0.0, "{name}");
        assert_eq!(w["amorsize_cold"]["times_s"].as_array().unwrap().len(), 1);
        assert_eq!(
            w["amorsize_cold"]["serial_times_s"]
                .as_array()
                .unwrap()
                .len(),
            1
        );
        assert!(
            w["amorsize_cold"]["time_s"].as_f64().unwrap() > 0.0,
            "{name}"
        );
        assert!(w["oracle"]["workers"].as_u64().unwrap() >= 1, "{name}");
        assert!(w["oracle"]["chunk"].as_u64().unwrap() >= 1, "{name}");
        assert!(w.get("predicted_speedup").is_some(), "{name}");
        assert!(w.get("prediction_error").is_some(), "{name}");
        assert!(w.get("plan").is_some(), "{name}");
        let curve = w["curve"].as_array().unwrap();
        if name == "medium" {
            let workers: Vec<u64> = curve
                .iter()
                .map(|p| p["workers"].as_u64().unwrap())
                .collect();
            assert_eq!(workers.first(), Some(&1));
            assert!(curve
                .iter()
                .all(|p| p["measured_speedup"].as_f64().unwrap() > 0.0));
        } else {
            assert!(curve.is_empty(), "{name}");
        }
    }
    let targets = v["targets"].as_array().unwrap();
    // Five for the warm calls, two for the first calls in fresh processes.
    assert_eq!(targets.len(), 7);
    assert!(targets.iter().all(|t| t["met"].is_boolean()));
    let charts: Vec<&str> = v["charts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(charts.len(), 2);
    for chart in charts {
        let svg = std::fs::read_to_string(chart).unwrap();
        assert!(svg.starts_with("<svg"), "{chart}");
    }
}

#[test]
fn workload_filter_and_rounds_are_honoured() {
    let v = bench(&[
        "--workloads",
        "tiny,iterator",
        "--rounds",
        "2",
        "--cold-runs",
        "0",
    ]);
    let workloads = v["workloads"].as_array().unwrap();
    assert_eq!(workloads.len(), 2);
    assert_eq!(workloads[1]["name"], "iterator");
    assert_eq!(
        workloads[0]["times_s"]["serial"].as_array().unwrap().len(),
        2
    );
    assert!(workloads[0]["amorsize_cold"]["time_s"].is_null());
}

#[test]
fn unknown_workload_is_a_clear_error() {
    Command::cargo_bin("amorsize")
        .unwrap()
        .args(["bench", "--smoke", "--workloads", "nope"])
        .assert()
        .failure()
        .stderr(predicates::str::contains("nope"));
}

#[test]
fn markdown_output_has_the_table_and_the_targets() {
    let out = Command::cargo_bin("amorsize")
        .unwrap()
        .args([
            "bench",
            "--smoke",
            "--markdown",
            "--workloads",
            "tiny",
            "--cold-runs",
            "0",
        ])
        .output()
        .unwrap();
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.starts_with("Machine: "), "{text}");
    assert!(text.contains("\n| tiny | 1000 |"), "{text}");
    assert_eq!(
        text.matches("| met |").count() + text.matches("| **missed** |").count(),
        5
    );
}

#[test]
fn pipelines_mode_times_every_workload_and_the_big_sum() {
    let cache = tempfile::tempdir().unwrap();
    let out = Command::cargo_bin("amorsize")
        .unwrap()
        .args(["bench", "--smoke", "--pipelines"])
        .env("AMORSIZE_CACHE", cache.path().join("a.db"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    for name in [
        "tiny",
        "fast",
        "medium",
        "slow",
        "lognormal",
        "bimodal",
        "sorted",
        "memory",
        "waiting",
        "iterator",
    ] {
        assert!(
            text.lines().any(|l| l.starts_with(&format!("{name} "))),
            "{name}: {text}"
        );
    }
    assert!(text.contains("sum of 10000 tiny items"), "{text}");
    assert!(text.contains(".amorsize()"), "{text}");
}
