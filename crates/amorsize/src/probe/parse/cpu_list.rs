//! CPU lists such as `0-3,8,10-11`, the format of `/sys/devices/system/cpu/online`, the
//! topology `*_list` files and `Cpus_allowed_list` (kernel `cputopology.rst`, `cpuset(7)`
//! "List format").

use super::ParseError;
use crate::probe::CpuSet;

/// The highest CPU number accepted. Linux's `CONFIG_NR_CPUS` tops out at 8192 on the common
/// architectures; the margin keeps real machines in and stops a garbage range such as
/// `0-4000000000` from allocating gigabytes.
pub const MAX_CPU_ID: u32 = 1 << 16;

/// Parses a CPU list: comma-separated CPU numbers and inclusive ranges `a-b`. An empty (or
/// all-whitespace) text is the empty set, as the kernel writes for an empty mask.
///
/// # Errors
///
/// A [`ParseError`] for anything else: non-numbers, reversed ranges, numbers above
/// [`MAX_CPU_ID`].
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::cpu_list::parse_cpu_list;
///
/// let cpus = parse_cpu_list("0-3,8,10-11\n").unwrap();
/// assert_eq!(cpus.len(), 7);
/// assert!(cpus.contains(10) && !cpus.contains(4));
/// assert!(parse_cpu_list("3-1").is_err());
/// ```
pub fn parse_cpu_list(text: &str) -> Result<CpuSet, ParseError> {
    const EXPECTED: &str = "a CPU list such as 0-3,8";
    let text = text.trim();
    let mut cpus = Vec::new();
    if text.is_empty() {
        return Ok(CpuSet::from_ids(cpus));
    }
    for part in text.split(',') {
        let part = part.trim();
        let (low, high) = match part.split_once('-') {
            Some((low, high)) => (cpu_id(low, part)?, cpu_id(high, part)?),
            None => {
                let id = cpu_id(part, part)?;
                (id, id)
            }
        };
        if low > high {
            return Err(ParseError::new(EXPECTED, part));
        }
        cpus.extend(low..=high);
    }
    Ok(CpuSet::from_ids(cpus))
}

fn cpu_id(text: &str, part: &str) -> Result<u32, ParseError> {
    match text.trim().parse::<u32>() {
        Ok(id) if id <= MAX_CPU_ID => Ok(id),
        _ => Err(ParseError::new("a CPU number up to 65536", part)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn lists_ranges_and_singles() {
        let set = parse_cpu_list("0-3,8,10-11").unwrap();
        assert_eq!(set.ids(), &[0, 1, 2, 3, 8, 10, 11]);
        assert_eq!(parse_cpu_list("5").unwrap().ids(), &[5]);
        assert_eq!(parse_cpu_list("1,1,0").unwrap().ids(), &[0, 1]);
        assert!(parse_cpu_list("\n").unwrap().is_empty());
    }

    #[test]
    fn rejects_garbage() {
        for bad in ["a", "1-", "-1", "1--2", "0-70000", "1,,2", "0x3", "2-1"] {
            assert!(parse_cpu_list(bad).is_err(), "{bad:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_cpu_list(&text);
        }

        #[test]
        fn never_panics_on_list_like_text(text in "[0-9,\\- \n]{0,40}") {
            let _ = parse_cpu_list(&text);
        }

        #[test]
        fn round_trips(ids in proptest::collection::btree_set(0u32..512, 0..40)) {
            let set = CpuSet::from_ids(ids.iter().copied().collect());
            let again = parse_cpu_list(&set.to_string()).unwrap();
            prop_assert_eq!(again, set);
        }
    }
}
