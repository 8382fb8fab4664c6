//! The engine: worker threads that start jobs and wait for them, and the calling thread as the
//! controller that samples, decides, delivers output, enforces timeouts, halts and interrupts.
//!
//! Each worker runs one job at a time: it starts the job in a process group of its own, records
//! it in the table of running jobs, waits for it to end *without reaping it*, removes it from
//! the table, then reaps it. The controller signals process groups only while holding the
//! table, so it never signals a group whose leader has been reaped (whose id could be reused).

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::num::NonZeroUsize;
use std::os::unix::ffi::OsStringExt;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::decide::{self, CommandPlan, Fixed, Limits};
use super::hosts::ssh::{self, Conn, ControlDir, FileName, Master};
use super::hosts::{self, BatchRule, HostFigures, HostPolicy, SshLogin};
use super::job::{self, JobRecord, Spec, Stopped};
use super::measure::{self, Obs};
use super::template::{Record, Template};
use super::{sys, Adaptation, HostDown, Inputs, Observer, OutputLine, RunOptions, Summary};
use crate::halt::{Halt, HaltHow};
use crate::{Error, ErrorKind, Result};

/// After a job is sent SIGTERM (or the interrupting signal), it gets this long to exit before
/// its group is sent SIGKILL. GNU parallel sends TERM, waits 200 ms, TERM, 100 ms, TERM,
/// 50 ms, then KILL: 350 ms in all.
pub const KILL_GRACE: Duration = Duration::from_millis(350);

/// How often the controller checks timeouts and the interrupt flag when no job ends.
const TICK: Duration = Duration::from_millis(10);

/// Jobs sampled at least before the plan is made (with `{+}`: one of each batch size).
///
/// The sample is one round of jobs, one per CPU: a round takes as long as one job, which for
/// long jobs that mostly wait is the price of not knowing yet; the runner keeps measuring after
/// the plan, so a small first sample is corrected as the run goes.
const MIN_SAMPLE_JOBS: usize = 2;

/// With `{+}` and an automatic batch size, half the sampled jobs take this many inputs (the
/// other half one), so that the fixed and the per-input cost of an invocation can be told apart.
const SAMPLE_BATCH: usize = 64;

/// Post-plan jobs measured at least before the job count is reconsidered.
const ADAPT_MIN_JOBS: usize = 8;

/// The job count changes on drift only when the new count differs by this share or more.
const ADAPT_CHANGE: f64 = 0.25;

/// A larger job count is kept only if it finishes at least this much more jobs per second.
const ADAPT_MIN_GAIN: f64 = 0.10;

/// Worker threads only start and wait for a process.
const WORKER_STACK: usize = 256 * 1024;

const RUN: u8 = 0;
const DRAIN: u8 = 1;
const KILL: u8 = 2;

/// With `--dry-run` and `{+}`, `-X` or `-m`, inputs per command line at most (fewer when the
/// command line is full): nothing is measured, so the command line's length decides, as in
/// GNU parallel.
const DRY_RUN_BATCH: usize = 10_000;

/// The jobs still to hand out, and the inputs read but not yet handed out.
struct Queue<'s> {
    /// Inputs taken from the buffer (handed out or skipped): the index of the next one.
    next_input: usize,
    /// Inputs read from the source, not yet handed out.
    buffer: VecDeque<Record>,
    /// Inputs read from the source so far.
    read: usize,
    /// Set once the source has ended (or failed).
    exhausted: bool,
    /// Set while a worker reads from the source (with this lock released).
    reading: bool,
    read_error: Option<std::io::Error>,
    /// Job slots free for `{%}`, and the next new one.
    free_slots: BTreeSet<usize>,
    next_slot: usize,
    /// Sum and count of the argument bytes of the inputs handed out (with `{+}`, `-X`, `-m`).
    cost_sum: usize,
    cost_n: usize,
    next_seq: usize,
    /// Batch sizes of the sample jobs still to hand out.
    sample: std::collections::VecDeque<usize>,
    sample_dispatched: usize,
    /// While set, only sample jobs are handed out.
    gated: bool,
    batch: usize,
    /// Jobs allowed at once.
    limit: usize,
    /// Worker threads alive.
    threads: usize,
    skip: &'s BTreeSet<usize>,
    skipped_jobs: usize,
    skipped_inputs: usize,
    budget: usize,
    /// The hosts jobs run on (empty when the run names none: every job runs here).
    hosts: Vec<HostSlot>,
    /// Jobs whose host went down, to run again elsewhere, first.
    requeue: VecDeque<Spec>,
    /// Set when jobs are left and no host can take them.
    all_down: bool,
}

/// A host as the scheduler sees it: a provider of job slots.
struct HostSlot {
    /// `None` for this machine.
    conn: Option<Arc<Conn>>,
    login: String,
    /// Cleared when the host is down: it takes no more jobs.
    up: bool,
    /// Cleared when `--slf` no longer lists it: it takes no more jobs.
    listed: bool,
    running: usize,
    /// Jobs at once there.
    cap: usize,
    /// Inputs per job there, once planned.
    batch: usize,
    /// Sample jobs handed to it.
    sampled: usize,
    figures: HostFigures,
}

impl HostSlot {
    fn usable(&self) -> bool {
        self.up && self.listed
    }
}

enum Next {
    Job(Spec),
    Wait,
    /// The buffer holds fewer than this many inputs and the source has more: read.
    Read(usize),
    Done,
}

