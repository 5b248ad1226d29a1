//! archive-get with archive-async: the foreground that PostgreSQL runs for one segment, and the
//! background process that prefetches it and the segments after it into the spool.
//!
//! The in queue holds `<segment>-<checksum>` files, each verified against the checksum in its
//! archived name while it is fetched, fsynced, and only then renamed to that name, so a queued
//! segment is complete and right even after a crash; `<segment>.missing` when the archive does
//! not have the segment the background process was started for; `<segment>.error` or
//! `global.error` when fetching failed; `<segment>.fatal` when the archive holds the segment
//! but it could not be fetched (damaged, unreadable), `global.fatal` when archive.info and its
//! copy are both unreadable. A `.fatal` marker makes the foreground exit
//! [`STOP_RECOVERY`](fetch::STOP_RECOVERY), as synchronous archive-get does: a damaged
//! segment must stop recovery, never read as absent. Queued segments before the one PostgreSQL
//! asks for are removed: recovery has passed them.

use std::path::Path;
use std::time::Duration;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::exec::run_parallel;
use crate::lock::{Lock, LockKind};
use crate::pg::control::ControlData;
use crate::pg::wal::{WalFileKind, WalSegment};
use crate::{log_debug, log_info, log_warn};

use super::fetch::{self, InfoFailure, NOT_FOUND};
use super::spool::{self, Queue, Status};
use super::{open, push_async};

const LOCK_WAIT: Duration = Duration::from_secs(2);
const GLOBAL_ERROR: &str = "global.error";
const GLOBAL_FATAL: &str = "global.fatal";
const DEFAULT_SEGMENT_SIZE: u32 = 16 << 20;

/// The foreground: writes segment `name` to `destination` (exit 0), or reports that the archive
/// does not have it (exit 1).
pub fn run(cfg: &Config, stanza: &str, name: &str, destination: &Path) -> Result<i32> {
    let in_dir = spool::queue_path(cfg, stanza, Queue::In);
    spool::create_dir(&in_dir)?;
    forget_passed(&in_dir, name);
    if let Some(code) = take(&in_dir, name, destination)? {
        if code == 0 {
            refill(cfg, stanza, &in_dir, name)?;
        }
        return Ok(code);
    }
    let params = [name.to_string()];
    let start = || spool::start_background(cfg, &params);
    if spool::background_idle(cfg, stanza, LockKind::ArchiveGet) {
        spool::remove_quietly(&in_dir.join(format!("{name}.error")));
        spool::remove_quietly(&in_dir.join(GLOBAL_ERROR));
        spool::remove_quietly(&in_dir.join(format!("{name}.fatal")));
        spool::remove_quietly(&in_dir.join(GLOBAL_FATAL));
        start()?;
    }
    let check = || {
        Ok(match take(&in_dir, name, destination)? {
            Some(code) => Status::Done(code),
            None => Status::Pending,
        })
    };
    match spool::wait(cfg, stanza, LockKind::ArchiveGet, check, start)? {
        Some(code) => Ok(code),
        // Any exit code up to 125 reads as "absent" to PostgreSQL, which then ends recovery:
        // a slow background process must not cut recovery short. The archive itself answers
        // instead, as without archive-async.
        None => {
            log_warn!(
                "unable to get WAL file '{name}' from the archive asynchronously after {} \
                 second(s): getting it directly (check the archive-get-async log in log-path)",
                push_async::timeout_seconds(cfg)
            );
            fetch::get_sync(cfg, stanza, name, WalFileKind::Segment, destination)
        }
    }
}

