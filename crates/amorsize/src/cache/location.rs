//! Where the cache file lives: `$AMORSIZE_CACHE`, else `$XDG_CACHE_HOME/amorsize/amorsize.db`,
//! else `$HOME/.cache/amorsize/amorsize.db`.
//!
//! [`resolve`] is pure (it takes the variables' values); [`from_env`] is the one place that
//! reads them. Reading the environment is reading the system, which is `probe`'s business; the
//! lookup is kept here, small and separate, because only the cache needs it.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// The environment variable that moves the cache (`AMORSIZE_CACHE=PATH`) or turns it off
/// (`AMORSIZE_CACHE=off`).
pub const ENV_VAR: &str = "AMORSIZE_CACHE";

/// The file name inside the cache directory.
pub const FILE_NAME: &str = "amorsize.db";

/// Where the cache is, or that it is off.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// The cache file at this path.
    File(PathBuf),
    /// Turned off by `AMORSIZE_CACHE=off`.
    Off,
    /// No variable says where a cache could go (`HOME` unset): the run goes without one.
    Unknown,
}

impl Location {
    /// The file's path, when there is one.
    pub fn path(&self) -> Option<&Path> {
        match self {
            Location::File(p) => Some(p),
            Location::Off | Location::Unknown => None,
        }
    }
}

/// Resolves the location from the values of `AMORSIZE_CACHE`, `XDG_CACHE_HOME` and `HOME`.
///
/// Empty values count as unset, and a relative `XDG_CACHE_HOME` is ignored, as the XDG Base
/// Directory Specification asks ("If an implementation encounters a relative path in any of
/// these variables it should consider the path invalid and ignore it").
///
/// # Examples
///
/// ```
/// use amorsize::cache::{resolve_location, Location};
/// use std::path::PathBuf;
///
/// let home = Some("/home/ada".into());
/// assert_eq!(
///     resolve_location(None, None, home.clone()),
///     Location::File(PathBuf::from("/home/ada/.cache/amorsize/amorsize.db"))
/// );
/// assert_eq!(resolve_location(Some("off".into()), None, home), Location::Off);
/// ```
pub fn resolve(
    amorsize_cache: Option<OsString>,
    xdg_cache_home: Option<OsString>,
    home: Option<OsString>,
) -> Location {
    let set = |v: Option<OsString>| v.filter(|v| !v.is_empty());
    if let Some(v) = set(amorsize_cache) {
        if v.eq_ignore_ascii_case("off") {
            return Location::Off;
        }
        return Location::File(PathBuf::from(v));
    }
    if let Some(xdg) = set(xdg_cache_home).map(PathBuf::from) {
        if xdg.is_absolute() {
            return Location::File(xdg.join("amorsize").join(FILE_NAME));
        }
    }
    match set(home) {
        Some(home) => Location::File(
            PathBuf::from(home)
                .join(".cache")
                .join("amorsize")
                .join(FILE_NAME),
        ),
        None => Location::Unknown,
    }
}

/// The location the environment of this process names.
pub fn from_env() -> Location {
    resolve(
        std::env::var_os(ENV_VAR),
        std::env::var_os("XDG_CACHE_HOME"),
        std::env::var_os("HOME"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> Option<OsString> {
        Some(v.into())
    }

    #[test]
    fn amorsize_cache_wins_over_xdg_and_home() {
        assert_eq!(
            resolve(s("/tmp/x.db"), s("/xdg"), s("/home/a")),
            Location::File("/tmp/x.db".into())
        );
    }

    #[test]
    fn off_turns_the_cache_off_in_any_case() {
        assert_eq!(resolve(s("OFF"), None, s("/h")), Location::Off);
        assert_eq!(resolve(s("off"), None, None), Location::Off);
    }

    #[test]
    fn xdg_cache_home_is_used_when_absolute() {
        assert_eq!(
            resolve(None, s("/xdg"), s("/h")),
            Location::File("/xdg/amorsize/amorsize.db".into())
        );
        assert_eq!(
            resolve(None, s("relative/xdg"), s("/h")),
            Location::File("/h/.cache/amorsize/amorsize.db".into())
        );
    }

    #[test]
    fn empty_values_count_as_unset() {
        assert_eq!(
            resolve(s(""), s(""), s("/h")),
            Location::File("/h/.cache/amorsize/amorsize.db".into())
        );
        assert_eq!(resolve(None, None, s("")), Location::Unknown);
    }
}
