//! The process backend's system calls where there are none: systems other than Unix
//! (Windows). Every way in fails with [`ErrorKind::Unsupported`](crate::ErrorKind::Unsupported)
//! before a process is started, so the rest of the backend builds, and never runs, here.

use std::fs::File;
use std::io;
use std::process::{ChildStdout, Command, ExitStatus};
use std::time::Duration;

use crate::{Error, ErrorKind};

/// What the backend needs that this system lacks.
const WHY: &str = "worker processes need Unix (inherited pipes polled with a deadline, \
                   signals to end a worker); this system has no process backend: run the \
                   work on threads (amorsize::execute) instead";

/// Worker processes do not work here.
pub(super) fn supported() -> crate::Result<()> {
    Err(Error::new(ErrorKind::Unsupported, WHY))
}

/// Nothing to set: no worker is ever started.
pub(super) fn die_with_parent(_: &mut Command) {}

/// A worker cannot serve here.
pub(super) fn take_stdout() -> io::Result<File> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WHY))
}

/// No worker's pipe is ever read here.
pub(super) fn wait_readable(_: &ChildStdout, _: Duration) -> io::Result<bool> {
    Err(io::Error::new(io::ErrorKind::Unsupported, WHY))
}

/// No signals here.
pub(super) fn signal(_: ExitStatus) -> Option<i32> {
    None
}

/// No signals here.
pub(super) fn signal_name(_: i32) -> &'static str {
    "a signal"
}

/// No worker is ever started, so there is none to kill.
pub(super) fn kill(_: u32) {}

/// No worker is ever started, so there is nothing to stop at exit.
pub(super) fn at_exit(_: extern "C" fn()) {}

/// A worker's peak resident set: never asked for, as no worker starts here.
pub(super) fn peak_rss() -> Option<u64> {
    None
}