impl Queue<'_> {
    /// Whether every input has been handed out.
    fn drained(&self) -> bool {
        self.exhausted && self.buffer.is_empty()
    }

    /// Inputs not yet handed out: exact once the source has ended or when its length is
    /// known; for a stream still open, what is buffered but at least [`UNKNOWN_LEFT`].
    fn left(&self, len: Option<usize>) -> usize {
        if self.exhausted {
            self.buffer.len()
        } else {
            len.map_or(self.buffer.len().max(UNKNOWN_LEFT), |n| {
                n.saturating_sub(self.read) + self.buffer.len()
            })
        }
    }

    /// The job slots of the usable hosts, and the jobs still running on the others (each
    /// holds a worker until it ends).
    fn host_slots(&self) -> usize {
        self.hosts
            .iter()
            .map(|h| if h.usable() { h.cap } else { h.running })
            .sum()
    }

    /// The host for the next job: a usable one with a free slot; while sampling the one with
    /// the fewest sample jobs (so that every host is measured), else the least busy one.
    fn pick_host(&self, sampling: bool) -> Option<usize> {
        let free = self
            .hosts
            .iter()
            .enumerate()
            .filter(|(_, h)| h.usable() && h.running < h.cap);
        if sampling {
            free.min_by_key(|(_, h)| (h.sampled, h.running))
                .map(|(k, _)| k)
        } else {
            free.min_by(|(_, a), (_, b)| {
                (a.running as f64 / a.cap as f64).total_cmp(&(b.running as f64 / b.cap as f64))
            })
            .map(|(k, _)| k)
        }
    }

    /// Gives `spec` to host `k` and a job slot.
    fn place(&mut self, spec: &mut Spec, k: Option<usize>) {
        if let Some(k) = k {
            let h = &mut self.hosts[k];
            h.running += 1;
            if spec.sampled {
                h.sampled += 1;
            }
            spec.host = Some(k);
            spec.conn = h.conn.clone();
        }
        spec.slot = match self.free_slots.pop_first() {
            Some(slot) => slot,
            None => {
                self.next_slot += 1;
                self.next_slot - 1
            }
        };
    }

    fn next(&mut self, template: &Template) -> Next {
        if !self.hosts.is_empty() && !self.hosts.iter().any(HostSlot::usable) {
            self.all_down = true;
            return Next::Done;
        }
        if let Some(mut spec) = self.requeue.pop_front() {
            return match self.pick_host(spec.sampled) {
                Some(k) => {
                    self.place(&mut spec, Some(k));
                    Next::Job(spec)
                }
                None => {
                    self.requeue.push_front(spec);
                    Next::Wait
                }
            };
        }
        loop {
            // A sample entry is used up only by a job that runs (not by one skipped).
            let (size, sampled) = match self.sample.front() {
                Some(&size) => (size, true),
                // While the sample runs, an idle worker reads ahead, so that the plan knows
                // how many inputs a short stream holds (or that a long one holds many).
                None if self.gated && !self.drained() => {
                    return if !self.exhausted && self.buffer.len() < LOOKAHEAD {
                        Next::Read(LOOKAHEAD_CHUNK.min(LOOKAHEAD - self.buffer.len()))
                    } else {
                        Next::Wait
                    };
                }
                None => (self.batch, false),
            };
            let host = if self.hosts.is_empty() {
                None
            } else {
                match self.pick_host(sampled) {
                    Some(k) => Some(k),
                    None => return Next::Wait,
                }
            };
            let size = match host {
                Some(k) if !sampled => self.hosts[k].batch,
                _ => size,
            };
            if self.buffer.len() < size && !self.exhausted {
                return Next::Read(size - self.buffer.len());
            }
            if self.buffer.is_empty() {
                return Next::Done;
            }
            let start = self.next_input;
            let mut records = Vec::with_capacity(size.min(self.buffer.len()));
            let mut bytes = 0;
            let counting = template.batches() || size > 1;
            while records.len() < size {
                let Some(record) = self.buffer.front() else {
                    break;
                };
                if counting {
                    let cost = template.input_cost(record);
                    if !records.is_empty() && bytes + cost > self.budget {
                        break;
                    }
                    bytes += cost;
                    self.cost_sum = self.cost_sum.saturating_add(cost);
                    self.cost_n += 1;
                }
                records.extend(self.buffer.pop_front());
            }
            let end = start + records.len();
            let seq = self.next_seq;
            self.next_seq += 1;
            self.next_input = end;
            if self.skip.contains(&seq) {
                self.skipped_jobs += 1;
                self.skipped_inputs += end - start;
                continue;
            }
            if sampled {
                self.sample.pop_front();
                self.sample_dispatched += 1;
            }
            let mut spec = Spec {
                seq,
                inputs: start..end,
                records,
                sampled,
                slot: 0,
                host: None,
                conn: None,
            };
            self.place(&mut spec, host);
            return Next::Job(spec);
        }
    }
}

struct Running {
    pid: i32,
    began: Instant,
    term_sent: Option<Instant>,
    stopped: Option<Stopped>,
}

enum Msg {
    Done(Box<JobRecord>, bool),
    Line(OutputLine),
    Failed(Spec, std::io::Error, &'static str),
    /// A host went down; its job is queued again.
    HostDown(HostDown),
}

/// What a job on a host that went down hands back to its worker.
struct Down {
    spec: Spec,
    why: String,
}

/// Files that travel with remote jobs.
#[derive(Default)]
struct Travel {
    transfer: Vec<FileName>,
    returns: Vec<FileName>,
    cleanup: bool,
}

struct Shared<'s> {
    template: &'s Template,
    /// The source; read only by the worker that set [`Queue::reading`].
    source: Mutex<Box<dyn Iterator<Item = std::io::Result<Record>> + Send + 's>>,
    /// The source's length, when known.
    len: Option<usize>,
    dry_run: bool,
    line_buffer: bool,
    queue: Mutex<Queue<'s>>,
    wake: Condvar,
    running: Mutex<HashMap<usize, Running>>,
    state: AtomicU8,
    tx: Sender<Msg>,
    halt: Halt,
    /// Failed and succeeded jobs, counted by the workers so that `--halt` acts before the
    /// worker that saw the deciding job takes another one.
    outcomes: Mutex<(usize, usize)>,
    halted: AtomicBool,
    travel: Travel,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A worker never panics while holding a lock; if one did, the data is still consistent
    // enough to stop the run cleanly.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Shared<'_> {
    fn state(&self) -> u8 {
        self.state.load(Ordering::SeqCst)
    }

    fn set_state(&self, state: u8) {
        let _q = lock(&self.queue);
        if self.state() < state {
            self.state.store(state, Ordering::SeqCst);
        }
        self.wake.notify_all();
    }

    fn next_job(&self) -> Option<Spec> {
        let mut q = lock(&self.queue);
        loop {
            if self.state() != RUN || q.threads > q.limit {
                q.threads -= 1;
                return None;
            }
            match q.next(self.template) {
                Next::Job(spec) => return Some(spec),
                Next::Done => {
                    q.threads -= 1;
                    return None;
                }
                Next::Wait => q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                Next::Read(_) if q.reading => {
                    q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner())
                }
                Next::Read(want) => {
                    // Read with the queue released, so that the controller and the other
                    // workers go on while the source is slow (a pipe still being written).
                    q.reading = true;
                    drop(q);
                    let mut got = Vec::with_capacity(want.min(1024));
                    let mut end = None;
                    {
                        let mut source = lock(&self.source);
                        while got.len() < want {
                            match source.next() {
                                Some(Ok(record)) => got.push(record),
                                Some(Err(e)) => {
                                    end = Some(Some(e));
                                    break;
                                }
                                None => {
                                    end = Some(None);
                                    break;
                                }
                            }
                        }
                    }
                    q = lock(&self.queue);
                    q.reading = false;
                    q.read += got.len();
                    q.buffer.extend(got);
                    if let Some(e) = end {
                        q.exhausted = true;
                        q.read_error = e;
                    }
                    self.wake.notify_all();
                }
            }
        }
    }

    /// Gives a finished job's slot (and its host's) back.
    fn free_slot(&self, slot: usize, host: Option<usize>) {
        let mut q = lock(&self.queue);
        q.free_slots.insert(slot);
        if let Some(k) = host {
            q.hosts[k].running -= 1;
            q.limit = q.host_slots().max(1);
            drop(q);
            self.wake.notify_all();
        }
    }

    /// Takes a host that went down out of the run and queues its job again. Says whether the
    /// host was up until now (so that it is reported once).
    fn host_down(&self, mut spec: Spec) -> bool {
        let mut q = lock(&self.queue);
        let Some(k) = spec.host else { return false };
        let was_up = std::mem::replace(&mut q.hosts[k].up, false);
        spec.host = None;
        spec.conn = None;
        q.requeue.push_back(spec);
        q.limit = q.host_slots().max(1);
        drop(q);
        self.wake.notify_all();
        was_up
    }

    /// Counts a finished job and halts the run when `--halt` says so.
    fn count(&self, succeeded: bool) {
        let mut outcomes = lock(&self.outcomes);
        if succeeded {
            outcomes.1 += 1;
        } else {
            outcomes.0 += 1;
        }
        if self.halted.load(Ordering::SeqCst) {
            return;
        }
        if let Some(how) = self.halt.triggered(outcomes.0, outcomes.1) {
            self.halted.store(true, Ordering::SeqCst);
            drop(outcomes);
            match how {
                HaltHow::Now => {
                    self.set_state(KILL);
                    self.stop_all(libc::SIGTERM);
                }
                HaltHow::Soon => self.set_state(DRAIN),
            }
        }
    }

    /// Signals every running job that is not yet being stopped, and marks it.
    fn stop_all(&self, signal: i32) {
        let now = Instant::now();
        for r in lock(&self.running).values_mut() {
            if r.stopped.is_none() {
                let _ = sys::kill_group(r.pid, signal);
                r.stopped = Some(Stopped::Cancelled);
                r.term_sent = Some(now);
            }
        }
    }
}

