//! `/proc/loadavg`: `1.02 0.87 0.65 3/412 12345` (`proc_loadavg(5)`). The first three fields
//! are the load averages over 1, 5 and 15 minutes; the fourth is `runnable/existing` kernel
//! scheduling entities (threads) at the moment of reading — the kernel's `nr_running()`
//! summed over the CPUs, which counts the reading thread itself — and the fifth the most
//! recently assigned PID (`fs/proc/loadavg.c`).

use super::ParseError;

/// The figures of `/proc/loadavg`.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub struct LoadAvg {
    /// Load average over 1, 5 and 15 minutes (runnable plus uninterruptible threads,
    /// exponentially damped).
    pub averages: [f64; 3],
    /// Threads runnable or running at the moment of reading, the reader included (so at
    /// least 1 on a file read by a running thread; a copy of the file may say 0).
    pub runnable: u32,
    /// Threads that exist on the system.
    pub threads: u32,
}

/// Parses `/proc/loadavg`. The fifth field (the last PID) is not looked at.
///
/// # Errors
///
/// A [`ParseError`] when the three averages are not finite non-negative numbers, or the fourth
/// field is not `runnable/existing` with `runnable ≤ existing`.
///
/// # Examples
///
/// ```
/// use amorsize::probe::parse::loadavg::parse_loadavg;
///
/// let load = parse_loadavg("1.02 0.87 0.65 3/412 12345\n").unwrap();
/// assert_eq!(load.averages, [1.02, 0.87, 0.65]);
/// assert_eq!((load.runnable, load.threads), (3, 412));
/// assert!(parse_loadavg("1.02 0.87 0.65\n").is_err());
/// ```
pub fn parse_loadavg(text: &str) -> Result<LoadAvg, ParseError> {
    const EXPECTED: &str = "three load averages and runnable/existing threads";
    let err = || ParseError::new(EXPECTED, text.trim());
    let mut fields = text.split_whitespace();
    let mut averages = [0.0; 3];
    for slot in &mut averages {
        let value: f64 = fields.next().ok_or_else(err)?.parse().map_err(|_| err())?;
        // The kernel prints fixed-point figures (`%lu.%02lu`); anything else is not this file.
        if !(value.is_finite() && value >= 0.0) {
            return Err(err());
        }
        *slot = value;
    }
    let (runnable, threads) = fields
        .next()
        .and_then(|f| f.split_once('/'))
        .ok_or_else(err)?;
    let runnable: u32 = runnable.parse().map_err(|_| err())?;
    let threads: u32 = threads.parse().map_err(|_| err())?;
    if runnable > threads {
        return Err(err());
    }
    Ok(LoadAvg {
        averages,
        runnable,
        threads,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_kernel_line_parses() {
        let load = parse_loadavg("0.54 1.33 3.95 3/98 11523\n").unwrap();
        assert_eq!(load.averages, [0.54, 1.33, 3.95]);
        assert_eq!((load.runnable, load.threads), (3, 98));
        // The last PID is optional for the probe.
        assert!(parse_loadavg("0.00 0.00 0.00 1/1").is_ok());
    }

    #[test]
    fn malformed_lines_are_errors() {
        for text in [
            "",
            "0.5 0.5 0.5 3-98 1\n",
            "0.5 0.5 0.5 /98 1\n",
            "0.5 0.5 0.5 9/8 1\n",
            "0.5 x 0.5 3/98 1\n",
            "-1 0.5 0.5 3/98 1\n",
            "inf 0.5 0.5 3/98 1\n",
            "NaN 0.5 0.5 3/98 1\n",
            "0.5 0.5 0.5 3/-98 1\n",
        ] {
            assert!(parse_loadavg(text).is_err(), "{text:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(text in "\\PC*") {
            let _ = parse_loadavg(&text);
        }

        #[test]
        fn round_trips_what_the_kernel_writes(
            a in 0u32..100_000, b in 0u32..100, run in 0u32..10_000, extra in 0u32..100_000,
        ) {
            let text = format!("{}.{:02} {}.{:02} 0.00 {run}/{} 42\n", a, b, b, a % 100, run + extra);
            let load = parse_loadavg(&text).unwrap();
            prop_assert_eq!((load.runnable, load.threads), (run, run + extra));
            prop_assert!(load.averages.iter().all(|x| x.is_finite() && *x >= 0.0));
        }
    }
}
