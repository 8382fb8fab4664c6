//! The dataflow every process builds: jobs (chunks of encoded items) enter at the first
//! worker, an `Exchange` moves each to the worker it names, that worker runs the registered
//! function, and a second `Exchange` brings the reply back to the first worker.
//!
//! The first worker (global index 0, a thread of process 0) also hands out the chunks: it keeps
//! at most [`WINDOW`] chunks in flight per worker and gives the next chunk to whichever worker
//! replied, so faster workers and nearer hosts get more work (dynamic hand-out over the
//! network, as threads get it from a queue).

use crate::exec::process::lookup_call;
use crossbeam_channel::{Receiver, Sender, TryRecvError};
use serde::{Deserialize, Serialize};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::container::CapacityContainerBuilder;
use timely::dataflow::channels::pact::Pipeline;
use timely::dataflow::operators::generic::operator::Operator;
use timely::dataflow::operators::{Exchange, Input as _};
use timely::dataflow::InputHandle;
use timely::worker::Worker;

/// The first worker's input.
type Input = InputHandle<u64, CapacityContainerBuilder<Vec<Job>>>;

/// Chunks a worker holds at once (one running, the next already on its way), so that a
/// round trip is hidden behind a chunk's work when the chunk takes longer than the trip.
pub(crate) const WINDOW: usize = 2;

/// Chunks out at once per worker, counted from the oldest result not yet handed out: bounds
/// the memory of a stream (results come back in input order) while letting fast workers run
/// ahead of a slow one.
pub(crate) const AHEAD: usize = 16;

/// How chunks flow, for the model.
pub const FLOW: crate::model::network::Flow = crate::model::network::Flow {
    window: WINDOW,
    ahead: AHEAD,
};

/// Longest the first worker sleeps between looks at the caller's requests; requests also wake
/// it at once, so this only bounds a missed wake-up.
const PARK: Duration = Duration::from_millis(5);

/// A chunk on its way to a worker.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Job {
    /// The run (map or probe) the chunk belongs to.
    pub run: u64,
    /// The chunk's number within its run.
    pub id: u64,
    /// The global index of the worker that runs it.
    pub dest: u64,
    /// The registered function's name.
    pub function: String,
    /// Input index of the first item.
    pub first: u64,
    /// Items encoded in `bytes` (0 for the cost probes, whose bytes are padding).
    pub count: u32,
    /// The postcard encodings of the items, one after the other.
    pub bytes: Vec<u8>,
}

/// What a worker sends back for a job.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub(crate) struct Reply {
    /// The job's `run`.
    pub run: u64,
    /// The job's `id`.
    pub id: u64,
    /// The global index of the worker that ran it.
    pub worker: u64,
    /// Time the worker spent decoding, running and encoding.
    pub busy_nanos: u64,
    /// One slot per item (the process backend's slot format: tag, then result or failure).
    pub slots: Vec<u8>,
    /// Why the items from `first + (slots decoded)` on were not run: the function is unknown
    /// here, or an item could not be decoded.
    pub stopped: Option<String>,
}

/// A chunk the caller hands to the first worker.
#[derive(Debug)]
pub(crate) struct Chunk {
    pub id: u64,
    /// A worker the chunk must go to (the cost probes); `None` for the next free one.
    pub dest: Option<usize>,
    pub first: u64,
    pub count: u32,
    pub bytes: Vec<u8>,
}

/// One map (or one probe) the caller asks the cluster to run.
#[derive(Debug)]
pub(crate) struct Work {
    /// Numbers the run, so that replies of an abandoned run are told apart.
    pub run: u64,
    pub function: String,
    /// The chunks, in order; closed when there are no more.
    pub chunks: Receiver<Chunk>,
    /// The global indices of the workers the plan uses.
    pub workers: Vec<usize>,
    /// Where the replies go.
    pub replies: Sender<Reply>,
}

/// What the caller asks of the first worker.
#[derive(Debug)]
pub(crate) enum Command {
    Run(Work),
}

/// What the caller's thread and the first worker share.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    /// Set when the cluster stops, cleanly or not: every worker of this process returns.
    pub stop: AtomicBool,
    /// Set when the cluster stops cleanly: the first worker closes its input so that the
    /// dataflow, and the processes, finish.
    pub finish: AtomicBool,
    /// The first worker's thread, to wake it when a request comes.
    pub first: Mutex<Option<std::thread::Thread>>,
}

impl Shared {
    /// Wakes the first worker.
    pub(crate) fn wake(&self) {
        if let Some(t) = self
            .first
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            t.unpark();
        }
    }
}

