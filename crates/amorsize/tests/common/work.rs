//! A work item shared by test files that need items of measurable cost.

/// About 300 rounds of integer mixing: a few hundred ns, the same on every call for an item.
pub fn spin(x: &u64) -> u64 {
    let mut z = *x;
    for _ in 0..300 {
        z = std::hint::black_box(z.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
    }
    z
}
