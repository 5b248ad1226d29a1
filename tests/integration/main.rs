//! The one integration test binary: a module per area, over the harness in `common`. Cargo
//! builds and links it once, where eighteen binaries each compiled `common` and linked the
//! crate again. Run one area with its module path as the filter, e.g.
//! `cargo test --features failpoints --test integration backup::`.
//!
//! A test whose prerequisite (a PostgreSQL major, pgBackRest, sshd) is missing fails with a
//! message naming what to install (`scripts/test.sh` installs everything); no test returns
//! early and counts as passed.
// Test code may unwrap: a panic is how a test fails (Cargo.toml denies these lints in the
// crate, clippy.toml allows them in #[test] functions, and this covers the harness too).
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

mod archive_async;
mod backup;
mod bad_input;
mod block_incr;
mod bundle;
mod check_verify;
mod compat;
mod corruption;
mod faults;
mod hostile_input;
mod hostile_manifest;
mod kill;
mod layering;
mod page_checksum;
mod pg_session;
mod quick_start;
mod remote;
mod restore;
mod restore_remap;
mod restore_safety;
mod restore_versions;
mod retention;
mod stanza_upgrade;
mod start_stop;
mod user_guide;
mod versions;
