//! `/proc/sys/kernel/sched_autogroup_enabled`: `1` when the scheduler groups threads by
//! session, `0` when not (`sched(7)`, "The autogroup feature"; the file exists only in kernels
//! built with `CONFIG_SCHED_AUTOGROUP`).

use super::{parse_u64, ParseError};

/// Whether autogrouping is on.
///
/// # Errors
///
/// A [`ParseError`] when the file holds anything but `0` or `1`.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::autogroup::parse_autogroup_enabled;
///
/// assert_eq!(parse_autogroup_enabled("1\n"), Ok(true));
/// assert_eq!(parse_autogroup_enabled("0\n"), Ok(false));
/// assert!(parse_autogroup_enabled("yes\n").is_err());
/// ```
pub fn parse_autogroup_enabled(text: &str) -> Result<bool, ParseError> {
    match parse_u64(text, "0 or 1")? {
        0 => Ok(false),
        1 => Ok(true),
        _ => Err(ParseError::new("0 or 1", text.trim())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_autogroup_enabled(&text);
        }
    }

    #[test]
    fn only_zero_and_one() {
        assert!(parse_autogroup_enabled("2\n").is_err());
        assert!(parse_autogroup_enabled("").is_err());
        assert_eq!(parse_autogroup_enabled(" 1 "), Ok(true));
    }
}
