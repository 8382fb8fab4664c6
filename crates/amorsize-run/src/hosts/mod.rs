//! Jobs on other machines, over OpenSSH: GNU parallel's `--sshlogin` (`-S`), `--slf`,
//! `--ssh`, `--transferfile`, `--return`, `--cleanup` and `--basefile`.
//!
//! Each host is a provider of job slots that the runner's one scheduler draws from: a job is
//! handed to a host with a free slot, and runs there through the host's shared connection
//! (one OpenSSH `ControlMaster` per host, opened before the first job and closed at the end), so
//! that a job does not pay a new handshake. The sample runs on every host; [`plan_hosts`] turns
//! what it measured (the round trip, the cores, the job time) into jobs and inputs per job for
//! each host. A host that cannot be reached, or that drops during the run, is taken out and its
//! jobs run on the others.
//!
//! The login parsers here are pure; the connections live in `ssh.rs`.

use std::ffi::OsString;
use std::fmt;
use std::num::NonZeroUsize;
use std::path::PathBuf;

use crate::{Error, ErrorKind, Result};

mod plan;
pub(crate) mod ssh;

pub use plan::{plan_hosts, BatchRule, HostFigures, HostPlan, HostPolicy, HostReason};
pub use plan::{MAX_SESSIONS, ROUND_TRIP_SHARE};

/// One of GNU parallel's sshlogins: `[N/]host`, where `host` is what `ssh` takes
/// (`user@name`, a name from the ssh configuration) and `:` is this machine, without ssh.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SshLogin {
    /// `N/`: the host's CPUs as the user gives them, instead of measuring them there.
    pub cpus: Option<NonZeroUsize>,
    /// What `ssh` connects to; `:` for this machine.
    pub host: String,
}

impl SshLogin {
    /// Whether this is this machine (`:`), where jobs run without ssh.
    pub fn is_local(&self) -> bool {
        self.host == ":"
    }

    /// Parses one sshlogin, `[N/]host`.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::InvalidInput`] for an empty host, a bad `N/`, or a form this runner does
    /// not take (GNU parallel's `..` and `-`, which name its own files, and sshlogins that
    /// hold a whole ssh command).
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize_run::hosts::SshLogin;
    ///
    /// let l = SshLogin::parse("4/user@box").unwrap();
    /// assert_eq!((l.cpus.map(|n| n.get()), l.host.as_str()), (Some(4), "user@box"));
    /// assert!(SshLogin::parse(":").unwrap().is_local());
    /// assert!(SshLogin::parse("0/box").is_err());
    /// ```
    pub fn parse(text: &str) -> Result<SshLogin> {
        let bad = |why: &str| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("sshlogin {text:?}: {why} (expected [N/]host, or `:` for this machine)"),
            )
        };
        let t = text.trim();
        let (cpus, host) = match t.split_once('/') {
            Some((n, host)) if !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()) => {
                let n: usize = n.parse().map_err(|_| bad("N/ is not a number"))?;
                (
                    Some(NonZeroUsize::new(n).ok_or_else(|| bad("N/ must be 1 or more"))?),
                    host,
                )
            }
            _ => (None, t),
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        if host == ".." || host == "-" {
            return Err(bad(
                "GNU parallel's `..` and `-` (its own sshlogin files) are not supported: give \
                 the hosts, or --slf FILE",
            ));
        }
        if host.contains(char::is_whitespace) {
            return Err(bad(
                "an sshlogin holding an ssh command is not supported: give the command with \
                 --ssh and the host here, or use the ssh configuration (Host, Port, User)",
            ));
        }
        Ok(SshLogin {
            cpus,
            host: host.to_owned(),
        })
    }

    /// Parses `-S`'s value: sshlogins separated by commas.
    ///
    /// # Errors
    ///
    /// As [`SshLogin::parse`], for the first bad one.
    pub fn parse_list(text: &str) -> Result<Vec<SshLogin>> {
        text.split(',')
            .filter(|s| !s.trim().is_empty())
            .map(SshLogin::parse)
            .collect()
    }

    /// Parses an `--slf` file: one sshlogin per line (or several, comma-separated), blank
    /// lines and lines starting with `#` ignored, as GNU parallel reads it.
    ///
    /// # Errors
    ///
    /// As [`SshLogin::parse`], naming the line.
    ///
    /// # Examples
    ///
    /// ```
    /// use amorsize_run::hosts::SshLogin;
    ///
    /// let hosts = SshLogin::parse_file("# two boxes\n2/a\n\nb,:\n").unwrap();
    /// let names: Vec<_> = hosts.iter().map(|h| h.host.as_str()).collect();
    /// assert_eq!(names, ["a", "b", ":"]);
    /// ```
    pub fn parse_file(text: &str) -> Result<Vec<SshLogin>> {
        let mut all = Vec::new();
        for (n, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let logins = SshLogin::parse_list(line)
                .map_err(|e| Error::new(ErrorKind::InvalidInput, format!("line {}: {e}", n + 1)))?;
            for l in logins {
                if !all.iter().any(|a: &SshLogin| a.host == l.host) {
                    all.push(l);
                }
            }
        }
        Ok(all)
    }
}

