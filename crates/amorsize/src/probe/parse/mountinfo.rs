//! `/proc/self/mountinfo`, one mount per line (`proc_pid_mountinfo(5)`):
//!
//! ```text
//! 36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
//! (1)(2)(3)   (4)   (5)      (6)      (7)   (8) (9)   (10)        (11)
//! ```
//!
//! (4) is the root of the mount inside its file system, (5) the mount point, (7) zero or more
//! optional fields ended by the separator `-` (8), then (9) the file system type and (11) the
//! super-block options, which for cgroup v1 name the controllers (`rw,cpu,cpuacct`). Spaces,
//! tabs, newlines and backslashes in paths are written as octal escapes (`\040`).

use super::ParseError;

/// One mount from `/proc/self/mountinfo`, paths unescaped.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Mount {
    /// The directory of the mounted file system that appears at the mount point (field 4).
    pub root: String,
    /// Where it is mounted (field 5).
    pub mount_point: String,
    /// The file system type (`cgroup`, `cgroup2`, `ext4`, …).
    pub fs_type: String,
    /// The super-block options, split at commas.
    pub super_options: Vec<String>,
}

impl Mount {
    /// Whether this cgroup v1 mount carries the controller `name` (`cpu`, `memory`).
    pub fn has_v1_controller(&self, name: &str) -> bool {
        self.fs_type == "cgroup" && self.super_options.iter().any(|o| o == name)
    }
}

/// Parses `/proc/self/mountinfo`; blank lines are skipped.
///
/// # Errors
///
/// A [`ParseError`] for a line without the fields above or with a broken escape.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::mountinfo::parse_mountinfo;
///
/// let line = "35 31 0:32 / /sys/fs/cgroup/my\\040memory rw - cgroup cgroup rw,memory\n";
/// let mounts = parse_mountinfo(line).unwrap();
/// assert_eq!(mounts[0].mount_point, "/sys/fs/cgroup/my memory");
/// assert!(mounts[0].has_v1_controller("memory"));
/// ```
pub fn parse_mountinfo(text: &str) -> Result<Vec<Mount>, ParseError> {
    parse_mountinfo_lines(text).collect()
}

/// Parses `/proc/self/mountinfo` line by line (blank lines skipped), so a caller can keep the
/// good lines when one is malformed.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::mountinfo::parse_mountinfo_lines;
///
/// let text = "garbage\n30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n";
/// let (good, bad): (Vec<_>, Vec<_>) = parse_mountinfo_lines(text).partition(Result::is_ok);
/// assert_eq!((good.len(), bad.len()), (1, 1));
/// ```
pub fn parse_mountinfo_lines(text: &str) -> impl Iterator<Item = Result<Mount, ParseError>> + '_ {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(parse_line)
}

fn parse_line(line: &str) -> Result<Mount, ParseError> {
    const EXPECTED: &str =
        "a mountinfo line: id parent dev root point options … - type source options";
    let fields: Vec<&str> = line.split_whitespace().collect();
    let separator = fields
        .iter()
        .position(|&f| f == "-")
        .filter(|&at| at >= 6)
        .ok_or_else(|| ParseError::new(EXPECTED, line))?;
    let after = &fields[separator + 1..];
    let fs_type = after
        .first()
        .ok_or_else(|| ParseError::new(EXPECTED, line))?;
    let super_options = after
        .get(2)
        .map(|o| o.split(',').map(str::to_owned).collect())
        .unwrap_or_default();
    Ok(Mount {
        root: unescape(fields[3]).ok_or_else(|| ParseError::new(EXPECTED, line))?,
        mount_point: unescape(fields[4]).ok_or_else(|| ParseError::new(EXPECTED, line))?,
        fs_type: (*fs_type).to_owned(),
        super_options,
    })
}

/// Undoes the kernel's octal escapes (`\040` → space); `None` for a broken escape.
fn unescape(field: &str) -> Option<String> {
    let bytes = field.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'\\' {
            let digits = bytes.get(i + 1..i + 4)?;
            let mut value: u32 = 0;
            for &d in digits {
                if !(b'0'..=b'7').contains(&d) {
                    return None;
                }
                value = value * 8 + u32::from(d - b'0');
            }
            out.push(u8::try_from(value).ok()?);
            i += 4;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    Some(String::from_utf8_lossy(&out).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn optional_fields_and_escapes() {
        let text = "\
25 1 8:1 / / rw,relatime shared:1 master:2 - ext4 /dev/sda1 rw
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
42 31 0:39 /docker/a\\134b /sys/fs/cgroup/cpu\\054cpuacct rw - cgroup cgroup rw,cpu,cpuacct
";
        let mounts = parse_mountinfo(text).unwrap();
        assert_eq!(mounts.len(), 3);
        assert_eq!(mounts[0].fs_type, "ext4");
        assert_eq!(mounts[1].fs_type, "cgroup2");
        assert_eq!(mounts[2].root, "/docker/a\\b");
        assert_eq!(mounts[2].mount_point, "/sys/fs/cgroup/cpu,cpuacct");
        assert!(mounts[2].has_v1_controller("cpu") && mounts[2].has_v1_controller("cpuacct"));
        assert!(!mounts[1].has_v1_controller("cpu"));
    }

    #[test]
    fn rejects_garbage() {
        for bad in [
            "garbage",
            "1 2 3 / / rw",
            "1 2 3 / / rw -",
            "1 2 3 /\\04 / rw - tmpfs x rw",
            "1 2 3 /\\777 / rw - tmpfs x rw",
        ] {
            assert!(parse_mountinfo(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_mountinfo(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "([0-9]{1,2} ){3}[/a-z\\\\0-7]{0,8} / rw( -)?( [a-z0-9,]{0,6}){0,3}") {
            let _ = parse_mountinfo(&text);
        }
    }
}
