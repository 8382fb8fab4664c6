//! A value read again once it is older than a time-to-live; the clock is passed in so the rule
//! can be tested without sleeping.

use std::time::{Duration, Instant};

/// The last reading of a value and when it was taken.
#[derive(Debug)]
pub(crate) struct Fresh<T> {
    last: Option<(Instant, T)>,
}

impl<T: Clone> Fresh<T> {
    /// Nothing read yet.
    pub(crate) const fn new() -> Self {
        Fresh { last: None }
    }

    /// The last reading if it is younger than `ttl` at `now`, else a new one from `read`.
    pub(crate) fn get(&mut self, now: Instant, ttl: Duration, read: impl FnOnce() -> T) -> T {
        if let Some((at, value)) = &self.last {
            // A clock that went backwards (`now` before `at`) counts as fresh: zero elapsed.
            if now.saturating_duration_since(*at) < ttl {
                return value.clone();
            }
        }
        let value = read();
        self.last = Some((now, value.clone()));
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_again_only_after_the_ttl() {
        let ttl = Duration::from_secs(1);
        let start = Instant::now();
        let mut reads = 0;
        let mut fresh = Fresh::new();
        let mut read_at = |fresh: &mut Fresh<u32>, offset_ms: u64| {
            fresh.get(start + Duration::from_millis(offset_ms), ttl, || {
                reads += 1;
                reads
            })
        };
        assert_eq!(read_at(&mut fresh, 0), 1);
        assert_eq!(read_at(&mut fresh, 999), 1);
        assert_eq!(read_at(&mut fresh, 1000), 2);
        assert_eq!(read_at(&mut fresh, 1500), 2);
        assert_eq!(read_at(&mut fresh, 2000), 3);
    }
}