impl fmt::Display for SshLogin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.cpus {
            Some(n) => write!(f, "{n}/{}", self.host),
            None => f.write_str(&self.host),
        }
    }
}

/// Where jobs run and what travels with them: the options behind `-S`, `--slf`, `--ssh`,
/// `--transferfile`, `--return`, `--cleanup` and `--basefile`.
#[derive(Clone, Debug, Default)]
pub struct Hosts {
    pub(crate) logins: Vec<SshLogin>,
    pub(crate) file: Option<PathBuf>,
    pub(crate) ssh: Vec<OsString>,
    pub(crate) transfer: Vec<String>,
    pub(crate) returns: Vec<String>,
    pub(crate) cleanup: bool,
    pub(crate) basefiles: Vec<PathBuf>,
}

impl Hosts {
    /// No hosts yet; the ssh program is `ssh`.
    pub fn new() -> Self {
        Hosts {
            ssh: vec!["ssh".into()],
            ..Hosts::default()
        }
    }

    /// Adds sshlogins (`-S`).
    pub fn logins(mut self, logins: impl IntoIterator<Item = SshLogin>) -> Self {
        for l in logins {
            if !self.logins.iter().any(|a| a.host == l.host) {
                self.logins.push(l);
            }
        }
        self
    }

    /// Reads sshlogins from `path` (`--slf`), now and again whenever the file changes during
    /// the run: new hosts join, hosts no longer listed take no new jobs.
    pub fn file(mut self, path: PathBuf) -> Self {
        self.file = Some(path);
        self
    }

    /// The ssh program and its arguments (`--ssh 'ssh -F cfg'`), split into words.
    pub fn ssh(mut self, words: Vec<OsString>) -> Self {
        if !words.is_empty() {
            self.ssh = words;
        }
        self
    }

    /// Files to copy to the host before each job (`--transferfile`), with replacement strings
    /// (`{}`); relative names land relative to the remote login directory.
    pub fn transfer(mut self, name: String) -> Self {
        self.transfer.push(name);
        self
    }

    /// Files to copy back after each job (`--return`), with replacement strings.
    pub fn returns(mut self, name: String) -> Self {
        self.returns.push(name);
        self
    }

    /// Remove the transferred and returned files on the host after each job, and the base
    /// files at the end (`--cleanup`).
    pub fn cleanup(mut self, yes: bool) -> Self {
        self.cleanup = yes;
        self
    }

    /// Files copied to each host once, before its first job (`--basefile`).
    pub fn basefile(mut self, path: PathBuf) -> Self {
        self.basefiles.push(path);
        self
    }

    /// Whether any host is named (or a file is to be read).
    pub fn any(&self) -> bool {
        !self.logins.is_empty() || self.file.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logins_parse_as_gnu_parallel_writes_them() {
        let all = SshLogin::parse_list("2/h1,user@h2, : ").unwrap();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].cpus, NonZeroUsize::new(2));
        assert_eq!(all[1].host, "user@h2");
        assert!(all[2].is_local());
        assert_eq!(all[0].to_string(), "2/h1");
        for bad in ["0/h", "", "2/", "..", "-", "ssh -p 2 h"] {
            assert!(SshLogin::parse(bad).is_err(), "{bad}");
        }
        // A `/` that does not follow a number is part of the host (GNU parallel's rule).
        assert_eq!(SshLogin::parse("a/b").unwrap().host, "a/b");
    }

    #[test]
    fn login_files_skip_comments_and_repeats() {
        let all = SshLogin::parse_file("#x\n h1 \n\n1/h1\n# h3\nh2,:\n").unwrap();
        let hosts: Vec<_> = all.iter().map(|h| h.host.as_str()).collect();
        assert_eq!(hosts, ["h1", "h2", ":"]);
        let err = SshLogin::parse_file("h1\n0/h2\n").unwrap_err();
        assert!(err.to_string().contains("line 2"), "{err}");
    }
}
