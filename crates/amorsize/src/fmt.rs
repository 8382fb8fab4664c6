//! How figures read in text: durations, bytes and rates, one way for the plan, the run report,
//! the cluster's calibration and the command line alike.
//!
//! Each picks the unit that keeps three significant digits or so (`15.0 µs`, `250.0 ms`,
//! `3.00 s`; `3.0 MiB`; `1.25 M items/s`). Pure functions; nothing else of the crate.

use std::time::Duration;

/// Seconds in the unit that reads best: ns, µs and ms with one decimal, s with two; `0 s` for
/// zero; a value that is not finite as Rust writes it.
///
/// # Examples
///
/// ```
/// use amorsize::fmt::seconds;
/// assert_eq!(seconds(1.5e-5), "15.0 µs");
/// assert_eq!(seconds(0.25), "250.0 ms");
/// assert_eq!(seconds(3.0), "3.00 s");
/// ```
pub fn seconds(s: f64) -> String {
    let a = s.abs();
    if !s.is_finite() {
        format!("{s}")
    } else if a == 0.0 {
        "0 s".to_owned()
    } else if a < 1e-6 {
        format!("{:.1} ns", s * 1e9)
    } else if a < 1e-3 {
        format!("{:.1} µs", s * 1e6)
    } else if a < 1.0 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{s:.2} s")
    }
}

/// A duration as [`seconds`] writes it.
///
/// # Examples
///
/// ```
/// use std::time::Duration;
/// assert_eq!(amorsize::fmt::duration(Duration::from_micros(1500)), "1.5 ms");
/// ```
pub fn duration(d: Duration) -> String {
    seconds(d.as_secs_f64())
}

/// Bytes in binary units: `512 B`, then KiB to TiB with one decimal.
///
/// # Examples
///
/// ```
/// use amorsize::fmt::bytes;
/// assert_eq!(bytes(512), "512 B");
/// assert_eq!(bytes(3 << 20), "3.0 MiB");
/// ```
pub fn bytes(b: u64) -> String {
    let (v, unit) = binary(b as f64);
    if unit == "B" {
        format!("{b} B")
    } else {
        format!("{v:.1} {unit}")
    }
}

/// A throughput in bytes per second, in the binary units of [`bytes`]: `112.5 MiB/s`; a rate
/// that is not finite (nothing to move, or no time measured) as Rust writes it.
///
/// # Examples
///
/// ```
/// assert_eq!(amorsize::fmt::bytes_per_second(1.5 * 1024.0 * 1024.0), "1.5 MiB/s");
/// ```
pub fn bytes_per_second(rate: f64) -> String {
    if !rate.is_finite() {
        return format!("{rate} B/s");
    }
    let (v, unit) = binary(rate.max(0.0));
    if unit == "B" {
        format!("{v:.0} B/s")
    } else {
        format!("{v:.1} {unit}/s")
    }
}

/// A rate in items per second, with k and M for thousands and millions, two decimals.
///
/// # Examples
///
/// ```
/// use amorsize::fmt::items_per_second;
/// assert_eq!(items_per_second(1_250_000.0), "1.25 M items/s");
/// assert_eq!(items_per_second(12.0), "12.00 items/s");
/// ```
pub fn items_per_second(rate: f64) -> String {
    if rate >= 1e6 {
        format!("{:.2} M items/s", rate / 1e6)
    } else if rate >= 1e3 {
        format!("{:.2} k items/s", rate / 1e3)
    } else {
        format!("{rate:.2} items/s")
    }
}

/// `v` bytes scaled to the largest binary unit it reaches, and that unit.
fn binary(mut v: f64) -> (f64, &'static str) {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut unit = 0;
    while v >= 1024.0 && unit + 1 < UNITS.len() {
        v /= 1024.0;
        unit += 1;
    }
    (v, UNITS[unit])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_read_naturally() {
        assert_eq!(seconds(0.0), "0 s");
        assert_eq!(seconds(12e-9), "12.0 ns");
        assert_eq!(seconds(1.5e-5), "15.0 µs");
        assert_eq!(seconds(0.25), "250.0 ms");
        assert_eq!(seconds(3.0), "3.00 s");
        assert_eq!(seconds(-2e-3), "-2.0 ms");
        assert_eq!(seconds(f64::INFINITY), "inf");
        assert_eq!(duration(Duration::from_nanos(40)), "40.0 ns");
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(512), "512 B");
        assert_eq!(bytes(1024), "1.0 KiB");
        assert_eq!(bytes(3 << 20), "3.0 MiB");
        assert_eq!(bytes(5 << 40), "5.0 TiB");
        assert_eq!(bytes(u64::MAX), "16777216.0 TiB");
    }

    #[test]
    fn rates_read_naturally() {
        assert_eq!(bytes_per_second(100.0), "100 B/s");
        assert_eq!(bytes_per_second(2048.0), "2.0 KiB/s");
        assert_eq!(bytes_per_second(f64::INFINITY), "inf B/s");
        assert_eq!(items_per_second(0.0), "0.00 items/s");
        assert_eq!(items_per_second(2500.0), "2.50 k items/s");
        assert_eq!(items_per_second(3e6), "3.00 M items/s");
    }
}
