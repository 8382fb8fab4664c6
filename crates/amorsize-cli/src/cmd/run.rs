//! `amorsize run`: a shell command over many inputs, with a measured number of parallel jobs.
//!
//! Parsing goes in two stages: [`Args`] holds the raw flags as clap reads them; [`Options`] is
//! what they mean once checked. Everything substantive lives in the `amorsize_run` crate.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, IsTerminal, Read, Write};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStringExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::{Duration, Instant};

use amorsize_run::{
    self as command, joblog, CommandPlan, Halt, JobRecord, Observer, RunOptions, Stopped, Summary,
    Template,
};
use anyhow::{bail, Context};

/// Options of `amorsize run`.
#[derive(Debug, clap::Args)]
#[command(after_help = "\
Inputs come from standard input, one per line (-0: NUL-separated), or after `:::`.
`{}` is replaced by one input, `{+}` by several; without either, the input is appended.
Several words run directly (no shell); one word with shell syntax runs with /bin/sh -c,
each input single-quoted.

Examples:
  ls *.log | amorsize run -- gzip -9 {}
  amorsize run -- 'curl -s {} | wc -c' ::: https://a.example https://b.example
  find . -name '*.txt' -print0 | amorsize run -0 -- wc -l {+}")]
pub struct Args {
    /// Jobs at once: `auto` (measured) or a number.
    #[arg(
        short = 'j',
        long = "jobs",
        default_value = "auto",
        value_name = "auto|N"
    )]
    jobs: String,
    /// With `{+}`: inputs per job, `auto` (measured) or a number.
    #[arg(long, value_name = "auto|N")]
    batch: Option<String>,
    /// Inputs on standard input are separated by NUL bytes, not newlines.
    #[arg(short = '0', long = "null")]
    null: bool,
    /// Print each job's output in input order (otherwise as jobs finish).
    #[arg(short = 'k', long = "keep-order")]
    keep_order: bool,
    /// Write a job log (GNU parallel's tab-separated format) to FILE.
    #[arg(long, value_name = "FILE")]
    joblog: Option<PathBuf>,
    /// Skip the jobs the job log lists (needs --joblog).
    #[arg(long)]
    resume: bool,
    /// Skip the jobs the job log lists as succeeded; run failed ones again (needs --joblog).
    #[arg(long)]
    resume_failed: bool,
    /// Show a progress bar with ETA on standard error (when it is a terminal).
    #[arg(long)]
    progress: bool,
    /// Run the sample only, print the plan and its reasons, and stop (the sampled jobs' output
    /// is not shown and they are not logged, so a later run does them again).
    #[arg(long)]
    plan: bool,
    /// With --plan: print the plan as JSON.
    #[arg(long)]
    json: bool,
    /// Print the plan and a summary on standard error.
    #[arg(short = 'v', long)]
    verbose: bool,
    /// Stop early: `now,fail=N`, `soon,fail=N`, `now,success=N`, `soon,success=N` (N or N%).
    #[arg(long, value_name = "WHEN")]
    halt: Option<String>,
    /// End a job (its whole process group) after DUR: `30`, `1.5s`, `500ms`, `2m`, `1h`.
    #[arg(long, value_name = "DUR")]
    timeout: Option<String>,
    /// The command, then optionally `:::` and the inputs.
    #[arg(
        required = true,
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "CMD [ARGS]... [::: INPUTS...]"
    )]
    command: Vec<OsString>,
}

/// Where the inputs come from.
#[derive(Debug)]
enum Source {
    Stdin { null: bool },
    Listed(Vec<OsString>),
}

/// How the job log is used.
#[derive(Debug)]
enum Resume {
    No,
    All,
    Failed,
}

/// The checked options.
#[derive(Debug)]
struct Options {
    template: Template,
    source: Source,
    run: RunOptions,
    joblog: Option<PathBuf>,
    resume: Resume,
    progress: bool,
    plan: bool,
    json: bool,
    verbose: bool,
}

