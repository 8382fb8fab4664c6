//! Starting a cluster: process 0 binds, starts local processes, waits for every hello and for
//! timely's connections; the other processes connect, serve the dataflow and exit.

use super::control::{self, Health, Lost, BYE, HELLO};
use super::engine::{self, Command, Shared};
use super::handle::{Cluster, Inner};
use super::hosts::{resolve, Hosts};
use crate::{Error, ErrorKind, Result};
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command as Process};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use timely::communication::Config as Communication;

const ENV_PROCESS: &str = "AMORSIZE_CLUSTER_PROCESS";
const ENV_ADDRESSES: &str = "AMORSIZE_CLUSTER_ADDRESSES";
const ENV_REACH: &str = "AMORSIZE_CLUSTER_REACH";
const ENV_CONTROL: &str = "AMORSIZE_CLUSTER_CONTROL";
const ENV_WORKERS: &str = "AMORSIZE_CLUSTER_WORKERS";
const ENV_LOST_AFTER: &str = "AMORSIZE_CLUSTER_LOST_AFTER_MS";
const ENV_JOIN: &str = "AMORSIZE_CLUSTER_JOIN_MS";

/// The place of a process that process 0 of a local cluster started.
pub(super) fn from_environment() -> Option<Hosts> {
    let process = std::env::var(ENV_PROCESS).ok()?.parse().ok()?;
    let addresses: Vec<String> = std::env::var(ENV_ADDRESSES)
        .ok()?
        .split(',')
        .map(str::to_owned)
        .collect();
    let millis = |name: &str, default: Duration| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .map_or(default, Duration::from_millis)
    };
    let reach = std::env::var(ENV_REACH)
        .unwrap_or_default()
        .split(',')
        .map(|r| (!r.is_empty()).then(|| r.to_owned()))
        .chain(std::iter::repeat(None))
        .take(addresses.len())
        .collect();
    Some(Hosts {
        addresses,
        reach,
        process,
        workers: std::env::var(ENV_WORKERS).ok()?.parse().ok()?,
        control: std::env::var(ENV_CONTROL).ok(),
        local: false,
        lost_after: millis(ENV_LOST_AFTER, super::DEFAULT_LOST_AFTER),
        join_timeout: millis(ENV_JOIN, super::DEFAULT_JOIN_TIMEOUT),
    })
}

fn config(hosts: &Hosts) -> timely::Config {
    timely::Config {
        communication: Communication::Cluster {
            threads: hosts.workers,
            process: hosts.process,
            addresses: hosts.view(),
            report: false,
            zerocopy: false,
        },
        worker: timely::WorkerConfig::default(),
    }
}

/// A process other than 0: hello, heartbeats, the dataflow; exits when it ends.
pub(super) fn serve(hosts: Hosts) -> ! {
    static DONE: AtomicBool = AtomicBool::new(false);
    let process = hosts.process;
    let control = match hosts.control_address() {
        Ok(c) => c,
        Err(e) => control::exit_peer(process, &e.to_string()),
    };
    let deadline = Instant::now() + hosts.join_timeout;
    let mut stream = loop {
        let attempt = resolve(&control).and_then(|a| {
            TcpStream::connect_timeout(&a, Duration::from_secs(1))
                .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))
        });
        match attempt {
            Ok(s) => break s,
            Err(e) if Instant::now() >= deadline => control::exit_peer(
                process,
                &format!("process 0's control address {control} did not answer: {e}"),
            ),
            Err(_) => std::thread::sleep(Duration::from_millis(50)),
        }
    };
    let _ = stream.set_nodelay(true);
    let mut hello = vec![HELLO];
    hello.extend_from_slice(&(process as u32).to_le_bytes());
    hello.extend_from_slice(&usable_cores().to_le_bytes());
    if let Err(e) = stream.write_all(&hello) {
        control::exit_peer(process, &format!("the hello to process 0 failed: {e}"));
    }
    let mut writer = stream.try_clone().ok();
    control::serve_peer(process, stream, hosts.lost_after, &DONE);
    let shared = Arc::new(Shared::default());
    let guards = timely::execute(config(&hosts), move |worker| {
        engine::worker(worker, None, Arc::clone(&shared))
    });
    let guards = match guards {
        Ok(g) => g,
        Err(e) => control::exit_peer(process, &format!("timely could not start: {e}")),
    };
    let failed = guards.join().into_iter().any(|r| r.is_err());
    if failed {
        control::exit_peer(process, "a worker of this process failed");
    }
    DONE.store(true, Ordering::Release);
    if let Some(w) = writer.as_mut() {
        let _ = w.write_all(&[BYE]);
        let _ = w.flush();
    }
    std::process::exit(0)
}