fn worker(sh: &Shared) {
    while let Some(spec) = sh.next_job() {
        let (slot, host) = (spec.slot, spec.host);
        let msg = if sh.dry_run {
            dry_run(sh, spec)
        } else {
            match run_job(sh, spec) {
                Ok(msg) => msg,
                Err(Down { spec, why }) => {
                    let login = spec.host_name();
                    let first = sh.host_down(spec);
                    sh.free_slot(slot, host);
                    if first
                        && sh
                            .tx
                            .send(Msg::HostDown(HostDown { host: login, why }))
                            .is_err()
                    {
                        break;
                    }
                    continue;
                }
            }
        };
        sh.free_slot(slot, host);
        if sh.tx.send(msg).is_err() {
            break;
        }
    }
}

/// What ssh said, in a line.
fn said(out: &std::process::Output) -> String {
    let text = String::from_utf8_lossy(&out.stderr);
    let text = text.trim();
    let code = out
        .status
        .code()
        .map_or_else(|| out.status.to_string(), |c| c.to_string());
    if text.is_empty() {
        format!("ssh exited with {code}")
    } else {
        format!("ssh exited with {code}: {text}")
    }
}

/// Whether `out` (of a command through the shared connection) shows the host gone: ssh's
/// own status 255 and no answer to a `true` after it. A command of the user's that exits
/// with 255 on a host that still answers is an ordinary failure.
fn gone(conn: &Conn, out: &std::process::Output) -> bool {
    out.status.code() == Some(255) && !conn.alive()
}

/// Copies the job's `--transferfile` files there. Problems go into `notes` (the job's
/// standard error), except a host that is gone.
fn send_files(
    sh: &Shared,
    conn: &Conn,
    spec: &Spec,
    notes: &mut Vec<u8>,
) -> std::result::Result<Vec<Vec<u8>>, String> {
    let mut sent = Vec::new();
    for f in &sh.travel.transfer {
        for name in f.names(&spec.job()) {
            let local = std::path::PathBuf::from(std::ffi::OsString::from_vec(name.clone()));
            let why = match conn.send(&local, &name) {
                Ok(out) if out.status.success() => {
                    sent.push(name);
                    continue;
                }
                Ok(out) if gone(conn, &out) => return Err(said(&out)),
                Ok(out) => said(&out),
                Err(e) => e.to_string(),
            };
            let line = format!(
                "amorsize: cannot transfer {} to {}: {why}\n",
                local.display(),
                conn.login
            );
            notes.extend(line.into_bytes());
        }
    }
    Ok(sent)
}

/// Copies the job's `--return` files back, then with `--cleanup` removes what was sent and
/// returned there.
fn return_files(
    sh: &Shared,
    conn: &Conn,
    spec: &Spec,
    mut sent: Vec<Vec<u8>>,
    notes: &mut Vec<u8>,
) -> std::result::Result<(), String> {
    for f in &sh.travel.returns {
        for name in f.names(&spec.job()) {
            let local = std::path::PathBuf::from(std::ffi::OsString::from_vec(name.clone()));
            // Returned or not, the file is removed there with `--cleanup`.
            let why = match conn.fetch(&name, &local) {
                Ok(out) if out.status.success() => {
                    sent.push(name);
                    continue;
                }
                Ok(out) if gone(conn, &out) => return Err(said(&out)),
                Ok(out) => said(&out),
                Err(e) => e.to_string(),
            };
            let line = format!(
                "amorsize: cannot return {} from {}: {why}\n",
                local.display(),
                conn.login
            );
            notes.extend(line.into_bytes());
            sent.push(name);
        }
    }
    if sh.travel.cleanup && !sent.is_empty() {
        if let Ok(out) = conn.remove(&sent) {
            if !out.status.success() {
                notes.extend(
                    format!(
                        "amorsize: cannot clean up on {}: {}\n",
                        conn.login,
                        said(&out)
                    )
                    .into_bytes(),
                );
            }
        }
    }
    Ok(())
}

/// A job of `--dry-run`: its command line is its output; nothing starts.
fn dry_run(sh: &Shared, spec: Spec) -> Msg {
    let command = sh.template.display(&spec.job());
    let mut stdout = command.clone().into_bytes();
    stdout.push(b'\n');
    let record = JobRecord {
        seq: spec.seq,
        inputs: spec.inputs.clone(),
        args: spec.records.iter().flatten().cloned().collect(),
        slot: spec.slot,
        host: spec.host_name(),
        command,
        start: std::time::SystemTime::now(),
        runtime: Duration::ZERO,
        cpu: Duration::ZERO,
        max_rss: 0,
        exit: job::Exit::Code(0),
        stopped: None,
        stdout,
        stderr: Vec::new(),
    };
    sh.count(true);
    Msg::Done(Box::new(record), false)
}

/// Sends each whole line of a job's standard output to the controller as the job writes it,
/// until every process holding the pipe has closed it.
fn stream_lines(sh: &Shared, spec: &Spec, pipe: std::process::ChildStdout) {
    use std::io::BufRead;
    let args: std::sync::Arc<[std::ffi::OsString]> =
        spec.records.iter().flatten().cloned().collect();
    let mut reader = std::io::BufReader::new(pipe);
    loop {
        let mut line = Vec::new();
        match reader.read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {
                let msg = Msg::Line(OutputLine {
                    seq: spec.seq,
                    args: std::sync::Arc::clone(&args),
                    line,
                });
                if sh.tx.send(msg).is_err() {
                    return;
                }
            }
        }
    }
}

