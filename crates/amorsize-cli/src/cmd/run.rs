//! `amorsize run`: a shell command over many inputs, with a measured number of parallel jobs.
//!
//! Parsing goes in two stages: [`Args`] holds the raw flags as clap reads them; [`Options`] is
//! what they mean once checked. Everything substantive lives in the `amorsize_run` crate.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::fs::{File, OpenOptions};
use std::io::{self, BufReader, Write};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;
use std::time::Duration;

use amorsize_run::hosts::{Hosts, SshLogin};
use amorsize_run::source::{self, Reading, Source};
use amorsize_run::{
    self as command, joblog, Batching, CommandPlan, Halt, Inputs, JobRecord, Jobs, Observer,
    OutputLine, Record, RunOptions, Stopped, Summary, Template,
};
use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// The options of `amorsize run`, as `amorsize run --help` prints them.
const HELP: &str = "\
Run a command over many inputs, with a measured number of parallel jobs (GNU parallel's
options; -j is measured unless given).

Usage: amorsize run [OPTIONS] COMMAND [ARGS]... [::: VALUES]... [:::: FILES]...

Inputs come from standard input, one per line, or after `:::` (values) and `::::` (files,
one per line; `-` is standard input). Several sources give every combination of their
values. Replacement strings: {} the input, {.} without extension, {/} basename,
{//} directory, {/.} basename without extension, {#} job number, {%} job slot,
{n} {n.} {n/} {n//} {n/.} the n-th source or column, {+} several inputs per job.
Without one, the input is appended. Several words run directly (no shell); one word with
shell syntax runs with /bin/sh -c, each input quoted.

Options (in any order, before the command; `--` ends them):
  -j, --jobs N        jobs at once: auto (measured, the default), N, +N, -N (CPUs plus or
                      minus N), N% (of the CPUs), 0 (as many as the limits allow); -jN works
  -N N                N inputs per job ({} is all of them, {1}..{N} each)
  -X                  as many inputs per job as pay, a word holding {} repeated per input
  -m                  as many inputs per job as pay, {} replaced by all of them
      --batch N       with {+}, -X or -m: N inputs per job instead of measuring
  -k, --keep-order    print each job's output in input order (otherwise as jobs finish)
  -0, --null          inputs are separated by NUL bytes, not newlines
  -a, --arg-file FILE read inputs from FILE (as `:::: FILE`)
  -C, --colsep REGEX  split each input into columns ({1}, {2}, ...) at REGEX
      --tag           prefix each output line with the job's inputs and a tab
      --line-buffer   print each line of output as soon as it is whole (lines of different
                      jobs interleave; standard error still comes whole when the job ends)
      --dry-run       print each job's command instead of running it
      --bar           show a progress bar on standard error (reads all inputs first)
      --eta           show the estimated time left on standard error (reads all inputs first)
      --progress      --bar and --eta together
      --joblog FILE   write a job log (GNU parallel's tab-separated format) to FILE
      --resume        skip the jobs the job log lists (needs --joblog)
      --resume-failed skip the jobs the job log lists as succeeded; run failed ones again
      --halt WHEN     stop early: now,fail=N  soon,fail=N  now,success=N  soon,success=N
                      (N or N%)
      --timeout DUR   end a job (its whole process group) after DUR: 30, 1.5s, 500ms, 2m, 1h
      --plan          run the sample only, print the plan and its reasons, and stop
      --json          with --plan: print the plan as JSON
  -v, --verbose       print the plan and a summary on standard error
  -S, --sshlogin [N/]HOST[,...]
                      run jobs on these hosts over ssh (`:` is this machine; N/ gives
                      the host's CPUs); jobs and inputs per job are planned per host
      --slf FILE      read sshlogins from FILE, one per line (# comments), again whenever
                      it changes during the run
      --ssh CMD       the ssh program and its options (default `ssh`)
      --transferfile NAME, --tf NAME
                      copy NAME ({} etc. allowed) to the host before each job
      --return NAME   copy NAME back from the host after each job
      --cleanup       remove transferred and returned files on the host after each job
      --trc NAME      --transferfile {} --return NAME --cleanup
      --basefile FILE, --bf FILE
                      copy FILE to each host once, before its first job
      --will-cite     accepted and ignored (GNU parallel's citation notice)
  -h, --help          print this help

Examples:
  ls *.log | amorsize run gzip -9 {}
  amorsize run -k 'curl -s {} | wc -c' ::: https://a.example https://b.example
  amorsize run -k convert {} {.}.png ::: *.jpg
  find . -name '*.txt' -print0 | amorsize run -0 -X wc -l
";

/// The words after `amorsize run`: options, the command and its inputs, parsed by [`parse`]
/// (GNU parallel's syntax has values that start with `-`, `-j -1`, and a command that
/// follows the options without `--`, which a declarative parser reads as unknown flags).
#[derive(Debug, clap::Args)]
#[command(disable_help_flag = true, after_help = HELP)]
pub struct Args {
    /// Options, the command, then optionally `:::` and values or `::::` and files.
    #[arg(
        trailing_var_arg = true,
        allow_hyphen_values = true,
        value_name = "OPTIONS... COMMAND [ARGS]... [::: INPUTS]..."
    )]
    words: Vec<OsString>,
}

/// How the job log is used.
#[derive(Debug, PartialEq)]
enum Resume {
    No,
    All,
    Failed,
}

/// The options as given, before they are checked.
#[derive(Debug, Default)]
struct Raw {
    jobs: Option<String>,
    max_args: Option<String>,
    batch: Option<String>,
    xargs: bool,
    multi: bool,
    null: bool,
    keep_order: bool,
    colsep: Option<String>,
    tag: bool,
    line_buffer: bool,
    dry_run: bool,
    bar: bool,
    eta: bool,
    joblog: Option<PathBuf>,
    resume: bool,
    resume_failed: bool,
    plan: bool,
    json: bool,
    verbose: bool,
    halt: Option<String>,
    timeout: Option<String>,
    help: bool,
    command: Vec<OsString>,
    sources: Vec<Source>,
    sshlogins: Vec<String>,
    slf: Option<PathBuf>,
    ssh: Option<String>,
    transfer: Vec<String>,
    returns: Vec<String>,
    cleanup: bool,
    basefiles: Vec<PathBuf>,
}

/// The checked options.
#[derive(Debug)]
struct Options {
    template: Template,
    sources: Vec<Source>,
    reading: Reading,
    run: RunOptions,
    joblog: Option<PathBuf>,
    resume: Resume,
    tag: bool,
    bar: bool,
    eta: bool,
    plan: bool,
    json: bool,
    verbose: bool,
}

/// Splits the words after `run` into options, the command and the input sources. Options come
/// first, in any order, until `--` or the first word that is not an option; a value may be
/// attached (`-j4`, `--jobs=4`) or the next word (`-j -1`); flags may be bundled (`-kX`).
fn parse(words: Vec<OsString>) -> anyhow::Result<Raw> {
    let mut raw = Raw::default();
    let mut words = words.into_iter().peekable();
    while let Some(word) = words.peek() {
        let Some(w) = word.to_str().map(str::to_owned) else {
            break;
        };
        if w == "--" {
            words.next();
            break;
        }
        if !w.starts_with('-') || w == "-" {
            break;
        }
        words.next();
        let mut value = |name: &str, attached: Option<String>| -> anyhow::Result<String> {
            match attached {
                Some(v) => Ok(v),
                None => match words.next() {
                    Some(v) => v
                        .into_string()
                        .map_err(|v| anyhow::anyhow!("{name} {v:?}: not valid UTF-8")),
                    None => bail!("{name} needs a value (see `amorsize run --help`)"),
                },
            }
        };
        if let Some(long) = w.strip_prefix("--") {
            let (name, attached) = match long.split_once('=') {
                Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
                None => (long.to_owned(), None),
            };
            let flag = |set: &mut bool| -> anyhow::Result<()> {
                if attached.is_some() {
                    bail!("--{name} takes no value");
                }
                *set = true;
                Ok(())
            };
            match name.as_str() {
                "jobs" => raw.jobs = Some(value("--jobs", attached)?),
                "max-replace-args" | "max-args" => raw.max_args = Some(value("-N", attached)?),
                "batch" => raw.batch = Some(value("--batch", attached)?),
                "xargs" => flag(&mut raw.xargs)?,
                "null" => flag(&mut raw.null)?,
                "keep-order" => flag(&mut raw.keep_order)?,
                "colsep" => raw.colsep = Some(value("--colsep", attached)?),
                "arg-file" => raw
                    .sources
                    .push(Source::File(value("--arg-file", attached)?.into())),
                "tag" => flag(&mut raw.tag)?,
                "line-buffer" | "lb" => flag(&mut raw.line_buffer)?,
                "dry-run" => flag(&mut raw.dry_run)?,
                "bar" => flag(&mut raw.bar)?,
                "eta" => flag(&mut raw.eta)?,
                "progress" => {
                    flag(&mut raw.bar)?;
                    raw.eta = true;
                }
                "joblog" => raw.joblog = Some(value("--joblog", attached)?.into()),
                "resume" => flag(&mut raw.resume)?,
                "resume-failed" => flag(&mut raw.resume_failed)?,
                "plan" => flag(&mut raw.plan)?,
                "json" => flag(&mut raw.json)?,
                "verbose" => flag(&mut raw.verbose)?,
                "halt" => raw.halt = Some(value("--halt", attached)?),
                "timeout" => raw.timeout = Some(value("--timeout", attached)?),
                "sshlogin" => raw.sshlogins.push(value("--sshlogin", attached)?),
                "slf" | "sshloginfile" => raw.slf = Some(value("--slf", attached)?.into()),
                "ssh" => raw.ssh = Some(value("--ssh", attached)?),
                "transferfile" | "tf" | "transfer-file" => {
                    raw.transfer.push(value("--transferfile", attached)?)
                }
                "return" => raw.returns.push(value("--return", attached)?),
                "cleanup" => flag(&mut raw.cleanup)?,
                "trc" => {
                    raw.returns.push(value("--trc", attached)?);
                    raw.transfer.push("{}".to_owned());
                    raw.cleanup = true;
                }
                "basefile" | "bf" => raw.basefiles.push(value("--basefile", attached)?.into()),
                "will-cite" => {}
                "help" => raw.help = true,
                _ => bail!("unknown option --{name} (see `amorsize run --help`)"),
            }
            continue;
        }
        let shorts: Vec<char> = w[1..].chars().collect();
        let mut k = 0;
        while k < shorts.len() {
            let c = shorts[k];
            k += 1;
            let rest: String = shorts[k..].iter().collect();
            let attached = (!rest.is_empty()).then_some(rest);
            match c {
                'j' | 'P' => {
                    raw.jobs = Some(value("-j", attached)?);
                    break;
                }
                'N' | 'n' => {
                    raw.max_args = Some(value("-N", attached)?);
                    break;
                }
                'a' => {
                    raw.sources
                        .push(Source::File(value("-a", attached)?.into()));
                    break;
                }
                'C' => {
                    raw.colsep = Some(value("--colsep", attached)?);
                    break;
                }
                'S' => {
                    raw.sshlogins.push(value("-S", attached)?);
                    break;
                }
                'X' => raw.xargs = true,
                'm' => raw.multi = true,
                '0' => raw.null = true,
                'k' => raw.keep_order = true,
                'v' => raw.verbose = true,
                'h' => raw.help = true,
                _ => bail!("unknown option -{c} in {w:?} (see `amorsize run --help`)"),
            }
        }
    }
    let rest: Vec<OsString> = words.collect();
    let is_sep = |w: &OsString| w == ":::" || w == "::::";
    let cmd_end = rest.iter().position(is_sep).unwrap_or(rest.len());
    raw.command = rest[..cmd_end].to_vec();
    let mut k = cmd_end;
    while k < rest.len() {
        let files = rest[k] == "::::";
        let end = rest[k + 1..]
            .iter()
            .position(is_sep)
            .map_or(rest.len(), |p| k + 1 + p);
        let items = rest[k + 1..end].to_vec();
        if files {
            if items.is_empty() {
                bail!("`::::` needs at least one file name");
            }
            raw.sources
                .extend(items.into_iter().map(|f| Source::File(f.into())));
        } else {
            raw.sources.push(Source::Values(items));
        }
        k = end;
    }
    Ok(raw)
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
    fn from_raw(raw: Raw) -> anyhow::Result<Options> {
        if raw.xargs && raw.multi {
            bail!("-X and -m exclude each other: -X repeats the word around {{}}, -m does not");
        }
        let batching = if raw.xargs {
            Batching::Context
        } else if raw.multi {
            Batching::Joined
        } else {
            Batching::Single
        };
        let template = Template::with_batching(raw.command, batching)?;
        let mut run = RunOptions::new()
            .keep_order(raw.keep_order)
            .plan_only(raw.plan)
            .dry_run(raw.dry_run)
            .line_buffer(raw.line_buffer);
        if raw.line_buffer && raw.keep_order {
            bail!(
                "--line-buffer prints lines as jobs write them and -k prints whole jobs in input \
                 order: give one"
            );
        }
        if let Some(j) = &raw.jobs {
            run = run.job_count(j.parse::<Jobs>()?);
        }
        let per_job = match &raw.max_args {
            Some(n) => {
                Some(count("-N", n)?.with_context(|| format!("-N {n:?}: expected a number ≥ 1"))?)
            }
            None => None,
        };
        let batch = match &raw.batch {
            Some(_) if per_job.is_some() => {
                bail!("-N and --batch both fix the inputs per job: give one")
            }
            Some(b) if !template.batches() => {
                bail!(
                    "--batch {b:?} needs `{{+}}` in the command, -X or -m (several inputs per job)"
                )
            }
            Some(b) => count("--batch", b)?,
            None => per_job,
        };
        if let Some(b) = batch {
            run = run.batch(b);
        }
        if let Some(h) = &raw.halt {
            run = run.halt(h.parse::<Halt>()?);
        }
        if let Some(t) = &raw.timeout {
            run = run.timeout(duration(t)?);
        }
        let resume = match (raw.resume, raw.resume_failed) {
            (false, false) => Resume::No,
            (true, false) => Resume::All,
            (_, true) => Resume::Failed,
        };
        if resume != Resume::No {
            if raw.joblog.is_none() {
                bail!("--resume needs --joblog FILE (the log of the earlier run)");
            }
            if template.batches() && batch.is_none() {
                bail!(
                    "--resume with `{{+}}`, -X or -m needs a fixed --batch N, so that job \
                     numbers name the same inputs in every run"
                );
            }
        }
        if raw.json && !raw.plan {
            bail!("--json goes with --plan");
        }
        if raw.plan && raw.dry_run {
            bail!("--plan runs the sample and --dry-run runs nothing: give one");
        }
        if !raw.sshlogins.is_empty() || raw.slf.is_some() {
            let mut hosts = Hosts::new();
            for s in &raw.sshlogins {
                hosts = hosts.logins(SshLogin::parse_list(s)?);
            }
            if let Some(f) = raw.slf {
                hosts = hosts.file(f);
            }
            if let Some(ssh) = &raw.ssh {
                let words = shlex::split(ssh)
                    .filter(|w| !w.is_empty())
                    .with_context(|| format!("--ssh {ssh:?}: unbalanced quotes, or empty"))?;
                hosts = hosts.ssh(words.into_iter().map(OsString::from).collect());
            }
            for t in raw.transfer {
                hosts = hosts.transfer(t);
            }
            for r in raw.returns {
                hosts = hosts.returns(r);
            }
            for b in raw.basefiles {
                hosts = hosts.basefile(b);
            }
            run = run.hosts(hosts.cleanup(raw.cleanup));
        } else if raw.ssh.is_some()
            || !raw.transfer.is_empty()
            || !raw.returns.is_empty()
            || raw.cleanup
            || !raw.basefiles.is_empty()
        {
            bail!(
                "--ssh, --transferfile, --return, --cleanup, --trc and --basefile go with hosts: \
                 give -S or --slf"
            );
        }
        Ok(Options {
            template,
            sources: raw.sources,
            reading: Reading {
                null: raw.null,
                colsep: raw.colsep,
            },
            run,
            joblog: raw.joblog,
            resume,
            tag: raw.tag,
            bar: raw.bar,
            eta: raw.eta,
            plan: raw.plan,
            json: raw.json,
            verbose: raw.verbose,
        })
    }
}

/// Prints jobs, writes the log, draws the progress bar.
struct Printer {
    log: Option<File>,
    plan_only: bool,
    json: bool,
    verbose: bool,
    tag: bool,
    progress: Option<ProgressBar>,
}

impl Printer {
    /// The `--tag` prefix of a job with these input values: the values, space-separated, and
    /// a tab.
    fn tag_of(args: &[OsString]) -> Vec<u8> {
        let mut tag = Vec::new();
        for (k, a) in args.iter().enumerate() {
            if k > 0 {
                tag.push(b' ');
            }
            tag.extend_from_slice(a.as_bytes());
        }
        tag.push(b'\t');
        tag
    }

    /// Writes job output, with the progress bar out of the way while it does.
    fn write(&self, out: &mut dyn Write, data: &[u8]) -> io::Result<()> {
        match &self.progress {
            Some(bar) => bar.suspend(|| out.write_all(data).and_then(|()| out.flush())),
            None => out.write_all(data).and_then(|()| out.flush()),
        }
    }
}

/// `data` with each line prefixed by `tag` (GNU parallel's `--tag`); a last line without its
/// newline is tagged too.
fn tagged(tag: &[u8], data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + tag.len() * 4);
    for line in data.split_inclusive(|&b| b == b'\n') {
        out.extend_from_slice(tag);
        out.extend_from_slice(line);
    }
    out
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
            self.write(&mut io::stderr(), plan.to_string().as_bytes())
        } else {
            Ok(())
        }
    }

    fn finished(&mut self, job: &JobRecord) -> io::Result<()> {
        if self.plan_only {
            return Ok(());
        }
        if self.tag {
            let tag = Self::tag_of(&job.args);
            self.write(&mut io::stdout(), &tagged(&tag, &job.stdout))?;
            self.write(&mut io::stderr(), &tagged(&tag, &job.stderr))?;
        } else {
            self.write(&mut io::stdout(), &job.stdout)?;
            self.write(&mut io::stderr(), &job.stderr)?;
        }
        if job.stopped == Some(Stopped::TimedOut) {
            let line = format!(
                "amorsize: job {} timed out and was stopped: {}\n",
                job.seq, job.command
            );
            self.write(&mut io::stderr(), line.as_bytes())?;
        }
        // Jobs cut short by an interruption are not logged: `--resume` runs them again.
        if job.stopped != Some(Stopped::Cancelled) {
            if let Some(log) = &mut self.log {
                joblog::write(log, job)?;
            }
        }
        Ok(())
    }

    fn line(&mut self, line: &OutputLine) -> io::Result<()> {
        if self.plan_only {
            return Ok(());
        }
        if self.tag {
            let tagged = tagged(&Self::tag_of(&line.args), &line.line);
            self.write(&mut io::stdout(), &tagged)
        } else {
            self.write(&mut io::stdout(), &line.line)
        }
    }

    fn host_down(&mut self, down: &amorsize_run::HostDown) -> io::Result<()> {
        let line = format!(
            "amorsize: host {} is down ({}): its jobs run on the other hosts\n",
            down.host, down.why
        );
        self.write(&mut io::stderr(), line.as_bytes())
    }

    fn progress(&mut self, done: usize, total: Option<usize>) {
        if let Some(bar) = &self.progress {
            if let Some(total) = total {
                bar.set_length(total as u64);
            }
            bar.set_position(done as u64);
        }
    }
}

/// The progress display of `--bar` and `--eta`, drawn by indicatif on standard error (only
/// when it is a terminal).
fn progress_bar(bar: bool, eta: bool, total: usize) -> ProgressBar {
    let template = match (bar, eta) {
        (true, true) => "{wide_bar} {pos}/{len} {percent}% ETA {eta}",
        (true, false) => "{wide_bar} {pos}/{len} {percent}%",
        _ => "{pos}/{len} jobs done, ETA {eta} ({per_sec})",
    };
    let style = ProgressStyle::with_template(template)
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("#>.");
    let pb = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    pb.set_style(style);
    pb
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
    let raw = parse(args.words)?;
    if raw.help {
        io::stdout().write_all(HELP.as_bytes())?;
        return Ok(ExitCode::SUCCESS);
    }
    let mut options = Options::from_raw(raw)?;
    let mut log = None;
    if let Some(path) = &options.joblog {
        if !options.plan {
            let (file, skip) = open_log(path, &options.resume)?;
            log = Some(file);
            options.run = options.run.skip(skip);
        }
    }

    let cancel = Arc::new(AtomicUsize::new(0));
    for signal in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register_usize(signal, Arc::clone(&cancel), signal as usize)
            .context("cannot install the signal handlers")?;
    }
    let sources = std::mem::take(&mut options.sources);
    let mut inputs = source::open(sources, &options.reading, Arc::clone(&cancel))?;
    let mut progress = None;
    if options.bar || options.eta {
        // A bar needs the total: the inputs are read whole first, as GNU parallel does.
        if inputs.known_len().is_none() {
            let all: Vec<Record> = inputs
                .into_records()
                .collect::<io::Result<_>>()
                .context("cannot read the inputs")?;
            inputs = Inputs::from_records(all);
        }
        progress = Some(progress_bar(
            options.bar,
            options.eta,
            inputs.known_len().unwrap_or(0),
        ));
    }

    let mut printer = Printer {
        log,
        plan_only: options.plan,
        json: options.json,
        verbose: options.verbose,
        tag: options.tag,
        progress,
    };
    let result = command::run(
        &options.template,
        inputs,
        &options.run,
        &cancel,
        &mut printer,
    );
    if let Some(bar) = &printer.progress {
        bar.finish_and_clear();
    }
    let summary = match result {
        Ok(s) => s,
        Err(err) => return Ok(report_error(&err)),
    };
    if options.verbose || summary.interrupted.is_some() || summary.halted {
        print_summary(&summary);
    }
    if options.plan && summary.plan.is_none() && !options.json {
        let nothing_ran = summary.succeeded + summary.failed + summary.cancelled == 0;
        if summary.skipped == 0 && nothing_ran {
            writeln!(
                io::stdout(),
                "no inputs: nothing to sample, nothing to plan"
            )?;
        } else {
            writeln!(
                io::stdout(),
                "every input was done before: nothing to sample, nothing to plan"
            )?;
        }
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
    line += &format!(" in {}", amorsize::fmt::duration(s.elapsed));
    eprintln!("{line}");
    for a in &s.adaptations {
        let why = if a.reverted {
            "back: more jobs did not finish faster".to_owned()
        } else {
            format!(
                "CPU {:.1}% of wall, {} a job",
                a.cpu_ratio * 100.0,
                amorsize::fmt::seconds(a.job_time)
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

    fn words(v: &[&str]) -> Vec<OsString> {
        v.iter().map(OsString::from).collect()
    }

    #[test]
    fn options_come_in_any_order_and_any_form() {
        let raw = parse(words(&["-j1", "-k", "--tag", "echo", "-j2", ":::", "a"])).unwrap();
        assert_eq!(raw.jobs.as_deref(), Some("1"));
        assert!(raw.keep_order && raw.tag);
        assert_eq!(raw.command, words(&["echo", "-j2"]));
        assert_eq!(raw.sources, [Source::Values(words(&["a"]))]);
        let raw = parse(words(&["-j", "-1", "--jobs=+2", "-kXN3", "--", "-x"])).unwrap();
        assert_eq!(raw.jobs.as_deref(), Some("+2"));
        assert_eq!(raw.max_args.as_deref(), Some("3"));
        assert!(raw.keep_order && raw.xargs);
        assert_eq!(raw.command, words(&["-x"]));
        assert!(parse(words(&["--frobnicate", "echo"])).is_err());
        assert!(parse(words(&["-j"])).is_err());
    }

    #[test]
    fn several_sources_keep_their_order() {
        let raw = parse(words(&[
            "echo", ":::", "a", "b", "::::", "f", "g", ":::", "c",
        ]))
        .unwrap();
        assert_eq!(
            raw.sources,
            [
                Source::Values(words(&["a", "b"])),
                Source::File("f".into()),
                Source::File("g".into()),
                Source::Values(words(&["c"])),
            ]
        );
    }

    #[test]
    fn host_options_parse_as_gnu_parallel_spells_them() {
        let raw = parse(words(&[
            "-S",
            "h1,2/h2",
            "--sshlogin=:",
            "--slf",
            "f",
            "--ssh",
            "ssh -F 'a b'",
            "--trc",
            "{}.out",
            "--bf",
            "base",
            "echo",
        ]))
        .unwrap();
        assert_eq!(raw.sshlogins, ["h1,2/h2", ":"]);
        assert_eq!(raw.slf, Some(PathBuf::from("f")));
        assert_eq!(
            (raw.transfer.as_slice(), raw.returns.as_slice()),
            (&["{}".to_owned()][..], &["{}.out".to_owned()][..])
        );
        assert!(raw.cleanup);
        assert!(Options::from_raw(raw).is_ok());
        // Files that travel need hosts to travel to.
        let raw = parse(words(&["--return", "x", "echo"])).unwrap();
        assert!(Options::from_raw(raw).is_err());
        let raw = parse(words(&["-S", "0/h", "echo"])).unwrap();
        assert!(Options::from_raw(raw).is_err());
    }

    #[test]
    fn tags_prefix_every_line() {
        assert_eq!(tagged(b"a\t", b"x\ny"), b"a\tx\na\ty");
        assert_eq!(tagged(b"a\t", b""), b"");
    }
}
