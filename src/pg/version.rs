//! PostgreSQL major versions and every fact that varies by version, in one place.
//!
//! A [`PgVersion`] is a major version as PostgreSQL numbers it (`server_version_num` with the
//! minor part zeroed: 150000 for 15, 90600 for 9.6). It can hold versions pgkeep does not
//! support, so that messages can name them; [`PgVersion::is_supported`] says which it does.
//! The per-version facts (directory and function names, recovery style, WAL page magic, catalog
//! and pg_control versions) live here and nowhere else. The numbers in [`FACTS`] were read from
//! files made by a real `initdb` of each major version (tests/fixtures/pg/) and are checked
//! against them by the tests of `pg::control` and `pg::wal`. This module deliberately holds no
//! SQL text: `pg::sql` builds the queries from these names.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};

/// A PostgreSQL major version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct PgVersion {
    /// `server_version_num` of the major release: 150000, 90600.
    num: u32,
}

/// How a restored cluster is told to recover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryConfig {
    /// Settings in `recovery.conf` (before 12).
    RecoveryConf,
    /// Settings in postgresql.auto.conf plus `recovery.signal` / `standby.signal` (12 on).
    SignalFiles,
}

/// Facts that cannot be derived from the version number and must be read from PostgreSQL.
struct VersionFacts {
    major: u32,
    /// `XLOG_PAGE_MAGIC`: the first two bytes of every WAL page.
    wal_magic: u16,
    /// `CATALOG_VERSION_NO` of the release.
    catalog_version: u32,
    /// `PG_CONTROL_VERSION`: the format of global/pg_control.
    control_version: u32,
}

/// The supported majors, oldest first: (major, WAL magic, catalog version, pg_control
/// version). Read from tests/fixtures/pg/<major>/ (see its README).
const FACTS: [VersionFacts; 9] = [
    facts(10, 0xD097, 201707211, 1002),
    facts(11, 0xD098, 201809051, 1100),
    facts(12, 0xD101, 201909212, 1201),
    facts(13, 0xD106, 202007201, 1300),
    facts(14, 0xD10D, 202107181, 1300),
    facts(15, 0xD110, 202209061, 1300),
    facts(16, 0xD113, 202307071, 1300),
    facts(17, 0xD116, 202406281, 1700),
    facts(18, 0xD118, 202506291, 1800),
];

const fn facts(
    major: u32,
    wal_magic: u16,
    catalog_version: u32,
    control_version: u32,
) -> VersionFacts {
    VersionFacts {
        major,
        wal_magic,
        catalog_version,
        control_version,
    }
}

impl PgVersion {
    /// The oldest major pgkeep supports.
    pub const MIN: PgVersion = PgVersion::from_major(10);
    /// The newest major pgkeep supports.
    pub const MAX: PgVersion = PgVersion::from_major(18);

    /// A major version of 10 or later: `from_major(15)`.
    pub const fn from_major(major: u32) -> PgVersion {
        PgVersion { num: major * 10000 }
    }

    /// Every supported major, oldest first.
    pub fn supported() -> impl Iterator<Item = PgVersion> {
        FACTS.iter().map(|facts| PgVersion::from_major(facts.major))
    }

    /// The major version of a `server_version_num` such as 150004 or 90624.
    pub fn from_server_version_num(num: u32) -> PgVersion {
        if num >= 100000 {
            PgVersion {
                num: num / 10000 * 10000,
            }
        } else {
            PgVersion {
                num: num / 100 * 100,
            }
        }
    }

    /// Parses the content of a data directory's `PG_VERSION` file ("15", "9.6"; surrounding
    /// whitespace such as the final newline is ignored). `None` when it is not a version.
    pub fn parse(text: &str) -> Option<PgVersion> {
        let number = |part: &str| -> Option<u32> {
            if part.is_empty() || part.len() > 3 || !part.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            part.parse().ok()
        };
        let trimmed = text.trim();
        match trimmed.split_once('.') {
            Some((major, minor)) => {
                let (major, minor) = (number(major)?, number(minor)?);
                // Two-part versions are the 9.x series and older; 10 on has a single number.
                if major >= 10 || minor > 99 {
                    return None;
                }
                Some(PgVersion {
                    num: major * 10000 + minor * 100,
                })
            }
            None => {
                let major = number(trimmed)?;
                (major >= 10).then_some(PgVersion::from_major(major))
            }
        }
    }