fn run_job(sh: &Shared, spec: Spec) -> std::result::Result<Msg, Down> {
    let conn = spec.conn.clone();
    let mut notes = Vec::new();
    let sent = match &conn {
        Some(c) => match send_files(sh, c, &spec, &mut notes) {
            Ok(sent) => sent,
            Err(why) => return Err(Down { spec, why }),
        },
        None => Vec::new(),
    };
    let argv = match &conn {
        Some(c) => c.job_argv(sh.template, &spec.job()),
        None => sh.template.argv(&spec.job()),
    };
    let mut started = match job::start_argv(argv, sh.line_buffer, conn.is_some()) {
        Ok(s) => s,
        Err(e) => return Ok(Msg::Failed(spec, e, "cannot start")),
    };
    let pid = started.pid;
    {
        let mut running = lock(&sh.running);
        let mut entry = Running {
            pid,
            began: started.began,
            term_sent: None,
            stopped: None,
        };
        // The controller may have stopped every job between our start and this insertion.
        if sh.state() == KILL {
            let _ = sys::kill_group(pid, libc::SIGTERM);
            entry.stopped = Some(Stopped::Cancelled);
            entry.term_sent = Some(Instant::now());
        }
        running.insert(spec.seq, entry);
    }
    if let Some(pipe) = started.pipe.take() {
        stream_lines(sh, &spec, pipe);
    }
    let waited = sys::wait_ended(pid);
    let stopped = {
        let mut running = lock(&sh.running);
        let entry = running.remove(&spec.seq);
        let stopped = entry.and_then(|e| e.stopped);
        if stopped.is_some() {
            // The leader is gone but not reaped: whatever it left in its group goes too.
            let _ = sys::kill_group(pid, libc::SIGKILL);
        }
        stopped
    };
    if let Err(e) = waited {
        return Ok(Msg::Failed(spec, e, "lost track of"));
    }
    match job::finish(started) {
        Ok(ended) => {
            let command = sh.template.display(&spec.job());
            let sampled = spec.sampled;
            let mut record = ended.into_record(&spec, command, stopped);
            if let Some(c) = &conn {
                if record.stopped.is_none() && record.exit == job::Exit::Code(255) && !c.alive() {
                    let text = String::from_utf8_lossy(&record.stderr).trim().to_owned();
                    let why = if text.is_empty() {
                        "ssh exited with 255".to_owned()
                    } else {
                        format!("ssh exited with 255: {text}")
                    };
                    return Err(Down { spec, why });
                }
                if record.stopped.is_none() {
                    if let Err(why) = return_files(sh, c, &spec, sent, &mut notes) {
                        return Err(Down { spec, why });
                    }
                }
                if !notes.is_empty() {
                    notes.extend_from_slice(&record.stderr);
                    record.stderr = notes;
                }
            }
            if record.stopped != Some(Stopped::Cancelled) {
                sh.count(record.succeeded());
            }
            Ok(Msg::Done(Box::new(record), sampled))
        }
        Err(e) => Ok(Msg::Failed(spec, e, "cannot collect")),
    }
}

/// Hands finished jobs to the observer, in input order when asked.
struct Delivery<'s> {
    ordered: bool,
    next: usize,
    pending: BTreeMap<usize, JobRecord>,
    skip: &'s BTreeSet<usize>,
}

impl Delivery<'_> {
    fn push(&mut self, job: JobRecord, observer: &mut dyn Observer) -> std::io::Result<()> {
        if !self.ordered {
            return observer.finished(&job);
        }
        self.pending.insert(job.seq, job);
        loop {
            while self.skip.contains(&self.next) {
                self.next += 1;
            }
            match self.pending.remove(&self.next) {
                Some(job) => {
                    self.next += 1;
                    observer.finished(&job)?;
                }
                None => return Ok(()),
            }
        }
    }

    fn flush(&mut self, observer: &mut dyn Observer) -> std::io::Result<()> {
        for (_, job) in std::mem::take(&mut self.pending) {
            observer.finished(&job)?;
        }
        Ok(())
    }
}

/// The controller's bookkeeping.
struct Controller<'a, 's, 'o> {
    sh: &'a Shared<'s>,
    options: &'s RunOptions,
    observer: &'o mut dyn Observer,
    limits: Limits,
    budget: usize,
    fixed: Fixed,
    start_cost: (f64, bool),
    delivery: Delivery<'s>,
    held: Vec<JobRecord>,
    sample: Vec<Obs>,
    sample_received: usize,
    decided: bool,
    plan: Option<CommandPlan>,
    window: Vec<Obs>,
    /// A growth on trial: the job count before it and the jobs per second then.
    trial: Option<(usize, f64)>,
    /// Cleared once a growth did not pay: the count only shrinks from then on.
    grow: bool,
    adaptations: Vec<Adaptation>,
    succeeded: usize,
    failed: usize,
    cancelled: usize,
    done_inputs: usize,
    interrupted: Option<i32>,
    error: Option<Error>,
    /// The hosts' shared connections, closed when the controller is dropped (after every
    /// job has ended).
    remote: Remote,
    hosts_down: Vec<HostDown>,
}

/// The run's hosts beyond the scheduler's table: connections, the `--slf` file, the policy.
#[derive(Default)]
struct Remote {
    /// Declared before `dir`: the masters close before their socket directory goes.
    masters: Vec<Master>,
    dir: Option<ControlDir>,
    ssh: Vec<std::ffi::OsString>,
    basefiles: Vec<std::path::PathBuf>,
    cleanup: bool,
    /// The `--slf` file, its last modification time, and when it was last looked at.
    file: Option<(std::path::PathBuf, Option<std::time::SystemTime>, Instant)>,
    policy: Option<HostPolicy>,
    user_jobs: Option<super::Jobs>,
    /// Hosts opened so far, for the control sockets' names.
    opened: usize,
}

/// How often the `--slf` file is looked at for changes.
const SLF_POLL: Duration = Duration::from_millis(250);

/// A host opened (or not): its slot for the scheduler, its master, or why it is down.
type Opened = (HostSlot, Option<Master>, Option<String>);

impl Remote {
    /// Opens the hosts `logins` (in parallel: each connection waits for its own handshake),
    /// measures each, copies the base files.
    fn open(&mut self, logins: &[SshLogin], local_cpus: usize) -> Vec<Opened> {
        let dir = self.dir.as_ref().map(|d| d.0.clone()).unwrap_or_default();
        let first = self.opened;
        self.opened += logins.len();
        let (ssh, basefiles, user_jobs) = (&self.ssh, &self.basefiles, self.user_jobs);
        std::thread::scope(|scope| {
            let handles: Vec<_> = logins
                .iter()
                .enumerate()
                .map(|(k, login)| {
                    let control = dir.join(format!("h{}", first + k));
                    scope.spawn(move || {
                        open_one(ssh, basefiles, login, control, local_cpus, user_jobs)
                    })
                })
                .collect();
            handles
                .into_iter()
                .zip(logins)
                .map(|(h, login)| {
                    h.join().unwrap_or_else(|_| {
                        (
                            slot_of(login, None, local_cpus, 0.0, false, user_jobs),
                            None,
                            Some("could not be opened".to_owned()),
                        )
                    })
                })
                .collect()
        })
    }
}

/// A host's slot before the plan: one job per core (or the user's `-j` on its cores), at most
/// what one connection carries.
fn slot_of(
    login: &SshLogin,
    conn: Option<Arc<Conn>>,
    cores: usize,
    round_trip: f64,
    fallback: bool,
    user_jobs: Option<super::Jobs>,
) -> HostSlot {
    let cores = login.cpus.map_or(cores, |n| n.get()).max(1);
    let mut cap = user_jobs
        .and_then(|j| j.resolve(cores, decide::MAX_OVERSUBSCRIPTION * cores))
        .unwrap_or(cores)
        .max(1);
    if !login.is_local() {
        cap = cap.min(hosts::MAX_SESSIONS - 1);
    }
    HostSlot {
        conn,
        login: login.host.clone(),
        up: true,
        listed: true,
        running: 0,
        cap,
        batch: 1,
        sampled: 0,
        figures: HostFigures {
            host: login.host.clone(),
            cores,
            cores_given: login.cpus.is_some(),
            cores_fallback: fallback && login.cpus.is_none(),
            round_trip,
            job_time: None,
            inputs_per_job: 0.0,
        },
    }
}

