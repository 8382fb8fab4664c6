//! `/proc/meminfo`: `Key:   value kB` lines (`proc_meminfo(5)`). The kernel's `kB` is KiB
//! (1024 bytes): `fs/proc/meminfo.c` shifts page counts by `PAGE_SHIFT - 10`.

use super::ParseError;

/// The two figures of `/proc/meminfo` the probe uses, in bytes.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct MemInfo {
    /// `MemTotal`: usable RAM.
    pub total: Option<u64>,
    /// `MemAvailable`: the kernel's estimate of memory available for new work without
    /// swapping (since Linux 3.14).
    pub available: Option<u64>,
}

/// Parses `/proc/meminfo`. Lines other than `MemTotal` and `MemAvailable` are not looked at.
///
/// # Errors
///
/// A [`ParseError`] when one of those two lines does not hold a number of kB.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::meminfo::parse_meminfo;
///
/// let info = parse_meminfo("MemTotal:  2048 kB\nMemFree: 1 kB\nMemAvailable: 1024 kB\n").unwrap();
/// assert_eq!(info.total, Some(2048 * 1024));
/// assert_eq!(info.available, Some(1 << 20));
/// ```
pub fn parse_meminfo(text: &str) -> Result<MemInfo, ParseError> {
    let mut info = MemInfo::default();
    for line in text.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let slot = match key.trim() {
            "MemTotal" => &mut info.total,
            "MemAvailable" => &mut info.available,
            _ => continue,
        };
        *slot = Some(kib(value).ok_or_else(|| ParseError::new("a number of kB", line))?);
    }
    Ok(info)
}

fn kib(value: &str) -> Option<u64> {
    let mut fields = value.split_whitespace();
    let number = fields.next()?.parse::<u64>().ok()?;
    match (fields.next(), fields.next()) {
        (Some("kB"), None) => number.checked_mul(1024),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn missing_lines_are_none() {
        let info = parse_meminfo("MemTotal: 10 kB\n").unwrap();
        assert_eq!(info.total, Some(10240));
        assert_eq!(info.available, None);
    }

    #[test]
    fn rejects_bad_values() {
        for bad in [
            "MemTotal: lots",
            "MemAvailable: 5",
            "MemTotal: 5 MB",
            "MemTotal: 99999999999999999999 kB",
        ] {
            assert!(parse_meminfo(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_meminfo(&text);
        }

        #[test]
        fn never_panics_on_near_misses(text in "((MemTotal|MemAvailable|X): *[0-9]{0,22}( kB)?\n){0,4}") {
            let _ = parse_meminfo(&text);
        }
    }
}
