//! pgkeep: physical backup and restore for PostgreSQL.
//!
//! Layers, from the bottom; a module uses only the ones listed before it (ARCHITECTURE.md):
//!
//! - `error`: typed errors with stable exit codes;
//! - `lock`: process locks and stop files (error);
//! - `log`: log levels and destinations (error; lock for the mode of the files it creates);
//! - `io`: the filter chain (size, hash, compress) and parallel compression (error);
//! - `protocol`: framed requests and responses over ssh (io, error, log);
//! - `storage`: the `Storage` seam and its drivers, posix and remote (io, error;
//!   `storage::remote` uses protocol);
//! - `pg`: PostgreSQL facts: versions, pg_control, WAL, SQL sessions (storage, io, error, log;
//!   `pg::remote` uses protocol);
//! - `repo`: the repository format: info files, manifests, labels, retention (pg, storage, io,
//!   error, log);
//! - `config` (error, log) and `exec` (error): options to a typed `Config`, the worker pool;
//! - `command`: one module per command, the only one that reads `Config` and builds drivers
//!   (everything above).

pub mod command;
pub mod config;
pub mod error;
pub mod exec;
pub mod io;
pub mod lock;
pub mod log;
pub mod pg;
pub mod protocol;
pub mod repo;
pub mod storage;

/// pgkeep's version, as `version`, `help`, the begin line and backup.info show it.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