/// Moves `name` from the queue to `destination` when it is there and verifies (`Some(0)`),
/// reports a missing marker (`Some(1)`), a fatal marker (`Some(STOP_RECOVERY)`, logged) or an
/// error of the background process.
fn take(in_dir: &Path, name: &str, destination: &Path) -> Result<Option<i32>> {
    let prefix = format!("{name}-");
    for (entry, path) in spool::spool_entries(in_dir) {
        let Some(checksum) = entry.strip_prefix(&prefix) else {
            continue;
        };
        // Temp files of a fetch in progress carry an extension.
        if checksum.contains('.') {
            continue;
        }
        if let Err(err) = move_file(&path, destination) {
            // The segment is in hand: failing to hand it over must not read as absent.
            return Ok(Some(fetch::stop_recovery(name, &err)));
        }
        log_info!("found {name} in the archive asynchronously");
        return Ok(Some(0));
    }
    for fatal in [
        in_dir.join(format!("{name}.fatal")),
        in_dir.join(GLOBAL_FATAL),
    ] {
        if let Some(err) = spool::read_error(&fatal) {
            spool::remove_quietly(&fatal);
            return Ok(Some(fetch::stop_recovery(name, &err)));
        }
    }
    let missing = in_dir.join(format!("{name}.missing"));
    if missing.exists() {
        spool::remove_quietly(&missing);
        log_info!("unable to find {name} in the archive asynchronously");
        return Ok(Some(NOT_FOUND));
    }
    for error in [
        in_dir.join(format!("{name}.error")),
        in_dir.join(GLOBAL_ERROR),
    ] {
        if let Some(err) = spool::read_error(&error) {
            spool::remove_quietly(&error);
            return Err(err.context(format!("unable to get WAL file '{name}'")));
        }
    }
    Ok(None)
}

/// Starts prefetching after `name` when the queue has fallen to half of archive-get-queue-max
/// and no background process runs.
fn refill(cfg: &Config, stanza: &str, in_dir: &Path, name: &str) -> Result<()> {
    let Ok(segment) = WalSegment::parse(name) else {
        return Ok(());
    };
    let size = segment_size();
    let queued = spool::spool_entries(in_dir)
        .iter()
        .filter(|(entry, _)| entry.len() == 24 + 1 + 64)
        .count();
    if queued * 2 > capacity(cfg, size)
        || !spool::background_idle(cfg, stanza, LockKind::ArchiveGet)
    {
        return Ok(());
    }
    spool::start_background(cfg, &[segment.next(size).name()])
}

/// The background process (`archive-get:async <segment>`): fetches the segment and those after
/// it, up to archive-get-queue-max, stopping at the first the archive does not have.
pub fn run_background(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let first = cfg.params().first().cloned().unwrap_or_default();
    let in_dir = spool::queue_path(cfg, stanza, Queue::In);
    spool::create_dir(&in_dir)?;
    let Ok(_lock) = Lock::acquire(
        &open::lock_path(cfg),
        stanza,
        LockKind::ArchiveGet,
        LOCK_WAIT,
    ) else {
        log_info!("another archive-get:async process is running");
        return Ok(0);
    };
    // Left by an earlier run: errors are retried, missing segments looked for again, temp
    // files of a killed run removed.
    for (entry, path) in spool::spool_entries(&in_dir) {
        let stale = [".error", ".fatal", ".missing", ".tmp", ".fetched"];
        if stale.iter().any(|suffix| entry.ends_with(suffix)) {
            spool::remove_quietly(&path);
        }
    }
    let result = prefetch(cfg, stanza, &first, &in_dir);
    if let Err(err) = &result {
        spool::write_status(&in_dir, GLOBAL_ERROR, &spool::error_text(err))?;
    }
    result.map(|()| 0)
}

