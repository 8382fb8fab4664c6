//! The units the library's figures are in, shared by every layer.

/// Time in seconds, the unit of every duration the model computes with.
pub type Seconds = f64;
