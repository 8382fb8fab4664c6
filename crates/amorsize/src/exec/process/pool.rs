//! Worker processes: starting one, talking to it, ending it, and the pool that keeps idle ones
//! for the next run (the original library's pool manager).

use super::sys;
use super::wire::{self, Hello};
use super::worker::WORKER_ENV;
use crate::{Error, ErrorKind, Result};
use std::fmt;
use std::io::{self, BufReader, BufWriter, Read};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant};

/// How long a new worker may take to say hello. Generous, because a loaded machine can be slow
/// to start a large executable; a process that runs its normal `main` instead of serving (no
/// call to `init`) is stopped after this.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// How long a worker told to stop (its input closed) may take to exit before it is killed.
const CLOSE_GRACE: Duration = Duration::from_secs(2);

/// How long a worker whose pipe broke may take to finish dying before it is killed, so that
/// the error can report how it ended.
const DEATH_GRACE: Duration = Duration::from_millis(500);

/// A hello frame is a few bytes; anything longer is not from a worker.
const MAX_HELLO: usize = 64;

/// One worker process and its two pipes.
pub(super) struct Worker {
    child: Child,
    pid: u32,
    input: Option<BufWriter<ChildStdin>>,
    output: BufReader<Output>,
    start_time: Option<Duration>,
}

/// The worker's standard output, read with an optional deadline.
struct Output {
    pipe: ChildStdout,
    deadline: Option<Instant>,
}

impl Read for Output {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if let Some(deadline) = self.deadline {
            let left = deadline.saturating_duration_since(Instant::now());
            if !sys::wait_readable(&self.pipe, left)? {
                return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
            }
        }
        self.pipe.read(buf)
    }
}

impl fmt::Debug for Worker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Worker").field("pid", &self.pid).finish()
    }
}

impl Worker {
    /// Starts this executable in worker mode and waits for its hello.
    pub(super) fn spawn() -> Result<Worker> {
        sys::supported()?;
        if super::worker::is_worker() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                "this process was started as an amorsize worker but went on to run its normal \
                 main: call amorsize::exec::process::init() at the top of main, after the \
                 register calls and before any other work",
            ));
        }
        let exe = std::env::current_exe().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                "cannot find this executable to start worker processes",
            )
            .with_source(e)
        })?;
        let mut command = Command::new(&exe);
        command
            .env(WORKER_ENV, "1")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        sys::die_with_parent(&mut command);
        let start = Instant::now();
        let mut child = spawn_from_lasting_thread(command).map_err(|e| {
            Error::new(ErrorKind::Io, "cannot start a worker process")
                .with_path(&exe)
                .with_source(e)
        })?;
        let pid = child.id();
        let (Some(input), Some(pipe)) = (child.stdin.take(), child.stdout.take()) else {
            unreachable!("both pipes were requested")
        };
        let mut worker = Worker {
            child,
            pid,
            input: Some(BufWriter::new(input)),
            output: BufReader::new(Output {
                pipe,
                deadline: Some(start + START_TIMEOUT),
            }),
            start_time: None,
        };
        match worker.read_hello() {
            Ok(()) => {
                worker.start_time = Some(start.elapsed());
                Ok(worker)
            }
            Err(e) => {
                let how = worker.end(&e);
                Err(Error::new(
                    ErrorKind::WorkerFailed,
                    format!(
                        "the worker process {pid} did not start ({how}); does main call \
                         amorsize::exec::process::init() first?"
                    ),
                )
                .with_path(exe)
                .with_source(e))
            }
        }
    }

    fn read_hello(&mut self) -> io::Result<()> {
        let mut len = [0u8; 4];
        self.output.read_exact(&mut len)?;
        let len = u32::from_le_bytes(len) as usize;
        let bad = || {
            io::Error::new(
                io::ErrorKind::InvalidData,
                "its first output was not an amorsize hello",
            )
        };
        if len > MAX_HELLO {
            return Err(bad());
        }
        let mut frame = vec![0; len];
        self.output.read_exact(&mut frame)?;
        let hello: Hello = postcard::from_bytes(&frame).map_err(|_| bad())?;
        if hello.magic != wire::MAGIC || hello.version != wire::VERSION {
            return Err(bad());
        }
        Ok(())
    }

    /// The process id.
    pub(super) fn pid(&self) -> u32 {
        self.pid
    }

    /// Time from spawning to the worker's hello, for a worker not yet used (`None` once it
    /// has been back in a pool).
    pub(super) fn start_time(&self) -> Option<Duration> {
        self.start_time
    }

    /// Sends one frame and reads the answer into `response`, within `timeout` if given.
    pub(super) fn exchange(
        &mut self,
        parts: &[&[u8]],
        timeout: Option<Duration>,
        response: &mut Vec<u8>,
    ) -> io::Result<()> {
        self.output.get_mut().deadline = timeout.map(|t| Instant::now() + t);
        let input = self
            .input
            .as_mut()
            .ok_or_else(|| io::Error::from(io::ErrorKind::BrokenPipe))?;
        wire::write_frame(input, parts)?;
        wire::read_frame(&mut self.output, response)
    }

    /// Whether the process has exited (a worker left idle may have been killed meanwhile).
    pub(super) fn has_exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// Ends a worker whose conversation failed with `error`: waits briefly for it to finish
    /// dying, kills it if it does not, and says how it ended, for the error message.
    pub(super) fn end(&mut self, error: &io::Error) -> String {
        self.input = None;
        let grace = if error.kind() == io::ErrorKind::TimedOut {
            Duration::ZERO
        } else {
            DEATH_GRACE
        };
        let status = self.wait_for(grace);
        let status = match status {
            Some(status) => status,
            None => {
                let _ = self.child.kill();
                match self.child.wait() {
                    Ok(status) => status,
                    Err(e) => return format!("it could not be waited for: {e}"),
                }
            }
        };
        let how = describe(status);
        match error.kind() {
            io::ErrorKind::TimedOut => "it timed out and was killed".to_owned(),
            io::ErrorKind::UnexpectedEof | io::ErrorKind::BrokenPipe => how,
            _ => format!("{error}; {how}"),
        }
    }

    /// Stops a healthy worker: closes its input, so that it exits, and reaps it.
    pub(super) fn close(mut self) {
        self.input = None;
        self.wait_for(CLOSE_GRACE);
        // Drop kills and reaps it if it is still running.
    }

    fn wait_for(&mut self, grace: Duration) -> Option<ExitStatus> {
        let until = Instant::now() + grace;
        loop {
            match self.child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) if Instant::now() < until => std::thread::sleep(Duration::from_millis(1)),
                _ => return None,
            }
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.input = None;
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// How a process ended, in words.
fn describe(status: ExitStatus) -> String {
    match (status.code(), sys::signal(status)) {
        (Some(code), _) => format!("it exited with code {code}"),
        (None, Some(signal)) => format!(
            "it was killed by signal {signal} ({})",
            sys::signal_name(signal)
        ),
        _ => format!("it ended with {status}"),
    }
}

