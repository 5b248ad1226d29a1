//! Running work in parallel: the `process-max` worker pool.
//!
//! Parallelism in pgkeep is a fixed number of worker threads fed by a bounded queue, so memory
//! is bounded by the per-job buffers times the number of workers whatever the cluster's size.
//! There is no async runtime: each worker does blocking I/O.

mod pool;

pub use pool::run_parallel;
