//! Where the cache file lives: `$AMORSIZE_CACHE`, else `amorsize/amorsize.db` in the platform's
//! cache directory: `$XDG_CACHE_HOME`, else `$HOME/.cache`, on Linux and other Unixes;
//! `$HOME/Library/Caches` on macOS; the local application data folder
//! (`FOLDERID_LocalAppData`, usually `C:\Users\NAME\AppData\Local`) on Windows.
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
    /// The platform names no cache directory (on Unix: `HOME` unset): the run goes without one.
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

/// Resolves the location from the values of `AMORSIZE_CACHE`, `XDG_CACHE_HOME` and `HOME`, as
/// on Linux and the other Unixes but macOS.
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
    let xdg = set(xdg_cache_home)
        .map(PathBuf::from)
        .filter(|xdg| xdg.is_absolute());
    let dir = xdg.or_else(|| set(home).map(|home| PathBuf::from(home).join(".cache")));
    in_dir(amorsize_cache, dir)
}

/// The location from the value of `AMORSIZE_CACHE` and the platform's cache directory.
fn in_dir(amorsize_cache: Option<OsString>, cache_dir: Option<PathBuf>) -> Location {
    if let Some(v) = set(amorsize_cache) {
        if v.eq_ignore_ascii_case("off") {
            return Location::Off;
        }
        return Location::File(PathBuf::from(v));
    }
    match cache_dir.filter(|d| !d.as_os_str().is_empty()) {
        Some(dir) => Location::File(dir.join("amorsize").join(FILE_NAME)),
        None => Location::Unknown,
    }
}

/// A variable's value; an empty one counts as unset.
fn set(v: Option<OsString>) -> Option<OsString> {
    v.filter(|v| !v.is_empty())
}

/// The location the environment of this process names.
pub fn from_env() -> Location {
    #[cfg(any(target_os = "macos", windows))]
    {
        // The platform's convention, as the `dirs` crate implements it: `$HOME/Library/Caches`
        // on macOS, `SHGetKnownFolderPath(FOLDERID_LocalAppData)` on Windows.
        in_dir(std::env::var_os(ENV_VAR), dirs::cache_dir())
    }
    #[cfg(not(any(target_os = "macos", windows)))]
    {
        resolve(
            std::env::var_os(ENV_VAR),
            std::env::var_os("XDG_CACHE_HOME"),
            std::env::var_os("HOME"),
        )
    }
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

    // `/xdg` is absolute only where paths start at `/`.
    #[cfg(unix)]
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

    #[test]
    fn a_platform_directory_holds_the_file_unless_the_variable_says_otherwise() {
        let dir = Some(PathBuf::from("/Users/ada/Library/Caches"));
        assert_eq!(
            in_dir(None, dir.clone()),
            Location::File("/Users/ada/Library/Caches/amorsize/amorsize.db".into())
        );
        assert_eq!(
            in_dir(s("/tmp/x.db"), dir.clone()),
            Location::File("/tmp/x.db".into())
        );
        assert_eq!(in_dir(s("Off"), dir), Location::Off);
        assert_eq!(in_dir(None, None), Location::Unknown);
    }
}
