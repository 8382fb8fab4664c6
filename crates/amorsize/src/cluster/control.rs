//! The control connections: every other process keeps one TCP connection to process 0, beside
//! timely's own, for its hello, heartbeats both ways and a clean goodbye. A process that dies
//! closes it (the operating system does), a host that stops answering stops its heartbeats:
//! either way process 0 names the process within [`Hosts::lost_after`](super::Hosts), and
//! tells the others to stop.

use std::fmt;
use std::io::{ErrorKind as IoKind, Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;
use std::time::Duration;

/// A process's first byte: its hello, followed by its number (u32, little-endian).
pub(crate) const HELLO: u8 = b'O';
/// A heartbeat, either way.
pub(crate) const BEAT: u8 = b'H';
/// Process → process 0: the dataflow finished here, the process exits cleanly.
pub(crate) const BYE: u8 = b'B';
/// Process 0 → process: the cluster failed; exit.
pub(crate) const ABORT: u8 = b'A';

/// A process that process 0 lost.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Lost {
    /// Its number.
    pub process: usize,
    /// Its dataflow address.
    pub address: String,
    /// What process 0 saw.
    pub cause: String,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "cluster process {} ({}) was lost: {}; the cluster is fail-stop, so this run and the cluster end here (results of the run are not returned; start the cluster again with cluster::init)",
            self.process, self.address, self.cause
        )
    }
}

/// Process 0's view of the other processes' health.
#[derive(Debug)]
pub(crate) struct Health {
    lost: Mutex<Option<Lost>>,
    closing: AtomicBool,
    /// Write halves of the control connections, by process.
    peers: Mutex<Vec<(usize, TcpStream)>>,
    notify: (
        crossbeam_channel::Sender<()>,
        crossbeam_channel::Receiver<()>,
    ),
}

impl Health {
    pub(crate) fn new() -> Self {
        Health {
            lost: Mutex::new(None),
            closing: AtomicBool::new(false),
            peers: Mutex::new(Vec::new()),
            notify: crossbeam_channel::unbounded(),
        }
    }

    /// The first process lost, if any.
    pub(crate) fn lost(&self) -> Option<Lost> {
        self.lost.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Wakes whoever waits on [`Health::signal`] when a process is lost.
    pub(crate) fn signal(&self) -> &crossbeam_channel::Receiver<()> {
        &self.notify.1
    }

    /// Records a loss (the first one stands) and tells every other process to stop.
    pub(crate) fn report(&self, lost: Lost) {
        if self.closing.load(Ordering::Acquire) {
            return;
        }
        {
            let mut slot = self.lost.lock().unwrap_or_else(|e| e.into_inner());
            if slot.is_some() {
                return;
            }
            *slot = Some(lost);
        }
        self.broadcast(ABORT);
        let _ = self.notify.0.send(());
    }

    /// From now on a closed connection is the expected end, not a loss.
    pub(crate) fn close(&self) {
        self.closing.store(true, Ordering::Release);
    }

    pub(crate) fn add_peer(&self, process: usize, stream: TcpStream) {
        self.peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((process, stream));
    }

    /// Sends `byte` to every process; a failed write is left to that process's monitor.
    pub(crate) fn broadcast(&self, byte: u8) {
        for (_, stream) in self
            .peers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter_mut()
        {
            let _ = stream.write_all(&[byte]);
        }
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }
}

/// Process 0's watch over process `process`: reads its heartbeats until it says goodbye and
/// closes, or until it is lost.
pub(crate) fn monitor(
    health: &Health,
    process: usize,
    address: &str,
    mut stream: TcpStream,
    lost_after: Duration,
) {
    let _ = stream.set_read_timeout(Some(lost_after));
    let mut said_bye = false;
    let mut byte = [0u8];
    loop {
        let read = stream.read(&mut byte);
        // After its goodbye a process exits; the end of its connection, however it reads
        // (a reset when heartbeats were left unread), is expected.
        if said_bye && !matches!(read, Ok(n) if n > 0) {
            return;
        }
        let cause = match read {
            Ok(0) if health.is_closing() => return,
            Ok(0) => "its control connection closed (the process exited or was killed)".to_owned(),
            Ok(_) => {
                said_bye |= byte[0] == BYE;
                continue;
            }
            Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                if health.is_closing() {
                    return;
                }
                format!("no heartbeat for {:.1} s", lost_after.as_secs_f64())
            }
            Err(e) if health.is_closing() => {
                let _ = e;
                return;
            }
            Err(e) => format!("its control connection failed: {e}"),
        };
        health.report(Lost {
            process,
            address: address.to_owned(),
            cause,
        });
        return;
    }
}

/// In a process other than 0: heartbeats to process 0, and an exit when process 0 says so,
/// goes quiet or goes away (a fail-stop cluster has nothing to do without it).
pub(crate) fn serve_peer(
    process: usize,
    mut stream: TcpStream,
    lost_after: Duration,
    done: &'static AtomicBool,
) {
    let mut writer = match stream.try_clone() {
        Ok(w) => w,
        Err(e) => exit_peer(process, &format!("its control connection failed: {e}")),
    };
    let beat = lost_after / 4;
    std::thread::Builder::new()
        .name("amorsize-cluster-beat".into())
        .spawn(move || loop {
            if done.load(Ordering::Acquire) {
                return;
            }
            if writer.write_all(&[BEAT]).is_err() {
                exit_peer(process, "process 0's control connection closed");
            }
            std::thread::sleep(beat);
        })
        .expect("a thread for heartbeats");
    let _ = stream.set_read_timeout(Some(lost_after));
    std::thread::Builder::new()
        .name("amorsize-cluster-watch".into())
        .spawn(move || {
            let mut byte = [0u8];
            loop {
                let why = match stream.read(&mut byte) {
                    Ok(0) => "process 0's control connection closed",
                    Ok(_) if byte[0] == ABORT => "process 0 stopped the cluster after a failure",
                    Ok(_) => continue,
                    Err(e) if matches!(e.kind(), IoKind::WouldBlock | IoKind::TimedOut) => {
                        "process 0 sent no heartbeat in time"
                    }
                    Err(_) => "process 0's control connection failed",
                };
                if done.load(Ordering::Acquire) {
                    return;
                }
                exit_peer(process, why);
            }
        })
        .expect("a thread to watch process 0");
}

/// Ends a process other than 0 that lost process 0: nothing it holds can be delivered.
pub(crate) fn exit_peer(process: usize, why: &str) -> ! {
    // The process has no caller to return an error to: the message goes to its standard error.
    eprintln!("amorsize cluster process {process}: {why}; exiting");
    std::process::exit(1)
}
