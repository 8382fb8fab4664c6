//! Predicted against measured: text for people, JSON for programs.
//!
//! [`RunReport`] is what a run measured (wall time, worker busy time, speedup, chunk
//! adjustments) beside what its [`Plan`](crate::Plan) predicted.

mod run;

pub use run::{ChunkAdjustment, Phase, RunReport, Shed};
