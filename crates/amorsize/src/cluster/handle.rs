//! The cluster as process 0 holds it: maps, streams, and the end.

use super::control::Health;
use super::costs::{self, Calibration};
use super::decide::{self, Choice, ClusterPlan};
use super::engine::{Chunk, Command, Reply, Shared, Work, AHEAD};
use super::hosts::Hosts;
use super::start::{lost_error, stop_children};
use crate::exec::process::{decode_slot, Function};
use crate::model::network::Shape;
use crate::{sample, Error, ErrorKind, Options, Result};
use crossbeam_channel::{select, Receiver, Sender};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::BTreeMap;
use std::marker::PhantomData;
use std::process::Child;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};
use timely::communication::WorkerGuards;

/// How long a run waits for the monitors to name a process after process 0's own workers
/// stopped (timely's failure travels faster than a missed heartbeat).
const NAME_WAIT: Duration = Duration::from_secs(1);

/// How long [`Cluster::shutdown`] waits for the processes to finish the dataflow.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(10);

pub(super) struct Inner {
    pub hosts: Hosts,
    pub commands: Option<Sender<Command>>,
    pub shared: Arc<Shared>,
    pub health: Arc<Health>,
    pub guards: Option<WorkerGuards<()>>,
    pub monitors: Vec<JoinHandle<()>>,
    pub children: Vec<(usize, Child)>,
    pub startup: Vec<Duration>,
    /// Per process: its share of its host's usable cores.
    pub cores: Vec<f64>,
    pub next_id: u64,
}

/// A running cluster, held by process 0 (see [`init`](super::init)).
///
/// Dropping it ends the cluster as [`Cluster::shutdown`] does, ignoring errors.
pub struct Cluster {
    inner: Inner,
    calibration: Calibration,
}

impl std::fmt::Debug for Cluster {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cluster")
            .field("addresses", &self.inner.hosts.addresses)
            .field("workers", &self.inner.hosts.workers)
            .finish_non_exhaustive()
    }
}

/// Results of a planned map: the plan, and every item's result in input order.
#[derive(Debug)]
#[non_exhaustive]
pub struct ClusterOutcome<R> {
    /// The decision and its figures.
    pub plan: ClusterPlan,
    /// One result per item, in input order.
    pub results: Vec<R>,
    /// Wall time of the run after the decision (the sample and the decision excluded).
    pub measured: Duration,
}

impl Cluster {
    pub(super) fn measured(inner: Inner, began: Instant) -> Result<Cluster> {
        let mut cluster = Cluster {
            inner,
            calibration: Calibration::default(),
        };
        match costs::calibrate(&mut cluster, began) {
            Ok(calibration) => {
                cluster.calibration = calibration;
                Ok(cluster)
            }
            Err(e) => {
                cluster.stop_after_failure();
                Err(e)
            }
        }
    }

    /// Processes in the cluster.
    pub fn processes(&self) -> usize {
        self.inner.hosts.processes()
    }

    /// Workers (threads) in each process.
    pub fn workers(&self) -> usize {
        self.inner.hosts.workers
    }

    /// What each process was measured to cost when the cluster started.
    pub fn calibration(&self) -> &Calibration {
        &self.calibration
    }

    /// Runs `function` on every item on `shape` (the first `shape.hosts` processes, `shape.workers`
    /// workers in each, chunks of `shape.chunk` items), whatever it costs; results in input order.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WorkerFailed`] naming a lost process; [`ErrorKind::Panicked`] naming the
    /// first item (in input order) the function panicked on; [`ErrorKind::Serialization`] for
    /// a value that could not be encoded or decoded.
    pub fn run<T, R>(
        &mut self,
        function: Function<T, R>,
        items: &[T],
        shape: Shape,
    ) -> Result<Vec<R>>
    where
        T: Serialize,
        R: DeserializeOwned,
    {
        self.stream(function, items.iter(), shape)?.collect()
    }

