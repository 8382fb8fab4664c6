//! Which processes make up the cluster, and how to reach them.

use crate::{Error, ErrorKind, Result};
use std::net::{SocketAddr, TcpListener, ToSocketAddrs};
use std::path::Path;
use std::time::Duration;

/// Default time without a heartbeat after which a process counts as lost.
pub const DEFAULT_LOST_AFTER: Duration = Duration::from_secs(3);

/// Default time the processes have to start and connect before [`init`](super::init) gives up.
pub const DEFAULT_JOIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Where process 0 listens for the other processes' heartbeats when a hostfile does not say:
/// its own dataflow port plus this offset, on its own host.
pub const CONTROL_PORT_OFFSET: u16 = 1000;

/// The processes of a cluster: their addresses (process `i` listens at `addresses[i]`), which
/// one this is, and the workers (threads) each runs.
///
/// # Examples
///
/// ```
/// use amorsize::cluster::Hosts;
/// let hosts = Hosts::local(3).workers(2);
/// assert_eq!(hosts.processes(), 3);
/// let hosts = Hosts::from_hostfile_text("a.example:2101\nb.example:2101\n", 1).unwrap();
/// assert_eq!(hosts.process(), 1);
/// ```
#[derive(Clone, Debug)]
pub struct Hosts {
    pub(crate) addresses: Vec<String>,
    /// Where the other processes reach each process, when not at its own address.
    pub(crate) reach: Vec<Option<String>>,
    pub(crate) process: usize,
    pub(crate) workers: usize,
    pub(crate) control: Option<String>,
    pub(crate) local: bool,
    pub(crate) lost_after: Duration,
    pub(crate) join_timeout: Duration,
}

impl Hosts {
    /// `processes` processes on this machine: process 0 (this one) starts the others as copies
    /// of the current executable, on free ports of 127.0.0.1. One worker each unless
    /// [`workers`](Hosts::workers) says otherwise.
    pub fn local(processes: usize) -> Hosts {
        Hosts {
            addresses: vec![String::new(); processes.max(1)],
            reach: vec![None; processes.max(1)],
            process: 0,
            workers: 1,
            control: None,
            local: true,
            lost_after: DEFAULT_LOST_AFTER,
            join_timeout: DEFAULT_JOIN_TIMEOUT,
        }
    }

    /// The processes a hostfile names, this being process `process`: timely's format, one
    /// `host:port` per line in the order of the processes; blank lines and lines starting with
    /// `#` are skipped. Every process runs the same executable with the same hostfile and its
    /// own `process`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Io`] when the file cannot be read; [`ErrorKind::InvalidInput`] as
    /// [`Hosts::from_hostfile_text`].
    pub fn hostfile(path: impl AsRef<Path>, process: usize) -> Result<Hosts> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::new(
                ErrorKind::Io,
                format!("the hostfile {} could not be read: {e}", path.display()),
            )
            .with_path(path)
        })?;
        Hosts::from_hostfile_text(&text, process)
    }

    /// [`Hosts::hostfile`] from the file's text.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] when a line is not `host:port`, no process is listed, or
    /// `process` is not one of them.
    pub fn from_hostfile_text(text: &str, process: usize) -> Result<Hosts> {
        let addresses = parse_hostfile(text)?;
        if process >= addresses.len() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "process {process} is not in the hostfile, which lists {} processes (0 to {})",
                    addresses.len(),
                    addresses.len() - 1
                ),
            ));
        }
        Ok(Hosts {
            reach: vec![None; addresses.len()],
            addresses,
            process,
            workers: 1,
            control: None,
            local: false,
            lost_after: DEFAULT_LOST_AFTER,
            join_timeout: DEFAULT_JOIN_TIMEOUT,
        })
    }

    /// A local cluster (as [`Hosts::local`]) whose processes listen at `addresses`
    /// (`127.0.0.1:port`, one per process) rather than at ports chosen for them.
    pub fn local_on(addresses: Vec<String>) -> Hosts {
        Hosts {
            reach: vec![None; addresses.len().max(1)],
            addresses: if addresses.is_empty() {
                vec![String::new()]
            } else {
                addresses
            },
            ..Hosts::local(1)
        }
    }

    /// The other processes reach `process` at `address` (a tunnel, a port forward or a proxy
    /// that leads to the address it listens at) instead of at its own address.
    pub fn reach(mut self, process: usize, address: impl Into<String>) -> Self {
        if let Some(slot) = self.reach.get_mut(process) {
            *slot = Some(address.into());
        }
        self
    }

    /// The addresses as process `process` sees them: its own to listen at, the others' to
    /// connect to.
    pub(crate) fn view(&self) -> Vec<String> {
        self.addresses
            .iter()
            .zip(&self.reach)
            .enumerate()
            .map(|(p, (own, reach))| match reach {
                Some(r) if p != self.process => r.clone(),
                _ => own.clone(),
            })
            .collect()
    }

    /// Workers (threads) per process; at least 1.
    pub fn workers(mut self, workers: usize) -> Self {
        self.workers = workers.max(1);
        self
    }

    /// Where process 0 listens for the others' heartbeats (`host:port`); by default its own
    /// host at its dataflow port plus [`CONTROL_PORT_OFFSET`].
    pub fn control(mut self, address: impl Into<String>) -> Self {
        self.control = Some(address.into());
        self
    }

    /// Time without a heartbeat after which a process counts as lost (default
    /// [`DEFAULT_LOST_AFTER`]); heartbeats go every quarter of it.
    pub fn lost_after(mut self, after: Duration) -> Self {
        self.lost_after = after.max(Duration::from_millis(100));
        self
    }

    /// Time the processes have to start and connect (default [`DEFAULT_JOIN_TIMEOUT`]).
    pub fn join_timeout(mut self, timeout: Duration) -> Self {
        self.join_timeout = timeout;
        self
    }

    /// Processes in the cluster.
    pub fn processes(&self) -> usize {
        self.addresses.len()
    }

    /// This process's number.
    pub fn process(&self) -> usize {
        self.process
    }

    /// The control address: the one given, or process 0's host at its port plus the offset.
    pub(crate) fn control_address(&self) -> Result<String> {
        if let Some(c) = &self.control {
            return Ok(c.clone());
        }
        let first = &self.addresses[0];
        let (host, port) = split_address(first)?;
        let port = port.checked_add(CONTROL_PORT_OFFSET).ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("process 0's port {port} leaves no room for the control port (+{CONTROL_PORT_OFFSET}); name one with Hosts::control"),
            )
        })?;
        Ok(format!("{host}:{port}"))
    }

    /// Gives a local cluster free ports on 127.0.0.1 for every process and the control
    /// listener, which stays bound.
    pub(crate) fn bind_local(&mut self) -> Result<TcpListener> {
        let io = |e: std::io::Error| {
            Error::new(ErrorKind::Io, format!("no free port on 127.0.0.1: {e}"))
        };
        // Every listener is held until all ports are chosen, so that no two are the same; the
        // dataflow ports are then released for timely to bind (a port taken by another program
        // in between makes the start fail with a clear error, not a hang).
        let held: Vec<Option<TcpListener>> = self
            .addresses
            .iter()
            .map(|a| {
                a.is_empty()
                    .then(|| TcpListener::bind("127.0.0.1:0"))
                    .transpose()
            })
            .collect::<std::io::Result<_>>()
            .map_err(io)?;
        for (address, listener) in self.addresses.iter_mut().zip(&held) {
            if let Some(listener) = listener {
                *address = listener.local_addr().map_err(io)?.to_string();
            }
        }
        let control = TcpListener::bind("127.0.0.1:0").map_err(io)?;
        self.control = Some(control.local_addr().map_err(io)?.to_string());
        Ok(control)
    }
}