/// Opens one host: this machine needs nothing; another gets its master, its figures and its
/// base files.
fn open_one(
    ssh: &[std::ffi::OsString],
    basefiles: &[std::path::PathBuf],
    login: &SshLogin,
    control: std::path::PathBuf,
    local_cpus: usize,
    user_jobs: Option<super::Jobs>,
) -> Opened {
    if login.is_local() {
        return (
            slot_of(login, None, local_cpus, 0.0, false, user_jobs),
            None,
            None,
        );
    }
    let master = match ssh::open(ssh, &login.host, control) {
        Ok(m) => m,
        Err(why) => {
            let mut slot = slot_of(login, None, 1, 0.0, false, user_jobs);
            slot.up = false;
            return (slot, None, Some(why));
        }
    };
    let figures = master.measure();
    let conn = Arc::clone(&master.conn);
    for base in basefiles {
        let name = base.as_os_str().as_encoded_bytes();
        match conn.send(base, name) {
            Ok(out) if out.status.success() => {}
            Ok(out) => {
                let mut slot = slot_of(login, None, 1, 0.0, false, user_jobs);
                slot.up = false;
                let why = format!(
                    "cannot copy the base file {}: {}",
                    base.display(),
                    said(&out)
                );
                return (slot, Some(master), Some(why));
            }
            Err(e) => {
                let mut slot = slot_of(login, None, 1, 0.0, false, user_jobs);
                slot.up = false;
                let why = format!("cannot copy the base file {}: {e}", base.display());
                return (slot, Some(master), Some(why));
            }
        }
    }
    let slot = slot_of(
        login,
        Some(conn),
        figures.cores.unwrap_or(1),
        figures.round_trip,
        figures.cores.is_none(),
        user_jobs,
    );
    (slot, Some(master), None)
}

impl Drop for Remote {
    fn drop(&mut self) {
        if self.cleanup && !self.basefiles.is_empty() {
            let names: Vec<Vec<u8>> = self
                .basefiles
                .iter()
                .map(|b| b.as_os_str().as_encoded_bytes().to_vec())
                .collect();
            for m in &self.masters {
                let _ = m.conn.remove(&names);
            }
        }
        for m in &mut self.masters {
            m.close();
        }
    }
}

