//! PostgreSQL facts: versions, pg_control, WAL, timeline history, backup exclusions and the SQL
//! session.
//!
//! Everything pgkeep knows about PostgreSQL's files and functions lives here, one module per
//! concept, and is tested against files made by a real `initdb` of every supported version
//! (tests/fixtures/pg/) and against running servers (tests/integration/pg_session.rs). Nothing
//! here knows about repositories, configuration or commands.

pub mod control;
pub mod control_layout;
pub mod exclude;
pub mod history;
pub mod page;
pub mod pgpass;
pub mod remote;
pub mod session;
pub mod sql;
pub mod version;
pub mod wal;

pub use control::ControlData;
pub use session::{BackupStart, BackupStop, ConnectOptions, DbSession};
pub use version::PgVersion;
pub use wal::{Lsn, WalSegment};

/// Files from a real initdb of each version, for the parsers' tests.
#[cfg(test)]
pub(crate) mod test_fixtures {
    use std::path::PathBuf;

    /// The majors with fixtures.
    pub fn fixture_majors() -> impl Iterator<Item = u32> {
        10..=18
    }

    /// The bytes of tests/fixtures/pg/<major>/<name>.
    pub fn fixture(major: u32, name: &str) -> Vec<u8> {
        let path: PathBuf = [
            env!("CARGO_MANIFEST_DIR"),
            "tests/fixtures/pg",
            &major.to_string(),
            name,
        ]
        .iter()
        .collect();
        std::fs::read(&path).unwrap_or_else(|err| panic!("{}: {err}", path.display()))
    }
}
