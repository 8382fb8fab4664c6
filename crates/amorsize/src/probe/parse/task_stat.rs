//! `/proc/[pid]/task/[tid]/stat`: `tid (comm) S ppid …` (`proc_pid_stat(5)`). The command
//! name may hold spaces and parentheses, so the state is the first field after the *last* `)`.

use super::ParseError;

/// The scheduling state letter of a `stat` line: `R` running or runnable, `S` sleeping, `D`
/// waiting on I/O, and so on.
///
/// # Errors
///
/// A [`ParseError`] when there is no `)` followed by a state letter.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::task_stat::parse_state;
///
/// assert_eq!(parse_state("4242 (my (odd) name) R 1 4242 4242 0 -1"), Ok('R'));
/// assert_eq!(parse_state("7 (rayon-1) S 1"), Ok('S'));
/// assert!(parse_state("7 rayon S 1").is_err());
/// ```
pub fn parse_state(text: &str) -> Result<char, ParseError> {
    let err = || ParseError::new("`tid (comm) state …`", text);
    let (_, rest) = text.rsplit_once(')').ok_or_else(err)?;
    let state = rest.split_whitespace().next().ok_or_else(err)?;
    let mut chars = state.chars();
    match (chars.next(), chars.next()) {
        (Some(c), None) if c.is_ascii_alphabetic() => Ok(c),
        _ => Err(err()),
    }
}

/// The CPU time a `stat` line reports, `utime + stime` (fields 14 and 15), in clock ticks.
///
/// # Errors
///
/// A [`ParseError`] when the fields after the name are too few or not numbers.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::task_stat::parse_cpu_ticks;
///
/// let line = "42 (a b) R 1 42 42 0 -1 4194560 100 0 0 0 700 50 0 0 20 0 1 0";
/// assert_eq!(parse_cpu_ticks(line), Ok(750));
/// assert!(parse_cpu_ticks("42 (a) R 1").is_err());
/// ```
pub fn parse_cpu_ticks(text: &str) -> Result<u64, ParseError> {
    let err = || ParseError::new("`pid (comm) state …` with utime and stime", text);
    let (_, rest) = text.rsplit_once(')').ok_or_else(err)?;
    // After the name: state is field 3, so utime (14) and stime (15) are the 12th and 13th.
    let mut fields = rest.split_whitespace().skip(11);
    let mut tick =
        || -> Result<u64, ParseError> { fields.next().ok_or_else(err)?.parse().map_err(|_| err()) };
    let (utime, stime) = (tick()?, tick()?);
    utime.checked_add(stime).ok_or_else(err)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn the_last_parenthesis_ends_the_name() {
        assert_eq!(parse_state("1 ()) R 0"), Ok('R'));
        assert!(parse_state("1 (x)").is_err());
        assert!(parse_state("1 (x) RR 0").is_err());
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_state(&text);
            let _ = parse_cpu_ticks(&text);
        }

        #[test]
        fn any_name_keeps_its_state(name in "[^\\n]{0,30}", state in "[RSDZTtWXxKPI]") {
            let line = format!("12 ({name}) {state} 1 12 12 0 -1 4194560");
            prop_assert_eq!(parse_state(&line), Ok(state.chars().next().unwrap()));
        }
    }
}
