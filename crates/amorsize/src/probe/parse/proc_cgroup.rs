//! `/proc/self/cgroup`: one line per hierarchy, `hierarchy-ID:controller-list:cgroup-path`
//! (`cgroups(7)`, `/proc/[pid]/cgroup`). cgroup v1 lines name their controllers
//! (`4:cpu,cpuacct:/user.slice`); the cgroup v2 line is `0::/path`.

use super::ParseError;

/// One line of `/proc/self/cgroup`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CgroupEntry {
    /// The hierarchy number; `0` for the cgroup v2 unified hierarchy.
    pub hierarchy: u32,
    /// The v1 controllers bound to the hierarchy (`cpu`, `cpuacct`, `memory`, `name=systemd`);
    /// empty for cgroup v2.
    pub controllers: Vec<String>,
    /// The process's cgroup, relative to the hierarchy's root (starts with `/`).
    pub path: String,
}

impl CgroupEntry {
    /// Whether this is the cgroup v2 line (`0::/path`).
    pub fn is_v2(&self) -> bool {
        self.hierarchy == 0 && self.controllers.is_empty()
    }

    /// Whether the v1 controller `name` is bound to this hierarchy.
    pub fn has_controller(&self, name: &str) -> bool {
        self.controllers.iter().any(|c| c == name)
    }
}

/// Parses `/proc/self/cgroup`; blank lines are skipped.
///
/// # Errors
///
/// A [`ParseError`] for a line that is not `number:controllers:/path`.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::proc_cgroup::parse_proc_cgroup;
///
/// let entries = parse_proc_cgroup("4:cpu,cpuacct:/docker/abc\n0::/\n").unwrap();
/// assert!(entries[0].has_controller("cpu") && entries[0].has_controller("cpuacct"));
/// assert!(entries[1].is_v2());
/// ```
pub fn parse_proc_cgroup(text: &str) -> Result<Vec<CgroupEntry>, ParseError> {
    const EXPECTED: &str = "lines of hierarchy:controllers:/path (/proc/self/cgroup)";
    let mut entries = Vec::new();
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        // The path is last and may itself hold ':'.
        let mut fields = line.splitn(3, ':');
        let (Some(id), Some(controllers), Some(path)) =
            (fields.next(), fields.next(), fields.next())
        else {
            return Err(ParseError::new(EXPECTED, line));
        };
        let hierarchy = id
            .trim()
            .parse::<u32>()
            .map_err(|_| ParseError::new(EXPECTED, line))?;
        if !path.starts_with('/') {
            return Err(ParseError::new(EXPECTED, line));
        }
        entries.push(CgroupEntry {
            hierarchy,
            controllers: controllers
                .split(',')
                .filter(|c| !c.is_empty())
                .map(str::to_owned)
                .collect(),
            path: path.to_owned(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn v1_and_v2_lines() {
        let text = "12:memory:/a/b\n2:cpu,cpuacct:/\n1:name=systemd:/x:y\n0::/user.slice\n";
        let entries = parse_proc_cgroup(text).unwrap();
        assert_eq!(entries.len(), 4);
        assert!(entries[0].has_controller("memory") && !entries[0].is_v2());
        assert!(!entries[1].has_controller("cpuac"));
        assert_eq!(entries[2].path, "/x:y");
        assert!(entries[3].is_v2());
        assert_eq!(entries[3].path, "/user.slice");
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["garbage", "x::/", "1:cpu", "0::relative"] {
            assert!(parse_proc_cgroup(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_proc_cgroup(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "[0-9a-z:,/\n]{0,60}") {
            let _ = parse_proc_cgroup(&text);
        }
    }
}