    /// The version as `server_version_num` of the major release: 150000.
    pub fn num(self) -> u32 {
        self.num
    }

    /// The first number of the version: 15 for 15, 9 for 9.6.
    pub fn major(self) -> u32 {
        self.num / 10000
    }

    /// Whether pgkeep can back up and restore this version.
    pub fn is_supported(self) -> bool {
        self.facts().is_some()
    }

    /// An error unless the version is supported.
    pub fn check_supported(self) -> Result<PgVersion> {
        if self.is_supported() {
            Ok(self)
        } else {
            Err(Error::new(
                ErrorKind::VersionNotSupported,
                format!("PostgreSQL version {self} is not supported"),
            )
            .with_hint(format!(
                "pgkeep supports PostgreSQL {} to {}",
                PgVersion::MIN,
                PgVersion::MAX
            )))
        }
    }

    fn facts(self) -> Option<&'static VersionFacts> {
        FACTS
            .iter()
            .find(|facts| PgVersion::from_major(facts.major) == self)
    }

    /// The WAL directory inside the data directory.
    pub fn wal_dir(self) -> &'static str {
        if self.major() >= 10 {
            "pg_wal"
        } else {
            "pg_xlog"
        }
    }

    /// The function that starts a non-exclusive backup.
    pub fn fn_backup_start(self) -> &'static str {
        if self.major() >= 15 {
            "pg_backup_start"
        } else {
            "pg_start_backup"
        }
    }

    /// The function that stops a non-exclusive backup.
    pub fn fn_backup_stop(self) -> &'static str {
        if self.major() >= 15 {
            "pg_backup_stop"
        } else {
            "pg_stop_backup"
        }
    }

    /// The function that forces a switch to a new WAL segment.
    pub fn fn_switch_wal(self) -> &'static str {
        if self.major() >= 10 {
            "pg_switch_wal"
        } else {
            "pg_switch_xlog"
        }
    }

    /// The function that names the WAL segment holding the byte before an LSN.
    pub fn fn_walfile_name(self) -> &'static str {
        if self.major() >= 10 {
            "pg_walfile_name"
        } else {
            "pg_xlogfile_name"
        }
    }

    /// The function that returns the current WAL insert location. Unlike the write
    /// location, it never sits exactly on a segment boundary (a page header comes first), so
    /// `fn_walfile_name` of it names the segment being written.
    pub fn fn_current_wal_insert_lsn(self) -> &'static str {
        if self.major() >= 10 {
            "pg_current_wal_insert_lsn"
        } else {
            "pg_current_xlog_insert_location"
        }
    }

    /// How recovery is configured on restore.
    pub fn recovery_config(self) -> RecoveryConfig {
        if self.major() >= 12 {
            RecoveryConfig::SignalFiles
        } else {
            RecoveryConfig::RecoveryConf
        }
    }

    /// Whether recovery is configured with signal files (12 on) rather than recovery.conf.
    pub fn uses_signal_files(self) -> bool {
        self.recovery_config() == RecoveryConfig::SignalFiles
    }

    /// The magic number at the start of every WAL page, for supported versions.
    pub fn wal_magic(self) -> Option<u16> {
        self.facts().map(|facts| facts.wal_magic)
    }

    /// The version whose WAL pages start with `magic`.
    pub fn from_wal_magic(magic: u16) -> Option<PgVersion> {
        FACTS
            .iter()
            .find(|facts| facts.wal_magic == magic)
            .map(|facts| PgVersion::from_major(facts.major))
    }

    /// `CATALOG_VERSION_NO` of the release, for supported versions.
    pub fn catalog_version(self) -> Option<u32> {
        self.facts().map(|facts| facts.catalog_version)
    }

    /// `PG_CONTROL_VERSION` of the release, for supported versions.
    pub fn control_version(self) -> Option<u32> {
        self.facts().map(|facts| facts.control_version)
    }

    /// The version with this pg_control and catalog version. Several majors share a pg_control
    /// version (1300 is 13 to 16), so the catalog version decides.
    pub fn from_control(control_version: u32, catalog_version: u32) -> Option<PgVersion> {
        FACTS
            .iter()
            .find(|facts| {
                facts.control_version == control_version && facts.catalog_version == catalog_version
            })
            .map(|facts| PgVersion::from_major(facts.major))
    }

    /// The name of a tablespace's version directory: `PG_15_202209061`.
    pub fn tablespace_dir(self) -> Option<String> {
        self.catalog_version()
            .map(|catalog| format!("PG_{self}_{catalog}"))
    }
}

