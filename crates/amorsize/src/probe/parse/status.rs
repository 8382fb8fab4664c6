//! `/proc/self/status`: `Key:\tvalue` lines (`proc_pid_status(5)`); `Cpus_allowed_list` is
//! the process's CPU affinity mask in list format.

use super::{cpu_list::parse_cpu_list, ParseError};
use crate::probe::CpuSet;

/// The CPUs of `Cpus_allowed_list` in `/proc/self/status`.
///
/// # Errors
///
/// A [`ParseError`] when the line is missing or not a CPU list.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::status::parse_cpus_allowed;
///
/// let status = "Name:\tcat\nCpus_allowed:\t5\nCpus_allowed_list:\t0,2\n";
/// assert_eq!(parse_cpus_allowed(status).unwrap().ids(), &[0, 2]);
/// ```
pub fn parse_cpus_allowed(text: &str) -> Result<CpuSet, ParseError> {
    let value = text
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .ok_or_else(|| ParseError::new("a Cpus_allowed_list line", ""))?;
    parse_cpu_list(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn missing_line_is_an_error() {
        assert!(parse_cpus_allowed("Cpus_allowed:\t3\n").is_err());
        assert!(parse_cpus_allowed("Cpus_allowed_list:\tzz\n").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_cpus_allowed(&text);
        }
    }
}
