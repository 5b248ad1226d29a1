//! archive-push with archive-async: the foreground that PostgreSQL runs for one segment, and the
//! background process that pushes every segment PostgreSQL has ready, in parallel.
//!
//! The foreground returns at once when its segment is acknowledged (`out/<segment>.ok`).
//! Otherwise it starts the background process (unless one runs: it holds the stanza's archive
//! lock) and waits up to archive-timeout for the `.ok`, or reports the `.error` the background
//! process wrote. The background process lists `pg_wal/archive_status/*.ready`, pushes what is
//! not acknowledged with `process-max` workers, writes each `.ok` only once its push is durable
//! in the repository, and loops until nothing is left. A killed background process leaves no
//! `.ok` for an unfinished segment: the next one pushes it again (an identical file already
//! archived is accepted).

use std::collections::HashSet;
use std::path::Path;
use std::sync::Mutex;
use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::exec::run_parallel;
use crate::io::parallel_compress::FrameBuffers;
use crate::lock::{self, Lock, LockKind};
use crate::pg::wal::WalFileKind;
use crate::{log_info, log_warn};

use super::queue::{self, Verdict};
use super::spool::{self, Queue, Status};
use super::store::{self, Pusher};
use super::{WalParam, open, wal_param};

/// How long the background process waits for the archive lock: long enough to pass a
/// foreground's short check of it, short enough that a second process gives way quickly.
const LOCK_WAIT: Duration = Duration::from_secs(2);
/// The file the background process writes when it fails before any segment.
const GLOBAL_ERROR: &str = "global.error";

/// The foreground: returns once `wal` is durable in the repository.
pub fn run(cfg: &Config, stanza: &str, wal: &WalParam) -> Result<i32> {
    let out = spool::queue_path(cfg, stanza, Queue::Out);
    let ok = out.join(format!("{}.ok", wal.name));
    if ok.exists() {
        log_info!(
            "pushed WAL file '{}' to the archive asynchronously",
            wal.name
        );
        return Ok(0);
    }
    if queue::check(cfg, stanza, wal)? == Verdict::Dropped {
        return Ok(0);
    }
    spool::create_dir(&out)?;
    let error = out.join(format!("{}.error", wal.name));
    let global_error = out.join(GLOBAL_ERROR);
    // The background process finds pg_wal from the segment's path, whatever its own directory.
    let absolute = std::env::current_dir()
        .map(|dir| dir.join(&wal.path))
        .unwrap_or_else(|_| wal.path.clone());
    let params = [absolute.display().to_string()];
    let start = || spool::start_background(cfg, &params);
    if spool::background_idle(cfg, stanza, LockKind::Archive) {
        // Errors of an earlier run are retried by the new one.
        spool::remove_quietly(&error);
        spool::remove_quietly(&global_error);
        start()?;
    }
    let check = || {
        if ok.exists() {
            return Ok(Status::Done(()));
        }
        for path in [&error, &global_error] {
            if let Some(err) = spool::read_error(path) {
                return Err(err);
            }
        }
        Ok(Status::Pending)
    };
    match spool::wait(cfg, stanza, LockKind::Archive, check, start)? {
        Some(()) => {
            log_info!(
                "pushed WAL file '{}' to the archive asynchronously",
                wal.name
            );
            Ok(0)
        }
        None => Err(Error::new(
            ErrorKind::ArchiveTimeout,
            format!(
                "unable to push WAL file '{}' to the archive asynchronously after {} second(s)",
                wal.name,
                timeout_seconds(cfg)
            ),
        )
        .with_hint("check the archive-push-async log in log-path for the background process")),
    }
}

/// archive-timeout in seconds, as messages show it.
pub fn timeout_seconds(cfg: &Config) -> String {
    let ms = cfg
        .time_ms(crate::config::Opt::ArchiveTimeout)
        .unwrap_or(60_000);
    if ms.is_multiple_of(1000) {
        (ms / 1000).to_string()
    } else {
        format!("{:.1}", ms as f64 / 1000.0)
    }
}

/// The background process (`archive-push:async <pg_wal/segment>`).
pub fn run_background(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let wal = wal_param(cfg)?;
    let wal_dir = wal.path.parent().map(Path::to_path_buf).unwrap_or_default();
    let out = spool::queue_path(cfg, stanza, Queue::Out);
    spool::create_dir(&out)?;
    let Ok(_lock) = Lock::acquire(&open::lock_path(cfg), stanza, LockKind::Archive, LOCK_WAIT)
    else {
        log_info!("another process holds the archive lock: it pushes the WAL");
        return Ok(0);
    };
    remove_errors(&out);
    let result = push_ready(cfg, stanza, &wal_dir, &wal.name, &out);
    if let Err(err) = &result {
        spool::write_status(&out, GLOBAL_ERROR, &spool::error_text(err))?;
    }
    result.map(|()| 0)
}

