//! What each process costs, measured from process 0 when the cluster starts: start-up and
//! rendezvous (from starting the process, or from process 0's start for one started elsewhere,
//! until the cluster was connected), the round trip of an empty chunk to its first worker
//! (the mean of a batch, median of batches), and the time per byte of a padded chunk over an
//! empty one. Each figure passes the process backend's quality check (plausible, repeats that
//! agree) or is replaced by its named fallback, and the plan says so.

use super::handle::Cluster;
use crate::fmt::{bytes_per_second, duration, seconds};
use crate::model::network::Link;
use crate::model::Seconds;
use crate::stats::{accept, median};
use crate::Result;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::time::{Duration, Instant};

/// Fallback round trip to a process: a chunk through timely's exchange to another host and
/// back on a local network, where a TCP round trip is 0.1–0.5 ms and timely's batching adds
/// wake-ups; 1 ms is taken so that an unmeasured cluster leans to threads.
pub const FALLBACK_ROUND_TRIP: Seconds = 1e-3;

/// Fallback time per byte to a process: gigabit Ethernet moves 125 MB/s, 8 ns per byte.
pub const FALLBACK_NETWORK_PER_BYTE: Seconds = 8e-9;

/// Round trips in one timed batch.
const ROUND_TRIPS: usize = 10;
/// Timed batches (and padded trips); the median is kept.
const REPEATS: usize = 5;
/// Padding of the throughput chunk.
const PADDING: usize = 1 << 20;

/// The cluster's measured costs, per process (process 0 first).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Calibration {
    /// Per process: start-up and rendezvous, round trip, time per byte, workers.
    pub links: Vec<Link>,
    /// Figures that are fallbacks, named (`"process 2 round trip: FALLBACK_ROUND_TRIP"`).
    pub fallbacks: Vec<String>,
    /// From [`init`](super::init) until the cluster was connected and measured.
    pub rendezvous: Duration,
    /// Measuring the round trips and throughput.
    pub took: Duration,
}

impl fmt::Display for Calibration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "cluster of {} processes, connected and measured in {} (measuring {})",
            self.links.len(),
            duration(self.rendezvous),
            duration(self.took)
        )?;
        for (p, link) in self.links.iter().enumerate() {
            writeln!(
                f,
                "  process {p}: start-up and rendezvous {}, round trip {}, {}, {} workers on {:.2} cores",
                seconds(link.startup),
                seconds(link.round_trip),
                bytes_per_second(bandwidth(link)),
                link.workers,
                link.cores
            )?;
        }
        for fallback in &self.fallbacks {
            writeln!(f, "  fallback used: {fallback}")?;
        }
        Ok(())
    }
}

/// Measures every process of `cluster`.
pub(super) fn calibrate(cluster: &mut Cluster, began: Instant) -> Result<Calibration> {
    let measuring = Instant::now();
    let workers = cluster.workers();
    let startup = cluster.inner().startup.clone();
    let cores = cluster.inner().cores.clone();
    let mut links = Vec::new();
    let mut fallbacks = Vec::new();
    for (process, startup) in startup.iter().enumerate() {
        let dest = process * workers;
        // One trip first, so that buffers and connections are warm.
        cluster.probe(dest, 0, 1)?;
        let mut trips: Vec<Seconds> = Vec::with_capacity(REPEATS);
        for _ in 0..REPEATS {
            let batch = cluster.probe(dest, 0, ROUND_TRIPS)?;
            trips.push(batch.iter().map(Duration::as_secs_f64).sum::<f64>() / ROUND_TRIPS as f64);
        }
        let padded = cluster.probe(dest, PADDING, REPEATS)?;
        let empty = median(&trips).unwrap_or(0.0);
        let per_byte: Vec<Seconds> = padded
            .iter()
            .map(|p| (p.as_secs_f64() - empty) / PADDING as f64)
            .collect();
        let round_trip = accept(&trips, 1e-7..=5.0).unwrap_or_else(|| {
            fallbacks.push(format!("process {process} round trip: FALLBACK_ROUND_TRIP"));
            FALLBACK_ROUND_TRIP
        });
        let per_byte = accept(&per_byte, 10e-12..=1e-6).unwrap_or_else(|| {
            fallbacks.push(format!(
                "process {process} bytes per second: FALLBACK_NETWORK_PER_BYTE"
            ));
            FALLBACK_NETWORK_PER_BYTE
        });
        links.push(Link {
            startup: startup.as_secs_f64(),
            round_trip,
            per_byte,
            workers,
            cores: cores.get(process).copied().unwrap_or(0.0),
        });
    }
    Ok(Calibration {
        links,
        fallbacks,
        rendezvous: began.elapsed(),
        took: measuring.elapsed(),
    })
}

/// The bytes per second a link moves: the inverse of its time per byte (unbounded when the
/// time per byte is not positive).
pub(super) fn bandwidth(link: &Link) -> f64 {
    if link.per_byte > 0.0 {
        1.0 / link.per_byte
    } else {
        f64::INFINITY
    }
}
