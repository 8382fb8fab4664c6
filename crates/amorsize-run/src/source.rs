//! Where inputs come from, as GNU parallel reads them: values after `:::`, lines of files after
//! `::::` (or `-a`), or standard input; several sources give every combination of their values
//! (the first source varying slowest); `--colsep` splits each value into columns.
//!
//! The first source is streamed: its values are read as jobs need them, so that jobs start
//! while it is still being written (`find / | amorsize run …`) and memory stays bounded. The
//! other sources are read whole, since every value of the first is combined with all of theirs.

use std::ffi::OsString;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{sync_channel, Receiver, RecvTimeoutError};
use std::sync::Arc;
use std::time::Duration;

use crate::template::Record;
use crate::{Error, ErrorKind, Inputs, Result};

/// One input source.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// Values given on the command line (after `:::`).
    Values(Vec<OsString>),
    /// Lines of a file (after `::::` or `-a`); `-` is standard input.
    File(PathBuf),
    /// Lines of standard input.
    Stdin,
}

/// How values are read from files and standard input.
#[derive(Clone, Debug, Default)]
pub struct Reading {
    /// Values are separated by NUL bytes, not newlines (`-0`).
    pub null: bool,
    /// Split each value into columns at matches of this regular expression (`--colsep`).
    pub colsep: Option<String>,
}

/// Values read ahead of the jobs from standard input and files: enough to keep the jobs fed
/// while the reader waits for the pipe, few enough that memory stays small.
const READ_AHEAD: usize = 4096;

/// How often a reader waiting for a slow stream looks at the interruption flag.
const POLL: Duration = Duration::from_millis(50);

/// Opens the sources as one stream of inputs. `cancel` is the run's interruption flag: a
/// stream waiting for standard input ends when it is set, so that an interrupted run returns
/// even while the pipe stays open.
///
/// # Errors
///
/// [`ErrorKind::InvalidInput`] for a `--colsep` that is not a regular expression;
/// [`ErrorKind::Io`] when a file cannot be opened, or a source after the first cannot be read.
///
/// # Examples
///
/// ```
/// use amorsize_run::source::{self, Reading, Source};
/// use std::sync::{atomic::AtomicUsize, Arc};
///
/// let sources = vec![
///     Source::Values(vec!["a".into(), "b".into()]),
///     Source::Values(vec!["1".into(), "2".into()]),
/// ];
/// let inputs = source::open(sources, &Reading::default(), Arc::new(AtomicUsize::new(0))).unwrap();
/// let all: Vec<_> = inputs.into_records().map(Result::unwrap).collect();
/// assert_eq!(all, [["a", "1"], ["a", "2"], ["b", "1"], ["b", "2"]]);
/// ```
pub fn open(
    sources: Vec<Source>,
    reading: &Reading,
    cancel: Arc<AtomicUsize>,
) -> Result<Inputs<'static>> {
    let colsep = match &reading.colsep {
        Some(re) => Some(regex::bytes::Regex::new(re).map_err(|e| {
            Error::new(
                ErrorKind::InvalidInput,
                format!("--colsep {re:?} is not a regular expression: {e}"),
            )
        })?),
        None => None,
    };
    let sep = if reading.null { b'\0' } else { b'\n' };
    let mut sources = if sources.is_empty() {
        vec![Source::Stdin]
    } else {
        sources
    };
    let first = sources.remove(0);
    // The other sources, whole, each value split into its columns.
    let mut rest: Vec<Vec<Record>> = Vec::with_capacity(sources.len());
    for source in sources {
        let values: Vec<OsString> = match source {
            Source::Values(v) => v,
            other => {
                let (stream, _) = stream(other, sep, Arc::clone(&cancel))?;
                stream.collect::<io::Result<_>>().map_err(|e| {
                    Error::new(ErrorKind::Io, format!("cannot read an input source: {e}"))
                        .with_source(e)
                })?
            }
        };
        rest.push(
            values
                .into_iter()
                .map(|v| split(v, colsep.as_ref()))
                .collect(),
        );
    }
    let combos: Vec<Record> = rest.iter().fold(vec![Vec::new()], |acc, source| {
        acc.iter()
            .flat_map(|head| {
                source.iter().map(move |r| {
                    let mut c = head.clone();
                    c.extend(r.iter().cloned());
                    c
                })
            })
            .collect()
    });
    let (values, len) = stream(first, sep, cancel)?;
    let len = len.map(|n| n.saturating_mul(combos.len()));
    let records = values.flat_map(move |v| {
        let combos = combos.clone();
        let colsep = colsep.clone();
        let out: Vec<io::Result<Record>> = match v {
            Err(e) => vec![Err(e)],
            Ok(v) => {
                let head = split(v, colsep.as_ref());
                combos
                    .iter()
                    .map(|c| {
                        let mut r = head.clone();
                        r.extend(c.iter().cloned());
                        Ok(r)
                    })
                    .collect()
            }
        };
        out
    });
    Ok(Inputs::new(records, len))
}

type Values = Box<dyn Iterator<Item = io::Result<OsString>> + Send>;

