//! Runs a plan: a plain loop, a rayon pool, worker processes or shell commands. This is the
//! only module that starts threads or processes.

pub mod command;
pub mod process;
pub mod threads;