type SpawnJob = (Command, mpsc::Sender<io::Result<Child>>);

/// Spawns `command` from one thread that lives as long as the process.
///
/// `PR_SET_PDEATHSIG` fires when the *thread* that forked the child exits, not the process
/// (prctl(2)); spawning from the caller's thread would kill workers when, say, a rayon or test
/// thread ends. One lasting thread makes "the parent" mean the process.
fn spawn_from_lasting_thread(command: Command) -> io::Result<Child> {
    static SPAWNER: OnceLock<Mutex<mpsc::Sender<SpawnJob>>> = OnceLock::new();
    let spawner = SPAWNER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<SpawnJob>();
        std::thread::Builder::new()
            .name("amorsize-spawner".to_owned())
            .spawn(move || {
                for (mut command, reply) in rx {
                    let _ = reply.send(command.spawn());
                }
            })
            .expect("cannot start the amorsize spawner thread");
        Mutex::new(tx)
    });
    let (reply, answer) = mpsc::channel();
    spawner
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .send((command, reply))
        .map_err(|_| io::Error::other("the spawner thread is gone"))?;
    answer
        .recv()
        .map_err(|_| io::Error::other("the spawner thread is gone"))?
}

/// Idle worker processes kept for reuse across runs.
///
/// Runs take workers from a pool (starting new ones when none is idle) and give the healthy
/// ones back; a worker that crashed, hung or misbehaved is never given back. Dropping a pool,
/// or calling [`Pool::shutdown`], stops its idle workers cleanly. The [global](Pool::global)
/// pool lives as long as the process; its workers are killed by the kernel when the process
/// ends, however it ends.
///
/// # Examples
///
/// ```
/// use amorsize::exec::process::Pool;
///
/// let pool = Pool::new();
/// assert_eq!(pool.idle(), 0);
/// pool.shutdown();
/// ```
pub struct Pool {
    idle: Mutex<Vec<Worker>>,
}

impl fmt::Debug for Pool {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pool").field("idle", &self.idle()).finish()
    }
}

impl Default for Pool {
    fn default() -> Self {
        Pool::new()
    }
}

impl Pool {
    /// An empty pool.
    pub const fn new() -> Pool {
        Pool {
            idle: Mutex::new(Vec::new()),
        }
    }

    /// The process-wide pool that runs use unless told otherwise. Its idle workers are stopped
    /// cleanly when the process exits normally (return from `main` or
    /// [`exit`](std::process::exit)); the kernel kills any other.
    pub fn global() -> &'static Pool {
        static AT_EXIT: std::sync::Once = std::sync::Once::new();
        AT_EXIT.call_once(|| sys::at_exit(shutdown_global_at_exit));
        &GLOBAL
    }

    /// Idle workers kept now.
    pub fn idle(&self) -> usize {
        self.lock().len()
    }

    /// Stops every idle worker and waits for it to exit.
    pub fn shutdown(&self) {
        close_all(std::mem::take(&mut *self.lock()));
    }

    /// An idle worker that is still alive, or a new one.
    pub(super) fn take(&self) -> Result<Worker> {
        loop {
            let Some(mut worker) = self.lock().pop() else {
                return Worker::spawn();
            };
            if !worker.has_exited() {
                return Ok(worker);
            }
        }
    }

    /// Keeps a healthy worker for later.
    pub(super) fn put(&self, mut worker: Worker) {
        worker.start_time = None;
        self.lock().push(worker);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Worker>> {
        self.idle.lock().unwrap_or_else(|e| e.into_inner())
    }
}

static GLOBAL: Pool = Pool::new();

/// Stops the global pool's idle workers as the process exits. It only tries the lock: an exit
/// while another thread holds the pool must not hang, and the kernel ends those workers anyway
/// (see [`sys::die_with_parent`]).
extern "C" fn shutdown_global_at_exit() {
    let workers = match GLOBAL.idle.try_lock() {
        Ok(mut idle) => std::mem::take(&mut *idle),
        Err(_) => return,
    };
    close_all(workers);
}

/// Closes every worker's input first, then waits for each, so that they exit together.
fn close_all(mut workers: Vec<Worker>) {
    for worker in &mut workers {
        worker.input = None;
    }
    for worker in workers {
        worker.close();
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        self.shutdown();
    }
}
