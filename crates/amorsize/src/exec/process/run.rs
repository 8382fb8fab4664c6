//! Running chunks on worker processes: one thread per worker feeds it chunks from a shared
//! queue, keeps what comes back, and handles a worker that fails.

use super::outcome::{serialization_error, Failure, RunStats};
use super::pool::{Pool, Worker};
use super::registry::Function;
use super::sys;
use super::wire::{self, FailureKind, ItemFailure, Request, Response};
use super::ProcessOptions;
use crate::{Error, ErrorKind, Result};
use serde::de::DeserializeOwned;
use serde::Serialize;
use std::collections::VecDeque;
use std::io;
use std::ops::Range;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Items handed out together.
#[derive(Clone, Debug)]
pub(super) struct Task {
    /// The chunk the items first went out in (retries keep it, for error messages).
    pub chunk: usize,
    pub items: Range<usize>,
    /// Attempts made before this one.
    pub attempt: u32,
}

/// Cuts `ranges` into chunks of at most `chunk` items, numbered in order.
pub(super) fn chunks(ranges: &[Range<usize>], chunk: usize) -> Vec<Task> {
    let chunk = chunk.max(1);
    let mut tasks = Vec::new();
    for range in ranges {
        let mut start = range.start;
        while start < range.end {
            let end = (start + chunk).min(range.end);
            tasks.push(Task {
                chunk: tasks.len(),
                items: start..end,
                attempt: 0,
            });
            start = end;
        }
    }
    tasks
}

/// Where results and failures go as chunks complete.
pub(super) trait Sink<R>: Sync {
    /// The results of (part of) a chunk, with their input indices, and the bytes they took on
    /// the wire.
    fn results(&self, results: Vec<(usize, R)>, bytes: u64);
    /// Items that failed for good.
    fn failure(&self, failure: Failure);
}

/// Stops a run from another thread: no new chunk starts, and the workers busy with one are
/// killed, so that dropping a run half-way never waits for long chunks nor leaves a process.
#[derive(Debug, Default)]
pub(super) struct Cancel {
    /// Whether the run is cancelled, and the pids of the workers busy with a chunk. One lock
    /// for both: a pid is only killed while listed, and a listed worker is not yet reaped, so
    /// the pid cannot have been reused.
    state: Mutex<(bool, Vec<u32>)>,
}

impl Cancel {
    /// Cancels the run: kills the busy workers.
    pub(super) fn cancel(&self) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.0 = true;
        for &pid in &state.1 {
            sys::kill(pid);
        }
    }

    fn is_cancelled(&self) -> bool {
        self.state.lock().unwrap_or_else(|e| e.into_inner()).0
    }

    /// Lists `pid` as busy, unless the run is cancelled.
    fn enter(&self, pid: u32) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        if !state.0 {
            state.1.push(pid);
        }
        !state.0
    }

    fn leave(&self, pid: u32) {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.1.retain(|&p| p != pid);
    }
}

struct Shared<'a, T, R> {
    function: Function<T, R>,
    items: &'a [T],
    options: &'a ProcessOptions,
    pool: &'a Pool,
    sink: &'a dyn Sink<R>,
    cancel: &'a Cancel,
    queue: Mutex<VecDeque<Task>>,
    abort: AtomicBool,
}

/// What one worker thread gathered.
struct Local<R> {
    results: Vec<(usize, R)>,
    /// The bytes `results` took on the wire.
    result_bytes: u64,
    failures: Vec<Failure>,
    fatal: Option<Error>,
    chunks: usize,
    starts: Vec<Duration>,
    overheads: Vec<Duration>,
    retried: usize,
    /// The highest peak RSS the workers reported, bytes (0: none reported).
    peak_rss: u64,
}

/// Where a run's chunks go and what they report to.
pub(super) struct Target<'a, R> {
    pub pool: &'a Pool,
    pub sink: &'a dyn Sink<R>,
    pub cancel: &'a Cancel,
}

