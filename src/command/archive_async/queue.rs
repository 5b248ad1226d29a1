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

use crate::command::archive_push::WalParam;
use crate::command::format_size;
use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::{log_debug, log_warn};

/// The status file's name in `<spool-path>/archive/<stanza>`.
pub const STATUS_FILE: &str = "archive-push.status";

/// What archive-push does with a segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Push,
    /// Dropped (archive-push-queue-drop): report success without archiving it.
    Dropped,
}

/// The counters of the status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Times archive-push refused a segment because the queue was full.
    pub queue_full: u64,
    /// Segments dropped with archive-push-queue-drop.
    pub dropped: u64,
    /// The last segment dropped.
    pub last_dropped: Option<String>,
}

impl QueueStatus {
    pub fn parse(text: &str) -> QueueStatus {
        let mut status = QueueStatus::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("queue-full", n)) => status.queue_full = n.trim().parse().unwrap_or(0),
                Some(("dropped", n)) => status.dropped = n.trim().parse().unwrap_or(0),
                Some(("last-dropped", name)) => status.last_dropped = Some(name.to_string()),
                _ => {}
            }
        }
        status
    }

    pub fn render(&self) -> String {
        let mut text = format!("queue-full={}\ndropped={}\n", self.queue_full, self.dropped);
        if let Some(name) = &self.last_dropped {
            text.push_str(&format!("last-dropped={name}\n"));
        }
        text
    }
}

/// The stanza's status file, when there is one.
pub fn read_status(cfg: &Config, stanza: &str) -> Option<QueueStatus> {
    let path = super::spool_stanza_path(cfg, stanza).join(STATUS_FILE);
    std::fs::read_to_string(path)
        .ok()
        .map(|text| QueueStatus::parse(&text))
}

/// Logs, at warn level, what the status file counts: `check` shows it on the database host.
pub fn warn_status(cfg: &Config, stanza: &str) {
    let Some(status) = read_status(cfg, stanza) else {
        return;
    };
    if status.queue_full > 0 {
        log_warn!(
            "archive-push refused WAL {} time(s) because the archive queue exceeded \
             archive-push-queue-max",
            status.queue_full
        );
    }
    if status.dropped > 0 {
        log_warn!(
            "archive-push dropped {} WAL file(s), the last '{}', because the archive queue \
             exceeded archive-push-queue-max: point-in-time recovery cannot cross them",
            status.dropped,
            status.last_dropped.as_deref().unwrap_or("unknown")
        );
    }
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
    Ok(super::push::ready_files(wal_dir)?
        .iter()
        .filter_map(|name| std::fs::metadata(wal_dir.join(name)).ok())
        .map(|meta| meta.len())
        .sum())
}

/// Updates the status file. A failure to write it is logged, never fatal: the event itself is
/// already logged, and the decision must not depend on the spool.
fn record(cfg: &Config, stanza: &str, update: impl FnOnce(&mut QueueStatus)) {
    let dir = super::spool_stanza_path(cfg, stanza);
    let mut status = read_status(cfg, stanza).unwrap_or_default();
    update(&mut status);
    let written = super::create_dir(&dir)
        .and_then(|()| super::write_status(&dir, STATUS_FILE, &status.render()));
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file_round_trips() {
        let status = QueueStatus {
            queue_full: 3,
            dropped: 2,
            last_dropped: Some("000000010000000000000005".to_string()),
        };
        assert_eq!(QueueStatus::parse(&status.render()), status);
        assert_eq!(QueueStatus::parse(""), QueueStatus::default());
    }
}
