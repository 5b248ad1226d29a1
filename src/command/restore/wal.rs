//! The WAL a backup set needs to become consistent, checked before restore writes anything.
//!
//! An online backup is a copy taken while the cluster ran: PostgreSQL can only start from it
//! after replaying the WAL from the backup's start to its stop (`archive_start` ..
//! `archive_stop` in the manifest). That WAL is in the backup itself with `archive-copy`;
//! otherwise recovery fetches it from the archive. When it is not there the restore would
//! complete and the cluster then refuse to start, so restore refuses first, naming the missing
//! segments. `--no-archive-check` skips this check for a DBA who supplies the WAL some other
//! way. Which segments make the range depends on the cluster's WAL segment size, read from the
//! backup's `pg_control`.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::ControlData;
use std::collections::BTreeSet;

use crate::pg::wal::{DEFAULT_SEGMENT_SIZE, WalFileKind, WalSegment};
use crate::repo::archived_wal::{self, NameRange, range_status};
use crate::repo::manifest::PG_DATA;
use crate::repo::{ArchiveInfo, Manifest};
use crate::storage::Storage;
use crate::{log_debug, log_detail, log_warn};

use super::PG_CONTROL;

/// A range longer than this many segments is not a backup's (2^24 segments of 16 MiB is 256
/// TiB of WAL written during one backup): the manifest is damaged, and stepping through it
/// would not end.
const MAX_RANGE: u64 = 1 << 24;

/// Missing segments named in the error; a longer list is counted instead.
const SHOWN: usize = 10;

/// How the archive check ends when the WAL is missing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    /// Refuse the restore.
    Refuse,
    /// Warn and go on: recovery may get the WAL elsewhere (a standby streaming from its
    /// primary).
    Warn,
}

/// Checks that the archive holds every segment the backup set needs to become consistent.
/// Offline backups and backups with `archive-copy` need none from the archive.
pub fn check(
    repo: &dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    buffer_size: usize,
    missing: Missing,
) -> Result<()> {
    if !manifest.online || manifest.archive_copy {
        return Ok(());
    }
    let label = &manifest.label;
    let info = ArchiveInfo::load_required(repo, stanza).map_err(|err| {
        err.context(format!(
            "unable to check the WAL backup set '{label}' needs"
        ))
        .with_hint(
            "repair the archive (archive.info and its copy), or use --no-archive-check if \
             recovery gets the WAL another way",
        )
    })?;
    let archive_id = info
        .db_history
        .iter()
        .find(|db| db.id == manifest.db_id)
        .map(|db| db.archive_id())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::ArchiveMismatch,
                format!(
                    "archive.info has no cluster with id {} for backup set '{label}'",
                    manifest.db_id
                ),
            )
            .with_hint("use --no-archive-check if recovery gets the WAL another way")
        })?;
    let start = WalSegment::parse(&manifest.archive_start)?;
    let stop = WalSegment::parse(&manifest.archive_stop)?;
    let size = segment_size(repo, stanza, manifest, buffer_size);
    let length = stop
        .segment_no(size)
        .checked_sub(start.segment_no(size))
        .filter(|n| *n < MAX_RANGE && start.timeline == stop.timeline);
    if length.is_none() {
        return Err(Error::new(
            ErrorKind::FileInvalid,
            format!(
                "backup set '{label}' has an impossible WAL range {}..{}",
                manifest.archive_start, manifest.archive_stop
            ),
        ));
    }
    // The archive's names inside the range, read once per WAL directory: a range is never
    // stepped through segment by segment.
    let range = NameRange {
        first: &manifest.archive_start,
        last: &manifest.archive_stop,
    };
    let archived: BTreeSet<String> = archived_wal::list(repo, stanza, &archive_id, Some(range))?
        .iter()
        .filter(|wal| wal.kind == WalFileKind::Segment)
        .map(|wal| wal.segment().to_string())
        .collect();
    let status = range_status(start, stop, Some(size), &archived, &BTreeSet::new());
    if status.missing.is_empty() {
        log_detail!(
            "WAL {}..{} needed to make backup set {label} consistent is in archive id {archive_id}",
            manifest.archive_start,
            manifest.archive_stop
        );
        return Ok(());
    }
    let names = missing_names(&status.missing, start.timeline, size);
    let message = format!(
        "backup set '{label}' needs WAL {}..{} to become consistent, but archive id \
         '{archive_id}' is missing {names}",
        manifest.archive_start, manifest.archive_stop
    );
    match missing {
        Missing::Warn => {
            log_warn!("{message}: recovery must get it from the primary");
            Ok(())
        }
        Missing::Refuse => Err(Error::new(ErrorKind::FileMissing, message).with_hint(
            "restore another set with --set, or put the segments back in the archive; use \
             --no-archive-check only if recovery gets them another way",
        )),
    }
}