/// Process 0: starts or waits for the others, connects, measures.
pub(super) fn start(mut hosts: Hosts) -> Result<Cluster> {
    let began = Instant::now();
    let listener = if hosts.local {
        hosts.bind_local()?
    } else {
        let address = hosts.control_address()?;
        TcpListener::bind(&address).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("process 0 could not listen for heartbeats at {address}: {e}"),
            )
        })?
    };
    let processes = hosts.processes();
    let mut started = vec![began; processes];
    let mut children: Vec<(usize, Child)> = Vec::new();
    if hosts.local {
        let exe = std::env::current_exe().map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("the current executable is unknown: {e}"),
            )
        })?;
        for (process, start) in started.iter_mut().enumerate().skip(1) {
            *start = Instant::now();
            let child = Process::new(&exe)
                .args(std::env::args_os().skip(1))
                .env(ENV_PROCESS, process.to_string())
                .env(ENV_ADDRESSES, hosts.addresses.join(","))
                .env(
                    ENV_REACH,
                    hosts
                        .reach
                        .iter()
                        .map(|r| r.as_deref().unwrap_or(""))
                        .collect::<Vec<_>>()
                        .join(","),
                )
                .env(ENV_CONTROL, hosts.control.clone().unwrap_or_default())
                .env(ENV_WORKERS, hosts.workers.to_string())
                .env(ENV_LOST_AFTER, hosts.lost_after.as_millis().to_string())
                .env(ENV_JOIN, hosts.join_timeout.as_millis().to_string())
                .spawn();
            match child {
                Ok(c) => children.push((process, c)),
                Err(e) => {
                    stop_children(&mut children);
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "cluster process {process} could not be started from {}: {e}",
                            exe.display()
                        ),
                    ));
                }
            }
        }
    }

    // timely connects in a thread of its own: it waits for every process without a deadline.
    let shared = Arc::new(Shared::default());
    let (commands, receiver) = crossbeam_channel::unbounded::<Command>();
    let receiver = Arc::new(Mutex::new(Some(receiver)));
    let (built, guards) = crossbeam_channel::bounded(1);
    {
        let shared = Arc::clone(&shared);
        let config = config(&hosts);
        std::thread::Builder::new()
            .name("amorsize-cluster-start".into())
            .spawn(move || {
                let result = timely::execute(config, move |worker| {
                    let commands = if worker.index() == 0 {
                        receiver.lock().unwrap_or_else(|e| e.into_inner()).take()
                    } else {
                        None
                    };
                    engine::worker(worker, commands, Arc::clone(&shared))
                });
                let _ = built.send((result, Instant::now()));
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("no thread to start timely: {e}")))?;
    }

    let deadline = began + hosts.join_timeout;
    let joined = accept_hellos(&listener, &hosts, deadline, &mut children);
    let mut joined = match joined {
        Ok(j) => j,
        Err(e) => {
            stop_children(&mut children);
            return Err(e);
        }
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let (guards, connected) = match guards.recv_timeout(remaining) {
        Ok((Ok(g), at)) => (g, at),
        Ok((Err(e), _)) => {
            stop_children(&mut children);
            return Err(Error::new(
                ErrorKind::Io,
                format!("timely could not connect the cluster: {e}"),
            ));
        }
        Err(_) => {
            stop_children(&mut children);
            return Err(Error::new(
                ErrorKind::WorkerFailed,
                format!(
                    "the cluster's processes did not connect within {:.0} s ({})",
                    hosts.join_timeout.as_secs_f64(),
                    hosts.addresses.join(", ")
                ),
            ));
        }
    };

    let health = Arc::new(Health::new());
    let mut monitors = Vec::new();
    let mut startup = vec![connected.duration_since(began); processes];
    let mut cores = vec![usable_cores(); processes];
    for (process, stream, at, its_cores) in joined.drain(..) {
        startup[process] = at.max(connected).duration_since(started[process]);
        cores[process] = its_cores;
        if let Ok(w) = stream.try_clone() {
            health.add_peer(process, w);
        }
        let health = Arc::clone(&health);
        let address = hosts.addresses[process].clone();
        let lost_after = hosts.lost_after;
        monitors.push(
            std::thread::Builder::new()
                .name(format!("amorsize-cluster-monitor-{process}"))
                .spawn(move || control::monitor(&health, process, &address, stream, lost_after))
                .map_err(|e| {
                    Error::new(ErrorKind::Io, format!("no thread to watch a process: {e}"))
                })?,
        );
    }
    {
        let health = Arc::clone(&health);
        let beat = hosts.lost_after / 4;
        std::thread::Builder::new()
            .name("amorsize-cluster-beat".into())
            .spawn(move || {
                while !health.is_closing() {
                    health.broadcast(control::BEAT);
                    std::thread::sleep(beat);
                }
            })
            .map_err(|e| Error::new(ErrorKind::Io, format!("no thread for heartbeats: {e}")))?;
    }

    let inner = Inner {
        cores: shared_cores(&hosts.addresses, &cores),
        hosts,
        commands: Some(commands),
        shared,
        health,
        guards: Some(guards),
        monitors,
        children,
        startup,
        next_id: 0,
    };
    Cluster::measured(inner, began)
}