/// Runs `tasks` on `workers` worker processes, sending what completes to the sink.
///
/// # Errors
///
/// Only when the run cannot go on at all: no worker can be started, or the workers do not know
/// the function. Failures of items go to the sink.
pub(super) fn run<T, R>(
    function: Function<T, R>,
    items: &[T],
    tasks: Vec<Task>,
    workers: usize,
    options: &ProcessOptions,
    target: Target<'_, R>,
) -> Result<RunStats>
where
    T: Serialize + Sync,
    R: DeserializeOwned + Send,
{
    let workers = workers.clamp(1, tasks.len().max(1));
    let shared = Shared {
        function,
        items,
        options,
        pool: target.pool,
        sink: target.sink,
        cancel: target.cancel,
        queue: Mutex::new(tasks.into()),
        abort: AtomicBool::new(false),
    };
    let locals: Vec<Local<R>> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| scope.spawn(|| feed(&shared)))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap_or_else(|p| std::panic::resume_unwind(p)))
            .collect()
    });
    let mut stats = RunStats::default();
    let mut starts = Vec::new();
    let mut overheads = Vec::new();
    let mut peak_rss = 0;
    for local in locals {
        if let Some(fatal) = local.fatal {
            return Err(fatal);
        }
        stats.chunks += local.chunks;
        stats.retried_items += local.retried;
        starts.extend(local.starts);
        overheads.extend(local.overheads);
        peak_rss = peak_rss.max(local.peak_rss);
    }
    if peak_rss > 0 {
        stats.peak_worker_rss = Some(peak_rss);
        super::memory::note(function.name(), peak_rss);
    }
    stats.workers_started = starts.len();
    stats.mean_start_time = mean(&starts);
    stats.mean_chunk_overhead = mean(&overheads);
    Ok(stats)
}

fn mean(durations: &[Duration]) -> Option<Duration> {
    let n = u32::try_from(durations.len()).ok().filter(|&n| n > 0)?;
    Some(durations.iter().sum::<Duration>() / n)
}

