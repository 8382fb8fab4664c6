//! The cgroup interface files that bound CPU and memory.
//!
//! Sources: `Documentation/admin-guide/cgroup-v2.rst` (`cpu.max`, `memory.max`, `memory.high`,
//! `memory.current`), `Documentation/scheduler/sched-bwc.rst` (v1 `cpu.cfs_quota_us`,
//! `cpu.cfs_period_us`) and `Documentation/admin-guide/cgroup-v1/memory.rst` (v1
//! `memory.limit_in_bytes`, `memory.usage_in_bytes`).

use super::{parse_u64, ParseError};

/// The CFS period the kernel uses when `cpu.max` names only a quota (`cgroup-v2.rst`: the
/// default is `max 100000`).
pub const DEFAULT_PERIOD_US: u64 = 100_000;

/// v1 memory limits at or above this many bytes mean "unlimited". The kernel shows an unset
/// limit as `PAGE_COUNTER_MAX` pages in bytes, `9223372036854771712` (2⁶³ rounded down to a
/// 4 KiB page) on 64-bit machines, a little different with other page sizes; no real machine
/// has 2⁶² bytes (4 EiB).
pub const V1_UNLIMITED_BYTES: u64 = 1 << 62;

/// Parses cgroup v2 `cpu.max` (`$MAX $PERIOD`, `$MAX` may be `max`) into a quota in CPUs;
/// `None` for no quota.
///
/// # Errors
///
/// A [`ParseError`] for anything but `max` or a positive quota, optionally followed by a
/// positive period.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cgroup::parse_cpu_max;
///
/// assert_eq!(parse_cpu_max("150000 100000\n").unwrap(), Some(1.5));
/// assert_eq!(parse_cpu_max("max 100000").unwrap(), None);
/// assert!(parse_cpu_max("lots").is_err());
/// ```
pub fn parse_cpu_max(text: &str) -> Result<Option<f64>, ParseError> {
    const EXPECTED: &str = "\"max\" or a quota, then a period (cpu.max)";
    let mut fields = text.split_whitespace();
    let (Some(quota), period, None) = (fields.next(), fields.next(), fields.next()) else {
        return Err(ParseError::new(EXPECTED, text));
    };
    let period = match period {
        Some(period) => positive(period, EXPECTED)?,
        None => DEFAULT_PERIOD_US,
    };
    if quota == "max" {
        return Ok(None);
    }
    let quota = positive(quota, EXPECTED)?;
    Ok(Some(quota as f64 / period as f64))
}

/// Parses cgroup v1 `cpu.cfs_quota_us` and `cpu.cfs_period_us` into a quota in CPUs; `None`
/// for no quota (a quota of `-1`).
///
/// # Errors
///
/// A [`ParseError`] when the quota is neither `-1` nor a positive number, or the period is not
/// a positive number.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cgroup::parse_cfs;
///
/// assert_eq!(parse_cfs("50000\n", "100000\n").unwrap(), Some(0.5));
/// assert_eq!(parse_cfs("-1", "100000").unwrap(), None);
/// ```
pub fn parse_cfs(quota: &str, period: &str) -> Result<Option<f64>, ParseError> {
    let period = positive(period, "a positive period in µs (cpu.cfs_period_us)")?;
    if quota.trim() == "-1" {
        return Ok(None);
    }
    let quota = positive(quota, "-1 or a positive quota in µs (cpu.cfs_quota_us)")?;
    Ok(Some(quota as f64 / period as f64))
}

/// Parses a cgroup v2 memory limit (`memory.max`, `memory.high`): bytes, or `max` for none.
///
/// # Errors
///
/// A [`ParseError`] for anything but `max` or a number of bytes.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cgroup::parse_memory_limit;
///
/// assert_eq!(parse_memory_limit("536870912\n").unwrap(), Some(512 << 20));
/// assert_eq!(parse_memory_limit("max\n").unwrap(), None);
/// ```
pub fn parse_memory_limit(text: &str) -> Result<Option<u64>, ParseError> {
    if text.trim() == "max" {
        return Ok(None);
    }
    parse_u64(text, "\"max\" or a number of bytes").map(Some)
}

/// Parses a memory usage in bytes (`memory.current`, v1 `memory.usage_in_bytes`).
///
/// # Errors
///
/// A [`ParseError`] for anything but a number of bytes.
pub fn parse_memory_usage(text: &str) -> Result<u64, ParseError> {
    parse_u64(text, "a number of bytes")
}