/// A source's values, and their number when known.
fn stream(source: Source, sep: u8, cancel: Arc<AtomicUsize>) -> Result<(Values, Option<usize>)> {
    Ok(match source {
        Source::Values(v) => {
            let n = v.len();
            (Box::new(v.into_iter().map(Ok)), Some(n))
        }
        Source::Stdin => (read_ahead(io::stdin(), sep, cancel), None),
        Source::File(path) if path.as_os_str() == "-" => {
            (read_ahead(io::stdin(), sep, cancel), None)
        }
        Source::File(path) => {
            let file = File::open(&path).map_err(|e| {
                Error::new(
                    ErrorKind::Io,
                    format!("cannot open the input file {}: {e}", path.display()),
                )
                .with_source(e)
            })?;
            (read_ahead(file, sep, cancel), None)
        }
    })
}

/// Values of `reader` separated by `sep` (a final separator does not start an empty value),
/// read by a thread of their own into a bounded queue of [`READ_AHEAD`] values.
///
/// The thread, rather than the job workers, reads so that a read blocked on a pipe holds up
/// nothing but itself: an interrupted run returns at once (the iterator ends when `cancel` is
/// set), and the thread ends with the process or at its next value once nobody receives.
fn read_ahead(reader: impl Read + Send + 'static, sep: u8, cancel: Arc<AtomicUsize>) -> Values {
    let (tx, rx) = sync_channel::<io::Result<OsString>>(READ_AHEAD);
    let spawned = std::thread::Builder::new()
        .name("amorsize-input".into())
        .spawn(move || {
            for value in BufReader::new(reader).split(sep) {
                let failed = value.is_err();
                if tx.send(value.map(OsString::from_vec)).is_err() || failed {
                    return;
                }
            }
        });
    if let Err(e) = spawned {
        return Box::new(std::iter::once(Err(e)));
    }
    Box::new(Received { rx, cancel })
}

struct Received {
    rx: Receiver<io::Result<OsString>>,
    cancel: Arc<AtomicUsize>,
}

impl Iterator for Received {
    type Item = io::Result<OsString>;

    fn next(&mut self) -> Option<Self::Item> {
        loop {
            match self.rx.recv_timeout(POLL) {
                Ok(v) => return Some(v),
                Err(RecvTimeoutError::Disconnected) => return None,
                Err(RecvTimeoutError::Timeout) => {
                    if self.cancel.load(Ordering::SeqCst) != 0 {
                        return None;
                    }
                }
            }
        }
    }
}

/// A value's columns: split at `colsep`, or the value whole.
fn split(v: OsString, colsep: Option<&regex::bytes::Regex>) -> Record {
    match colsep {
        None => vec![v],
        Some(re) => re
            .split(v.as_bytes())
            .map(|c| OsString::from_vec(c.to_vec()))
            .collect(),
    }
}

impl<'a> Inputs<'a> {
    /// The inputs as an iterator of records (for callers that read them themselves).
    pub fn into_records(self) -> impl Iterator<Item = io::Result<Record>> + Send + 'a {
        self.iter
    }

    /// Their number, when known.
    pub fn known_len(&self) -> Option<usize> {
        self.len
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flag() -> Arc<AtomicUsize> {
        Arc::new(AtomicUsize::new(0))
    }

    #[test]
    fn columns_split_at_the_regex() {
        let reading = Reading {
            colsep: Some(",+".into()),
            ..Reading::default()
        };
        let inputs = open(
            vec![Source::Values(vec!["a,,b".into(), "c".into()])],
            &reading,
            flag(),
        )
        .unwrap();
        assert_eq!(inputs.known_len(), Some(2));
        let all: Vec<Record> = inputs.into_records().map(Result::unwrap).collect();
        assert_eq!(all, [vec!["a", "b"], vec!["c"]]);
        let bad = Reading {
            colsep: Some("(".into()),
            ..Reading::default()
        };
        let err = open(vec![], &bad, flag()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
    }

    #[test]
    fn files_are_read_by_line_and_combined() {
        let dir = std::env::temp_dir().join(format!("amorsize-source-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("in.txt");
        std::fs::write(&path, "x\n\ny").unwrap();
        let inputs = open(
            vec![
                Source::File(path.clone()),
                Source::Values(vec!["1".into(), "2".into()]),
            ],
            &Reading::default(),
            flag(),
        )
        .unwrap();
        let all: Vec<Record> = inputs.into_records().map(Result::unwrap).collect();
        assert_eq!(
            all,
            [
                vec!["x", "1"],
                vec!["x", "2"],
                vec!["", "1"],
                vec!["", "2"],
                vec!["y", "1"],
                vec!["y", "2"]
            ]
        );
        let missing = open(
            vec![Source::File(dir.join("missing"))],
            &Reading::default(),
            flag(),
        )
        .unwrap_err();
        assert!(missing.to_string().contains("missing"), "{missing}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_source_gives_no_inputs() {
        let inputs = open(
            vec![Source::Values(vec!["a".into()]), Source::Values(Vec::new())],
            &Reading::default(),
            flag(),
        )
        .unwrap();
        assert_eq!(inputs.into_records().count(), 0);
    }
}