    /// Runs `function` on the items of `items` on `shape`, pulling items as chunks go out and
    /// handing results out in input order as they arrive: memory holds the chunks in flight
    /// (a few per worker), not the whole input or output.
    ///
    /// # Errors
    ///
    /// As [`Cluster::run`]; each error also ends the stream.
    pub fn stream<'a, T, R, I>(
        &'a mut self,
        function: Function<T, R>,
        items: I,
        shape: Shape,
    ) -> Result<Results<'a, T, R, I::IntoIter>>
    where
        I: IntoIterator,
        I::Item: std::borrow::Borrow<T>,
        T: Serialize + 'a,
        R: DeserializeOwned,
    {
        self.check()?;
        let workers = self.worker_indices(shape);
        let (chunks, chunk_rx) = crossbeam_channel::unbounded();
        let (replies_tx, replies) = crossbeam_channel::unbounded();
        let run = self.next_run();
        self.send(Command::Run(Work {
            run,
            function: function.name().to_owned(),
            chunks: chunk_rx,
            workers: workers.clone(),
            replies: replies_tx,
        }))?;
        Ok(Results {
            cluster: self,
            items: items.into_iter(),
            chunk: shape.chunk.max(1),
            ahead: AHEAD * workers.len(),
            chunks: Some(chunks),
            replies,
            sent: BTreeMap::new(),
            arrived: BTreeMap::new(),
            current: None,
            next_index: 0,
            next_chunk: 0,
            failed: false,
            _types: PhantomData,
        })
    }

    /// Samples `function` on the first items (their results are kept), measures the
    /// serialization of an item and its result, and decides between this cluster and the
    /// threads of this machine ([`decide`](super::decide)); runs the rest that way. Every item
    /// runs exactly once.
    ///
    /// # Errors
    ///
    /// As [`Cluster::run`]; a panic on a sampled item or on threads is
    /// [`ErrorKind::Panicked`] too.
    pub fn execute<T, R>(
        &mut self,
        function: Function<T, R>,
        items: &[T],
        options: &Options,
    ) -> Result<ClusterOutcome<R>>
    where
        T: Serialize + DeserializeOwned + Sync,
        R: Serialize + DeserializeOwned + Send,
    {
        self.check()?;
        let f = |item: &T| function.call(item);
        let sampled = sample::sample_slice(items, &f, &options.sample)?;
        let done: std::collections::HashSet<usize> =
            sampled.results.iter().map(|(i, _)| *i).collect();
        let rest = items.len() - done.len();
        let mut workload = crate::model::Workload::from_sample(&sampled.figures, rest);
        let timed = sampled.results.iter().take(3);
        workload.transfer = sample::measure_transfer(
            timed.clone().map(|(i, _)| (*i, &items[*i])),
            timed.map(|(i, r)| (*i, r)),
        )
        .unwrap_or_default();
        let threads = crate::plan::plan_sample(&sampled.figures, rest, options);
        let plan = decide::decide(&workload, &self.calibration.links, &threads, options);
        let mut results: Vec<Option<R>> =
            std::iter::repeat_with(|| None).take(items.len()).collect();
        for (i, r) in sampled.results {
            results[i] = Some(r);
        }
        let began = Instant::now();
        let mut on = options.clone();
        match plan
            .threads
            .prediction()
            .filter(|_| plan.threads.is_parallel())
        {
            Some(p) => {
                on = on
                    .workers(p.candidate.workers)
                    .chunk_size(p.candidate.chunk)
            }
            None => on = on.workers(std::num::NonZeroUsize::MIN),
        }
        for range in gaps(items.len(), &done) {
            let part = &items[range.clone()];
            let ran = match plan.choice {
                Choice::Cluster => self
                    .stream(function, part, plan.shape())?
                    .collect::<Result<Vec<R>>>(),
                Choice::Threads => on.execute(part, f),
            };
            let ran = ran.map_err(|e| e.item_offset(range.start))?;
            for (slot, r) in results[range].iter_mut().zip(ran) {
                *slot = Some(r);
            }
        }
        let results = results
            .into_iter()
            .map(|r| r.expect("every item ran"))
            .collect();
        Ok(ClusterOutcome {
            plan,
            results,
            measured: began.elapsed(),
        })
    }

    /// Ends the cluster: the dataflow finishes, the other processes exit (a local cluster's are
    /// reaped), and process 0's workers are joined.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::WorkerFailed`] when a process was lost, or did not finish in time (it is
    /// killed when it is a local one).
    pub fn shutdown(mut self) -> Result<()> {
        self.finish()
    }

    fn finish(&mut self) -> Result<()> {
        if let Some(lost) = self.inner.health.lost() {
            self.stop_after_failure();
            return Err(lost_error(&lost));
        }
        if self.inner.guards.is_none() {
            return Ok(());
        }
        self.inner.shared.finish.store(true, Ordering::Release);
        self.inner.commands = None;
        self.inner.shared.wake();
        let guards = self.inner.guards.take();
        let (joined, join_rx) = crossbeam_channel::bounded(1);
        std::thread::spawn(move || {
            let ok = guards.map_or(true, join_guards);
            let _ = joined.send(ok);
        });
        let ok = select! {
            recv(join_rx) -> ok => ok.unwrap_or(false),
            recv(self.inner.health.signal()) -> _ => false,
            default(SHUTDOWN_WAIT) => false,
        };
        // Every process says goodbye and closes; the monitors end with that.
        let deadline = Instant::now() + SHUTDOWN_WAIT;
        for monitor in self.inner.monitors.drain(..) {
            while !monitor.is_finished() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        let lost = self.inner.health.lost();
        self.inner.health.close();
        if lost.is_some() || !ok {
            self.stop_after_failure();
        }
        let mut late = Vec::new();
        for (process, child) in self.inner.children.iter_mut() {
            let deadline = Instant::now() + SHUTDOWN_WAIT;
            loop {
                match child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5))
                    }
                    _ => {
                        late.push(*process);
                        break;
                    }
                }
            }
        }
        stop_children(&mut self.inner.children);
        if let Some(lost) = lost {
            return Err(lost_error(&lost));
        }
        if !ok || !late.is_empty() {
            return Err(Error::new(
                ErrorKind::WorkerFailed,
                format!("the cluster did not finish cleanly within {:.0} s (processes still running: {late:?})", SHUTDOWN_WAIT.as_secs_f64()),
            ));
        }
        Ok(())
    }

    /// Fail-stop: this process's workers return, the others are told to exit, local ones are
    /// killed. Workers blocked on a lost peer are left to end with the process.
    fn stop_after_failure(&mut self) {
        self.inner.health.broadcast(super::control::ABORT);
        self.inner.health.close();
        self.inner.shared.stop.store(true, Ordering::Release);
        self.inner.shared.wake();
        self.inner.commands = None;
        stop_children(&mut self.inner.children);
        if let Some(guards) = self.inner.guards.take() {
            // Joining could wait on a peer that never answers: a thread of its own joins them.
            std::thread::spawn(move || join_guards(guards));
        }
    }

    /// The error of a lost process, if one was lost.
    fn check(&mut self) -> Result<()> {
        if let Some(lost) = self.inner.health.lost() {
            self.stop_after_failure();
            return Err(lost_error(&lost));
        }
        if self.inner.guards.is_none() {
            return Err(Error::new(
                ErrorKind::WorkerFailed,
                "the cluster has stopped",
            ));
        }
        Ok(())
    }

    pub(super) fn send(&mut self, command: Command) -> Result<()> {
        let sent = self.inner.commands.as_ref().map(|c| c.send(command));
        if !matches!(sent, Some(Ok(()))) {
            return Err(self.stopped());
        }
        self.inner.shared.wake();
        Ok(())
    }

    /// Why the first worker stopped: a lost process when one is named in time.
    fn stopped(&mut self) -> Error {
        let deadline = Instant::now() + NAME_WAIT;
        while Instant::now() < deadline {
            if let Some(lost) = self.inner.health.lost() {
                self.stop_after_failure();
                return lost_error(&lost);
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        self.stop_after_failure();
        Error::new(
            ErrorKind::WorkerFailed,
            "the cluster's first worker stopped (a connection between processes failed)",
        )
    }

    /// The global indices of the workers `shape` uses.
    fn worker_indices(&self, shape: Shape) -> Vec<usize> {
        let per = self.inner.hosts.workers;
        let hosts = shape.hosts.clamp(1, self.processes());
        let workers = shape.workers.clamp(1, per);
        (0..hosts)
            .flat_map(|p| (0..workers).map(move |w| p * per + w))
            .collect()
    }

    fn next_run(&mut self) -> u64 {
        self.inner.next_id += 1;
        self.inner.next_id
    }

    pub(super) fn inner(&mut self) -> &mut Inner {
        &mut self.inner
    }

    /// Sends probe chunks to worker `dest` one after another and times each round trip.
    pub(super) fn probe(
        &mut self,
        dest: usize,
        padding: usize,
        repeats: usize,
    ) -> Result<Vec<Duration>> {
        self.check()?;
        let (chunks, chunk_rx) = crossbeam_channel::unbounded();
        let (replies_tx, replies) = crossbeam_channel::unbounded();
        let run = self.next_run();
        self.send(Command::Run(Work {
            run,
            function: "amorsize.cluster.probe".to_owned(),
            chunks: chunk_rx,
            workers: vec![dest],
            replies: replies_tx,
        }))?;
        let mut times = Vec::with_capacity(repeats);
        for id in 0..repeats as u64 {
            let start = Instant::now();
            let chunk = Chunk {
                id,
                dest: Some(dest),
                first: 0,
                count: 0,
                bytes: vec![0; padding],
            };
            if chunks.send(chunk).is_err() {
                return Err(self.stopped());
            }
            self.inner.shared.wake();
            self.wait_reply(&replies)?;
            times.push(start.elapsed());
        }
        Ok(times)
    }

    /// The next reply, or the error of a lost process.
    fn wait_reply(&mut self, replies: &Receiver<Reply>) -> Result<Reply> {
        loop {
            select! {
                recv(replies) -> reply => match reply {
                    Ok(reply) => return Ok(reply),
                    Err(_) => return Err(self.stopped()),
                },
                recv(self.inner.health.signal()) -> _ => {}
                default(Duration::from_millis(200)) => {}
            }
            self.check()?;
        }
    }
}

/// Joins process 0's workers and timely's network threads; whether all ended well. timely's
/// guards panic when a thread they join panicked (a lost connection does that): the panic is
/// caught here rather than left to unwind through another drop, which would abort.
fn join_guards(guards: WorkerGuards<()>) -> bool {
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
        guards.join().into_iter().all(|r| r.is_ok())
    }))
    .unwrap_or(false)
}

