//! The machine probe against fixture trees of `/proc` and `/sys`: hosts, containers (cgroup v1,
//! v2, nested), unlimited values, missing and malformed files. Never this machine's numbers.

mod cgroup;
mod cpus;
mod load;
mod memory;
mod robustness;
mod support;
