//! `--halt`: when to stop a run early, after GNU parallel's option of the same name.

use std::fmt;
use std::str::FromStr;

use crate::{Error, ErrorKind};

/// When and how to stop a run early.
///
/// # Examples
///
/// ```
/// use amorsize_run::Halt;
///
/// let h: Halt = "now,fail=1".parse().unwrap();
/// assert!(h.triggered(1, 0).is_some());
/// assert!(h.triggered(0, 5).is_none());
/// assert!("soon,fail=10%".parse::<Halt>().is_ok());
/// assert!("later,fail=1".parse::<Halt>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub enum Halt {
    /// Run every job whatever happens (the default).
    #[default]
    Never,
    /// Stop when the condition holds.
    When {
        /// Kill the running jobs (`now`) or let them finish (`soon`).
        how: HaltHow,
        /// Count failures or successes.
        on: HaltOn,
        /// How many.
        threshold: Threshold,
    },
}

/// What happens to running jobs when the run halts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltHow {
    /// Kill them.
    Now,
    /// Start no new job; let the running ones finish.
    Soon,
}

/// What is counted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HaltOn {
    /// Failed jobs.
    Fail,
    /// Succeeded jobs.
    Success,
}

/// A count or a share of the jobs finished.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Threshold {
    /// This many jobs.
    Count(usize),
    /// This percentage of the jobs finished so far (at least [`MIN_JOBS_FOR_PERCENT`] of them).
    Percent(f64),
}

/// A percentage is judged only after this many jobs, as GNU parallel does, so that the first
/// failure is not 100 %.
pub const MIN_JOBS_FOR_PERCENT: usize = 3;

impl Halt {
    /// Whether to halt, and how, after `failed` failures and `succeeded` successes.
    pub fn triggered(&self, failed: usize, succeeded: usize) -> Option<HaltHow> {
        let Halt::When { how, on, threshold } = *self else {
            return None;
        };
        let counted = match on {
            HaltOn::Fail => failed,
            HaltOn::Success => succeeded,
        };
        let done = failed + succeeded;
        let hit = match threshold {
            Threshold::Count(n) => counted >= n,
            Threshold::Percent(p) => {
                done >= MIN_JOBS_FOR_PERCENT && counted as f64 * 100.0 >= p * done as f64
            }
        };
        hit.then_some(how)
    }
}

impl FromStr for Halt {
    type Err = Error;

    /// Parses `never`, `now,fail=N`, `soon,fail=N`, `now,success=N`, `soon,success=N` (N a
    /// count, or a percentage like `10%`), and GNU parallel's short forms `0` (never), `1`
    /// (`soon,fail=1`) and `2` (`now,fail=1`).
    fn from_str(s: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(
                ErrorKind::InvalidInput,
                format!(
                    "--halt {s:?}: expected `never`, `now,fail=N`, `soon,fail=N`, \
                     `now,success=N` or `soon,success=N` (N a count ≥ 1 or a percentage like 10%)"
                ),
            )
        };
        let fail1 = |how| Halt::When {
            how,
            on: HaltOn::Fail,
            threshold: Threshold::Count(1),
        };
        match s.trim() {
            "never" | "0" => return Ok(Halt::Never),
            "1" => return Ok(fail1(HaltHow::Soon)),
            "2" => return Ok(fail1(HaltHow::Now)),
            _ => {}
        }
        let (how, rest) = s.trim().split_once(',').ok_or_else(bad)?;
        let how = match how {
            "now" => HaltHow::Now,
            "soon" => HaltHow::Soon,
            _ => return Err(bad()),
        };
        let (on, n) = rest.split_once('=').ok_or_else(bad)?;
        let on = match on {
            "fail" => HaltOn::Fail,
            "success" => HaltOn::Success,
            _ => return Err(bad()),
        };
        let threshold = if let Some(p) = n.strip_suffix('%') {
            let p: f64 = p.parse().map_err(|_| bad())?;
            if !(p > 0.0 && p <= 100.0) {
                return Err(bad());
            }
            Threshold::Percent(p)
        } else {
            let n: usize = n.parse().map_err(|_| bad())?;
            if n == 0 {
                return Err(bad());
            }
            Threshold::Count(n)
        };
        Ok(Halt::When { how, on, threshold })
    }
}

impl fmt::Display for Halt {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Halt::Never => f.write_str("never"),
            Halt::When { how, on, threshold } => {
                let how = if *how == HaltHow::Now { "now" } else { "soon" };
                let on = if *on == HaltOn::Fail {
                    "fail"
                } else {
                    "success"
                };
                match threshold {
                    Threshold::Count(n) => write!(f, "{how},{on}={n}"),
                    Threshold::Percent(p) => write!(f, "{how},{on}={p}%"),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forms_parse_and_print_back() {
        for s in [
            "never",
            "now,fail=1",
            "soon,fail=3",
            "now,success=2",
            "soon,fail=10%",
        ] {
            assert_eq!(s.parse::<Halt>().unwrap().to_string(), s);
        }
        assert_eq!("2".parse::<Halt>().unwrap().to_string(), "now,fail=1");
        for s in [
            "now",
            "now,fail=0",
            "now,fail=x",
            "now,oops=1",
            "now,fail=200%",
        ] {
            assert!(s.parse::<Halt>().is_err(), "{s}");
        }
    }

    #[test]
    fn percentages_wait_for_enough_jobs() {
        let h: Halt = "soon,fail=50%".parse().unwrap();
        assert_eq!(h.triggered(1, 0), None);
        assert_eq!(h.triggered(2, 1), Some(HaltHow::Soon));
        assert_eq!(h.triggered(1, 2), None);
    }
}