/// The ranges of `0..len` not in `done`, in order.
fn gaps(len: usize, done: &std::collections::HashSet<usize>) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 0..=len {
        if i == len || done.contains(&i) {
            if start < i {
                out.push(start..i);
            }
            start = i + 1;
        }
    }
    out
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}

/// The results of [`Cluster::stream`], in input order.
pub struct Results<'a, T, R, I> {
    cluster: &'a mut Cluster,
    items: I,
    chunk: usize,
    /// Chunks allowed out beyond the next one to hand out.
    ahead: usize,
    chunks: Option<Sender<Chunk>>,
    replies: Receiver<Reply>,
    /// Chunks sent and not yet handed out: their first item and count.
    sent: BTreeMap<u64, (u64, u32)>,
    arrived: BTreeMap<u64, Reply>,
    /// The chunk being handed out: its reply, the slots consumed so far, the items left.
    current: Option<(Reply, usize, u32, u64)>,
    next_index: u64,
    next_chunk: u64,
    failed: bool,
    _types: PhantomData<fn(&T) -> R>,
}

impl<T, R, I> std::fmt::Debug for Results<'_, T, R, I> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Results")
            .field("chunks_out", &self.sent.len())
            .finish_non_exhaustive()
    }
}

impl<'a, T, R, I> Results<'a, T, R, I>
where
    I: Iterator,
    I::Item: std::borrow::Borrow<T>,
    T: Serialize + 'a,
{
    /// Encodes and sends chunks until `ahead` are out or the items end.
    fn top_up(&mut self) -> Result<()> {
        while self.sent.len() < self.ahead {
            let Some(chunks) = &self.chunks else {
                return Ok(());
            };
            let first = self.next_index;
            let mut bytes = Vec::new();
            let mut count = 0u32;
            for item in self.items.by_ref().take(self.chunk) {
                let index = first + count as u64;
                postcard::to_io(std::borrow::Borrow::<T>::borrow(&item), &mut bytes).map_err(
                    |e| {
                        Error::new(
                            ErrorKind::Serialization,
                            format!(
                                "item {index} could not be serialized as {}: {e}",
                                std::any::type_name::<T>()
                            ),
                        )
                        .with_item(index as usize)
                    },
                )?;
                count += 1;
            }
            if count == 0 {
                self.chunks = None;
                self.cluster.inner.shared.wake();
                return Ok(());
            }
            let id = self.next_chunk;
            self.next_chunk += 1;
            self.next_index += count as u64;
            self.sent.insert(id, (first, count));
            if chunks
                .send(Chunk {
                    id,
                    dest: None,
                    first,
                    count,
                    bytes,
                })
                .is_err()
            {
                return Err(self.cluster.stopped());
            }
            self.cluster.inner.shared.wake();
        }
        Ok(())
    }
}

