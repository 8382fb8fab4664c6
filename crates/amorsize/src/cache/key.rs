//! What identifies a workload across runs.

use std::fmt;

/// The key past runs of a workload are remembered under: the name the caller gave
/// ([`Options::name`](crate::Options::name)), else the function's type name with the input
/// size rounded down to a power of two (so 1000 and 1020 items share a history, 1000 and
/// 100 000 do not).
///
/// Closures defined in the same function can share a type name (`main::{{closure}}`), and
/// their item and result types tell them apart only when those differ: name a workload when
/// several unnamed ones could collide.
///
/// # Examples
///
/// ```
/// use amorsize::cache::WorkloadKey;
///
/// assert_eq!(WorkloadKey::named("resize").as_str(), "resize");
/// let f = |x: &u64| x * 2;
/// let a = WorkloadKey::unnamed(&f, 1000);
/// assert_eq!(a, WorkloadKey::unnamed(&f, 1020));
/// assert_ne!(a, WorkloadKey::unnamed(&f, 100_000));
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WorkloadKey(String);

impl WorkloadKey {
    /// A workload the caller named.
    pub fn named(name: impl Into<String>) -> WorkloadKey {
        WorkloadKey(name.into())
    }

    /// An unnamed workload: the type names of `f`, its item and its result, and the input
    /// size's power-of-two bucket.
    ///
    /// Made on calls too small to plan (to look up a decision made a moment ago), so it is put
    /// together with plain appends: the formatting machinery costs microseconds in a process
    /// whose caches other work has just flushed, a share of a call of 200 µs.
    pub fn unnamed<T: ?Sized, R, F: Fn(&T) -> R>(_f: &F, items: usize) -> WorkloadKey {
        let (f, t, r) = (
            std::any::type_name::<F>(),
            std::any::type_name::<T>(),
            std::any::type_name::<R>(),
        );
        let mut key = String::with_capacity(f.len() + t.len() + r.len() + 20);
        for part in [f, " (", t, " -> ", r, ") items~2^"] {
            key.push_str(part);
        }
        let bucket = size_bucket(items);
        if bucket >= 10 {
            key.push(char::from(b'0' + (bucket / 10) as u8));
        }
        key.push(char::from(b'0' + (bucket % 10) as u8));
        WorkloadKey(key)
    }

    /// The key of a run: `name` when the caller gave one, else [`WorkloadKey::unnamed`].
    pub fn of_run<T: ?Sized, R, F: Fn(&T) -> R>(
        name: Option<&str>,
        f: &F,
        items: usize,
    ) -> WorkloadKey {
        match name {
            Some(name) => WorkloadKey::named(name),
            None => WorkloadKey::unnamed(f, items),
        }
    }

    /// The key's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for WorkloadKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// ⌊log₂ items⌋, and 0 for 0 or 1 item.
fn size_bucket(items: usize) -> u32 {
    items.checked_ilog2().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unnamed_keys_read_as_before() {
        let f = |x: &u32| u64::from(*x);
        for items in [0, 1, 2, 1000, 1 << 20, usize::MAX] {
            let want = format!(
                "{} (u32 -> u64) items~2^{}",
                std::any::type_name_of_val(&f),
                size_bucket(items)
            );
            assert_eq!(WorkloadKey::unnamed(&f, items).as_str(), want);
        }
    }

    #[test]
    fn buckets_are_powers_of_two() {
        assert_eq!(size_bucket(0), 0);
        assert_eq!(size_bucket(1), 0);
        assert_eq!(size_bucket(1023), 9);
        assert_eq!(size_bucket(1024), 10);
    }

    #[test]
    fn item_and_result_types_tell_closures_apart() {
        let a = |x: &u32| *x;
        let b = |x: &u64| *x;
        assert_ne!(WorkloadKey::unnamed(&a, 10), WorkloadKey::unnamed(&b, 10));
    }
}
