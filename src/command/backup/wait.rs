//! Waiting for the WAL a backup needs to reach the archive.
//!
//! A backup is only restorable with every WAL segment from its start to its stop LSN, so it is
//! not recorded as complete until they are all archived. The timeout restarts whenever a new
//! segment arrives: a slow but working archive_command is not a failure.

use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};
use crate::log_info;
use crate::pg::wal::WalSegment;
use crate::repo::{BackupInfo, archive};
use crate::storage::Storage;

pub fn archived(
    repo: &dyn Storage,
    stanza: &str,
    info: &BackupInfo,
    start: &WalSegment,
    stop: &WalSegment,
    segment_size: u32,
    timeout: Duration,
) -> Result<()> {
    let archive_id = info.current()?.archive_id();
    log_info!(
        "check archive for segment(s) {}:{}",
        start.name(),
        stop.name()
    );
    let mut deadline = Instant::now() + timeout;
    for segment in WalSegment::range(*start, *stop, segment_size) {
        let name = segment.name();
        loop {
            if !archive::find_wal(repo, stanza, &archive_id, &name)?.is_empty() {
                deadline = Instant::now() + timeout;
                break;
            }
            if Instant::now() >= deadline {
                return Err(Error::new(
                    ErrorKind::ArchiveTimeout,
                    format!(
                        "WAL segment {name} was not archived before the {}ms timeout",
                        timeout.as_millis()
                    ),
                )
                .with_hint(
                    "check that archive_command runs 'pgkeep --stanza=<stanza> archive-push %p' and succeeds (see the PostgreSQL log); raise archive-timeout if the archive is slow",
                ));
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    Ok(())
}

/// Stores the WAL segments from `start` to `stop` in the backup set as `pg_data/<wal dir>/<seg>`
/// (`archive-copy`), so the backup can be made consistent without the archive.
pub fn copy_into_backup(
    settings: &super::work::CopySettings,
    info: &BackupInfo,
    wal_dir: &str,
    start: &WalSegment,
    stop: &WalSegment,
    segment_size: u32,
    mtime: i64,
) -> Result<Vec<crate::repo::manifest::FileEntry>> {
    let archive_id = info.current()?.archive_id();
    let mut entries = Vec::new();
    for segment in WalSegment::range(*start, *stop, segment_size) {
        let name = segment.name();
        let found = archive::find_wal(settings.repo, settings.stanza, &archive_id, &name)?;
        let wal = found.first().ok_or_else(|| {
            Error::new(
                ErrorKind::FileMissing,
                format!("WAL segment {name} is missing from the archive"),
            )
        })?;
        let mut reader = settings.repo.open_read(&wal.path)?.ok_or_else(|| {
            Error::new(
                ErrorKind::FileMissing,
                format!("WAL segment {name} disappeared from the archive"),
            )
        })?;
        let compress = crate::io::CompressType::from_extension(&wal.ext);
        let manifest_name = format!("{}/{wal_dir}/{name}", crate::repo::manifest::PG_DATA);
        let stored = super::copy::store(settings, &manifest_name, &mut reader, compress, None)?;
        let (size, checksum, repo_size) = (stored.size, stored.checksum, stored.repo_size);
        if checksum != wal.checksum {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "archived WAL segment {name} has checksum '{checksum}' but its name says '{}'",
                    wal.checksum
                ),
            ));
        }
        entries.push(crate::repo::manifest::FileEntry {
            name: manifest_name,
            size,
            mtime,
            mode: 0o600,
            user: None,
            group: None,
            checksum,
            repo_size,
            reference: None,
            page_errors: None,
            block: None,
            bundle_id: None,
            bundle_offset: None,
        });
    }
    log_info!(
        "copied {} WAL segment(s) into the backup (archive-copy)",
        entries.len()
    );
    Ok(entries)
}
