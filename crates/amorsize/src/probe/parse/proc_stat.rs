//! `/proc/stat`: the first line, `cpu  user nice system idle iowait irq softirq steal guest
//! guest_nice`, sums the time every CPU spent in each state since boot, in clock ticks
//! (`USER_HZ`, 1/100 s on common systems); `cpuN` lines follow, one per online CPU
//! (`proc_stat(5)`, `Documentation/filesystems/proc.rst`).

use super::ParseError;

/// The aggregate CPU time of `/proc/stat`, in clock ticks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct CpuTimes {
    /// Ticks the CPUs were busy: all states but `idle` and `iowait` (`steal`, time a
    /// hypervisor gave to others, counts as busy: it was not this machine's to use).
    pub busy: u64,
    /// Ticks in all states. `guest` and `guest_nice` are already counted in `user` and `nice`,
    /// so they are left out.
    pub total: u64,
    /// `cpuN` lines: the online CPUs the sums cover.
    pub cpus: u32,
}

/// Parses the aggregate `cpu` line of `/proc/stat` and counts the `cpuN` lines.
///
/// # Errors
///
/// A [`ParseError`] when there is no `cpu` line with at least `user nice system idle` as
/// numbers, or its sums overflow.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::proc_stat::parse_cpu_times;
///
/// let text = "cpu  60 0 20 100 20 0 0 0 0 0\ncpu0 30 0 10 50 10 0 0 0 0 0\ncpu1 30 0 10 50 10 0 0 0 0 0\nintr 5\n";
/// let t = parse_cpu_times(text).unwrap();
/// assert_eq!((t.busy, t.total, t.cpus), (80, 200, 2));
/// ```
pub fn parse_cpu_times(text: &str) -> Result<CpuTimes, ParseError> {
    let mut aggregate = None;
    let mut cpus = 0u32;
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("cpu") else {
            continue;
        };
        if rest.starts_with(char::is_whitespace) {
            if aggregate.is_none() {
                aggregate = Some(rest);
            }
        } else if rest.starts_with(|c: char| c.is_ascii_digit()) {
            cpus = cpus.saturating_add(1);
        }
    }
    let line = aggregate.ok_or_else(|| ParseError::new("a `cpu` line", ""))?;
    let err = || ParseError::new("`cpu` followed by tick counts", line.trim());
    let mut fields = [0u64; 8];
    let mut read = 0;
    for (slot, field) in fields.iter_mut().zip(line.split_whitespace()) {
        *slot = field.parse().map_err(|_| err())?;
        read += 1;
    }
    if read < 4 {
        return Err(err());
    }
    let total = fields
        .iter()
        .try_fold(0u64, |sum, &f| sum.checked_add(f))
        .ok_or_else(err)?;
    let (idle, iowait) = (fields[3], fields[4]);
    Ok(CpuTimes {
        busy: total - idle - iowait,
        total,
        cpus,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn old_kernels_have_four_fields_and_malformed_lines_are_errors() {
        let t = parse_cpu_times("cpu 1 2 3 4\n").unwrap();
        assert_eq!((t.busy, t.total, t.cpus), (6, 10, 0));
        for text in [
            "",
            "cpu 1 2 3\n",
            "cpu0 1 2 3 4\n",
            "cpu 1 x 3 4\n",
            "cpu -1 2 3 4\n",
        ] {
            assert!(parse_cpu_times(text).is_err(), "{text:?}");
        }
        let huge = format!("cpu {} {} 0 0\n", u64::MAX, 1);
        assert!(parse_cpu_times(&huge).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_cpu_times(&text);
        }

        #[test]
        fn busy_is_never_above_total(f in proptest::collection::vec(0u64..1 << 40, 4..10)) {
            let line: Vec<String> = f.iter().map(u64::to_string).collect();
            let t = parse_cpu_times(&format!("cpu  {}\ncpu0 0 0 0 0\n", line.join(" "))).unwrap();
            prop_assert!(t.busy <= t.total);
            prop_assert_eq!(t.cpus, 1);
        }
    }
}