fn count(flag: &str, value: &str) -> anyhow::Result<Option<NonZeroUsize>> {
    if value == "auto" {
        return Ok(None);
    }
    match value.parse::<usize>().ok().and_then(NonZeroUsize::new) {
        Some(n) => Ok(Some(n)),
        None => bail!("{flag} {value:?}: expected `auto` or a whole number ≥ 1"),
    }
}

/// Parses `30`, `1.5s`, `500ms`, `2m`, `1h`.
fn duration(value: &str) -> anyhow::Result<Duration> {
    let v = value.trim();
    let (num, unit) = match v.find(|c: char| c.is_ascii_alphabetic()) {
        Some(i) => v.split_at(i),
        None => (v, "s"),
    };
    let scale = match unit {
        "ms" => 1e-3,
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        _ => bail!("--timeout {value:?}: unknown unit {unit:?} (use ms, s, m or h)"),
    };
    let n: f64 = num
        .parse()
        .ok()
        .filter(|n: &f64| n.is_finite() && *n > 0.0)
        .with_context(|| format!("--timeout {value:?}: expected a positive number of seconds"))?;
    Ok(Duration::from_secs_f64(n * scale))
}

impl Options {
    fn from_args(args: Args) -> anyhow::Result<Options> {
        let sep = args.command.iter().position(|w| w == ":::");
        let (words, source) = match sep {
            Some(i) => {
                let listed = args.command[i + 1..].to_vec();
                if listed.iter().any(|w| w == ":::") {
                    bail!("only one `:::` input list is supported");
                }
                (args.command[..i].to_vec(), Source::Listed(listed))
            }
            None => (args.command, Source::Stdin { null: args.null }),
        };
        let template = Template::parse(words)?;
        let mut run = RunOptions::new()
            .keep_order(args.keep_order)
            .plan_only(args.plan);
        if let Some(j) = count("-j", &args.jobs)? {
            run = run.jobs(j);
        }
        let batch = match &args.batch {
            Some(b) if !template.batches() => {
                bail!("--batch {b:?} needs `{{+}}` in the command (the place for several inputs)")
            }
            Some(b) => count("--batch", b)?,
            None => None,
        };
        if let Some(b) = batch {
            run = run.batch(b);
        }
        if let Some(h) = &args.halt {
            run = run.halt(h.parse::<Halt>()?);
        }
        if let Some(t) = &args.timeout {
            run = run.timeout(duration(t)?);
        }
        let resume = match (args.resume, args.resume_failed) {
            (false, false) => Resume::No,
            (true, false) => Resume::All,
            (_, true) => Resume::Failed,
        };
        if !matches!(resume, Resume::No) {
            if args.joblog.is_none() {
                bail!("--resume needs --joblog FILE (the log of the earlier run)");
            }
            if template.batches() && batch.is_none() {
                bail!(
                    "--resume with `{{+}}` needs a fixed --batch N, so that job numbers name the \
                     same inputs in every run"
                );
            }
        }
        if args.json && !args.plan {
            bail!("--json goes with --plan");
        }
        Ok(Options {
            template,
            source,
            run,
            joblog: args.joblog,
            resume,
            progress: args.progress && io::stderr().is_terminal(),
            plan: args.plan,
            json: args.json,
            verbose: args.verbose,
        })
    }
}

/// Splits standard input into inputs: lines, or NUL-separated records; a final separator does
/// not start an empty input.
fn read_inputs(mut input: impl Read, null: bool) -> io::Result<Vec<OsString>> {
    let mut all = Vec::new();
    input.read_to_end(&mut all)?;
    let sep = if null { b'\0' } else { b'\n' };
    if all.last() == Some(&sep) {
        all.pop();
    }
    if all.is_empty() {
        return Ok(Vec::new());
    }
    Ok(all
        .split(|&b| b == sep)
        .map(|s| OsString::from_vec(s.to_vec()))
        .collect())
}

/// Prints jobs, writes the log, draws the progress bar.
struct Printer {
    log: Option<File>,
    plan_only: bool,
    json: bool,
    verbose: bool,
    progress: Option<Bar>,
}

struct Bar {
    began: Instant,
    drawn: Option<Instant>,
}

