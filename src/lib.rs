//! pgkeep: physical backup and restore for PostgreSQL.
//!
//! Layers, from the bottom: `error` and `log`; `io` (filters); `storage` (drivers);
//! `pg` (PostgreSQL facts); `repo` (repository format); `config` and `exec`; `command`.
//! A layer uses only the layers below it (docs/design.md).

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