impl Controller<'_, '_, '_> {
    /// Takes in hosts just opened: their slots join the scheduler's table (planned with the
    /// run's policy when the plan is made), the down ones are reported.
    fn add_hosts(&mut self, opened: Vec<Opened>) {
        let mut q = lock(&self.sh.queue);
        for (mut slot, master, down) in opened {
            if let Some(m) = master {
                self.remote.masters.push(m);
            }
            if let Some(why) = down {
                let d = HostDown {
                    host: slot.login.clone(),
                    why,
                };
                if let Err(e) = self.observer.host_down(&d) {
                    drop(q);
                    self.fail(Error::new(ErrorKind::Io, "cannot write a message").with_source(e));
                    q = lock(&self.sh.queue);
                }
                self.hosts_down.push(d);
            } else if let Some(policy) = &self.remote.policy {
                let planned = &hosts::plan_hosts(std::slice::from_ref(&slot.figures), policy)[0];
                slot.cap = planned.jobs;
                slot.batch = planned.batch;
            } else {
                slot.batch = q.batch;
            }
            q.hosts.push(slot);
        }
        q.limit = q.host_slots().max(1);
        drop(q);
        self.sh.wake.notify_all();
    }

    /// With `--slf`: when the file changed, hosts it adds join the run and hosts it no longer
    /// lists take no new jobs, as in GNU parallel.
    fn reread_hosts(&mut self) {
        let Some((path, seen, last)) = &mut self.remote.file else {
            return;
        };
        if last.elapsed() < SLF_POLL {
            return;
        }
        *last = Instant::now();
        let modified = std::fs::metadata(&*path).and_then(|m| m.modified()).ok();
        if modified == *seen {
            return;
        }
        *seen = modified;
        // A file being rewritten or gone keeps the hosts as they are.
        let Ok(text) = std::fs::read_to_string(&*path) else {
            return;
        };
        let Ok(logins) = SshLogin::parse_file(&text) else {
            return;
        };
        let new: Vec<SshLogin> = {
            let mut q = lock(&self.sh.queue);
            for h in &mut q.hosts {
                h.listed = logins.iter().any(|l| l.host == h.login);
            }
            q.limit = q.host_slots().max(1);
            logins
                .into_iter()
                .filter(|l| !q.hosts.iter().any(|h| h.login == l.host))
                .collect()
        };
        self.sh.wake.notify_all();
        if !new.is_empty() {
            let opened = self.remote.open(&new, self.limits.cpus);
            self.add_hosts(opened);
        }
    }

    fn fail(&mut self, err: Error) {
        if self.error.is_none() {
            self.error = Some(err);
        }
        self.sh.set_state(KILL);
        self.sh.stop_all(libc::SIGTERM);
    }

    fn deliver(&mut self, job: JobRecord) {
        if let Err(e) = self.delivery.push(job, self.observer) {
            self.fail(Error::new(ErrorKind::Io, "cannot write a job's output").with_source(e));
        }
    }

    fn handle(&mut self, msg: Msg) {
        let (job, sampled) = match msg {
            Msg::Done(job, sampled) => (*job, sampled),
            Msg::Line(line) => {
                if let Err(e) = self.observer.line(&line) {
                    self.fail(
                        Error::new(ErrorKind::Io, "cannot write a job's output").with_source(e),
                    );
                }
                return;
            }
            Msg::Failed(spec, e, what) => {
                let err = start_error(self.sh.template, &spec, e, what);
                self.fail(err);
                return;
            }
            Msg::HostDown(d) => {
                if let Err(e) = self.observer.host_down(&d) {
                    self.fail(Error::new(ErrorKind::Io, "cannot write a message").with_source(e));
                }
                self.hosts_down.push(d);
                return;
            }
        };
        if job.stopped == Some(Stopped::Cancelled) {
            self.cancelled += 1;
        } else if job.succeeded() {
            self.succeeded += 1;
        } else {
            self.failed += 1;
        }
        self.done_inputs += job.inputs.len();
        let skipped = lock(&self.sh.queue).skipped_inputs;
        self.observer
            .progress(self.done_inputs + skipped, self.sh.len);
        let obs = Obs::of(&job);
        if sampled && !self.decided {
            self.sample.push(obs);
            self.sample_received += 1;
            self.held.push(job);
        } else {
            if self.decided && job.stopped.is_none() {
                self.window.push(obs);
            }
            self.deliver(job);
        }
        self.maybe_decide(false);
        self.maybe_adapt();
    }

    fn maybe_decide(&mut self, at_end: bool) {
        if self.decided {
            return;
        }
        let (ready, left, mean_cost) = {
            let q = lock(&self.sh.queue);
            let sample_out = q.sample.is_empty() || q.drained();
            (
                sample_out && self.sample_received == q.sample_dispatched,
                q.left(self.sh.len),
                (q.cost_n > 0).then(|| q.cost_sum / q.cost_n),
            )
        };
        if !(ready || at_end) {
            return;
        }
        self.decided = true;
        let held = std::mem::take(&mut self.held);
        // A shell says 127 for a command it cannot find; when every sampled job says so, the
        // command is missing: one message, not one per input.
        if self.sh.template.uses_shell()
            && !held.is_empty()
            && held.iter().all(|j| j.exit == job::Exit::Code(127))
        {
            let said = String::from_utf8_lossy(&held[0].stderr).trim().to_owned();
            self.fail(
                Error::new(
                    ErrorKind::WorkerFailed,
                    format!(
                        "the command was not found: every sampled job exited with status 127 \
                     (the shell said: {said:?}); check its name and PATH"
                    ),
                )
                .with_source(std::io::Error::new(std::io::ErrorKind::NotFound, said)),
            );
            return;
        }
        if self.sample.is_empty() {
            // Nothing was sampled (every job ran before): run the rest as the options say.
            if self.options.plan_only {
                self.sh.set_state(DRAIN);
            } else {
                lock(&self.sh.queue).gated = false;
                self.sh.wake.notify_all();
            }
        } else {
            let (cost, fallback) = self.start_cost;
            if self.sh.template.batches() {
                self.limits.inputs_per_command_line =
                    mean_cost.map(|c| (self.budget / c.max(1)).max(1));
            }
            let hosted = !lock(&self.sh.queue).hosts.is_empty();
            let local: Vec<measure::Obs> = held
                .iter()
                .filter(|j| j.host == ":")
                .map(measure::Obs::of)
                .collect();
            let mut m = if hosted && !local.is_empty() {
                measure::summarize(&local, cost)
            } else {
                measure::summarize(&self.sample, cost)
            };
            if hosted && local.is_empty() {
                // The CPU time of a remote job is not measured (wait4 sees the local ssh): the
                // plan for this machine stands in with CPU-bound jobs.
                m.cpu_ratio = 1.0;
            }
            m.start_cost_fallback = fallback;
            let mut plan = decide::decide(&m, &self.limits, left, self.fixed);
            if hosted {
                self.plan_hosts(&mut plan, &m, &held, !local.is_empty(), left);
            }
            if let Err(e) = self.observer.planned(&plan) {
                self.fail(Error::new(ErrorKind::Io, "cannot write the plan").with_source(e));
            }
            if self.options.plan_only {
                self.sh.set_state(DRAIN);
            } else if !at_end {
                let mut q = lock(&self.sh.queue);
                q.batch = plan.batch.get();
                q.limit = if q.hosts.is_empty() {
                    plan.jobs.get()
                } else {
                    q.host_slots().max(1)
                };
                q.gated = false;
                drop(q);
                self.sh.wake.notify_all();
            }
            self.plan = Some(plan);
        }
        let mut held = held;
        held.sort_by_key(|j| j.seq);
        for job in held {
            self.deliver(job);
        }
    }

    /// The plan per host, from the hosts' figures and what their sampled jobs measured; the
    /// scheduler's table takes each host's jobs and batch.
    fn plan_hosts(
        &mut self,
        plan: &mut CommandPlan,
        m: &decide::Measured,
        held: &[JobRecord],
        local_measured: bool,
        left: usize,
    ) {
        let mut q = lock(&self.sh.queue);
        let mut figures = Vec::with_capacity(q.hosts.len());
        for h in &mut q.hosts {
            let ran: Vec<&JobRecord> = held.iter().filter(|j| j.host == h.login).collect();
            if !ran.is_empty() {
                let n = ran.len() as f64;
                let wall = ran.iter().map(|j| j.runtime.as_secs_f64()).sum::<f64>() / n;
                h.figures.job_time = Some((wall - h.figures.round_trip).max(0.0));
                h.figures.inputs_per_job =
                    ran.iter().map(|j| j.inputs.len()).sum::<usize>() as f64 / n;
            }
            figures.push(h.figures.clone());
        }
        let remote_rt = figures
            .iter()
            .filter(|f| f.host != ":")
            .map(|f| f.round_trip)
            .fold(f64::INFINITY, f64::min);
        let fixed_cost = if local_measured || !remote_rt.is_finite() {
            m.fixed_per_job
        } else {
            (m.fixed_per_job - remote_rt).max(0.0)
        };
        let batch = match self.fixed.batch {
            Some(b) => BatchRule::Fixed(b.get()),
            None if !self.fixed.batches => BatchRule::Fixed(1),
            None => BatchRule::Measured {
                base: plan.batch.get(),
                per_input: m.per_input,
                fixed: fixed_cost,
                most: self.limits.inputs_per_command_line.unwrap_or(usize::MAX),
                inputs_left: left,
            },
        };
        let policy = HostPolicy {
            jobs_per_core: if local_measured {
                plan.jobs.get() as f64 / self.limits.cpus.max(1) as f64
            } else {
                1.0
            },
            jobs_per_core_measured: local_measured,
            user_jobs: self.remote.user_jobs,
            batch,
        };
        let plans = hosts::plan_hosts(&figures, &policy);
        for (h, p) in q.hosts.iter_mut().zip(&plans) {
            h.cap = p.jobs;
            h.batch = p.batch;
        }
        q.limit = q.host_slots().max(1);
        plan.hosts = plans;
        self.remote.policy = Some(policy);
    }

    /// Reconsiders the job count once enough jobs ran since the last look. The measured CPU
    /// ratio proposes a count; a proposal to grow is a trial, kept only if the jobs finished per
    /// second rose by [`ADAPT_MIN_GAIN`]. The check matters because a job's wall time also
    /// grows while it waits for a busy CPU (other programs, or too many jobs): that looks like
    /// waiting work and asks for still more jobs, which a throughput that stays flat refutes.
    fn maybe_adapt(&mut self) {
        let Some(plan) = &self.plan else { return };
        // With hosts, the job counts are the plan per host's.
        if self.fixed.jobs.is_some() || self.sh.state() != RUN || !plan.hosts.is_empty() {
            return;
        }
        let current = lock(&self.sh.queue).limit;
        if self.window.len() < ADAPT_MIN_JOBS.max(2 * current) {
            return;
        }
        let Some(throughput) = measure::throughput(&self.window) else {
            return;
        };
        let m = measure::summarize(&std::mem::take(&mut self.window), plan.measured.start_cost);
        let left = lock(&self.sh.queue).left(self.sh.len);
        // Near the end the jobs left, not the measurements, bound the count: nothing to adapt.
        if left < 2 * current * plan.batch.get() {
            return;
        }
        let after_jobs = self.succeeded + self.failed;
        if let Some((from, baseline)) = self.trial.take() {
            if throughput < baseline * (1.0 + ADAPT_MIN_GAIN) {
                lock(&self.sh.queue).limit = from;
                self.grow = false;
                self.adaptations.push(Adaptation {
                    after_jobs,
                    from: current,
                    to: from,
                    cpu_ratio: m.cpu_ratio,
                    job_time: m.job_time,
                    throughput,
                    reverted: true,
                });
                return;
            }
        }
        let fixed = Fixed {
            batch: Some(plan.batch),
            ..self.fixed
        };
        let wanted = decide::decide(&m, &self.limits, left, fixed).jobs.get();
        if wanted > current && !self.grow {
            return;
        }
        if (wanted as f64 - current as f64).abs() >= ADAPT_CHANGE * current as f64 {
            if wanted > current {
                self.trial = Some((current, throughput));
            }
            lock(&self.sh.queue).limit = wanted;
            self.sh.wake.notify_all();
            self.adaptations.push(Adaptation {
                after_jobs,
                from: current,
                to: wanted,
                cpu_ratio: m.cpu_ratio,
                job_time: m.job_time,
                throughput,
                reverted: false,
            });
        }
    }

    /// Timeouts, their escalation to SIGKILL, the interrupt flag, and the `--slf` file.
    fn tick(&mut self, cancel: &AtomicUsize) {
        if self.sh.state() == RUN {
            self.reread_hosts();
        }
        let signal = cancel.load(Ordering::SeqCst);
        if signal != 0 && self.interrupted.is_none() {
            self.interrupted = Some(signal as i32);
            self.sh.set_state(KILL);
            self.sh.stop_all(signal as i32);
        }
        let now = Instant::now();
        for r in lock(&self.sh.running).values_mut() {
            if let (None, Some(limit)) = (r.stopped, self.options.timeout) {
                if now.duration_since(r.began) >= limit {
                    let _ = sys::kill_group(r.pid, libc::SIGTERM);
                    r.stopped = Some(Stopped::TimedOut);
                    r.term_sent = Some(now);
                }
            }
            if r.term_sent
                .is_some_and(|t| now.duration_since(t) >= KILL_GRACE)
            {
                let _ = sys::kill_group(r.pid, libc::SIGKILL);
            }
        }
    }
}

