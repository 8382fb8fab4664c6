//! The library's error type: an opaque struct over a private kind, so variants can grow.

use std::fmt;
use std::path::PathBuf;

/// A specialized `Result` for amorsize operations.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What went wrong, in broad categories a caller can match on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The caller's input or options were invalid.
    InvalidInput,
    /// The user's function panicked on an item.
    Panicked,
    /// The user's function returned an error on an item.
    ItemFailed,
    /// A worker (process or command) failed: it crashed, was killed or timed out.
    WorkerFailed,
    /// A value could not be serialized or deserialized for a process worker.
    Serialization,
    /// Reading a file or talking to the operating system failed.
    Io,
    /// This system does not offer what the operation needs (worker processes on Windows).
    Unsupported,
}

/// The error type of amorsize.
///
/// Its [`Display`](fmt::Display) says what happened and, where there is one, what to do next;
/// [`Error::item`] names the input item involved.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    item: Option<usize>,
    path: Option<PathBuf>,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// A new error of `kind` with a message for people.
    pub(crate) fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            item: None,
            path: None,
            source: None,
        }
    }

    /// Names the input item (its index in the input) the error happened on.
    pub(crate) fn with_item(mut self, index: usize) -> Self {
        self.item = Some(index);
        self
    }

    /// The same error for an input that starts `by` items later in the caller's input (a
    /// part planned on its own): the item's index, and its first mention in the message (the
    /// crate's own words come before any text of the user's), move by `by`.
    pub(crate) fn item_offset(mut self, by: usize) -> Self {
        if let Some(index) = self.item {
            let moved = index + by;
            self.message =
                self.message
                    .replacen(&format!("item {index}"), &format!("item {moved}"), 1);
            self.item = Some(moved);
        }
        self
    }

    /// Names the file the error is about.
    // Kept for the modules that read and write files, which may not all be built yet.
    #[allow(dead_code)]
    pub(crate) fn with_path(mut self, path: impl Into<PathBuf>) -> Self {
        self.path = Some(path.into());
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

    /// An error for a panic of the user's function on item `index`.
    pub(crate) fn panicked(index: usize, payload: &(dyn std::any::Any + Send)) -> Self {
        Error::new(
            ErrorKind::Panicked,
            format!(
                "the function panicked on item {index}: {}",
                panic_message(payload)
            ),
        )
        .with_item(index)
    }

    /// The category of this error.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The index of the input item the error happened on, when known.
    pub fn item(&self) -> Option<usize> {
        self.item
    }

    /// The file the error is about, when there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        self.path.as_deref()
    }
}

/// The text of a panic payload (`&str` or `String`), or a placeholder for other payloads.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "<non-string panic payload>".to_owned()
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(path) = &self.path {
            write!(f, " ({})", path.display())?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}
