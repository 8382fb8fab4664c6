//! `amorsize cache show | clear | path`: look at, empty, or locate the cache file.

use amorsize::cache::{self, Cache, Fingerprint, Location, Summary};
use amorsize::fmt::seconds;
use anyhow::Context;
use std::io::Write;
use std::path::Path;
use std::process::ExitCode;

/// Options of `amorsize cache`.
#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    action: Action,
}

#[derive(Debug, clap::Subcommand)]
enum Action {
    /// List the stored calibrations and workloads.
    Show {
        /// Print JSON instead of tables.
        #[arg(long)]
        json: bool,
    },
    /// Delete the cache file (calibrations and past runs are measured again).
    Clear,
    /// Print where the cache file is (set AMORSIZE_CACHE to move it, or to `off`).
    Path,
}

/// Runs `amorsize cache`.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let location = cache::location();
    let mut out = std::io::stdout().lock();
    let path = match (&args.action, location.path()) {
        (_, Some(path)) => path.to_owned(),
        (Action::Path, None) | (Action::Show { json: false }, None) | (Action::Clear, None) => {
            writeln!(out, "{}", describe_missing(&location))?;
            return Ok(ExitCode::SUCCESS);
        }
        (Action::Show { json: true }, None) => {
            writeln!(
                out,
                "{}",
                serde_json::json!({ "path": null, "summary": null })
            )?;
            return Ok(ExitCode::SUCCESS);
        }
    };
    match args.action {
        Action::Path => writeln!(out, "{}", path.display())?,
        Action::Clear => {
            let removed = cache::remove(&path).context("cannot clear the cache")?;
            if removed {
                writeln!(out, "removed {}", path.display())?;
            } else {
                writeln!(out, "no cache at {}", path.display())?;
            }
        }
        Action::Show { json } => {
            let summary = if path.exists() {
                let opened = Cache::open_at(&path, Fingerprint::current());
                let summary = match &opened {
                    Ok(cache) => {
                        let summary = cache.summary();
                        for w in cache.take_warnings() {
                            eprintln!("warning: {w}");
                        }
                        summary
                    }
                    Err(w) => {
                        eprintln!("warning: {w}");
                        None
                    }
                };
                summary
            } else {
                None
            };
            if json {
                serde_json::to_writer_pretty(
                    &mut out,
                    &serde_json::json!({ "path": path, "summary": summary }),
                )?;
                writeln!(out)?;
            } else {
                print_summary(&mut out, &path, summary.as_ref())?;
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn describe_missing(location: &Location) -> &'static str {
    match location {
        Location::Off => "off (AMORSIZE_CACHE=off)",
        _ => "none (neither AMORSIZE_CACHE, XDG_CACHE_HOME nor HOME is set)",
    }
}

fn print_summary(
    out: &mut impl Write,
    path: &Path,
    summary: Option<&Summary>,
) -> std::io::Result<()> {
    writeln!(out, "cache  {}", path.display())?;
    let Some(summary) = summary else {
        return writeln!(out, "(empty: no file yet)");
    };
    writeln!(out, "\ncalibrations ({})", summary.calibrations.len())?;
    for c in &summary.calibrations {
        let machine = c.machine.as_ref().map_or_else(
            || "unknown machine".to_owned(),
            |m| {
                format!(
                    "{} ({} CPUs, kernel {}, amorsize {})",
                    m.cpu_model, m.logical_cpus, m.kernel, m.version
                )
            },
        );
        writeln!(
            out,
            "  {:<9} worker start {:>9}  chunk dispatch {:>9}  {}  {}{}",
            format!("{:?}", c.costs.backend).to_lowercase(),
            seconds(c.costs.worker_start),
            seconds(c.costs.chunk_dispatch),
            age(c.age_secs),
            machine,
            if c.this_machine {
                ""
            } else {
                "  [other machine]"
            },
        )?;
    }
    writeln!(out, "\nworkloads ({})", summary.workloads.len())?;
    for w in &summary.workloads {
        let last = match (w.last_workers, w.last_chunk, w.last_wall) {
            (Some(n), Some(c), Some(t)) => {
                format!("last {n} workers × chunk {c} in {}", seconds(t))
            }
            _ => "no run".to_owned(),
        };
        let error = w
            .last_error_ratio
            .map_or_else(String::new, |r| format!(", measured/predicted {r:.2}"));
        writeln!(
            out,
            "  {}\n      {} runs, item {}, contention α {:.2} (learned beside {:.1} other \
             runnable threads), {last}{error}, {}{}",
            w.key,
            w.runs,
            w.item_time.map_or_else(|| "?".to_owned(), seconds),
            w.contention,
            w.contention_load,
            age(w.age_secs),
            if w.this_machine {
                ""
            } else {
                "  [other machine]"
            },
        )?;
    }
    Ok(())
}

fn age(secs: u64) -> String {
    match secs {
        0..=119 => format!("{secs} s ago"),
        120..=7199 => format!("{} min ago", secs / 60),
        7200..=172_799 => format!("{} h ago", secs / 3600),
        _ => format!("{} days ago", secs / 86_400),
    }
}