/// One worker thread: takes tasks until the queue is empty, on one worker process at a time.
fn feed<T, R>(shared: &Shared<'_, T, R>) -> Local<R>
where
    T: Serialize,
    R: DeserializeOwned,
{
    let mut local = Local {
        results: Vec::new(),
        result_bytes: 0,
        failures: Vec::new(),
        fatal: None,
        chunks: 0,
        starts: Vec::new(),
        overheads: Vec::new(),
        retried: 0,
        peak_rss: 0,
    };
    let mut worker: Option<Worker> = None;
    let mut body = Vec::new();
    let mut header = Vec::new();
    let mut response = Vec::new();
    loop {
        local.flush(shared.sink);
        if shared.abort.load(Ordering::Relaxed) || shared.cancel.is_cancelled() {
            break;
        }
        let Some(task) = shared.lock_queue().pop_front() else {
            break;
        };
        let Some(range) = encode(shared, &task, &mut body, &mut local) else {
            continue;
        };
        header.clear();
        let request = Request::Chunk {
            function: shared.function.name(),
            first: range.start as u64,
            count: range.len() as u32,
        };
        if let Err(e) = wire::encode_into(&request, &mut header) {
            local.fatal = Some(Error::new(ErrorKind::Serialization, e.to_string()));
            shared.abort.store(true, Ordering::Relaxed);
            break;
        }
        let current = match worker.as_mut() {
            Some(w) => w,
            None => match shared.pool.take() {
                Ok(w) => {
                    local.starts.extend(w.start_time());
                    worker.insert(w)
                }
                Err(e) => {
                    local.fatal = Some(e);
                    shared.abort.store(true, Ordering::Relaxed);
                    break;
                }
            },
        };
        let task = Task {
            items: range,
            ..task
        };
        let pid = current.pid();
        if !shared.cancel.enter(pid) {
            break;
        }
        local.chunks += 1;
        let sent = Instant::now();
        let exchanged = current.exchange(
            &[&header, &body],
            shared.options.chunk_timeout,
            &mut response,
        );
        shared.cancel.leave(pid);
        match exchanged {
            Ok(()) => {
                let round_trip = sent.elapsed();
                if let Err(fatal) = receive(shared, &task, &response, round_trip, &mut local) {
                    local.fatal = Some(fatal);
                    shared.abort.store(true, Ordering::Relaxed);
                    break;
                }
            }
            Err(e) => {
                let mut failed = worker.take().expect("a worker was just used");
                let error = worker_error(&mut failed, &task, &e, shared.options.chunk_timeout);
                drop(failed);
                retry_or_fail(shared, task, error, true, &mut local);
            }
        }
    }
    local.flush(shared.sink);
    if let Some(w) = worker {
        if local.fatal.is_none() {
            shared.pool.put(w);
        }
    }
    local
}

impl<R> Local<R> {
    /// Hands what completed to the sink.
    fn flush(&mut self, sink: &dyn Sink<R>) {
        if !self.results.is_empty() {
            let bytes = std::mem::take(&mut self.result_bytes);
            sink.results(std::mem::take(&mut self.results), bytes);
        }
        for failure in self.failures.drain(..) {
            sink.failure(failure);
        }
    }
}

impl<T, R> Shared<'_, T, R> {
    fn lock_queue(&self) -> std::sync::MutexGuard<'_, VecDeque<Task>> {
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Encodes the task's items into `body`. An item that cannot be serialized is recorded as
/// failed (never retried: it would fail again) and the items after it go back to the queue;
/// returns the range encoded, or `None` when it is empty.
fn encode<T: Serialize, R>(
    shared: &Shared<'_, T, R>,
    task: &Task,
    body: &mut Vec<u8>,
    local: &mut Local<R>,
) -> Option<Range<usize>> {
    body.clear();
    let start = task.items.start;
    for index in task.items.clone() {
        if let Err(e) = wire::encode_into(&shared.items[index], body) {
            local.failures.push(Failure {
                chunk: task.chunk,
                items: index..index + 1,
                attempts: 1,
                error: serialization_error(
                    index,
                    format!(
                        "item {index} could not be serialized as {} for a worker process: {e}",
                        std::any::type_name::<T>()
                    ),
                ),
            });
            if index + 1 < task.items.end {
                shared.lock_queue().push_front(Task {
                    items: index + 1..task.items.end,
                    ..task.clone()
                });
            }
            return (index > start).then_some(start..index);
        }
    }
    (task.items.end > start).then_some(task.items.clone())
}

/// Takes in a worker's response to `task`.
///
/// # Errors
///
/// When the run cannot go on: the worker does not know the function, or the protocol broke.
fn receive<T, R: DeserializeOwned>(
    shared: &Shared<'_, T, R>,
    task: &Task,
    response: &[u8],
    round_trip: Duration,
    local: &mut Local<R>,
) -> Result<()> {
    let protocol = |message: String| {
        Error::new(
            ErrorKind::WorkerFailed,
            format!(
                "chunk {} (items {}..{}): {message}",
                task.chunk, task.items.start, task.items.end
            ),
        )
    };
    let (header, mut slots) = postcard::take_from_bytes::<Response>(response)
        .map_err(|e| protocol(format!("the worker's answer could not be decoded: {e}")))?;
    let (count, busy, stopped) = match header {
        Response::Chunk {
            count,
            busy_nanos,
            stopped,
            peak_rss,
        } => {
            local.peak_rss = local.peak_rss.max(peak_rss);
            (count as usize, Duration::from_nanos(busy_nanos), stopped)
        }
        Response::Unknown { function } => {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "the worker process does not know the function {function:?}: call \
                     amorsize::exec::process::register for it before init() in main, so that \
                     every process registers it"
                ),
            ))
        }
        Response::Malformed { message } => return Err(protocol(message)),
    };
    if count > task.items.len() || (count < task.items.len() && stopped.is_none()) {
        return Err(protocol(format!(
            "the worker answered {count} items of {}",
            task.items.len()
        )));
    }
    local.overheads.push(round_trip.saturating_sub(busy));
    let start = task.items.start;
    for index in start..start + count {
        let Some((&tag, rest)) = slots.split_first() else {
            return Err(protocol("the worker's answer is cut short".to_owned()));
        };
        slots = rest;
        if tag == wire::SLOT_OK {
            match postcard::take_from_bytes::<R>(slots) {
                Ok((result, rest)) => {
                    local.result_bytes += (slots.len() - rest.len()) as u64;
                    slots = rest;
                    local.results.push((index, result));
                }
                Err(e) => {
                    // The position of the next result is unknown past an unreadable one.
                    local.failures.push(Failure {
                        chunk: task.chunk,
                        items: index..start + count,
                        attempts: task.attempt + 1,
                        error: serialization_error(
                            index,
                            format!(
                                "the result of item {index} could not be deserialized as {}: {e}",
                                std::any::type_name::<R>()
                            ),
                        ),
                    });
                    break;
                }
            }
        } else {
            let (failure, rest) = postcard::take_from_bytes::<ItemFailure>(slots)
                .map_err(|e| protocol(format!("an item failure could not be decoded: {e}")))?;
            slots = rest;
            let error = match failure.kind {
                FailureKind::Panicked => Error::new(ErrorKind::Panicked, failure.message),
                FailureKind::Serialization => Error::new(ErrorKind::Serialization, failure.message),
            }
            .with_item(index);
            let item = Task {
                chunk: task.chunk,
                items: index..index + 1,
                attempt: task.attempt,
            };
            let retry = failure.kind == FailureKind::Panicked;
            retry_or_fail(shared, item, error, retry, local);
        }
    }
    if let Some(message) = stopped {
        let index = start + count;
        local.failures.push(Failure {
            chunk: task.chunk,
            items: index..index + 1,
            attempts: task.attempt + 1,
            error: serialization_error(index, message),
        });
        if index + 1 < task.items.end {
            shared.lock_queue().push_front(Task {
                items: index + 1..task.items.end,
                ..task.clone()
            });
        }
    }
    Ok(())
}

