//! One job: the command over one input or a batch of inputs, started in a process group of its
//! own, its output captured whole, its CPU time and peak memory read back when it is reaped.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant, SystemTime};

use super::sys;
use super::template::{Job, Record, Template};

/// A job to run: its number and the inputs it takes.
#[derive(Clone, Debug)]
pub(crate) struct Spec {
    /// 1-based job number, in input order.
    pub seq: usize,
    /// Indices of its inputs in the whole input.
    pub inputs: Range<usize>,
    /// The inputs themselves.
    pub records: Vec<Record>,
    /// Whether the job belongs to the sample the plan is made from.
    pub sampled: bool,
    /// Its job slot (`{%}`), from 1.
    pub slot: usize,
    /// The host it runs on: its index in the runner's host table and its connection (`None`
    /// for this machine, or when the run names no hosts).
    pub host: Option<usize>,
    pub conn: Option<std::sync::Arc<crate::hosts::ssh::Conn>>,
}

impl Spec {
    /// The host's name as the job log writes it: the sshlogin, `:` for this machine.
    pub fn host_name(&self) -> String {
        self.conn
            .as_ref()
            .map_or_else(|| ":".to_owned(), |c| c.login.clone())
    }

    /// The template's view of this job.
    pub fn job(&self) -> Job<'_> {
        Job {
            inputs: &self.records,
            seq: self.seq,
            slot: self.slot,
        }
    }
}

/// How a job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// This signal ended it.
    Signal(i32),
}

/// Why the runner ended a job early.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stopped {
    /// It ran longer than `--timeout`.
    TimedOut,
    /// The run was interrupted (a signal, or `--halt now`) while it ran.
    Cancelled,
}

/// A finished job, as it is printed and logged.
#[derive(Clone, Debug)]
pub struct JobRecord {
    /// 1-based job number, in input order.
    pub seq: usize,
    /// Indices of its inputs in the whole input.
    pub inputs: Range<usize>,
    /// Its inputs' values, in order (what GNU parallel's `--tag` prints).
    pub args: Vec<OsString>,
    /// The job slot it ran in (`{%}`), from 1.
    pub slot: usize,
    /// Where it ran: the sshlogin (`:` for this machine), as the job log's Host column.
    pub host: String,
    /// The command as one line of shell text.
    pub command: String,
    /// When it started.
    pub start: SystemTime,
    /// Its wall time, from start to exit.
    pub runtime: Duration,
    /// CPU time (user + system) of the job and the children it waited for.
    pub cpu: Duration,
    /// Peak resident memory of the job's largest process, in bytes.
    pub max_rss: u64,
    /// How it ended.
    pub exit: Exit,
    /// Set when the runner ended it (timeout, interruption).
    pub stopped: Option<Stopped>,
    /// Everything it wrote to standard output.
    pub stdout: Vec<u8>,
    /// Everything it wrote to standard error.
    pub stderr: Vec<u8>,
}

impl JobRecord {
    /// Whether the job exited with code 0 by itself.
    pub fn succeeded(&self) -> bool {
        self.exit == Exit::Code(0) && self.stopped.is_none()
    }

    /// The exit code (0 when a signal ended it), as GNU parallel's job log writes it.
    pub fn exit_code(&self) -> i32 {
        match self.exit {
            Exit::Code(c) => c,
            Exit::Signal(_) => 0,
        }
    }

    /// The number of the signal that ended it, 0 if none.
    pub fn signal(&self) -> i32 {
        match self.exit {
            Exit::Code(_) => 0,
            Exit::Signal(s) => s,
        }
    }
}

/// A started job.
pub(crate) struct Started {
    pub pid: i32,
    pub began: Instant,
    start: SystemTime,
    /// Standard output, captured whole; `None` when it goes to [`Started::pipe`].
    stdout: Option<File>,
    stderr: File,
    /// Standard output as a pipe, read line by line while the job runs (`--line-buffer`).
    pub pipe: Option<std::process::ChildStdout>,
    /// The write end of the job's standard input, held until the job is reaped (remote jobs:
    /// its closing tells the remote side that the job is over).
    hold: Option<std::process::ChildStdin>,
}

/// Starts the job: stdin from `/dev/null` (inputs come from arguments, and a job must not eat
/// the runner's own standard input), output into anonymous files, in a new process group so
/// that a timeout or an interruption can end the job with every process it started. With
/// `lines`, standard output is a pipe the caller reads while the job runs.
pub(crate) fn start(template: &Template, job: &Job, lines: bool) -> io::Result<Started> {
    start_argv(template.argv(job), lines, false)
}

/// Starts `argv` as [`start`] does; with `hold`, standard input is a pipe that stays open
/// until the job is reaped.
pub(crate) fn start_argv(argv: Vec<OsString>, lines: bool, hold: bool) -> io::Result<Started> {
    let stdout = if lines {
        None
    } else {
        Some(sys::output_file()?)
    };
    let stderr = sys::output_file()?;
    let mut cmd = Command::new(&argv[0]);
    cmd.args(&argv[1..])
        .stdin(if hold { Stdio::piped() } else { Stdio::null() })
        .stdout(match &stdout {
            Some(f) => Stdio::from(f.try_clone()?),
            None => Stdio::piped(),
        })
        .stderr(stderr.try_clone()?)
        .process_group(0);
    let start = SystemTime::now();
    let began = Instant::now();
    let mut child = cmd.spawn()?;
    Ok(Started {
        pid: child.id() as i32,
        began,
        start,
        stdout,
        stderr,
        pipe: child.stdout.take(),
        hold: child.stdin.take(),
    })
}

/// What a reaped job left behind, before the runner adds who it was.
pub(crate) struct Ended {
    pub start: SystemTime,
    pub runtime: Duration,
    pub status: sys::Status,
    pub usage: sys::Usage,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

/// Reaps a job that [`sys::wait_ended`] saw end, and reads its output back.
pub(crate) fn finish(mut job: Started) -> io::Result<Ended> {
    let (status, usage) = sys::reap(job.pid)?;
    drop(job.hold.take());
    let runtime = job.began.elapsed();
    Ok(Ended {
        start: job.start,
        runtime,
        status,
        usage,
        stdout: match &mut job.stdout {
            Some(f) => read_all(f)?,
            None => Vec::new(),
        },
        stderr: read_all(&mut job.stderr)?,
    })
}

fn read_all(f: &mut File) -> io::Result<Vec<u8>> {
    let len = f.seek(SeekFrom::End(0))?;
    f.seek(SeekFrom::Start(0))?;
    let mut buf = Vec::with_capacity(len as usize);
    f.read_to_end(&mut buf)?;
    Ok(buf)
}

impl Ended {
    /// Turns the raw ending into a record.
    pub(crate) fn into_record(
        self,
        spec: &Spec,
        command: String,
        stopped: Option<Stopped>,
    ) -> JobRecord {
        JobRecord {
            seq: spec.seq,
            inputs: spec.inputs.clone(),
            args: spec.records.iter().flatten().cloned().collect(),
            slot: spec.slot,
            host: spec.host_name(),
            command,
            start: self.start,
            runtime: self.runtime,
            cpu: self.usage.cpu,
            max_rss: self.usage.max_rss,
            exit: match self.status {
                sys::Status::Exited(c) => Exit::Code(c),
                sys::Status::Signaled(s) => Exit::Signal(s),
            },
            stopped,
            stdout: self.stdout,
            stderr: self.stderr,
        }
    }
}
