//! The engine: worker threads that start jobs and wait for them, and the calling thread as the
//! controller that samples, decides, delivers output, enforces timeouts, halts and interrupts.
//!
//! Each worker runs one job at a time: it starts the job in a process group of its own, records
//! it in the table of running jobs, waits for it to end *without reaping it*, removes it from
//! the table, then reaps it. The controller signals process groups only while holding the
//! table, so it never signals a group whose leader has been reaped (whose id could be reused).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::ffi::OsString;
use std::sync::atomic::{AtomicBool, AtomicU8, AtomicUsize, Ordering};
use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender};

use super::decide::{self, CommandPlan, Fixed, Limits};
use super::job::{self, JobRecord, Spec, Stopped};
use super::measure::{self, Obs};
use super::template::Template;
use super::{sys, Adaptation, Observer, RunOptions, Summary};
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

/// The jobs still to hand out.
struct Queue<'s> {
    next_input: usize,
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
}

enum Next {
    Job(Spec),
    Wait,
    Done,
}

impl Queue<'_> {
    fn next(&mut self, template: &Template, inputs: &[OsString]) -> Next {
        loop {
            if self.next_input >= inputs.len() {
                return Next::Done;
            }
            // A sample entry is used up only by a job that runs (not by one skipped).
            let (size, sampled) = match self.sample.front() {
                Some(&size) => (size, true),
                None if self.gated => return Next::Wait,
                None => (self.batch, false),
            };
            let start = self.next_input;
            let mut end = start;
            let mut bytes = 0;
            while end < inputs.len() && end - start < size {
                let cost = template.input_cost(&inputs[end]);
                if end > start && bytes + cost > self.budget {
                    break;
                }
                bytes += cost;
                end += 1;
            }
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
            return Next::Job(Spec {
                seq,
                inputs: start..end,
                sampled,
            });
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
    Failed(Spec, std::io::Error, &'static str),
}

struct Shared<'s> {
    template: &'s Template,
    inputs: &'s [OsString],
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
            match q.next(self.template, self.inputs) {
                Next::Job(spec) => return Some(spec),
                Next::Done => {
                    q.threads -= 1;
                    return None;
                }
                Next::Wait => q = self.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
            }
        }
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
        let msg = run_job(sh, spec);
        if sh.tx.send(msg).is_err() {
            break;
        }
    }
}