fn start_error(template: &Template, spec: &Spec, e: std::io::Error, what: &str) -> Error {
    let program = template.program().to_string_lossy().into_owned();
    let hint = match e.kind() {
        std::io::ErrorKind::NotFound => " — is it installed and on PATH?",
        std::io::ErrorKind::PermissionDenied => " — is it an executable file?",
        _ if e.raw_os_error() == Some(libc::E2BIG) => {
            " — the command line is too long: use fewer or shorter inputs per job"
        }
        _ => "",
    };
    Error::new(
        ErrorKind::WorkerFailed,
        format!(
            "{what} `{program}` (job {}, input {}): {e}{hint}",
            spec.seq,
            spec.inputs.start + 1
        ),
    )
    .with_item(spec.inputs.start)
    .with_source(e)
}

/// The most jobs the limits allow at once (`-j 0`): open files, half of `ulimit -u`, and
/// [`MAX_OVERSUBSCRIPTION`](decide::MAX_OVERSUBSCRIPTION) × the CPUs.
fn max_jobs(limits: &Limits) -> usize {
    let mut max = decide::MAX_OVERSUBSCRIPTION * limits.cpus.max(1);
    if let Some(n) = limits.open_files_limit {
        max = max.min((n.saturating_sub(decide::RESERVED_FILES) / decide::FILES_PER_JOB) as usize);
    }
    if let Some(n) = limits.process_limit {
        max = max.min(
            (n as f64 * decide::PROCESS_LIMIT_SHARE) as usize / limits.processes_per_job.max(1),
        );
    }
    max.max(1)
}

/// Inputs planned for when a stream's end has not been seen yet: the library's assumption for
/// iterators of unknown length.
const UNKNOWN_LEFT: usize = amorsize::plan::ASSUMED_ITEMS;

/// Inputs read ahead of the jobs while the sample runs, at most: a stream that ends within
/// them is planned for its exact length; memory stays bounded by them.
const LOOKAHEAD: usize = UNKNOWN_LEFT;

/// Inputs read ahead in one go, so that the plan can see how far the reading got.
const LOOKAHEAD_CHUNK: usize = 256;

/// The hosts of `options` (`-S`, `--slf`): the files that travel with each job, the remote
/// side (its control directory, ssh program, base files), and the sshlogins to open.
fn hosts_of(options: &RunOptions) -> Result<(Travel, Remote, Vec<SshLogin>)> {
    let mut travel = Travel::default();
    let mut remote = Remote::default();
    let mut logins = Vec::new();
    if let Some(h) = options.hosts.as_ref().filter(|h| h.any()) {
        for name in &h.transfer {
            travel
                .transfer
                .push(FileName::parse("--transferfile", name)?);
        }
        for name in &h.returns {
            travel.returns.push(FileName::parse("--return", name)?);
        }
        travel.cleanup = h.cleanup;
        logins = h.logins.clone();
        if let Some(path) = &h.file {
            let read = |e: std::io::Error| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("cannot read the sshlogin file {}: {e}", path.display()),
                )
                .with_source(e)
            };
            let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
            let text = std::fs::read_to_string(path).map_err(read)?;
            let listed = SshLogin::parse_file(&text).map_err(|e| {
                Error::new(
                    ErrorKind::InvalidInput,
                    format!("in the sshlogin file {}: {e}", path.display()),
                )
            })?;
            for l in listed {
                if !logins.iter().any(|a: &SshLogin| a.host == l.host) {
                    logins.push(l);
                }
            }
            remote.file = Some((path.clone(), modified, Instant::now()));
        }
        if logins.is_empty() && remote.file.is_none() {
            return Err(Error::new(ErrorKind::InvalidInput, "no sshlogin given"));
        }
        remote.dir = Some(ControlDir::new()?);
        remote.ssh = h.ssh.clone();
        remote.basefiles = h.basefiles.clone();
        remote.cleanup = h.cleanup;
        remote.user_jobs = match options.jobs {
            super::Jobs::Auto => None,
            j => Some(j),
        };
    }
    Ok((travel, remote, logins))
}

/// The batch sizes of the sample's jobs: one round of `round` jobs (one per CPU), at least
/// [`MIN_SAMPLE_JOBS`]; with an automatic batch, twice that, every other job taking
/// [`SAMPLE_BATCH`] inputs, so that the fastest of each size can be used.
fn sample_batches(round: usize, auto_batch: bool, batch: usize) -> VecDeque<usize> {
    let least = if auto_batch {
        2 * MIN_SAMPLE_JOBS
    } else {
        MIN_SAMPLE_JOBS
    };
    (0..round.max(least))
        .map(|k| {
            if auto_batch && k % 2 == 1 {
                SAMPLE_BATCH
            } else {
                batch
            }
        })
        .collect()
}

