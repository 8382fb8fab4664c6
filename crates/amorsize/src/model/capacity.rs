//! The CPU the workers can count on while other programs run: the usable cores, what other
//! runnable threads take of them, and how the scheduler shares the cores between them.

use super::Sharing;
use serde::{Deserialize, Serialize};

/// The CPU capacity the workers can count on: `cores` usable cores (fractional under a quota)
/// of which other programs' `competing` runnable threads ask their share, divided as `sharing`
/// says.
///
/// The sample measured the user's function on one thread under the same load, so the model
/// needs capacity relative to that thread: [`relative_cores`](Self::relative_cores).
///
/// # Examples
///
/// ```
/// use amorsize::model::{Capacity, Sharing};
///
/// // Nothing else runs: two workers get the two cores.
/// assert_eq!(Capacity::idle(2.0).relative_cores(2), 2.0);
/// // One other busy thread, shared per thread: 2 workers get 4/3 CPU, one thread alone 1.
/// let loaded = Capacity { competing: 1.0, ..Capacity::idle(2.0) };
/// assert!((loaded.relative_cores(2) - 4.0 / 3.0).abs() < 1e-12);
/// // Shared per session, the process keeps one core whatever its workers.
/// let sessions = Capacity { sharing: Sharing::PerSession, ..loaded };
/// assert_eq!(sessions.relative_cores(2), 1.0);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Capacity {
    /// Usable cores, fractional under a CPU quota.
    pub cores: f64,
    /// Runnable threads of other programs on those cores (a mean, so fractional).
    pub competing: f64,
    /// How the scheduler shares the cores.
    pub sharing: Sharing,
}

impl Capacity {
    /// `cores` cores that nothing else uses.
    pub fn idle(cores: f64) -> Self {
        Capacity {
            cores,
            competing: 0.0,
            sharing: Sharing::PerThread,
        }
    }

    /// The capacity with figures a reading could not produce made harmless: cores at least a
    /// tiny positive number, competing threads finite and ≥ 0.
    fn sane(&self) -> (f64, f64) {
        let cores = if self.cores.is_finite() && self.cores > 0.0 {
            self.cores
        } else {
            f64::MIN_POSITIVE
        };
        let competing = if self.competing.is_finite() && self.competing > 0.0 {
            self.competing
        } else {
            0.0
        };
        (cores, competing)
    }

    /// CPUs that `workers` threads, each always runnable, may take: their fair share of the
    /// cores, or the cores the others leave idle when that is more. Not capped at `workers`
    /// (the cap is the model's per-worker term), so that it is the cores themselves when
    /// nothing competes.
    pub fn share(&self, workers: usize) -> f64 {
        let (cores, r) = self.sane();
        let w = workers.max(1) as f64;
        match self.sharing {
            Sharing::PerThread => cores * (w / (w + r)),
            // This session against the other one; when fewer other threads than half the cores
            // run, they leave `cores − r` idle, which is more than the fair half.
            Sharing::PerSession if r > 0.0 => (cores - r).max(cores / 2.0),
            Sharing::PerSession => cores,
        }
    }

    /// The cores `workers` workers can count on, in units of the one thread the sample ran on:
    /// [`share`](Self::share)`(workers)` × `min(1, cores)` ÷ `min(1, share(1))`, the CPU one
    /// thread got with and without the competing threads. Without competing threads it is the
    /// cores; it never falls as workers are added.
    pub fn relative_cores(&self, workers: usize) -> f64 {
        let (cores, competing) = self.sane();
        if competing == 0.0 {
            return cores;
        }
        let alone = cores.min(1.0);
        let one = self.share(1).clamp(f64::MIN_POSITIVE, 1.0);
        self.share(workers) * (alone / one)
    }
}

impl Default for Capacity {
    fn default() -> Self {
        Capacity::idle(1.0)
    }
}
