//! Threads on a rayon pool; the serial path is a plain loop.
