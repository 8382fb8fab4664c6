//! Connections to hosts over the system's OpenSSH: one shared connection (`ControlMaster`)
//! per host, which the runner opens before the first job and closes at the end, and the
//! commands that run through it — jobs, copies of files both ways, removals, checks.
//!
//! OpenSSH is used as a program rather than an SSH library so that the user's configuration
//! (`~/.ssh/config`, agents, jump hosts, keys) applies exactly as it does to `ssh` and to GNU
//! parallel, and so that `--ssh` can name any compatible program.

use std::ffi::{OsStr, OsString};
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use amorsize::model::Seconds;

use crate::template::{quote, Batching, Job, Placeholder, Template};
use crate::{Error, ErrorKind, Result};

/// How long a host may take to accept the shared connection before it counts as down.
const CONNECT_WAIT: Duration = Duration::from_secs(60);

/// Round trips measured per host, the `nproc` that reads its CPUs included; the fastest
/// counts (a busy machine only adds time). Each costs a round trip before the first job.
const ROUND_TRIPS: usize = 2;

/// After `ssh -O exit`, how long the master may take to end before it is killed.
const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// The remote side of every job. The login shell runs `sh` with this script and the job's
/// command line as `$1`: the job runs with its standard input closed (as local jobs do), while
/// a watcher reads the session's standard input, which the runner holds open for as long as
/// the job runs. When the local `ssh` ends early (an interruption, a timeout, `--halt now`),
/// the session closes, the watcher reads its end and ends the session's whole process group
/// (sshd starts each session in a group of its own), so the remote job does not outlive it.
const WRAPPER: &str = "exec 3<&0; (cat >/dev/null 2>&1 <&3; kill -TERM 0) >/dev/null 2>&1 & \
                       exec sh -c \"$1\" sh </dev/null 3<&-";

/// A host's shared connection, as jobs use it.
#[derive(Debug)]
pub(crate) struct Conn {
    /// The sshlogin's host, as `ssh` takes it.
    pub login: String,
    ssh: Vec<OsString>,
    control: PathBuf,
}

impl Conn {
    /// The argument vector that runs `remote` (text for the remote login shell) on the host
    /// through the shared connection.
    pub(crate) fn argv(&self, remote: &[u8]) -> Vec<OsString> {
        let mut v = self.ssh.clone();
        v.extend([
            OsString::from("-S"),
            self.control.clone().into_os_string(),
            "-o".into(),
            "ControlMaster=no".into(),
            self.login.clone().into(),
            "--".into(),
            OsString::from_vec(remote.to_vec()),
        ]);
        v
    }

    /// The argument vector of a job: its command line, run by `sh` under [`WRAPPER`].
    pub(crate) fn job_argv(&self, template: &Template, job: &Job) -> Vec<OsString> {
        self.argv(&remote_line(template, job))
    }

    fn command(&self, remote: &[u8]) -> Command {
        let argv = self.argv(remote);
        let mut cmd = Command::new(&argv[0]);
        cmd.args(&argv[1..])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        cmd
    }

    /// Runs `remote` there and collects its output.
    pub(crate) fn run(&self, remote: &[u8]) -> io::Result<Output> {
        self.command(remote).output()
    }

    /// Whether the host still answers through the connection.
    pub(crate) fn alive(&self) -> bool {
        self.run(b"true").is_ok_and(|o| o.status.success())
    }

    /// Copies the local file `local` to `remote` there (directories made as needed).
    pub(crate) fn send(&self, local: &Path, remote: &[u8]) -> io::Result<Output> {
        let file = File::open(local)?;
        let mut line = Vec::new();
        if let Some(cut) = remote.iter().rposition(|&b| b == b'/') {
            if cut > 0 {
                line.extend_from_slice(b"mkdir -p -- ");
                line.extend(quote(&remote[..cut]));
                line.extend_from_slice(b" && ");
            }
        }
        line.extend_from_slice(b"cat > ");
        line.extend(quote(remote));
        self.command(&line).stdin(file).output()
    }