/// The addresses of a hostfile's text, in order.
fn parse_hostfile(text: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        split_address(line).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("hostfile line {}: {e}", number + 1),
            )
        })?;
        out.push(line.to_owned());
    }
    if out.is_empty() {
        return Err(Error::new(
            ErrorKind::InvalidInput,
            "the hostfile lists no process; write one host:port per line",
        ));
    }
    Ok(out)
}

fn split_address(address: &str) -> Result<(&str, u16)> {
    let bad = || {
        Error::new(
            ErrorKind::InvalidInput,
            format!("{address:?} is not host:port"),
        )
    };
    let (host, port) = address.rsplit_once(':').ok_or_else(bad)?;
    let port: u16 = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host, port))
}

/// Resolves `address` to its first socket address.
pub(crate) fn resolve(address: &str) -> Result<SocketAddr> {
    address
        .to_socket_addrs()
        .ok()
        .and_then(|mut a| a.next())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("the address {address:?} does not resolve"),
            )
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hostfile_lists_addresses_in_order_skipping_blanks_and_comments() {
        let text = "# cluster\nh0:2101\n\n  h1:2102  \n10.0.0.3:9\n";
        assert_eq!(
            parse_hostfile(text).unwrap(),
            ["h0:2101", "h1:2102", "10.0.0.3:9"]
        );
    }

    #[test]
    fn a_bad_hostfile_line_is_named() {
        let e = parse_hostfile("h0:2101\nh1\n").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidInput);
        assert!(e.to_string().contains("line 2"), "{e}");
        assert!(parse_hostfile("\n# nothing\n").is_err());
        assert!(parse_hostfile("h0:99999\n").is_err());
    }

    #[test]
    fn a_process_outside_the_hostfile_is_refused() {
        let e = Hosts::from_hostfile_text("h0:1\nh1:2\n", 2).unwrap_err();
        assert!(e.to_string().contains("process 2"), "{e}");
    }

    #[test]
    fn the_control_port_follows_process_zero() {
        let hosts = Hosts::from_hostfile_text("h0:2101\nh1:2101\n", 0).unwrap();
        assert_eq!(hosts.control_address().unwrap(), "h0:3101");
        let hosts = hosts.control("c:7");
        assert_eq!(hosts.control_address().unwrap(), "c:7");
    }

    #[test]
    fn a_process_is_reached_through_its_tunnel_but_listens_at_its_own_address() {
        let hosts = Hosts::from_hostfile_text("h0:1\nh1:2\n", 1)
            .unwrap()
            .reach(0, "p:9")
            .reach(1, "q:9");
        assert_eq!(hosts.view(), ["p:9", "h1:2"]);
        let hosts = Hosts::from_hostfile_text("h0:1\nh1:2\n", 0)
            .unwrap()
            .reach(0, "p:9");
        assert_eq!(hosts.view(), ["h0:1", "h1:2"]);
    }

    #[test]
    fn local_ports_are_distinct() {
        let mut hosts = Hosts::local(4);
        let _control = hosts.bind_local().unwrap();
        let mut all = hosts.addresses.clone();
        all.push(hosts.control.clone().unwrap());
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 5);
    }
}