impl fmt::Display for PgVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.major() >= 10 {
            write!(f, "{}", self.major())
        } else {
            write!(f, "{}.{}", self.major(), self.num % 10000 / 100)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_version_num_drops_the_minor_version() {
        assert_eq!(
            PgVersion::from_server_version_num(150004),
            PgVersion::from_major(15)
        );
        assert_eq!(PgVersion::from_server_version_num(90624).to_string(), "9.6");
        assert_eq!(PgVersion::from_server_version_num(180000).to_string(), "18");
    }

    #[test]
    fn pg_version_file_content_parses() {
        assert_eq!(PgVersion::parse("15\n"), Some(PgVersion::from_major(15)));
        assert_eq!(PgVersion::parse("9.6\n").unwrap().num(), 90600);
        for bad in ["", "x", "9", "15.1", "-1", "1.2.3", " 1 5", "9.6x", "1000"] {
            assert_eq!(PgVersion::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn versions_order_by_number() {
        assert!(PgVersion::parse("9.6").unwrap() < PgVersion::from_major(10));
        assert!(PgVersion::from_major(10) < PgVersion::from_major(18));
    }

    #[test]
    fn only_ten_to_eighteen_are_supported() {
        let supported: Vec<String> = PgVersion::supported().map(|v| v.to_string()).collect();
        assert_eq!(
            supported,
            ["10", "11", "12", "13", "14", "15", "16", "17", "18"]
        );
        assert!(!PgVersion::parse("9.6").unwrap().is_supported());
        assert!(!PgVersion::from_major(19).is_supported());
        let err = PgVersion::from_major(19).check_supported().unwrap_err();
        assert_eq!(err.kind(), ErrorKind::VersionNotSupported);
        assert_eq!(err.message(), "PostgreSQL version 19 is not supported");
    }

    #[test]
    fn names_follow_the_renames_of_10_and_15() {
        let v96 = PgVersion::parse("9.6").unwrap();
        let v14 = PgVersion::from_major(14);
        let v15 = PgVersion::from_major(15);
        assert_eq!(v96.wal_dir(), "pg_xlog");
        assert_eq!(v14.wal_dir(), "pg_wal");
        assert_eq!(v96.fn_switch_wal(), "pg_switch_xlog");
        assert_eq!(v14.fn_switch_wal(), "pg_switch_wal");
        assert_eq!(v96.fn_walfile_name(), "pg_xlogfile_name");
        assert_eq!(v14.fn_walfile_name(), "pg_walfile_name");
        assert_eq!(v14.fn_backup_start(), "pg_start_backup");
        assert_eq!(v14.fn_backup_stop(), "pg_stop_backup");
        assert_eq!(v15.fn_backup_start(), "pg_backup_start");
        assert_eq!(v15.fn_backup_stop(), "pg_backup_stop");
    }

    #[test]
    fn recovery_moves_to_signal_files_in_12() {
        assert_eq!(
            PgVersion::from_major(11).recovery_config(),
            RecoveryConfig::RecoveryConf
        );
        assert_eq!(
            PgVersion::from_major(12).recovery_config(),
            RecoveryConfig::SignalFiles
        );
        assert!(!PgVersion::from_major(11).uses_signal_files());
        assert!(PgVersion::from_major(12).uses_signal_files());
    }

    #[test]
    fn magic_and_control_versions_identify_one_major() {
        for version in PgVersion::supported() {
            let magic = version.wal_magic().unwrap();
            assert_eq!(PgVersion::from_wal_magic(magic), Some(version));
            let control = version.control_version().unwrap();
            let catalog = version.catalog_version().unwrap();
            assert_eq!(PgVersion::from_control(control, catalog), Some(version));
        }
        assert_eq!(PgVersion::from_wal_magic(0x1234), None);
        assert_eq!(
            PgVersion::from_major(15).tablespace_dir().as_deref(),
            Some("PG_15_202209061")
        );
    }
}