    /// Copies `remote` there to the local file `local` (directories made as needed); the
    /// local file is written only when the remote one could be read.
    pub(crate) fn fetch(&self, remote: &[u8], local: &Path) -> io::Result<Output> {
        let mut line = b"cat -- ".to_vec();
        line.extend(quote(remote));
        let out = self.run(&line)?;
        if out.status.success() {
            if let Some(dir) = local.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)?;
            }
            std::fs::write(local, &out.stdout)?;
        }
        Ok(out)
    }

    /// Removes these files there.
    pub(crate) fn remove(&self, names: &[Vec<u8>]) -> io::Result<Output> {
        let mut line = b"rm -f --".to_vec();
        for n in names {
            line.push(b' ');
            line.extend(quote(n));
        }
        self.run(&line)
    }
}

/// The job's command as text for the remote login shell: `sh` runs [`WRAPPER`] with the
/// command line as its argument, so that the command means the same whatever the login shell
/// is. Several words become one line, each quoted; a shell script goes as written.
pub(crate) fn remote_line(template: &Template, job: &Job) -> Vec<u8> {
    let argv = template.argv(job);
    let command = if template.uses_shell() {
        argv[2].as_bytes().to_vec()
    } else {
        let mut line = Vec::new();
        for (k, w) in argv.iter().enumerate() {
            if k > 0 {
                line.push(b' ');
            }
            line.extend(quote(w.as_bytes()));
        }
        line
    };
    let mut remote = b"exec sh -c ".to_vec();
    remote.extend(quote(WRAPPER.as_bytes()));
    remote.extend_from_slice(b" sh ");
    remote.extend(quote(&command));
    remote
}

/// A file name of `--transferfile` or `--return`, with replacement strings.
#[derive(Clone, Debug)]
pub(crate) enum FileName {
    /// A name without replacement strings.
    Literal(Vec<u8>),
    /// A name with them: one name per input.
    Template(Template),
}

impl FileName {
    /// Parses the option's value.
    pub(crate) fn parse(option: &str, text: &str) -> Result<FileName> {
        let t = Template::with_batching([text], Batching::Context)?;
        if t.uses_shell() {
            return Err(Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "{option} {text:?}: a file name with spaces or shell syntax is not \
                     supported; name the file with replacement strings only ({{}}, {{.}}, …)"
                ),
            ));
        }
        Ok(match t.placeholder() {
            Placeholder::Append => FileName::Literal(text.as_bytes().to_vec()),
            _ => FileName::Template(t),
        })
    }

    /// The names for `job`.
    pub(crate) fn names(&self, job: &Job) -> Vec<Vec<u8>> {
        match self {
            FileName::Literal(n) => vec![n.clone()],
            FileName::Template(t) => t.argv(job).into_iter().map(OsString::into_vec).collect(),
        }
    }
}

/// A host's master connection: the `ssh -M -N` process the runner owns.
#[derive(Debug)]
pub(crate) struct Master {
    pub conn: Arc<Conn>,
    child: Option<Child>,
}

/// What the runner measures of a host once its connection is up.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Measured {
    pub round_trip: Seconds,
    pub cores: Option<usize>,
}