/// The error for a worker that failed on `task`, after ending it.
fn worker_error(
    worker: &mut Worker,
    task: &Task,
    error: &io::Error,
    timeout: Option<Duration>,
) -> Error {
    let pid = worker.pid();
    let how = worker.end(error);
    let how = match (error.kind(), timeout) {
        (io::ErrorKind::TimedOut, Some(t)) => format!("{how} after {}", crate::fmt::duration(t)),
        _ => how,
    };
    let what = if task.items.len() == 1 {
        format!("item {}", task.items.start)
    } else {
        format!("items {}..{}", task.items.start, task.items.end)
    };
    let mut e = Error::new(
        ErrorKind::WorkerFailed,
        format!(
            "the worker process {pid} failed on chunk {} ({what}): {how}",
            task.chunk
        ),
    );
    if task.items.len() == 1 {
        e = e.with_item(task.items.start);
    }
    e
}

/// Puts a failed task back in the queue while it has retries left (one item per task, so that
/// one bad item cannot sink the others again), or records it as failed.
fn retry_or_fail<T, R>(
    shared: &Shared<'_, T, R>,
    task: Task,
    error: Error,
    retry: bool,
    local: &mut Local<R>,
) {
    if retry && task.attempt < shared.options.retries {
        let mut queue = shared.lock_queue();
        for index in task.items.clone() {
            queue.push_back(Task {
                chunk: task.chunk,
                items: index..index + 1,
                attempt: task.attempt + 1,
            });
        }
        local.retried += task.items.len();
    } else {
        local.failures.push(Failure {
            chunk: task.chunk,
            items: task.items,
            attempts: task.attempt + 1,
            error,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunks_cover_every_range_in_order_without_overlap() {
        let tasks = chunks(&[0..5, 6..6, 7..10], 2);
        let ranges: Vec<_> = tasks.iter().map(|t| t.items.clone()).collect();
        assert_eq!(ranges, [0..2, 2..4, 4..5, 7..9, 9..10]);
        let numbers: Vec<_> = tasks.iter().map(|t| t.chunk).collect();
        assert_eq!(numbers, [0, 1, 2, 3, 4]);
        assert!(tasks.iter().all(|t| t.attempt == 0));
    }
}