/// The body of every worker of every process. `commands` is `Some` in process 0 only (the
/// first worker takes it); `shared` lets process 0's caller stop its workers.
pub(crate) fn worker(
    worker: &mut Worker,
    commands: Option<Receiver<Command>>,
    shared: Arc<Shared>,
) {
    let index = worker.index();
    let mut input = Input::new();
    let replies: Rc<RefCell<Vec<Reply>>> = Rc::default();
    let sink = Rc::clone(&replies);
    worker.dataflow::<u64, _, _>(|scope| {
        scope
            .input_from(&mut input)
            .exchange(|job: &Job| job.dest)
            .unary(Pipeline, "Run", move |_, _| {
                move |input, output| {
                    input.for_each(|time, data| {
                        let mut session = output.session(&time);
                        for job in data.drain(..) {
                            session.give(run_job(job, index as u64));
                        }
                    });
                }
            })
            .exchange(|_: &Reply| 0)
            .sink(Pipeline, "Collect", move |(input, _)| {
                input.for_each(|_, data: &mut Vec<Reply>| sink.borrow_mut().extend(data.drain(..)));
            });
    });

    let Some(commands) = commands.filter(|_| index == 0) else {
        // Only the first worker feeds the dataflow.
        drop(input);
        drain(worker, &shared);
        return;
    };
    *shared.first.lock().unwrap_or_else(|e| e.into_inner()) = Some(std::thread::current());
    let peers = worker.peers();
    let mut hand = HandOut::new(peers);
    loop {
        if shared.stop.load(Ordering::Acquire) {
            return;
        }
        if shared.finish.load(Ordering::Acquire) && hand.work.is_none() {
            break;
        }
        loop {
            match commands.try_recv() {
                Ok(Command::Run(work)) => hand.start(work),
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    shared.finish.store(true, Ordering::Release);
                    break;
                }
            }
        }
        for reply in replies.borrow_mut().drain(..) {
            hand.done(reply);
        }
        if hand.feed(&mut input) {
            // Only a new epoch flushes the exchange's buffers to the other workers.
            let next = *input.time() + 1;
            input.advance_to(next);
        }
        worker.step_or_park(Some(PARK));
    }
    drop(input);
    drain(worker, &shared);
}

/// Steps (parking between events) until the dataflow is done, or the cluster stops.
fn drain(worker: &mut Worker, shared: &Shared) {
    while !shared.stop.load(Ordering::Acquire) {
        if !worker.step_or_park(Some(PARK * 20)) {
            return;
        }
    }
}

/// The first worker's hand-out of one run's chunks.
struct HandOut {
    work: Option<Work>,
    /// Chunks in flight per worker.
    in_flight: Vec<usize>,
    /// A chunk pulled but not yet sent (its worker was busy).
    held: VecDeque<Chunk>,
    closed: bool,
}

impl HandOut {
    fn new(peers: usize) -> Self {
        HandOut {
            work: None,
            in_flight: vec![0; peers],
            held: VecDeque::new(),
            closed: false,
        }
    }

    fn start(&mut self, work: Work) {
        self.work = Some(work);
        self.in_flight.iter_mut().for_each(|n| *n = 0);
        self.held.clear();
        self.closed = false;
    }

    fn done(&mut self, reply: Reply) {
        // A reply of an abandoned run (a stream dropped half-way) is dropped: it counts
        // neither as the current run's nor against its windows.
        let Some(work) = self.work.as_ref().filter(|w| w.run == reply.run) else {
            return;
        };
        if let Some(n) = self.in_flight.get_mut(reply.worker as usize) {
            *n = n.saturating_sub(1);
        }
        // A caller that stopped listening (a dropped stream) just loses the replies.
        let _ = work.replies.send(reply);
        self.maybe_finish();
    }

    fn maybe_finish(&mut self) {
        if self.closed && self.held.is_empty() && self.in_flight.iter().all(|&n| n == 0) {
            self.work = None;
        }
    }

    /// Sends what the window allows; whether anything was sent.
    fn feed(&mut self, input: &mut Input) -> bool {
        let Some(work) = &self.work else {
            return false;
        };
        let mut sent = false;
        loop {
            if self.held.is_empty() && !self.closed {
                match work.chunks.try_recv() {
                    Ok(chunk) => self.held.push_back(chunk),
                    Err(TryRecvError::Empty) => {}
                    Err(TryRecvError::Disconnected) => self.closed = true,
                }
            }
            let Some(chunk) = self.held.front() else {
                break;
            };
            let dest = match chunk.dest {
                Some(d) => d,
                None => match work
                    .workers
                    .iter()
                    .copied()
                    .filter(|&w| self.in_flight.get(w).is_some_and(|&n| n < WINDOW))
                    .min_by_key(|&w| self.in_flight[w])
                {
                    Some(w) => w,
                    None => break,
                },
            };
            let chunk = self.held.pop_front().expect("a held chunk");
            if let Some(n) = self.in_flight.get_mut(dest) {
                *n += 1;
            }
            input.send(Job {
                run: work.run,
                id: chunk.id,
                dest: dest as u64,
                function: work.function.clone(),
                first: chunk.first,
                count: chunk.count,
                bytes: chunk.bytes,
            });
            sent = true;
        }
        self.maybe_finish();
        sent
    }
}

/// Runs a job's items with the registered function, each panic caught and reported in its slot.
fn run_job(job: Job, worker: u64) -> Reply {
    let began = Instant::now();
    let mut slots = Vec::new();
    let mut stopped = None;
    if job.count > 0 {
        match lookup_call(&job.function) {
            None => {
                stopped = Some(format!(
                    "the function {:?} is not registered in this process; register it before cluster::init in every process",
                    job.function
                ))
            }
            Some(call) => {
                let mut input: &[u8] = &job.bytes;
                for i in 0..job.count as usize {
                    if let Err(e) = call(job.first as usize + i, &mut input, &mut slots) {
                        stopped = Some(e);
                        break;
                    }
                }
            }
        }
    }
    Reply {
        run: job.run,
        id: job.id,
        worker,
        busy_nanos: began.elapsed().as_nanos().min(u64::MAX as u128) as u64,
        slots,
        stopped,
    }
}