fn run_job(sh: &Shared, spec: Spec) -> Msg {
    let inputs = &sh.inputs[spec.inputs.clone()];
    let started = match job::start(sh.template, inputs) {
        Ok(s) => s,
        Err(e) => return Msg::Failed(spec, e, "cannot start"),
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
        return Msg::Failed(spec, e, "lost track of");
    }
    match job::finish(started) {
        Ok(ended) => {
            let command = sh.template.display(inputs);
            let sampled = spec.sampled;
            let record = ended.into_record(&spec, command, stopped);
            if record.stopped != Some(Stopped::Cancelled) {
                sh.count(record.succeeded());
            }
            Msg::Done(Box::new(record), sampled)
        }
        Err(e) => Msg::Failed(spec, e, "cannot collect"),
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
struct Controller<'s, 'o> {
    sh: &'s Shared<'s>,
    options: &'s RunOptions,
    observer: &'o mut dyn Observer,
    limits: Limits,
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
}

impl Controller<'_, '_> {
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
            Msg::Failed(spec, e, what) => {
                let err = start_error(self.sh.template, &spec, e, what);
                self.fail(err);
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
            .progress(self.done_inputs + skipped, self.sh.inputs.len());
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
        let (ready, left) = {
            let q = lock(&self.sh.queue);
            let sample_out = q.sample.is_empty() || q.next_input >= self.sh.inputs.len();
            (
                sample_out && self.sample_received == q.sample_dispatched,
                self.sh.inputs.len() - q.next_input,
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
            let mut m = measure::summarize(&self.sample, cost);
            m.start_cost_fallback = fallback;
            let plan = decide::decide(&m, &self.limits, left, self.fixed);
            if let Err(e) = self.observer.planned(&plan) {
                self.fail(Error::new(ErrorKind::Io, "cannot write the plan").with_source(e));
            }
            if self.options.plan_only {
                self.sh.set_state(DRAIN);
            } else if !at_end {
                let mut q = lock(&self.sh.queue);
                q.batch = plan.batch.get();
                q.limit = plan.jobs.get();
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

    /// Reconsiders the job count once enough jobs ran since the last look. The measured CPU
    /// ratio proposes a count; a proposal to grow is a trial, kept only if the jobs finished per
    /// second rose by [`ADAPT_MIN_GAIN`]. The check matters because a job's wall time also
    /// grows while it waits for a busy CPU (other programs, or too many jobs): that looks like
    /// waiting work and asks for still more jobs, which a throughput that stays flat refutes.
    fn maybe_adapt(&mut self) {
        let Some(plan) = &self.plan else { return };
        if self.options.jobs.is_some() || self.sh.state() != RUN {
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
        let left = {
            let q = lock(&self.sh.queue);
            self.sh.inputs.len() - q.next_input
        };
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

    /// Timeouts, their escalation to SIGKILL, and the interrupt flag.
    fn tick(&mut self, cancel: &AtomicUsize) {
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

pub(crate) fn run(
    template: &Template,
    inputs: &[OsString],
    options: &RunOptions,
    cancel: &AtomicUsize,
    observer: &mut dyn Observer,
) -> Result<Summary> {
    let began = Instant::now();
    let budget = measure::arg_budget(template);
    let limits = measure::limits(template, inputs, budget);
    let fixed = Fixed {
        jobs: options.jobs,
        batch: options.batch,
        batches: template.batches(),
    };
    let auto_batch = template.batches() && options.batch.is_none();
    let deciding = options.jobs.is_none() || auto_batch || options.plan_only;
    let concurrency = options.jobs.map_or(limits.cpus, |j| j.get());
    // With an automatic batch, two jobs of each size, so that the fastest of each can be used.
    let min_sample = if auto_batch {
        2 * MIN_SAMPLE_JOBS
    } else {
        MIN_SAMPLE_JOBS
    };
    let sample_jobs = concurrency.min(limits.cpus).max(min_sample);
    let batch = options.batch.map_or(1, |b| b.get());
    let sample: std::collections::VecDeque<usize> = (0..sample_jobs)
        .map(|k| {
            if auto_batch && k % 2 == 1 {
                SAMPLE_BATCH
            } else {
                batch
            }
        })
        .collect();
    let start_cost = match measure::start_cost() {
        Some(c) => (c, false),
        None => (measure::FALLBACK_START_COST, true),
    };
    let (tx, rx): (Sender<Msg>, Receiver<Msg>) = crossbeam_channel::unbounded();
    let shared = Shared {
        template,
        inputs,
        queue: Mutex::new(Queue {
            next_input: 0,
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
        }),
        wake: Condvar::new(),
        running: Mutex::new(HashMap::new()),
        state: AtomicU8::new(RUN),
        tx,
        halt: options.halt,
        outcomes: Mutex::new((0, 0)),
        halted: AtomicBool::new(false),
    };
    let mut ctl = Controller {
        sh: &shared,
        options,
        observer,
        limits,
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
    };
    std::thread::scope(|scope| -> Result<()> {
        let mut last_tick = Instant::now();
        loop {
            // Keep as many workers as jobs allowed at once.
            let spawn = {
                let mut q = lock(&shared.queue);
                let more = if shared.state() == RUN && q.next_input < inputs.len() {
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
        ctl.maybe_decide(true);
    }
    if let Err(e) = ctl.delivery.flush(ctl.observer) {
        ctl.fail(Error::new(ErrorKind::Io, "cannot write a job's output").with_source(e));
    }
    if let Some(err) = ctl.error.take() {
        return Err(err);
    }
    let q = lock(&shared.queue);
    Ok(Summary {
        succeeded: ctl.succeeded,
        failed: ctl.failed,
        cancelled: ctl.cancelled,
        skipped: q.skipped_jobs,
        not_run: inputs.len() - q.next_input,
        interrupted: ctl.interrupted,
        halted: shared.halted.load(Ordering::SeqCst),
        plan: ctl.plan.take(),
        adaptations: std::mem::take(&mut ctl.adaptations),
        elapsed: began.elapsed(),
    })
}