/// Opens the shared connection to `login`, with its control socket at `control`. `Err`
/// says why the host counts as down (what ssh said).
pub(crate) fn open(
    ssh: &[OsString],
    login: &str,
    control: PathBuf,
) -> std::result::Result<Master, String> {
    let Some(program) = ssh.first() else {
        return Err("no ssh program".into());
    };
    let mut errors = tempfile_like().map_err(|e| format!("cannot make a file: {e}"))?;
    let mut cmd = Command::new(program);
    cmd.args(&ssh[1..])
        .args([
            OsStr::new("-M"),
            OsStr::new("-N"),
            OsStr::new("-S"),
            control.as_os_str(),
            OsStr::new("-o"),
            OsStr::new("ControlMaster=yes"),
            OsStr::new("-o"),
            OsStr::new("ControlPersist=no"),
            OsStr::new(login),
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(errors.try_clone().map_err(|e| e.to_string())?)
        // Its own group: the terminal's Ctrl-C reaches the runner, which ends the jobs and
        // then closes the connection, rather than the connection dying under the jobs.
        .process_group(0);
    let mut child = cmd
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", program.to_string_lossy()))?;
    let conn = Arc::new(Conn {
        login: login.to_owned(),
        ssh: ssh.to_vec(),
        control: control.clone(),
    });
    let began = Instant::now();
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            let mut said = String::new();
            use std::io::Seek;
            let _ = errors.seek(io::SeekFrom::Start(0));
            let _ = errors.read_to_string(&mut said);
            let code = status
                .code()
                .map_or_else(|| status.to_string(), |c| c.to_string());
            return Err(format!("ssh exited with {code}: {}", said.trim()));
        }
        if control.exists() {
            let mut check = Command::new(program);
            check
                .args(&ssh[1..])
                .args([OsStr::new("-S"), control.as_os_str(), OsStr::new("-O")])
                .args(["check", login])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null());
            if check.status().is_ok_and(|s| s.success()) {
                return Ok(Master {
                    conn,
                    child: Some(child),
                });
            }
        }
        if began.elapsed() > CONNECT_WAIT {
            let mut m = Master {
                conn,
                child: Some(child),
            };
            m.close();
            return Err(format!("no connection after {} s", CONNECT_WAIT.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// An anonymous file for what a master writes to standard error.
fn tempfile_like() -> io::Result<File> {
    crate::sys::output_file()
}

impl Master {
    /// Measures the round trip and reads the host's CPUs (`nproc`).
    pub(crate) fn measure(&self) -> Measured {
        let mut best = f64::INFINITY;
        let t = Instant::now();
        let nproc = self
            .conn
            .run(b"nproc 2>/dev/null || getconf _NPROCESSORS_ONLN")
            .ok()
            .filter(|o| o.status.success());
        if nproc.is_some() {
            best = t.elapsed().as_secs_f64();
        }
        for _ in 1..ROUND_TRIPS {
            let t = Instant::now();
            if self.conn.run(b"true").is_ok_and(|o| o.status.success()) {
                best = best.min(t.elapsed().as_secs_f64());
            }
        }
        let cores = nproc
            .and_then(|o| {
                String::from_utf8_lossy(&o.stdout)
                    .trim()
                    .parse::<usize>()
                    .ok()
            })
            .filter(|&n| n > 0);
        Measured {
            round_trip: if best.is_finite() { best } else { 0.0 },
            cores,
        }
    }

    /// Ends the master: `ssh -O exit`, then a kill if it lingers. Idempotent.
    pub(crate) fn close(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if matches!(child.try_wait(), Ok(None)) {
            let c = &self.conn;
            let _ = Command::new(&c.ssh[0])
                .args(&c.ssh[1..])
                .args([OsStr::new("-S"), c.control.as_os_str(), OsStr::new("-O")])
                .args(["exit", c.login.as_str()])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
            let began = Instant::now();
            while matches!(child.try_wait(), Ok(None)) && began.elapsed() < CLOSE_WAIT {
                std::thread::sleep(Duration::from_millis(10));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
        let _ = std::fs::remove_file(&self.conn.control);
    }
}

impl Drop for Master {
    fn drop(&mut self) {
        self.close();
    }
}

/// A private directory for the control sockets (mode 0700), removed on drop.
#[derive(Debug)]
pub(crate) struct ControlDir(pub PathBuf);

impl ControlDir {
    /// Makes it under the temporary directory. The path stays short: a Unix socket's path
    /// has room for about 100 bytes.
    pub(crate) fn new() -> Result<ControlDir> {
        use std::os::unix::fs::DirBuilderExt;
        let base = std::env::temp_dir();
        for k in 0..100u32 {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos());
            let dir = base.join(format!("amz-{}-{:x}", std::process::id(), nanos ^ k));
            match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
                Ok(()) => return Ok(ControlDir(dir)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
                Err(e) => {
                    return Err(Error::new(
                        ErrorKind::Io,
                        format!(
                            "cannot make a directory for ssh's control sockets in {}",
                            base.display()
                        ),
                    )
                    .with_source(e))
                }
            }
        }
        Err(Error::new(
            ErrorKind::Io,
            "cannot make a directory for ssh's control sockets",
        ))
    }
}

impl Drop for ControlDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
