//! The spool: the queues shared by asynchronous archive-push and archive-get and their
//! background process.
//!
//! The spool is pgBackRest's layout under `spool-path`: `archive/<stanza>/out/` holds
//! archive-push's acknowledgements (`<segment>.ok` once the segment is durable in the
//! repository, `<segment>.error` with the error when it failed, `global.error` when the
//! background process failed before any segment), `archive/<stanza>/in/` archive-get's
//! prefetched segments. The foreground command (the one PostgreSQL runs) starts the background
//! process (`<command>:async`, the same binary and options) when no other one holds its lock,
//! then waits for its segment's status file. A status file is written to a temp name and renamed,
//! so a reader never sees half of one. This module owns the spool paths, the status files and the
//! start of the background process; `push_async` and `get_async` own the commands' logic.

use std::path::{Path, PathBuf};
use std::process::{Command as Process, Stdio};
use std::time::Duration;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::lock::{Lock, LockKind};
use crate::log_debug;

use super::open;

/// How often the foreground looks for its segment's status file.
const POLL: Duration = Duration::from_millis(10);
/// How often the foreground checks that a background process is still running.
const RESTART_CHECK: Duration = Duration::from_millis(500);

/// Which queue of the spool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queue {
    /// archive-push's acknowledgements.
    Out,
    /// archive-get's prefetched segments.
    In,
}

/// `<spool-path>/archive/<stanza>/<in|out>`.
pub fn queue_path(cfg: &Config, stanza: &str, queue: Queue) -> PathBuf {
    let name = match queue {
        Queue::Out => "out",
        Queue::In => "in",
    };
    open::spool_path(cfg, stanza).join(name)
}

pub fn create_dir(path: &Path) -> Result<()> {
    std::fs::create_dir_all(path).map_err(|e| {
        Error::io(
            ErrorKind::PathCreate,
            "create spool path",
            path.display(),
            &e,
        )
        .with_hint("create spool-path, owned by the user PostgreSQL runs as, or set spool-path")
    })
}

/// Writes `content` to `dir/name` through a temp name: readers see all of it or nothing.
pub fn write_status(dir: &Path, name: &str, content: &str) -> Result<()> {
    let path = dir.join(name);
    let temp = dir.join(format!("{name}.pgkeep.tmp"));
    std::fs::write(&temp, content)
        .map_err(|e| Error::io(ErrorKind::FileWrite, "write", temp.display(), &e))?;
    std::fs::rename(&temp, &path)
        .map_err(|e| Error::io(ErrorKind::FileWrite, "rename to", path.display(), &e))
}

/// An error as a status file: the exit code on the first line, then the message and the hint.
pub fn error_text(err: &Error) -> String {
    let mut text = format!("{}\n{}", err.kind().exit_code(), err.message());
    if let Some(hint) = err.hint() {
        text.push_str("\nHINT: ");
        text.push_str(hint);
    }
    text
}

/// Reads an error status file back into the error it records; `None` when there is none.
pub fn read_error(path: &Path) -> Option<Error> {
    let text = std::fs::read_to_string(path).ok()?;
    let mut lines = text.lines();
    let kind = lines
        .next()
        .and_then(|code| code.trim().parse().ok())
        .and_then(ErrorKind::from_code)
        .unwrap_or(ErrorKind::Execute);
    let mut message = Vec::new();
    let mut hint = None;
    for line in lines {
        match line.strip_prefix("HINT: ") {
            Some(text) => hint = Some(text.to_string()),
            None => message.push(line),
        }
    }
    let error = Error::new(kind, message.join(" "));
    Some(match hint {
        Some(hint) => error.with_hint(hint),
        None => error,
    })
}

/// Removes a file that may not exist.
pub fn remove_quietly(path: &Path) {
    if let Err(e) = std::fs::remove_file(path)
        && e.kind() != std::io::ErrorKind::NotFound
    {
        log_debug!("unable to remove '{}': {e}", path.display());
    }
}

/// True when no background process holds `kind`'s lock for the stanza (taken and released at
/// once: the background process takes it for its whole run).
pub fn background_idle(cfg: &Config, stanza: &str, kind: LockKind) -> bool {
    Lock::acquire(&open::lock_path(cfg), stanza, kind, Duration::ZERO).is_ok()
}

/// Starts `<command>:async` with this command's options and `params`, detached: its own
/// process group, no terminal, standard streams on /dev/null (it logs to its own log file), so
/// PostgreSQL's archiver or startup process never waits for it.
pub fn start_background(cfg: &Config, params: &[String]) -> Result<()> {
    use std::os::unix::process::CommandExt;
    let program = std::env::current_exe()
        .map_err(|e| Error::io(ErrorKind::Execute, "find", "the pgkeep binary", &e))?;
    let mut args = cfg.command_line_args(cfg.command());
    args.push(format!("{}:async", cfg.command().name()));
    args.extend(params.iter().cloned());
    log_debug!(
        "start background process: {} {}",
        program.display(),
        args.join(" ")
    );
    Process::new(&program)
        .args(&args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map(drop)
        .map_err(|e| {
            Error::io(
                ErrorKind::Execute,
                "start background process",
                program.display(),
                &e,
            )
        })
}

/// What the foreground found while waiting.
pub enum Status<T> {
    Done(T),
    Pending,
}

/// Polls `check` until it is done, restarting the background process whenever none runs, for at
/// most archive-timeout. `start` starts it.
pub fn wait<T>(
    cfg: &Config,
    stanza: &str,
    kind: LockKind,
    mut check: impl FnMut() -> Result<Status<T>>,
    start: impl Fn() -> Result<()>,
) -> Result<Option<T>> {
    let timeout = Duration::from_millis(cfg.time_ms(Opt::ArchiveTimeout).unwrap_or(60_000));
    let begin = std::time::Instant::now();
    let mut last_check = begin;
    loop {
        if let Status::Done(value) = check()? {
            return Ok(Some(value));
        }
        if begin.elapsed() >= timeout {
            return Ok(None);
        }
        // A background process that ended just before our segment became ready, or was killed,
        // will not see it: start another one.
        if last_check.elapsed() >= RESTART_CHECK {
            last_check = std::time::Instant::now();
            if background_idle(cfg, stanza, kind) {
                if let Status::Done(value) = check()? {
                    return Ok(Some(value));
                }
                start()?;
            }
        }
        std::thread::sleep(POLL);
    }
}

/// The names and paths in a spool directory; an unreadable or missing one lists as empty.
pub(super) fn spool_entries(dir: &Path) -> Vec<(String, std::path::PathBuf)> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|entry| {
                    let entry = entry.ok()?;
                    Some((
                        entry.file_name().to_string_lossy().to_string(),
                        entry.path(),
                    ))
                })
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_status_files_keep_code_message_and_hint() {
        let dir = std::env::temp_dir().join(format!("pgkeep-spool-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let err = Error::new(
            ErrorKind::FileWrite,
            "unable to write 'x': [13] Permission denied",
        )
        .with_hint("check the repository");
        write_status(&dir, "seg.error", &error_text(&err)).unwrap();
        let back = read_error(&dir.join("seg.error")).unwrap();
        assert_eq!(back.kind(), ErrorKind::FileWrite);
        assert_eq!(back.message(), err.message());
        assert_eq!(back.hint(), Some("check the repository"));
        assert!(read_error(&dir.join("missing.error")).is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
