//! The few system calls the process backend needs that `std` does not offer, each in a small
//! function with its safety argument. Unix only; elsewhere `unsupported.rs` stands in.

use std::fs::File;
use std::io;
use std::os::fd::{AsFd, AsRawFd};
use std::os::unix::process::ExitStatusExt;
use std::process::{ChildStdout, Command, ExitStatus};
use std::time::Duration;

/// Worker processes work here.
pub(super) fn supported() -> crate::Result<()> {
    Ok(())
}

/// Makes the child started by `command` receive SIGKILL when the thread that spawned it exits
/// (`prctl(PR_SET_PDEATHSIG)`, see prctl(2)), so that a worker never outlives its parent, even
/// when the parent is killed or interrupted with Ctrl-C. The setting survives `execve` for
/// executables that are not set-user-ID.
///
/// The spawn fails with `ESRCH` if the parent died before the setting took effect (the race
/// prctl(2) describes, closed by comparing `getppid()` with the parent's pid).
#[cfg(any(target_os = "linux", target_os = "android"))]
pub(super) fn die_with_parent(command: &mut Command) {
    use std::os::unix::process::CommandExt;
    let parent = std::process::id();
    let hook = move || {
        // SAFETY: `prctl` with PR_SET_PDEATHSIG takes a plain integer argument and touches no
        // memory of ours.
        if unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) } != 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `getppid` has no preconditions and cannot fail.
        if unsafe { libc::getppid() } as u32 != parent {
            return Err(io::Error::from_raw_os_error(libc::ESRCH));
        }
        Ok(())
    };
    // SAFETY: the hook runs in the child between fork and exec, where only async-signal-safe
    // functions may be called; it calls `prctl` and `getppid` (both async-signal-safe system
    // calls) and builds errors from integers, without allocating or taking locks.
    unsafe {
        command.pre_exec(hook);
    }
}

/// Unix without `PR_SET_PDEATHSIG` (macOS, the BSDs): nothing is set. A worker whose parent
/// dies still ends: its pipes close with the parent, so it reads the end of its input when it
/// waits for the next chunk, or fails to write its results (SIGPIPE) when it finishes one.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
pub(super) fn die_with_parent(_: &mut Command) {}

/// In a worker: returns a handle on the original standard output, for the protocol, and points
/// descriptor 1 at standard error, so that anything the user's code prints cannot corrupt the
/// protocol's frames.
pub(super) fn take_stdout() -> io::Result<File> {
    use std::io::Write;
    io::stdout().flush()?;
    let protocol = io::stdout().as_fd().try_clone_to_owned()?;
    // SAFETY: `dup2` on descriptors 2 and 1, both open for the life of the process; it only
    // replaces what descriptor 1 refers to, and `protocol` keeps its own duplicate.
    if unsafe { libc::dup2(libc::STDERR_FILENO, libc::STDOUT_FILENO) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(File::from(protocol))
}

/// Waits until `pipe` is readable (data or end of file) or `timeout` has passed; returns
/// whether it became readable.
pub(super) fn wait_readable(pipe: &ChildStdout, timeout: Duration) -> io::Result<bool> {
    let mut pollfd = libc::pollfd {
        fd: pipe.as_fd().as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    // Round up, so that a timeout below a millisecond still waits instead of spinning.
    let millis = timeout
        .as_nanos()
        .div_ceil(1_000_000)
        .min(libc::c_int::MAX as u128) as libc::c_int;
    loop {
        // SAFETY: `pollfd` is a valid, exclusively borrowed `pollfd` for the duration of the
        // call, and the count passed is 1.
        let ready = unsafe { libc::poll(&mut pollfd, 1, millis) };
        if ready >= 0 {
            return Ok(ready > 0);
        }
        let err = io::Error::last_os_error();
        if err.kind() != io::ErrorKind::Interrupted {
            return Err(err);
        }
    }
}

/// The signal that ended a process, if one did.
pub(super) fn signal(status: ExitStatus) -> Option<i32> {
    status.signal()
}

/// The conventional name of a signal that ends a worker, for error messages.
pub(super) fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGFPE => "SIGFPE",
        libc::SIGILL => "SIGILL",
        libc::SIGINT => "SIGINT",
        libc::SIGKILL => "SIGKILL",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGTERM => "SIGTERM",
        _ => "a signal",
    }
}

/// Sends SIGKILL to process `pid` (a worker of ours, not yet reaped, so the pid is still its).
pub(super) fn kill(pid: u32) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    // SAFETY: `kill` takes plain integers and touches no memory of ours; the caller guarantees
    // that `pid` is an unreaped child, so no other process can hold that pid.
    unsafe {
        libc::kill(pid, libc::SIGKILL);
    }
}

/// Runs `f` when the process exits normally (atexit(3)).
pub(super) fn at_exit(f: extern "C" fn()) {
    // SAFETY: `f` is a plain function with no arguments that does not unwind (an `extern "C"`
    // function aborts instead); registering it has no other precondition. A failure to
    // register (only for lack of memory) leaves the kernel's kill at exit, which is enough.
    unsafe {
        libc::atexit(f);
    }
}

/// This process's peak resident set size in bytes (`getrusage(RUSAGE_SELF)`, `ru_maxrss`:
/// kibibytes on Linux, bytes on macOS; getrusage(2)); `None` if the call fails.
pub(super) fn peak_rss() -> Option<u64> {
    // SAFETY: an all-zero `rusage` is a valid value of this plain C struct of integers.
    let mut usage: libc::rusage = unsafe { std::mem::zeroed() };
    // SAFETY: `usage` is a valid, exclusively borrowed `rusage` for the duration of the call.
    if unsafe { libc::getrusage(libc::RUSAGE_SELF, &mut usage) } != 0 {
        return None;
    }
    let max = u64::try_from(usage.ru_maxrss).ok()?;
    let unit = if cfg!(target_os = "macos") { 1 } else { 1024 };
    Some(max.saturating_mul(unit))
}