pub(crate) fn run(
    template: &Template,
    inputs: Inputs<'_>,
    options: &RunOptions,
    cancel: &AtomicUsize,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let began = Instant::now();
    let budget = measure::arg_budget(template);
    let limits = measure::limits(template, None, budget);
    let dry = options.dry_run;
    let user_jobs = if dry {
        // One at a time: the lines come out in job order, as GNU parallel prints them.
        Some(NonZeroUsize::MIN)
    } else {
        options
            .jobs
            .resolve(limits.cpus, max_jobs(&limits))
            .and_then(NonZeroUsize::new)
    };
    let user_batch = match options.batch {
        None if dry && template.batches() => NonZeroUsize::new(DRY_RUN_BATCH),
        b => b,
    };
    let fixed = Fixed {
        jobs: user_jobs,
        batch: user_batch,
        batches: template.batches(),
    };
    let auto_batch = template.batches() && user_batch.is_none();
    let deciding = !dry && (user_jobs.is_none() || auto_batch || options.plan_only);
    let concurrency = user_jobs.map_or(limits.cpus, |j| j.get());
    let batch = user_batch.map_or(1, |b| b.get());
    let sample = if deciding {
        sample_batches(concurrency.min(limits.cpus), auto_batch, batch)
    } else {
        VecDeque::new()
    };
    let start_cost = if dry {
        (0.0, false)
    } else {
        match measure::start_cost() {
            Some(c) => (c, false),
            None => (measure::FALLBACK_START_COST, true),
        }
    };
    let (travel, remote, logins) = hosts_of(options)?;
    let hosted = remote.dir.is_some() && !dry;
    let (tx, rx): (Sender<Msg>, Receiver<Msg>) = crossbeam_channel::unbounded();
    let Inputs { iter, len } = inputs;
    let shared = Shared {
        template,
        source: Mutex::new(iter),
        len,
        dry_run: dry,
        line_buffer: options.line_buffer,
        queue: Mutex::new(Queue {
            next_input: 0,
            buffer: VecDeque::new(),
            read: 0,
            exhausted: false,
            reading: false,
            read_error: None,
            free_slots: BTreeSet::new(),
            next_slot: 1,
            cost_sum: 0,
            cost_n: 0,
            next_seq: 1,
            sample,
            sample_dispatched: 0,
            gated: deciding,
            batch,
            limit: concurrency,
            threads: 0,
            skip: &options.skip,
            skipped_jobs: 0,
            skipped_inputs: 0,
            budget,
            hosts: Vec::new(),
            requeue: VecDeque::new(),
            all_down: false,
        }),
        wake: Condvar::new(),
        running: Mutex::new(HashMap::new()),
        state: AtomicU8::new(RUN),
        tx,
        halt: options.halt,
        outcomes: Mutex::new((0, 0)),
        halted: AtomicBool::new(false),
        travel,
    };
    let mut ctl = Controller {
        sh: &shared,
        options,
        observer,
        limits,
        budget,
        fixed,
        start_cost,
        delivery: Delivery {
            ordered: options.keep_order,
            next: 1,
            pending: BTreeMap::new(),
            skip: &options.skip,
        },
        held: Vec::new(),
        sample: Vec::new(),
        sample_received: 0,
        decided: false,
        plan: None,
        window: Vec::new(),
        trial: None,
        grow: true,
        adaptations: Vec::new(),
        succeeded: 0,
        failed: 0,
        cancelled: 0,
        done_inputs: 0,
        interrupted: None,
        error: None,
        remote,
        hosts_down: Vec::new(),
    };
    if hosted {
        let opened = ctl.remote.open(&logins, ctl.limits.cpus);
        ctl.add_hosts(opened);
        let mut q = lock(&shared.queue);
        let usable = q.hosts.iter().filter(|h| h.usable()).count();
        if usable == 0 && ctl.remote.file.is_none() {
            drop(q);
            return Err(Error::new(
                ErrorKind::WorkerFailed,
                format!(
                    "no host can be reached ({}); nothing was run",
                    down_list(&ctl.hosts_down)
                ),
            ));
        }
        // Every host runs sample jobs, two each (with an automatic batch, one of each size).
        if deciding {
            while q.sample.len() < 2 * usable {
                let k = q.sample.len();
                let size = if auto_batch && k % 2 == 1 {
                    SAMPLE_BATCH
                } else {
                    batch
                };
                q.sample.push_back(size);
            }
        }
    }
    std::thread::scope(|scope| -> Result<()> {
        let mut last_tick = Instant::now();
        loop {
            // Keep as many workers as jobs allowed at once.
            let spawn = {
                let mut q = lock(&shared.queue);
                let more = if shared.state() == RUN && !q.drained() {
                    q.limit.saturating_sub(q.threads)
                } else {
                    0
                };
                q.threads += more;
                more
            };
            for _ in 0..spawn {
                let sh = &shared;
                let spawned = std::thread::Builder::new()
                    .name("amorsize-job".into())
                    .stack_size(WORKER_STACK)
                    .spawn_scoped(scope, move || worker(sh));
                if let Err(e) = spawned {
                    lock(&shared.queue).threads -= 1;
                    ctl.fail(
                        Error::new(ErrorKind::Io, "cannot start a thread to run jobs")
                            .with_source(e),
                    );
                }
            }
            match rx.recv_timeout(TICK) {
                Ok(msg) => ctl.handle(msg),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => break,
            }
            if last_tick.elapsed() >= TICK {
                ctl.tick(cancel);
                // A sample of skipped jobs only ends without a message.
                ctl.maybe_decide(false);
                last_tick = Instant::now();
            }
            if lock(&shared.queue).threads == 0 {
                break;
            }
        }
        // Every worker has ended, so every job has been reaped; what they sent is in the channel.
        while let Ok(msg) = rx.try_recv() {
            ctl.handle(msg);
        }
        Ok(())
    })?;
    if ctl.error.is_none() {
        if let Some(e) = lock(&shared.queue).read_error.take() {
            ctl.fail(
                Error::new(ErrorKind::Io, format!("cannot read the inputs: {e}")).with_source(e),
            );
        }
    }
    if ctl.error.is_none() {
        ctl.maybe_decide(true);
    }
    if let Err(e) = ctl.delivery.flush(ctl.observer) {
        ctl.fail(Error::new(ErrorKind::Io, "cannot write a job's output").with_source(e));
    }
    if let Some(err) = ctl.error.take() {
        return Err(err);
    }
    let q = lock(&shared.queue);
    let requeued: usize = q.requeue.iter().map(|s| s.inputs.len()).sum();
    let not_run = requeued + q.buffer.len() + len.map_or(0, |n| n.saturating_sub(q.read));
    if q.all_down && not_run > 0 && ctl.interrupted.is_none() {
        return Err(Error::new(
            ErrorKind::WorkerFailed,
            format!(
                "every host is down ({}): {not_run} input{} not run{}",
                down_list(&ctl.hosts_down),
                if not_run == 1 { " was" } else { "s were" },
                if len.is_none() && !q.exhausted {
                    " (and the rest of the input stream)"
                } else {
                    ""
                }
            ),
        ));
    }
    Ok(Summary {
        succeeded: ctl.succeeded,
        failed: ctl.failed,
        cancelled: ctl.cancelled,
        skipped: q.skipped_jobs,
        not_run,
        interrupted: ctl.interrupted,
        halted: shared.halted.load(Ordering::SeqCst),
        plan: ctl.plan.take(),
        adaptations: std::mem::take(&mut ctl.adaptations),
        hosts_down: std::mem::take(&mut ctl.hosts_down),
        elapsed: began.elapsed(),
    })
}

/// The down hosts and why, for a message.
fn down_list(down: &[HostDown]) -> String {
    down.iter()
        .map(|d| format!("{}: {}", d.host, d.why))
        .collect::<Vec<_>>()
        .join("; ")
}
