//! The runner's error type: an opaque struct over a kind, so variants can grow.

use std::fmt;

/// A specialized `Result` for the runner.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in broad categories a caller can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's command, options or inputs were invalid.
    InvalidInput,
    /// A job could not be started, or the command was not found.
    WorkerFailed,
    /// Reading inputs, writing output or talking to the operating system failed.
    Io,
}

/// The error type of the runner.
///
/// Its [`Display`](fmt::Display) says what happened and, where there is one, what to do next;
/// [`Error::item`] names the input involved.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    item: Option<usize>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message for people.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            item: None,
            source: None,
        }
    }

    /// Names the input (its index in the input) the error happened on.
    pub(crate) fn with_item(mut self, index: usize) -> Self {
        self.item = Some(index);
        self
    }

    /// Keeps the underlying cause.
    pub(crate) fn with_source(
        mut self,
        source: impl std::error::Error + Send + Sync + 'static,
    ) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The index of the input the error happened on, when known.
    pub fn item(&self) -> Option<usize> {
        self.item
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
