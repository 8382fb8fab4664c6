//! The job log: one tab-separated line per finished job, in GNU parallel's `--joblog` format, so
//! that tools reading GNU parallel's logs read ours:
//!
//! ```text
//! Seq⇥Host⇥Starttime⇥JobRuntime⇥Send⇥Receive⇥Exitval⇥Signal⇥Command
//! 1⇥:⇥1764412345.123⇥0.002⇥0⇥2⇥0⇥0⇥echo a
//! ```
//!
//! (`⇥` is a tab.)
//! `Host` is the sshlogin the job ran on (`:` for this machine), `Send` 0 (inputs are arguments), `Receive` the bytes of
//! standard output; times are seconds with three decimals. This module formats and parses; the
//! caller owns the file. Each line is written whole by one call, so a log cut short by a crash
//! holds complete lines only (a trailing fragment is ignored when read back).

use std::collections::BTreeMap;
use std::io::{self, BufRead, Write};
use std::time::UNIX_EPOCH;

use super::job::JobRecord;
use crate::{Error, ErrorKind, Result};

/// The header line, as GNU parallel writes it.
pub const HEADER: &str =
    "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand";

/// Writes the header line.
///
/// # Errors
///
/// Any error of `out`.
pub fn write_header(out: &mut impl Write) -> io::Result<()> {
    out.write_all(format!("{HEADER}\n").as_bytes())
}

/// Formats one job as a log line (with its newline).
pub fn line(job: &JobRecord) -> String {
    let start = job
        .start
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    format!(
        "{}\t{}\t{:.3}\t{:.3}\t0\t{}\t{}\t{}\t{}\n",
        job.seq,
        job.host,
        start,
        job.runtime.as_secs_f64(),
        job.stdout.len(),
        job.exit_code(),
        job.signal(),
        job.command
    )
}

/// Writes one job's line with a single write, then flushes.
///
/// # Errors
///
/// Any error of `out`.
pub fn write(out: &mut impl Write, job: &JobRecord) -> io::Result<()> {
    out.write_all(line(job).as_bytes())?;
    out.flush()
}

/// How a logged job ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Logged {
    /// Its exit code.
    pub exit: i32,
    /// The signal that ended it, 0 if none.
    pub signal: i32,
}

impl Logged {
    /// Whether the job succeeded.
    pub fn succeeded(&self) -> bool {
        self.exit == 0 && self.signal == 0
    }
}

/// Reads a job log: job number → how it ended (the last line wins when a job appears twice).
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] naming the line when a complete line is not a job log line;
/// [`ErrorKind::Io`] when reading fails.
pub fn read(input: impl BufRead) -> Result<BTreeMap<usize, Logged>> {
    let mut jobs = BTreeMap::new();
    let mut lines = input.split(b'\n').enumerate().peekable();
    while let Some((n, line)) = lines.next() {
        let line =
            line.map_err(|e| Error::new(ErrorKind::Io, "cannot read the job log").with_source(e))?;
        let last = lines.peek().is_none();
        let text = String::from_utf8_lossy(&line);
        if text.trim().is_empty() || text.starts_with("Seq\t") {
            continue;
        }
        let fields: Vec<&str> = text.split('\t').collect();
        let parsed = (fields.len() >= 9)
            .then(|| {
                Some((
                    fields[0].trim().parse::<usize>().ok()?,
                    fields[6].trim().parse::<i32>().ok()?,
                    fields[7].trim().parse::<i32>().ok()?,
                ))
            })
            .flatten();
        match parsed {
            Some((seq, exit, signal)) => {
                jobs.insert(seq, Logged { exit, signal });
            }
            // A line cut short by a crash: the job is not done.
            None if last => {}
            None => {
                return Err(Error::new(
                    ErrorKind::InvalidInput,
                    format!(
                        "line {} of the job log is not a job log line (9 tab-separated fields, \
                         `Seq` first): {text:?}",
                        n + 1
                    ),
                ))
            }
        }
    }
    Ok(jobs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::job::{Exit, JobRecord};
    use std::time::{Duration, SystemTime};

    fn job(seq: usize, exit: Exit) -> JobRecord {
        JobRecord {
            seq,
            inputs: seq - 1..seq,
            args: Vec::new(),
            slot: 1,
            host: ":".into(),
            command: format!("echo {seq}"),
            start: SystemTime::now(),
            runtime: Duration::from_millis(5),
            cpu: Duration::ZERO,
            max_rss: 0,
            exit,
            stopped: None,
            stdout: b"x\n".to_vec(),
            stderr: Vec::new(),
        }
    }

    #[test]
    fn lines_read_back() {
        let mut log = Vec::new();
        write_header(&mut log).unwrap();
        write(&mut log, &job(1, Exit::Code(0))).unwrap();
        write(&mut log, &job(2, Exit::Code(3))).unwrap();
        write(&mut log, &job(3, Exit::Signal(15))).unwrap();
        log.extend_from_slice(b"4\t:\t17"); // cut short
        let jobs = read(&log[..]).unwrap();
        assert_eq!(jobs.len(), 3);
        assert!(jobs[&1].succeeded());
        assert_eq!(jobs[&2], Logged { exit: 3, signal: 0 });
        assert_eq!(
            jobs[&3],
            Logged {
                exit: 0,
                signal: 15
            }
        );
    }

    #[test]
    fn gnu_parallel_logs_read() {
        let log = "Seq\tHost\tStarttime\tJobRuntime\tSend\tReceive\tExitval\tSignal\tCommand\n\
                   1\t:\t1588880883.432\t     0.002\t0\t2\t0\t0\techo a\n";
        assert!(read(log.as_bytes()).unwrap()[&1].succeeded());
    }

    #[test]
    fn garbage_is_named() {
        let err = read("hello\nworld\n".as_bytes()).unwrap_err();
        assert!(err.to_string().contains("line 1"));
    }
}
