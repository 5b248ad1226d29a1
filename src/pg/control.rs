//! Reading `global/pg_control`, the file that says which cluster a data directory is.
//!
//! pgkeep reads pg_control to learn a cluster's system identifier, PostgreSQL version, WAL
//! segment size, page size, whether data pages carry checksums, and where and on which
//! timeline the last checkpoint was. The version is recognised from the pair of pg_control and
//! catalog versions at fixed offsets 8 and 12; the other offsets depend on it and come from
//! `pg::control_layout`. Every read checks the CRC-32C PostgreSQL stores after the struct, so a
//! torn or damaged file is refused rather than misread. Writing pg_control is not done here:
//! pgkeep only ever restores it byte for byte.

use std::fmt;
use std::io::Read;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::control_layout::ControlLayout;
use crate::pg::version::PgVersion;
use crate::pg::wal::{Lsn, check_segment_size};

/// The path of pg_control inside a data directory.
pub const PG_CONTROL_PATH: &str = "global/pg_control";
/// The size PostgreSQL gives the file, whatever the struct's size (`PG_CONTROL_FILE_SIZE`).
pub const PG_CONTROL_SIZE: usize = 8192;

/// `DB_SHUTDOWNED`: the cluster was shut down cleanly.
pub const DB_SHUTDOWNED: u32 = 1;
/// `DB_SHUTDOWNED_IN_RECOVERY`: a standby was shut down cleanly.
pub const DB_SHUTDOWNED_IN_RECOVERY: u32 = 2;
/// `DB_IN_PRODUCTION`: the cluster is running (or crashed while running).
pub const DB_IN_PRODUCTION: u32 = 6;

/// What pgkeep needs from pg_control.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControlData {
    /// The system identifier, shared by the cluster's WAL and standbys.
    pub system_id: u64,
    /// `pg_control_version`.
    pub control_version: u32,
    /// `catalog_version_no`.
    pub catalog_version: u32,
    /// The PostgreSQL major version the two numbers above identify.
    pub version: PgVersion,
    /// `checkPoint`: the LSN of the last checkpoint record.
    pub checkpoint_lsn: Lsn,
    /// The timeline of the last checkpoint (`checkPointCopy.ThisTimeLineID`).
    pub timeline: u32,
    /// `xlog_seg_size`: bytes per WAL segment.
    pub wal_segment_size: u32,
    /// `blcksz`: bytes per data page.
    pub page_size: u32,
    /// Zero when data pages have no checksums, else the checksum algorithm version (1).
    pub data_checksum_version: u32,
    /// The `DBState` of the cluster when the file was last written.
    pub state: u32,
}

/// Hex formatting for checksums in messages.
struct Hex32(u32);

impl fmt::Display for Hex32 {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "0x{:08x}", self.0)
    }
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from(u32_at(bytes, at)) | u64::from(u32_at(bytes, at + 4)) << 32
}

impl ControlData {
    /// Parses the content of a pg_control file; errors call it 'global/pg_control'.
    pub fn parse(bytes: &[u8]) -> Result<ControlData> {
        ControlData::parse_named(bytes, PG_CONTROL_PATH)
    }

