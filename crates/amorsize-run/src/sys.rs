//! The system calls the command runner needs that `std` does not offer: waiting without reaping,
//! reaping with resource usage, signalling a process group, and a few limits. Each `unsafe`
//! block is one call with its safety argument.

use std::fs::File;
use std::io;
use std::time::Duration;

/// How a child ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Status {
    /// It called `exit` with this code.
    Exited(i32),
    /// A signal of this number ended it.
    Signaled(i32),
}

/// What the kernel accounted to a reaped child and the descendants it waited for.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Usage {
    /// User plus system CPU time.
    pub cpu: Duration,
    /// Peak resident set size, in bytes.
    pub max_rss: u64,
}

fn timeval(t: libc::timeval) -> Duration {
    Duration::new(t.tv_sec.max(0) as u64, (t.tv_usec.max(0) as u32) * 1000)
}

/// Blocks until child `pid` has ended, **without reaping it**: until [`reap`], its pid (and so
/// its process-group id) cannot be given to another process, which makes signalling the group
/// safe up to that point.
pub(crate) fn wait_ended(pid: i32) -> io::Result<()> {
    loop {
        // SAFETY: an all-zero siginfo_t is a valid value of this plain C struct.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        // SAFETY: `info` is a valid, writable siginfo_t that outlives the call.
        let r = unsafe {
            libc::waitid(
                libc::P_PID,
                pid as libc::id_t,
                &mut info,
                libc::WEXITED | libc::WNOWAIT,
            )
        };
        if r == 0 {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// Reaps child `pid` with `wait4`, returning how it ended and its resource usage.
pub(crate) fn reap(pid: i32) -> io::Result<(Status, Usage)> {
    let mut status: libc::c_int = 0;
    // SAFETY: an all-zero rusage is a valid value of this plain C struct.
    let mut ru: libc::rusage = unsafe { std::mem::zeroed() };
    loop {
        // SAFETY: `status` and `ru` are valid, writable and outlive the call.
        let r = unsafe { libc::wait4(pid, &mut status, 0, &mut ru) };
        if r == pid {
            break;
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
    let how = if libc::WIFSIGNALED(status) {
        Status::Signaled(libc::WTERMSIG(status))
    } else {
        Status::Exited(libc::WEXITSTATUS(status))
    };
    // getrusage(2): on Linux `ru_maxrss` is in kilobytes (on macOS in bytes).
    let rss_unit: u64 = if cfg!(target_os = "macos") { 1 } else { 1024 };
    let usage = Usage {
        cpu: timeval(ru.ru_utime) + timeval(ru.ru_stime),
        max_rss: (ru.ru_maxrss.max(0) as u64) * rss_unit,
    };
    Ok((how, usage))
}

/// Sends `signal` to every process of group `pgid`. A group that is already gone is not an error.
pub(crate) fn kill_group(pgid: i32, signal: i32) -> io::Result<()> {
    if pgid <= 0 {
        return Err(io::Error::from(io::ErrorKind::InvalidInput));
    }
    // SAFETY: kill has no memory-safety preconditions; `-pgid` names a group, never all processes.
    let r = unsafe { libc::kill(-pgid, signal) };
    if r == 0 {
        return Ok(());
    }
    let err = io::Error::last_os_error();
    if err.raw_os_error() == Some(libc::ESRCH) {
        Ok(())
    } else {
        Err(err)
    }
}

fn soft_limit(resource: libc::c_int) -> Option<u64> {
    // SAFETY: an all-zero rlimit is a valid value of this plain C struct.
    let mut lim: libc::rlimit = unsafe { std::mem::zeroed() };
    // SAFETY: `lim` is a valid, writable rlimit that outlives the call. The cast adapts the
    // resource constant to the platform's parameter type.
    let r = unsafe { libc::getrlimit(resource as _, &mut lim) };
    (r == 0 && lim.rlim_cur != libc::RLIM_INFINITY).then_some(lim.rlim_cur as u64)
}

/// The soft limit on processes of this user (`ulimit -u`), `None` when unlimited.
pub(crate) fn process_limit() -> Option<u64> {
    soft_limit(libc::RLIMIT_NPROC as libc::c_int)
}

/// The soft limit on open files of this process (`ulimit -n`), `None` when unlimited.
pub(crate) fn open_files_limit() -> Option<u64> {
    soft_limit(libc::RLIMIT_NOFILE as libc::c_int)
}

/// `sysconf(_SC_ARG_MAX)`: the bytes `execve` accepts for arguments and environment together.
pub(crate) fn arg_max() -> Option<usize> {
    // SAFETY: sysconf has no memory-safety preconditions.
    let r = unsafe { libc::sysconf(libc::_SC_ARG_MAX) };
    (r > 0).then_some(r as usize)
}

/// An anonymous file in memory that a job's output goes to: no pipe to drain while the job
/// runs, no file on disk, gone when closed.
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(crate) fn output_file() -> io::Result<File> {
    use std::os::fd::FromRawFd;
    // SAFETY: the name is a NUL-terminated string that outlives the call.
    let fd = unsafe { libc::memfd_create(c"amorsize-job".as_ptr(), libc::MFD_CLOEXEC) };
    if fd < 0 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` was just returned by memfd_create and nothing else owns it.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// An anonymous file that a job's output goes to: created in the temporary directory and
/// unlinked at once, so nothing stays on disk.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(crate) fn output_file() -> io::Result<File> {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let path = std::env::temp_dir().join(format!("amorsize-job-{}-{n}", std::process::id()));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .open(&path)?;
    std::fs::remove_file(&path)?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;

    #[test]
    fn reap_reports_exit_codes_and_signals() {
        // Reaped by `reap`, not by `Child::wait`.
        let pid = std::process::Command::new("/bin/sh")
            .args(["-c", "exit 3"])
            .spawn()
            .unwrap()
            .id() as i32;
        wait_ended(pid).unwrap();
        assert_eq!(reap(pid).unwrap().0, Status::Exited(3));

        let pid = std::process::Command::new("/bin/sh")
            .args(["-c", "sleep 5"])
            .process_group(0)
            .spawn()
            .unwrap()
            .id() as i32;
        kill_group(pid, libc::SIGKILL).unwrap();
        wait_ended(pid).unwrap();
        assert_eq!(reap(pid).unwrap().0, Status::Signaled(libc::SIGKILL));
    }

    #[test]
    fn limits_are_positive_when_known() {
        assert!(arg_max().unwrap() > 4096);
        assert!(open_files_limit().map_or(true, |n| n > 0));
    }
}
