//! Worker processes: this executable re-executed in worker mode, chunks moved over pipes.
