//! A set of CPU numbers, shown and serialized in the kernel's list format (`0-3,8`).

use std::fmt;

/// A set of logical CPU numbers (sorted, without repeats).
///
/// It prints, and serializes, in the kernel's list format.
///
/// # Examples
///
/// ```
/// use amorsize::probe::CpuSet;
///
/// let set = CpuSet::from_ids(vec![3, 0, 1, 2, 8]);
/// assert_eq!(set.to_string(), "0-3,8");
/// assert_eq!(set.len(), 5);
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CpuSet(Vec<u32>);

impl CpuSet {
    /// The set of these CPU numbers (in any order, repeats allowed).
    pub fn from_ids(mut ids: Vec<u32>) -> Self {
        ids.sort_unstable();
        ids.dedup();
        CpuSet(ids)
    }

    /// The CPU numbers, ascending.
    pub fn ids(&self) -> &[u32] {
        &self.0
    }

    /// How many CPUs the set holds.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Whether CPU `id` is in the set.
    pub fn contains(&self, id: u32) -> bool {
        self.0.binary_search(&id).is_ok()
    }

    /// The CPUs in both sets.
    pub fn intersection(&self, other: &CpuSet) -> CpuSet {
        CpuSet(
            self.0
                .iter()
                .copied()
                .filter(|&id| other.contains(id))
                .collect(),
        )
    }
}

impl fmt::Display for CpuSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        let mut ids = self.0.iter().copied().peekable();
        while let Some(low) = ids.next() {
            let mut high = low;
            while ids.peek() == Some(&(high + 1)) {
                high += 1;
                ids.next();
            }
            if !first {
                f.write_str(",")?;
            }
            first = false;
            if low == high {
                write!(f, "{low}")?;
            } else {
                write!(f, "{low}-{high}")?;
            }
        }
        Ok(())
    }
}

impl serde::Serialize for CpuSet {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for CpuSet {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        super::parse::cpu_list::parse_cpu_list(&text).map_err(serde::de::Error::custom)
    }
}
