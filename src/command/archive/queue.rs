//! archive-push-queue-max: what archive-push does when PostgreSQL's archive queue is too long.
//!
//! The queue is the WAL PostgreSQL has ready to archive (`pg_wal/archive_status/*.ready`).
//! pgBackRest silently drops WAL past the limit and reports success; pgkeep never drops
//! silently. By default a full queue is an error (exit code 110, logged at error level), so
//! PostgreSQL keeps the WAL and retries; only with `archive-push-queue-drop=y` is the segment
//! dropped, logged at warn level by name. Both events are counted in the status file
//! `<spool-path>/archive/<stanza>/archive-push.status` (`key=value` lines), which `check`
//! reports on the database host.

use std::path::Path;

use crate::command::cluster::{QueueStatus, STATUS_FILE, read_queue_status};
use crate::command::format_size;
use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::{log_debug, log_warn};

use super::{WalParam, open, push_async, spool};

/// What archive-push does with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Push,
    /// Dropped (archive-push-queue-drop): report success without archiving it.
    Dropped,
}

/// Decides whether `wal` may be pushed: `Push` when there is no limit or the queue is within
/// it, `Dropped` when it is full and dropping is allowed, an `ArchiveQueueFull` error otherwise.
pub fn check(cfg: &Config, stanza: &str, wal: &WalParam) -> Result<Verdict> {
    let Some(max) = cfg.int(Opt::ArchivePushQueueMax) else {
        return Ok(Verdict::Push);
    };
    let max = u64::try_from(max).unwrap_or(0);
    let wal_dir = wal.path.parent().unwrap_or(Path::new("."));
    let size = queue_size(wal_dir)?;
    if size <= max {
        return Ok(Verdict::Push);
    }
    let name = &wal.name;
    if cfg.bool(Opt::ArchivePushQueueDrop) {
        log_warn!(
            "dropped WAL file '{name}' because archive queue exceeded {}",
            format_size(max)
        );
        record(cfg, stanza, |status| {
            status.dropped += 1;
            status.last_dropped = Some(name.clone());
        });
        return Ok(Verdict::Dropped);
    }
    record(cfg, stanza, |status| status.queue_full += 1);
    Err(Error::new(
        ErrorKind::ArchiveQueueFull,
        format!(
            "WAL file '{name}' not pushed: archive queue size {} exceeds archive-push-queue-max {}",
            format_size(size),
            format_size(max)
        ),
    )
    .with_hint(
        "PostgreSQL keeps the WAL and retries: find why archiving falls behind, or raise \
         archive-push-queue-max (archive-push-queue-drop=y drops WAL and breaks point-in-time \
         recovery)",
    ))
}

/// Bytes of WAL PostgreSQL has ready to archive; none when the file pushed is not in a pg_wal
/// directory (no archive_status beside it: archive-push run by hand on a copy).
pub fn queue_size(wal_dir: &Path) -> Result<u64> {
    if !wal_dir.join("archive_status").is_dir() {
        return Ok(0);
    }
    Ok(push_async::ready_files(wal_dir)?
        .iter()
        .filter_map(|name| std::fs::metadata(wal_dir.join(name)).ok())
        .map(|meta| meta.len())
        .sum())
}

/// Updates the status file. A failure to write it is logged, never fatal: the event itself is
/// already logged, and the decision must not depend on the spool.
fn record(cfg: &Config, stanza: &str, update: impl FnOnce(&mut QueueStatus)) {
    let dir = open::spool_path(cfg, stanza);
    let mut status = read_queue_status(&dir).unwrap_or_default();
    update(&mut status);
    let written = spool::create_dir(&dir)
        .and_then(|()| spool::write_status(&dir, STATUS_FILE, &status.render()));
    if let Err(err) = written {
        log_warn!(
            "unable to update the archive-push status file: {}",
            err.message()
        );
    } else {
        log_debug!(
            "archive-push status: {}",
            status.render().replace('\n', " ")
        );
    }
}