/// Pushes what PostgreSQL has ready, and `requested` (the file the foreground waits for, which
/// may have no `.ready` when archive-push is run by hand), until nothing is left.
fn push_ready(
    cfg: &Config,
    stanza: &str,
    wal_dir: &Path,
    requested: &str,
    out: &Path,
) -> Result<()> {
    lock::check_stop(&open::lock_path(cfg), Some(stanza))?;
    let repo = open::repo(cfg)?;
    let info = store::load_or_create(cfg, &repo, stanza)?;
    let workers = open::process_max(cfg);
    let pusher = Pusher::new(cfg, &repo, stanza, info.current()?)?;
    // Several workers keep the cores busy already: each compresses its segment as one frame.
    let pusher = if workers > 1 {
        pusher.single_frame()
    } else {
        pusher
    };
    let buffers: Vec<Mutex<FrameBuffers>> = (0..workers)
        .map(|_| Mutex::new(FrameBuffers::default()))
        .collect();
    let failed = Mutex::new(HashSet::new());
    let mut first = true;
    loop {
        let mut ready = ready_files(wal_dir)?;
        forget_done(out, &ready, requested);
        if std::mem::take(&mut first)
            && !ready.iter().any(|name| name == requested)
            && wal_dir.join(requested).exists()
        {
            ready.insert(0, requested.to_string());
        }
        let todo: Vec<String> = {
            let failed = failed.lock().map_err(|_| poisoned())?;
            ready
                .into_iter()
                .filter(|name| !failed.contains(name) && !out.join(format!("{name}.ok")).exists())
                .collect()
        };
        let (Some(first), Some(last)) = (todo.first(), todo.last()) else {
            return Ok(());
        };
        log_info!(
            "push {} WAL file(s) to archive: {first}{}",
            todo.len(),
            if first == last {
                String::new()
            } else {
                format!("...{last}")
            }
        );
        run_parallel(todo, workers, |worker, name: String| {
            let kind = WalFileKind::of(&name).ok_or_else(|| {
                Error::new(ErrorKind::Assert, format!("'{name}' is not a WAL file"))
            })?;
            let mut buffer = buffers
                .get(worker)
                .ok_or_else(poisoned)?
                .lock()
                .map_err(|_| poisoned())?;
            match pusher.push_with(&wal_dir.join(&name), &name, kind, &mut buffer) {
                // The acknowledgement follows the durable push, never precedes it.
                Ok(_) => spool::write_status(out, &format!("{name}.ok"), ""),
                Err(err) => {
                    log_warn!("could not push WAL file '{name}': {}", err.message());
                    spool::write_status(out, &format!("{name}.error"), &spool::error_text(&err))?;
                    failed.lock().map_err(|_| poisoned())?.insert(name);
                    Ok(())
                }
            }
        })?;
    }
}

fn poisoned() -> Error {
    Error::new(ErrorKind::Assert, "a push worker panicked")
}

/// The WAL files PostgreSQL has ready to archive, oldest first.
pub fn ready_files(wal_dir: &Path) -> Result<Vec<String>> {
    let status = wal_dir.join("archive_status");
    let entries = std::fs::read_dir(&status)
        .map_err(|e| Error::io(ErrorKind::PathOpen, "list", status.display(), &e))?;
    let mut names: Vec<String> = entries
        .filter_map(|entry| {
            let name = entry.ok()?.file_name().to_string_lossy().to_string();
            let wal = name.strip_suffix(".ready")?;
            WalFileKind::of(wal).map(|_| wal.to_string())
        })
        .collect();
    names.sort();
    Ok(names)
}

/// Removes the `.ok` of files PostgreSQL no longer has ready (it archived them), except the
/// one the foreground waits for.
fn forget_done(out: &Path, ready: &[String], requested: &str) {
    let ready: HashSet<&str> = ready.iter().map(String::as_str).collect();
    for (name, path) in spool::spool_entries(out) {
        if let Some(wal) = name.strip_suffix(".ok")
            && !ready.contains(wal)
            && wal != requested
        {
            spool::remove_quietly(&path);
        }
    }
}

fn remove_errors(out: &Path) {
    for (name, path) in spool::spool_entries(out) {
        if name.ends_with(".error") {
            spool::remove_quietly(&path);
        }
    }
}