impl Bar {
    fn clear(&mut self) {
        if self.drawn.take().is_some() {
            eprint!("\r\x1b[K");
        }
    }

    fn draw(&mut self, done: usize, total: usize) {
        let now = Instant::now();
        if self
            .drawn
            .is_some_and(|t| now.duration_since(t) < Duration::from_millis(100))
            && done < total
        {
            return;
        }
        let frac = if total == 0 {
            1.0
        } else {
            done as f64 / total as f64
        };
        let width = 30;
        let filled = (frac * width as f64) as usize;
        let elapsed = self.began.elapsed().as_secs_f64();
        let eta = if done > 0 {
            format!("{:.0}s", elapsed * (total - done) as f64 / done as f64)
        } else {
            "?".into()
        };
        eprint!(
            "\r\x1b[K[{}{}] {done}/{total} {:.0}% ETA {eta}",
            "#".repeat(filled),
            ".".repeat(width - filled),
            frac * 100.0
        );
        self.drawn = Some(now);
    }
}

impl Observer for Printer {
    fn planned(&mut self, plan: &CommandPlan) -> io::Result<()> {
        if self.plan_only {
            let mut out = io::stdout().lock();
            if self.json {
                serde_json::to_writer_pretty(&mut out, plan)?;
                writeln!(out)?;
            } else {
                write!(out, "{plan}")?;
            }
            out.flush()
        } else if self.verbose {
            if let Some(bar) = &mut self.progress {
                bar.clear();
            }
            eprint!("{plan}");
            Ok(())
        } else {
            Ok(())
        }
    }

    fn finished(&mut self, job: &JobRecord) -> io::Result<()> {
        if self.plan_only {
            return Ok(());
        }
        if let Some(bar) = &mut self.progress {
            bar.clear();
        }
        io::stdout().write_all(&job.stdout)?;
        io::stdout().flush()?;
        io::stderr().write_all(&job.stderr)?;
        if job.stopped == Some(Stopped::TimedOut) {
            eprintln!(
                "amorsize: job {} timed out and was stopped: {}",
                job.seq, job.command
            );
        }
        // Jobs cut short by an interruption are not logged: `--resume` runs them again.
        if job.stopped != Some(Stopped::Cancelled) {
            if let Some(log) = &mut self.log {
                joblog::write(log, job)?;
            }
        }
        Ok(())
    }

    fn progress(&mut self, done: usize, total: usize) {
        if let Some(bar) = &mut self.progress {
            bar.draw(done, total);
        }
    }
}

/// Opens the job log; with `--resume`, reads which jobs to skip first.
fn open_log(path: &PathBuf, resume: &Resume) -> anyhow::Result<(File, BTreeSet<usize>)> {
    let mut skip = BTreeSet::new();
    let existing = !matches!(resume, Resume::No) && path.exists();
    if existing {
        let file = File::open(path)
            .with_context(|| format!("cannot read the job log {}", path.display()))?;
        let logged = joblog::read(BufReader::new(file))
            .with_context(|| format!("in the job log {}", path.display()))?;
        skip = logged
            .into_iter()
            .filter(|(_, l)| matches!(resume, Resume::All) || l.succeeded())
            .map(|(seq, _)| seq)
            .collect();
    }
    let mut file = if existing {
        OpenOptions::new().append(true).open(path)
    } else {
        File::create(path)
    }
    .with_context(|| format!("cannot write the job log {}", path.display()))?;
    if file.metadata()?.len() == 0 {
        joblog::write_header(&mut file)?;
    }
    Ok((file, skip))
}