    /// Reads and parses the pg_control file at `path`; errors name `path`.
    pub fn read(path: &Path) -> Result<ControlData> {
        let shown = path.display();
        let mut file = std::fs::File::open(path).map_err(|err| {
            let kind = if err.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::FileMissing
            } else {
                ErrorKind::FileOpen
            };
            Error::io(kind, "open", &shown, &err)
        })?;
        let mut bytes = Vec::with_capacity(PG_CONTROL_SIZE);
        // PostgreSQL writes exactly PG_CONTROL_SIZE bytes; whatever a larger file holds
        // beyond them is never read, so it cannot size an allocation.
        (&mut file)
            .take(PG_CONTROL_SIZE as u64)
            .read_to_end(&mut bytes)
            .map_err(|err| Error::io(ErrorKind::FileRead, "read", &shown, &err))?;
        ControlData::parse_named(&bytes, &shown.to_string())
    }

    fn parse_named(bytes: &[u8], name: &str) -> Result<ControlData> {
        let too_short = |needed: usize| {
            Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "'{name}' is too short: {} bytes, at least {needed} expected",
                    bytes.len()
                ),
            )
        };
        // The two version numbers sit at the same offsets in every format.
        if bytes.len() < 16 {
            return Err(too_short(16));
        }
        let control_version = u32_at(bytes, 8);
        let catalog_version = u32_at(bytes, 12);
        let unsupported = || {
            Error::new(
                ErrorKind::VersionNotSupported,
                format!(
                    "unexpected control version = {control_version} and catalog version = \
                     {catalog_version} in '{name}'"
                ),
            )
            .with_hint("is this version of PostgreSQL supported?")
        };
        let version =
            PgVersion::from_control(control_version, catalog_version).ok_or_else(unsupported)?;
        let layout = ControlLayout::of(version).ok_or_else(unsupported)?;
        if bytes.len() < layout.min_len() {
            return Err(too_short(layout.min_len()));
        }

        let stored = u32_at(bytes, layout.crc);
        let computed = crc32c::crc32c(&bytes[..layout.crc]);
        if stored != computed {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "invalid checksum in '{name}': stored {}, computed {}",
                    Hex32(stored),
                    Hex32(computed)
                ),
            )
            .with_hint("the file is damaged or was not written by PostgreSQL"));
        }

        let wal_segment_size = u32_at(bytes, layout.xlog_seg_size);
        check_segment_size(wal_segment_size).map_err(|err| {
            Error::new(
                ErrorKind::FileInvalid,
                format!("'{name}': {}", err.message()),
            )
        })?;
        let page_size = u32_at(bytes, layout.blcksz);
        if !page_size.is_power_of_two() || !(1024..=32768).contains(&page_size) {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!("'{name}': invalid page size {page_size}"),
            ));
        }

        Ok(ControlData {
            system_id: u64_at(bytes, layout.system_identifier),
            control_version,
            catalog_version,
            version,
            checkpoint_lsn: Lsn(u64_at(bytes, layout.check_point)),
            timeline: u32_at(bytes, layout.this_timeline_id),
            wal_segment_size,
            page_size,
            data_checksum_version: u32_at(bytes, layout.data_checksum_version),
            state: u32_at(bytes, layout.state),
        })
    }

    /// Whether the cluster was shut down cleanly (as a primary or a standby).
    pub fn is_shut_down(&self) -> bool {
        self.state == DB_SHUTDOWNED || self.state == DB_SHUTDOWNED_IN_RECOVERY
    }

    /// Whether data pages carry checksums.
    pub fn has_page_checksums(&self) -> bool {
        self.data_checksum_version != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::test_fixtures::{fixture, fixture_majors};
    use crate::pg::wal::{DEFAULT_SEGMENT_SIZE, WalHeader, WalSegment};

    #[test]
    fn pg_control_from_initdb_parses_for_every_version() {
        for major in fixture_majors() {
            let bytes = fixture(major, "pg_control");
            assert_eq!(bytes.len(), PG_CONTROL_SIZE, "{major}");
            let control = ControlData::parse(&bytes).unwrap();
            let pg_version = String::from_utf8(fixture(major, "PG_VERSION")).unwrap();
            assert_eq!(control.version, PgVersion::parse(&pg_version).unwrap());
            assert_eq!(control.version.major(), major);
            assert_eq!(
                Some(control.control_version),
                control.version.control_version()
            );
            assert_eq!(
                Some(control.catalog_version),
                control.version.catalog_version()
            );
            assert_eq!(control.wal_segment_size, DEFAULT_SEGMENT_SIZE, "{major}");
            assert_eq!(control.page_size, 8192, "{major}");
            assert_eq!(control.data_checksum_version, 1, "{major}");
            assert!(control.has_page_checksums());
            assert_eq!(control.timeline, 1, "{major}");
            assert!(control.is_shut_down(), "{major}: state {}", control.state);

            // The WAL written by the same initdb carries the same system identifier, and the
            // last checkpoint lies in that first segment.
            let header = WalHeader::parse(&fixture(major, "wal-first-page")).unwrap();
            assert_eq!(control.system_id, header.system_id, "{major}");
            let name = String::from_utf8(fixture(major, "wal-first-name")).unwrap();
            assert_eq!(
                WalSegment::from_lsn(
                    control.timeline,
                    control.checkpoint_lsn,
                    DEFAULT_SEGMENT_SIZE
                ),
                WalSegment::parse(name.trim()).unwrap(),
                "{major}"
            );
        }
    }

    #[test]
    fn values_agree_with_pg_controldata() {
        // A missing pg_controldata fails the test: returning early would count as a pass.
        let bin = Path::new("/usr/lib/postgresql/15/bin/pg_controldata");
        assert!(
            bin.is_file(),
            "'{}' not found: run 'scripts/install-pg.sh 15' (as root; scripts/test.sh installs \
             everything the tests need)",
            bin.display()
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("global")).unwrap();
        std::fs::write(dir.path().join(PG_CONTROL_PATH), fixture(15, "pg_control")).unwrap();
        let output = std::process::Command::new(bin)
            .arg(dir.path())
            .env("LC_ALL", "C")
            .output()
            .unwrap();
        let text = String::from_utf8(output.stdout).unwrap();
        let value = |label: &str| -> String {
            let line = text.lines().find(|line| line.starts_with(label)).unwrap();
            line[label.len()..].trim().to_string()
        };
        let control = ControlData::read(&dir.path().join(PG_CONTROL_PATH)).unwrap();
        assert_eq!(
            value("Database system identifier:"),
            control.system_id.to_string()
        );
        assert_eq!(
            value("pg_control version number:"),
            control.control_version.to_string()
        );
        assert_eq!(
            value("Catalog version number:"),
            control.catalog_version.to_string()
        );
        assert_eq!(
            value("Latest checkpoint location:"),
            control.checkpoint_lsn.to_string()
        );
        assert_eq!(
            value("Latest checkpoint's TimeLineID:"),
            control.timeline.to_string()
        );
        assert_eq!(
            value("Bytes per WAL segment:"),
            control.wal_segment_size.to_string()
        );
        assert_eq!(value("Database block size:"), control.page_size.to_string());
        assert_eq!(
            value("Data page checksum version:"),
            control.data_checksum_version.to_string()
        );
        assert_eq!(value("Database cluster state:"), "shut down");
    }

    #[test]
    fn a_damaged_file_fails_its_checksum_and_names_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pg_control");
        let mut bytes = fixture(16, "pg_control");
        // A byte inside the checkpoint copy: covered by the CRC, read by nobody.
        bytes[100] ^= 0xFF;
        std::fs::write(&path, &bytes).unwrap();
        let err = ControlData::read(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        let expected = format!("invalid checksum in '{}': stored 0x", path.display());
        assert!(err.message().starts_with(&expected), "{}", err.message());
        assert!(err.hint().is_some());
    }

    #[test]
    fn unknown_versions_and_short_files_are_refused() {
        let mut bytes = fixture(15, "pg_control");
        bytes[8..12].copy_from_slice(&960u32.to_le_bytes());
        let err = ControlData::parse(&bytes).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VersionNotSupported);
        assert_eq!(
            err.message(),
            "unexpected control version = 960 and catalog version = 202209061 in \
             'global/pg_control'"
        );

        let bytes = fixture(15, "pg_control");
        let err = ControlData::parse(&bytes[..100]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        assert_eq!(
            err.message(),
            "'global/pg_control' is too short: 100 bytes, at least 292 expected"
        );
        let err = ControlData::parse(&bytes[..4]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
    }

    #[test]
    fn a_missing_file_is_file_missing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("nothing");
        let err = ControlData::read(&path).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileMissing);
        assert_eq!(
            err.message(),
            format!(
                "unable to open '{}': [2] No such file or directory",
                path.display()
            )
        );
    }
}