/// Accepts the hello of every other process until `deadline`; a local process that exits
/// before its hello is named at once.
fn accept_hellos(
    listener: &TcpListener,
    hosts: &Hosts,
    deadline: Instant,
    children: &mut [(usize, Child)],
) -> Result<Vec<(usize, TcpStream, Instant, f64)>> {
    let processes = hosts.processes();
    let mut joined: Vec<(usize, TcpStream, Instant, f64)> = Vec::new();
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::new(ErrorKind::Io, e.to_string()))?;
    while joined.len() + 1 < processes {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                let _ = stream.set_nodelay(true);
                let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                let mut hello = [0u8; 13];
                if stream.read_exact(&mut hello).is_ok() && hello[0] == HELLO {
                    let process =
                        u32::from_le_bytes(hello[1..5].try_into().expect("4 bytes")) as usize;
                    let cores = f64::from_le_bytes(hello[5..13].try_into().expect("8 bytes"));
                    if process > 0 && process < processes && joined.iter().all(|j| j.0 != process) {
                        joined.push((process, stream, Instant::now(), cores));
                    }
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                for (process, child) in children.iter_mut() {
                    if let Ok(Some(status)) = child.try_wait() {
                        return Err(lost_error(&Lost {
                            process: *process,
                            address: hosts.addresses[*process].clone(),
                            cause: format!("it exited before joining ({status})"),
                        }));
                    }
                }
                if Instant::now() >= deadline {
                    let missing: Vec<String> = (1..processes)
                        .filter(|p| joined.iter().all(|j| j.0 != *p))
                        .map(|p| format!("process {p} ({})", hosts.addresses[p]))
                        .collect();
                    return Err(Error::new(
                        ErrorKind::WorkerFailed,
                        format!(
                            "{} did not join the cluster within {:.0} s; start it with the same hostfile and its number",
                            missing.join(", "),
                            hosts.join_timeout.as_secs_f64()
                        ),
                    ));
                }
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => {
                return Err(Error::new(
                    ErrorKind::Io,
                    format!("accepting a process failed: {e}"),
                ))
            }
        }
    }
    Ok(joined)
}

/// The cores of this process's machine its workers can count on: the usable cores (CPU quota
/// and affinity included) less what other programs' runnable threads take, as the thread
/// backend's plan counts them.
fn usable_cores() -> f64 {
    let caps = crate::plan::Caps::from_machine(crate::probe::machine());
    let cores = caps.usable_cores().ceil().max(1.0) as usize;
    caps.capacity().relative_cores(cores)
}

/// Each process's share of its host's cores: processes whose addresses name the same host
/// share that host's cores equally.
fn shared_cores(addresses: &[String], cores: &[f64]) -> Vec<f64> {
    let host = |a: &String| a.rsplit_once(':').map_or(a.clone(), |(h, _)| h.to_owned());
    addresses
        .iter()
        .zip(cores)
        .map(|(a, c)| {
            let together = addresses.iter().filter(|b| host(b) == host(a)).count();
            c / together.max(1) as f64
        })
        .collect()
}

/// The error of a lost process.
pub(super) fn lost_error(lost: &Lost) -> Error {
    Error::new(ErrorKind::WorkerFailed, lost.to_string())
}

/// Kills and reaps the local processes.
pub(super) fn stop_children(children: &mut Vec<(usize, Child)>) {
    for (_, child) in children.iter_mut() {
        let _ = child.kill();
    }
    for (_, mut child) in children.drain(..) {
        let _ = child.wait();
    }
}