/// Runs the command over the inputs.
pub fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut options = Options::from_args(args)?;
    let inputs = match std::mem::replace(&mut options.source, Source::Listed(Vec::new())) {
        Source::Listed(v) => v,
        Source::Stdin { null } => {
            read_inputs(io::stdin().lock(), null).context("cannot read inputs from stdin")?
        }
    };
    let mut log = None;
    if let Some(path) = &options.joblog {
        if !options.plan {
            let (file, skip) = open_log(path, &options.resume)?;
            log = Some(file);
            options.run = options.run.skip(skip);
        }
    }
    if inputs.is_empty() && options.plan {
        writeln!(
            io::stdout(),
            "no inputs: nothing to sample, nothing to plan"
        )?;
        return Ok(ExitCode::SUCCESS);
    }

    // Registered only now: an interruption while inputs are read just ends the program.
    let cancel = Arc::new(AtomicUsize::new(0));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(signal, Arc::clone(&cancel), signal as usize)
            .context("cannot install the signal handlers")?;
    }

    let mut printer = Printer {
        log,
        plan_only: options.plan,
        json: options.json,
        verbose: options.verbose,
        progress: options.progress.then(|| Bar {
            began: Instant::now(),
            drawn: None,
        }),
    };
    let result = command::run(
        &options.template,
        &inputs,
        &options.run,
        &cancel,
        &mut printer,
    );
    if let Some(bar) = &mut printer.progress {
        bar.clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(err) => return Ok(report_error(&err)),
    };
    if options.verbose || summary.interrupted.is_some() || summary.halted {
        print_summary(&summary);
    }
    if options.plan && summary.plan.is_none() && !options.json {
        writeln!(
            io::stdout(),
            "every input was done before: nothing to sample, nothing to plan"
        )?;
    }
    Ok(ExitCode::from(summary.exit_code()))
}

/// Prints a library error; the status says what kind: 127 for a missing command (as shells),
/// 126 for one that cannot be executed, 255 for anything else (as GNU parallel).
fn report_error(err: &amorsize_run::Error) -> ExitCode {
    if let Some(io) = std::error::Error::source(err).and_then(|s| s.downcast_ref::<io::Error>()) {
        if io.kind() == io::ErrorKind::BrokenPipe {
            return ExitCode::SUCCESS;
        }
    }
    eprintln!("error: {err}");
    let io_kind = std::error::Error::source(err)
        .and_then(|s| s.downcast_ref::<io::Error>())
        .map(io::Error::kind);
    ExitCode::from(match io_kind {
        Some(io::ErrorKind::NotFound) => 127,
        Some(io::ErrorKind::PermissionDenied) => 126,
        _ => 255,
    })
}

fn print_summary(s: &Summary) {
    let mut line = format!(
        "amorsize: {} jobs succeeded, {} failed",
        s.succeeded, s.failed
    );
    if s.skipped > 0 {
        line += &format!(", {} skipped (done before)", s.skipped);
    }
    if s.cancelled > 0 {
        line += &format!(", {} stopped", s.cancelled);
    }
    if s.not_run > 0 {
        line += &format!(", {} inputs not run", s.not_run);
    }
    if let Some(sig) = s.interrupted {
        line += &format!("; interrupted by signal {sig}");
    }
    if s.halted {
        line += "; halted (--halt)";
    }
    line += &format!(" in {:.2} s", s.elapsed.as_secs_f64());
    eprintln!("{line}");
    for a in &s.adaptations {
        let why = if a.reverted {
            "back: more jobs did not finish faster".to_owned()
        } else {
            format!(
                "CPU {:.1}% of wall, {:.1} ms a job",
                a.cpu_ratio * 100.0,
                a.job_time * 1e3
            )
        };
        eprintln!(
            "amorsize: after {} jobs, {} → {} jobs at once ({why}; {:.0} jobs/s)",
            a.after_jobs, a.from, a.to, a.throughput
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_parse() {
        assert_eq!(duration("30").unwrap(), Duration::from_secs(30));
        assert_eq!(duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(duration("2m").unwrap(), Duration::from_secs(120));
        assert!(duration("0").is_err());
        assert!(duration("5 parsecs").is_err());
        assert!(duration("x").is_err());
    }

    #[test]
    fn inputs_split_on_the_separator() {
        let v = read_inputs(&b"a b\n\nc\n"[..], false).unwrap();
        assert_eq!(v, ["a b", "", "c"]);
        let v = read_inputs(&b"a\nb\0c\0"[..], true).unwrap();
        assert_eq!(v, ["a\nb", "c"]);
        assert!(read_inputs(&b""[..], false).unwrap().is_empty());
    }
}
