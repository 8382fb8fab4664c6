//! The CPU the workers can count on while other programs run: the usable cores, what other
//! runnable threads take of them, and how the scheduler shares the cores between them.

use serde::{Deserialize, Serialize};
use std::fmt;

/// How the scheduler divides the cores between this process's workers and other runnable
/// threads.
///
/// Linux's fair scheduler gives runnable entities of equal weight equal CPU time
/// (`Documentation/scheduler/sched-design-CFS.rst`; EEVDF since 6.6 keeps the same shares).
/// Without autogrouping every thread is such an entity, so `W` workers among `R` other
/// runnable threads on `C` cores get `min(W, C·W ÷ (W + R))` CPUs: more workers take a larger
/// share. With autogrouping (`sched(7)`) the entities are sessions: a process gets its
/// session's share whatever its thread count.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sharing {
    /// Every runnable thread gets an equal share (no autogrouping; or the other threads are in
    /// this process's session).
    #[default]
    PerThread,
    /// Every session gets an equal share (autogrouping on); the other runnable threads are
    /// taken to be of one other session (a build, a server: a few programs run most threads),
    /// so this process keeps half the cores, or what the others leave idle when more. If they
    /// are of more sessions, it keeps less, and its workers gain less than predicted but lose
    /// nothing: a session's share does not grow with its threads, so parallel and serial get
    /// the same CPU.
    PerSession,
}

impl fmt::Display for Sharing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Sharing::PerThread => "shared per thread",
            Sharing::PerSession => "shared per session",
        })
    }
}

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
