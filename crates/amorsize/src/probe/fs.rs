//! Reading the probed machine's files under a root directory, turning every failure into a
//! [`Warning`] that says what and where.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::parse::ParseError;
use super::source::{Warning, WarningKind};

/// Files larger than this are not system files the probe understands (a long mountinfo is a
/// few hundred KiB); reading stops here so a bad root cannot exhaust memory.
const MAX_FILE_BYTES: u64 = 16 << 20;

/// Whether a file's absence is news.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Need {
    /// The figure depends on it: a missing file is a warning.
    Required,
    /// Absence is normal (a cgroup level without a limit file): missing is silent.
    Optional,
}

/// The probed machine's file system, seen from `root`, with the warnings met so far.
#[derive(Debug)]
pub(crate) struct Fs {
    root: PathBuf,
    warnings: Vec<Warning>,
}

impl Fs {
    /// Files under `root` (`/` for this machine).
    pub(crate) fn new(root: &Path) -> Self {
        Fs {
            root: root.to_path_buf(),
            warnings: Vec::new(),
        }
    }

    /// Whether this is the running machine's own root, so system calls describe it too.
    pub(crate) fn is_host_root(&self) -> bool {
        self.root == Path::new("/")
    }

    /// The root directory.
    pub(crate) fn root(&self) -> &Path {
        &self.root
    }

    /// The warnings met so far.
    pub(crate) fn into_warnings(self) -> Vec<Warning> {
        self.warnings
    }

    /// Records a warning.
    pub(crate) fn warn(
        &mut self,
        kind: WarningKind,
        path: Option<&Path>,
        message: impl Into<String>,
    ) {
        self.warnings
            .push(Warning::new(kind, path.map(Path::to_path_buf), message));
    }

    /// Reads `path` (as on the probed machine, e.g. `/proc/meminfo`) and parses it. On failure,
    /// records a warning naming the file, the trouble and `consequence` (what the probe does
    /// instead), and returns `None`.
    pub(crate) fn load<T>(
        &mut self,
        path: &Path,
        need: Need,
        consequence: &str,
        parse: impl FnOnce(&str) -> Result<T, ParseError>,
    ) -> Option<T> {
        let text = self.read(path, need, consequence)?;
        match parse(&text) {
            Ok(value) => Some(value),
            Err(err) => {
                self.warn(
                    WarningKind::Malformed,
                    Some(path),
                    format!("{err}; {consequence}"),
                );
                None
            }
        }
    }

    /// Reads `path` as text, recording a warning as [`load`](Self::load) does.
    pub(crate) fn read(&mut self, path: &Path, need: Need, consequence: &str) -> Option<String> {
        let real = self.real_path(path);
        let result = std::fs::File::open(&real).and_then(|file| {
            let mut text = String::new();
            file.take(MAX_FILE_BYTES).read_to_string(&mut text)?;
            Ok(text)
        });
        match result {
            Ok(text) => Some(text),
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                if need == Need::Required {
                    self.warn(
                        WarningKind::Missing,
                        Some(path),
                        format!("missing; {consequence}"),
                    );
                }
                None
            }
            Err(err) => {
                let kind = if err.kind() == std::io::ErrorKind::InvalidData {
                    WarningKind::Malformed
                } else {
                    WarningKind::Unreadable
                };
                self.warn(kind, Some(path), format!("{err}; {consequence}"));
                None
            }
        }
    }

    /// Whether `path` (as on the probed machine) exists.
    pub(crate) fn exists(&self, path: &Path) -> bool {
        self.real_path(path).exists()
    }

    /// Where `path` of the probed machine lies under the root.
    fn real_path(&self, path: &Path) -> PathBuf {
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }
}
