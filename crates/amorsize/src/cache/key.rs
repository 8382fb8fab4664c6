//! What identifies a workload across runs.

use std::fmt;

/// The key past runs of a workload are remembered under: the name the caller gave
/// ([`Options::name`](crate::Options::name)), else the function's type name with the input
/// size rounded down to a power of two (so 1000 and 1020 items share a history, 1000 and
/// 100 000 do not).
///
/// Closures defined in the same function share a type name (`main::{{closure}}`); an unnamed
/// key also holds where the function's code lies in the binary (an offset, the same from one
/// run of a build to the next), which tells such closures apart unless the compiler made them
/// one function (identical code). Naming a workload keeps its history across builds.
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

    /// An unnamed workload: the type names of `f`, its item and its result, where its code
    /// lies in the binary (an offset, as the type's documentation says), and the input size's
    /// power-of-two bucket.
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
        for part in [f, " (", t, " -> ", r, ") @"] {
            key.push_str(part);
        }
        push_hex(&mut key, code_offset::<T, R, F>());
        key.push_str(" items~2^");
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

/// Where the code that calls an `F` lies in the binary, as an offset from a function of this
/// module: a closure's body is compiled into it, so two closures of one type name (defined in
/// one function) have two offsets. The whole binary moves as one when it is loaded, so the
/// offset is the same in every run of a build.
fn code_offset<T: ?Sized, R, F: Fn(&T) -> R>() -> usize {
    fn call<T: ?Sized, R, F: Fn(&T) -> R>(f: &F, item: &T) -> R {
        f(item)
    }
    fn anchor() {}
    let code = call::<T, R, F> as fn(&F, &T) -> R as usize;
    code.wrapping_sub(anchor as fn() as usize)
}

/// Appends `n` in hexadecimal.
fn push_hex(key: &mut String, n: usize) {
    let digits = (usize::BITS - n.leading_zeros()).div_ceil(4).max(1);
    for k in (0..digits).rev() {
        let d = (n >> (4 * k)) & 0xf;
        key.push(char::from_digit(d as u32, 16).unwrap_or('0'));
    }
}

/// ⌊log₂ items⌋, and 0 for 0 or 1 item.
fn size_bucket(items: usize) -> u32 {
    items.checked_ilog2().unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn offset_of<T: ?Sized, R, F: Fn(&T) -> R>(_: &F) -> usize {
        code_offset::<T, R, F>()
    }

    #[test]
    fn unnamed_keys_read_as_before() {
        let f = |x: &u32| u64::from(*x);
        for items in [0, 1, 2, 1000, 1 << 20, usize::MAX] {
            let want = format!(
                "{} (u32 -> u64) @{:x} items~2^{}",
                std::any::type_name_of_val(&f),
                offset_of(&f),
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
    fn closures_of_one_type_name_are_told_apart_by_their_code() {
        // Two closures of one function: the same type name, item and result types.
        let a = |x: &u64| x.wrapping_mul(3).rotate_left(7);
        let b = |x: &u64| x ^ 0x5555;
        assert_eq!(
            std::any::type_name_of_val(&a),
            std::any::type_name_of_val(&b)
        );
        assert_ne!(WorkloadKey::unnamed(&a, 10), WorkloadKey::unnamed(&b, 10));
        // One closure: one key, call after call.
        assert_eq!(WorkloadKey::unnamed(&a, 10), WorkloadKey::unnamed(&a, 12));
    }

    #[test]
    fn hex_digits() {
        for n in [0usize, 1, 15, 16, 255, 0xabc, usize::MAX] {
            let mut s = String::new();
            push_hex(&mut s, n);
            assert_eq!(s, format!("{n:x}"));
        }
    }

    #[test]
    fn item_and_result_types_tell_closures_apart() {
        let a = |x: &u32| *x;
        let b = |x: &u64| *x;
        assert_ne!(WorkloadKey::unnamed(&a, 10), WorkloadKey::unnamed(&b, 10));
    }
}