fn prefetch(cfg: &Config, stanza: &str, first: &str, in_dir: &Path) -> Result<()> {
    let segment = WalSegment::parse(first)?;
    let repo = open::repo(cfg)?;
    let info = match fetch::load_archive_info(&repo, stanza) {
        Ok(info) => info,
        Err(InfoFailure::Damaged(err)) => {
            crate::log::log_error_value(&err);
            return spool::write_status(in_dir, GLOBAL_FATAL, &spool::error_text(&err));
        }
        Err(InfoFailure::Failed(err)) => return Err(err),
    };
    let dbs = fetch::recovering_dbs(&info);
    let size = segment_size();
    let mut wanted = vec![segment];
    while wanted.len() < capacity(cfg, size) {
        let next = wanted[wanted.len() - 1].next(size);
        wanted.push(next);
    }
    let wanted: Vec<String> = wanted.into_iter().map(WalSegment::name).collect();
    // Segments recovery will not ask for (before `first`, beyond the queue, another timeline).
    let present: Vec<String> = spool::spool_entries(in_dir)
        .into_iter()
        .filter_map(|(entry, path)| {
            let segment = entry.get(..24)?.to_string();
            if wanted.contains(&segment) {
                Some(segment)
            } else {
                spool::remove_quietly(&path);
                None
            }
        })
        .collect();
    let todo: Vec<String> = wanted
        .into_iter()
        .filter(|name| !present.contains(name))
        .collect();
    let (Some(low), Some(high)) = (todo.first(), todo.last()) else {
        return Ok(());
    };
    log_info!(
        "get {} WAL file(s) from archive: {low}{}",
        todo.len(),
        if low == high {
            String::new()
        } else {
            format!("...{high}")
        }
    );
    let buffer_size = open::buffer_size(cfg);
    let outcome = run_parallel(todo, open::process_max(cfg), |_, name: String| {
        let found = fetch::locate(&repo, stanza, &dbs, &name, WalFileKind::Segment);
        let found = match found {
            Ok(Some(found)) => found,
            Ok(None) => {
                // Only the segment PostgreSQL asked for gets a marker: a later one may yet
                // be archived before recovery needs it.
                if name == first {
                    spool::write_status(in_dir, &format!("{name}.missing"), "")?;
                }
                return Err(Error::new(
                    ErrorKind::FileMissing,
                    format!("{name} is not in the archive"),
                ));
            }
            Err(err) => {
                spool::write_status(in_dir, &format!("{name}.error"), &spool::error_text(&err))?;
                return Err(err);
            }
        };
        // The archive holds the segment: from here any failure is fatal to recovery, never
        // "absent" (a damaged segment read as absent would end recovery early).
        let fetched = (|| {
            let checksum = found.checksum.clone().unwrap_or_default();
            let fetched = in_dir.join(format!("{name}-{checksum}.fetched"));
            fetch::fetch(
                &repo,
                &found.path,
                found.checksum.as_deref(),
                found.compress,
                &fetched,
                buffer_size,
            )?;
            // Durable before it gets the name the foreground trusts.
            std::fs::File::open(&fetched)
                .and_then(|file| file.sync_all())
                .map_err(|e| Error::io(ErrorKind::FileSync, "sync", fetched.display(), &e))?;
            let queued = in_dir.join(format!("{name}-{checksum}"));
            std::fs::rename(&fetched, &queued)
                .map_err(|e| Error::io(ErrorKind::FileWrite, "rename to", queued.display(), &e))?;
            log_debug!("fetched {name} into the spool");
            Ok(())
        })();
        if let Err(err) = &fetched {
            crate::log::log_error_value(err);
            spool::write_status(in_dir, &format!("{name}.fatal"), &spool::error_text(err))?;
        }
        fetched
    });
    // Each failure is in the queue for the foreground; the first one ends the prefetch.
    if let Err(err) = outcome {
        log_info!("prefetch stopped: {}", err.message());
    }
    Ok(())
}

/// The WAL segment size of the cluster being recovered (PostgreSQL runs restore_command in its
/// data directory).
fn segment_size() -> u32 {
    ControlData::read(Path::new("global/pg_control"))
        .map(|control| control.wal_segment_size)
        .unwrap_or(DEFAULT_SEGMENT_SIZE)
}

/// Segments the queue holds at most: archive-get-queue-max in segments, at least one.
fn capacity(cfg: &Config, segment_size: u32) -> usize {
    let max = cfg.int(Opt::ArchiveGetQueueMax).unwrap_or(128 << 20);
    usize::try_from(max / i64::from(segment_size.max(1)))
        .unwrap_or(1)
        .max(1)
}

/// Removes queued segments before `name`: recovery has passed them.
fn forget_passed(in_dir: &Path, name: &str) {
    for (entry, path) in spool::spool_entries(in_dir) {
        if entry.get(..24).is_some_and(|segment| segment < name) {
            spool::remove_quietly(&path);
        }
    }
}

/// Moves a queued segment to PostgreSQL's destination: a rename, or a copy through a temp name
/// when the spool is on another file system.
fn move_file(from: &Path, to: &Path) -> Result<()> {
    match std::fs::rename(from, to) {
        Ok(()) => Ok(()),
        Err(e) if e.raw_os_error() == Some(18) => {
            let mut temp = to.as_os_str().to_os_string();
            temp.push(".pgkeep.tmp");
            std::fs::copy(from, &temp)
                .and_then(|_| std::fs::rename(&temp, to))
                .map_err(|e| Error::io(ErrorKind::FileWrite, "write", to.display(), &e))?;
            spool::remove_quietly(from);
            Ok(())
        }
        Err(e) => Err(Error::io(
            ErrorKind::FileWrite,
            "rename to",
            to.display(),
            &e,
        )),
    }
}
