//! What the machine offers: CPUs, physical cores, CPU quota and memory, and what each backend
//! costs here. This is the only module that reads the system.

pub mod overhead;

use std::sync::OnceLock;

/// The machine's figures that bound a plan.
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Machine {
    logical_cpus: usize,
}

impl Machine {
    /// Logical CPUs the process may run on.
    pub fn logical_cpus(&self) -> usize {
        self.logical_cpus
    }
}

/// This machine, probed once per process.
pub fn machine() -> &'static Machine {
    static MACHINE: OnceLock<Machine> = OnceLock::new();
    MACHINE.get_or_init(|| Machine {
        logical_cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
    })
}