/// The first [`SHOWN`] segments of the missing `runs`, then how many more there are.
fn missing_names(runs: &[(String, String)], timeline: u32, size: u32) -> String {
    let number = |name: &str| WalSegment::parse(name).map_or(0, |s| s.segment_no(size));
    let mut shown = Vec::new();
    let mut total = 0u64;
    for (first, last) in runs {
        let (first, last) = (number(first), number(last));
        total += last - first + 1;
        for no in first..=last.min(first + SHOWN as u64) {
            if shown.len() < SHOWN {
                shown.push(WalSegment::from_segment_no(timeline, no, size).name());
            }
        }
    }
    let mut names = shown.join(", ");
    if total > SHOWN as u64 {
        names.push_str(&format!(" and {} more", total - SHOWN as u64));
    }
    names
}

/// The cluster's WAL segment size from the backup's pg_control; PostgreSQL's default when it
/// cannot be read (the size only matters when the range crosses a log id).
fn segment_size(repo: &dyn Storage, stanza: &str, manifest: &Manifest, buffer_size: usize) -> u32 {
    let name = format!("{PG_DATA}/{PG_CONTROL}");
    let read = super::files::read_backup_file(repo, stanza, manifest, &name, buffer_size)
        .and_then(|bytes| ControlData::parse(&bytes));
    match read {
        Ok(control) => control.wal_segment_size,
        Err(err) => {
            log_debug!("WAL segment size not read from the backup, default assumed: {err}");
            DEFAULT_SEGMENT_SIZE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::restore::fixture;
    use crate::repo::DbHistory;
    use crate::storage::PosixStorage;

    /// A repository whose archive holds `segments` of stanza `demo`, archive id `15-1`.
    fn repo_with(segments: &[&str]) -> (tempfile::TempDir, PosixStorage) {
        let tmp = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(tmp.path().to_path_buf());
        ArchiveInfo::new(DbHistory {
            id: 1,
            version: "15".into(),
            system_id: 1,
            catalog_version: 202209061,
            control_version: 1300,
        })
        .save(&repo, "demo")
        .unwrap();
        for name in segments {
            let dir = tmp.path().join("archive/demo/15-1").join(&name[..16]);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join(format!("{name}-{}.zst", "ab".repeat(32))), b"x").unwrap();
        }
        (tmp, repo)
    }

    fn backup(start: &str, stop: &str) -> Manifest {
        let mut m = fixture::manifest();
        m.archive_start = start.into();
        m.archive_stop = stop.into();
        m
    }

    #[test]
    fn every_segment_of_the_range_must_be_archived() {
        let (_tmp, repo) = repo_with(&["000000010000000000000003", "000000010000000000000005"]);
        let m = backup("000000010000000000000003", "000000010000000000000005");
        let err = check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileMissing);
        assert_eq!(
            err.message(),
            "backup set 'L' needs WAL 000000010000000000000003..000000010000000000000005 to \
             become consistent, but archive id '15-1' is missing 000000010000000000000004"
        );
        check(&repo, "demo", &m, 4096, Missing::Warn).unwrap();
        let m = backup("000000010000000000000003", "000000010000000000000003");
        check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap();
    }

    #[test]
    fn offline_and_archive_copy_backups_need_nothing_from_the_archive() {
        let (_tmp, repo) = repo_with(&[]);
        let mut m = backup("000000010000000000000003", "000000010000000000000004");
        m.online = false;
        check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap();
        m.online = true;
        m.archive_copy = true;
        check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap();
    }

    #[test]
    fn long_lists_are_counted_and_impossible_ranges_refused() {
        let (_tmp, repo) = repo_with(&[]);
        let m = backup("000000010000000000000001", "000000010000000000000020");
        let err = check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap_err();
        assert!(err.message().ends_with(" and 22 more"), "{err}");
        // Backwards, across timelines, or longer than any backup's WAL.
        for (start, stop) in [
            ("000000010000000000000005", "000000010000000000000004"),
            ("000000010000000000000005", "000000020000000000000006"),
            ("000000010000000000000000", "00000001FFFFFFFF000000FF"),
        ] {
            let err =
                check(&repo, "demo", &backup(start, stop), 4096, Missing::Refuse).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::FileInvalid, "{start}..{stop}");
            assert!(err.message().contains("impossible WAL range"), "{err}");
        }
    }

    #[test]
    fn an_unreadable_archive_info_refuses_the_restore() {
        let (tmp, repo) = repo_with(&["000000010000000000000003"]);
        for name in ["archive.info", "archive.info.copy"] {
            std::fs::write(tmp.path().join("archive/demo").join(name), "garbage").unwrap();
        }
        let m = backup("000000010000000000000003", "000000010000000000000003");
        let err = check(&repo, "demo", &m, 4096, Missing::Refuse).unwrap_err();
        assert!(
            err.message()
                .starts_with("unable to check the WAL backup set 'L' needs: "),
            "{err}"
        );
    }
}
