//! Helpers shared by several test files.

// The library's fuzzing engine, one file for both crates' fuzz tests.
#[path = "../../../amorsize/tests/common/fuzz.rs"]
pub mod fuzz;
