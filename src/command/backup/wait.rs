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