/// Parses cgroup v1 `memory.limit_in_bytes`: bytes, where `-1` or anything at or above
/// [`V1_UNLIMITED_BYTES`] means no limit (`None`).
///
/// # Errors
///
/// A [`ParseError`] for anything but a number of bytes or `-1`.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cgroup::parse_v1_memory_limit;
///
/// assert_eq!(parse_v1_memory_limit("9223372036854771712").unwrap(), None);
/// assert_eq!(parse_v1_memory_limit("1073741824").unwrap(), Some(1 << 30));
/// ```
pub fn parse_v1_memory_limit(text: &str) -> Result<Option<u64>, ParseError> {
    if text.trim() == "-1" {
        return Ok(None);
    }
    let bytes = parse_u64(text, "a number of bytes (memory.limit_in_bytes)")?;
    Ok((bytes < V1_UNLIMITED_BYTES).then_some(bytes))
}

/// Reads the value of `key` in a cgroup `memory.stat` file (flat keyed: `key value` lines);
/// `None` when the key is absent.
///
/// The probe wants `inactive_file` (v2) or `total_inactive_file` (v1, counted over the whole
/// subtree as `memory.usage_in_bytes` is): page cache the kernel reclaims first, which
/// `docker stats` and cAdvisor subtract from usage to get the working set.
///
/// # Errors
///
/// A [`ParseError`] when the key's value is not a number.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cgroup::parse_memory_stat;
///
/// let stat = "anon 4096\nfile 8192\ninactive_file 2048\n";
/// assert_eq!(parse_memory_stat(stat, "inactive_file").unwrap(), Some(2048));
/// assert_eq!(parse_memory_stat(stat, "total_inactive_file").unwrap(), None);
/// ```
pub fn parse_memory_stat(text: &str, key: &str) -> Result<Option<u64>, ParseError> {
    for line in text.lines() {
        let mut fields = line.split_whitespace();
        if fields.next() == Some(key) {
            let value = fields.next().unwrap_or("");
            if fields.next().is_some() {
                return Err(ParseError::new("a key and a number (memory.stat)", line));
            }
            return parse_u64(value, "a number of bytes (memory.stat)").map(Some);
        }
    }
    Ok(None)
}

fn positive(text: &str, expected: &'static str) -> Result<u64, ParseError> {
    match parse_u64(text, expected)? {
        0 => Err(ParseError::new(expected, text.trim())),
        n => Ok(n),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn cpu_max_forms() {
        assert_eq!(parse_cpu_max("max").unwrap(), None);
        assert_eq!(parse_cpu_max("200000").unwrap(), Some(2.0));
        assert_eq!(parse_cpu_max("50000 200000").unwrap(), Some(0.25));
        for bad in ["", "max 0", "0 100000", "1 2 3", "-5 100000", "max x"] {
            assert!(parse_cpu_max(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn cfs_forms() {
        assert_eq!(parse_cfs("150000", "100000").unwrap(), Some(1.5));
        assert!(parse_cfs("-1", "0").is_err());
        assert!(parse_cfs("-2", "100000").is_err());
        assert!(parse_cfs("", "100000").is_err());
    }

    #[test]
    fn memory_stat_forms() {
        assert_eq!(
            parse_memory_stat("total_inactive_file 7\n", "total_inactive_file").unwrap(),
            Some(7)
        );
        assert!(parse_memory_stat("inactive_file x\n", "inactive_file").is_err());
        assert!(parse_memory_stat("inactive_file 1 2\n", "inactive_file").is_err());
        assert_eq!(
            parse_memory_stat("garbage\n", "inactive_file").unwrap(),
            None
        );
    }

    #[test]
    fn memory_forms() {
        assert_eq!(parse_memory_limit(" 4096 ").unwrap(), Some(4096));
        assert!(parse_memory_limit("4k").is_err());
        assert_eq!(parse_memory_usage("77\n").unwrap(), 77);
        assert!(parse_memory_usage("max").is_err());
        assert_eq!(parse_v1_memory_limit("-1").unwrap(), None);
        assert_eq!(parse_v1_memory_limit(&u64::MAX.to_string()).unwrap(), None);
        assert!(parse_v1_memory_limit("-2").is_err());
    }

    proptest! {
        #[test]
        fn never_panic(a in "\\PC*", b in "\\PC*") {
            let _ = parse_cpu_max(&a);
            let _ = parse_cfs(&a, &b);
            let _ = parse_memory_limit(&a);
            let _ = parse_memory_usage(&a);
            let _ = parse_v1_memory_limit(&a);
            let _ = parse_memory_stat(&a, "inactive_file");
            let _ = parse_memory_stat(&a, &b);
        }

        #[test]
        fn quotas_are_positive(q in 1u64..u64::MAX, p in 1u64..u64::MAX) {
            let cpus = parse_cpu_max(&format!("{q} {p}")).unwrap().unwrap();
            prop_assert!(cpus > 0.0 && cpus.is_finite());
            prop_assert_eq!(parse_cfs(&q.to_string(), &p.to_string()).unwrap(), Some(cpus));
        }
    }
}
