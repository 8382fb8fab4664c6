//! What each backend costs on this machine: worker start and per-chunk dispatch, measured once
//! per process.