impl<'a, T, R, I> Iterator for Results<'a, T, R, I>
where
    I: Iterator,
    I::Item: std::borrow::Borrow<T>,
    T: Serialize + 'a,
    R: DeserializeOwned,
{
    type Item = Result<R>;

    fn next(&mut self) -> Option<Result<R>> {
        if self.failed {
            return None;
        }
        let outcome = self.advance();
        if !matches!(outcome, Some(Ok(_))) {
            self.failed = true;
            self.chunks = None;
        }
        outcome
    }
}

impl<'a, T, R, I> Results<'a, T, R, I>
where
    I: Iterator,
    I::Item: std::borrow::Borrow<T>,
    T: Serialize + 'a,
    R: DeserializeOwned,
{
    fn advance(&mut self) -> Option<Result<R>> {
        loop {
            if let Some((reply, offset, left, index)) = self.current.as_mut() {
                if *left > 0 {
                    let mut slots = &reply.slots[*offset..];
                    let before = slots.len();
                    if slots.is_empty() {
                        let why = reply
                            .stopped
                            .clone()
                            .unwrap_or_else(|| "the reply has no result for it".into());
                        let kind = if why.contains("not registered") {
                            ErrorKind::InvalidInput
                        } else {
                            ErrorKind::Serialization
                        };
                        return Some(Err(Error::new(kind, format!("item {index}: {why}"))
                            .with_item(*index as usize)));
                    }
                    let value = decode_slot::<R>(&mut slots, *index as usize);
                    *offset += before - slots.len();
                    *left -= 1;
                    *index += 1;
                    return Some(value);
                }
                self.current = None;
            }
            if let Err(e) = self.top_up() {
                return Some(Err(e));
            }
            let (&id, &(first, count)) = self.sent.iter().next()?;
            if let Some(reply) = self.arrived.remove(&id) {
                self.sent.remove(&id);
                self.current = Some((reply, 0, count, first));
                continue;
            }
            match self.cluster.wait_reply(&self.replies) {
                Ok(reply) => {
                    self.arrived.insert(reply.id, reply);
                }
                Err(e) => return Some(Err(e)),
            }
        }
    }
}
