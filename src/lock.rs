//! Process locks and stop files.
//!
//! A lock is an exclusively locked file `<lock-path>/<stanza>-<kind>.lock` holding the owner's
//! process id; the OS releases it when the process dies, so a killed run never blocks the next
//! one. A stop file (`all.stop` or `<stanza>.stop`) forbids new runs until `start` removes it.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::error::{Error, ErrorKind, Result};

/// The mode of lock and log files, as of repository files: they name stanzas, paths and
/// process ids, which are no business of other users (the umask may take more away).
pub const FILE_MODE: u32 = 0o640;

/// What a lock protects.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LockKind {
    /// backup, expire, stanza-create: one at a time per stanza.
    Backup,
    /// archive-push: one at a time per stanza (the archive-async process holds it while it
    /// runs).
    Archive,
    /// The archive-get prefetch process of archive-async: one at a time per stanza.
    ArchiveGet,
}

impl LockKind {
    fn name(self) -> &'static str {
        match self {
            LockKind::Backup => "backup",
            LockKind::Archive => "archive",
            LockKind::ArchiveGet => "archive-get",
        }
    }
}

/// A held lock; released on drop.
#[derive(Debug)]
pub struct Lock {
    file: File,
    path: PathBuf,
}

impl Lock {
    /// Takes the lock, retrying until `wait` has passed.
    pub fn acquire(lock_path: &Path, stanza: &str, kind: LockKind, wait: Duration) -> Result<Lock> {
        ensure_lock_path(lock_path)?;
        let path = lock_path.join(format!("{stanza}-{}.lock", kind.name()));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(FILE_MODE)
            .open(&path)
            .map_err(|e| Error::io(ErrorKind::LockAcquire, "open lock file", path.display(), &e))?;
        let deadline = Instant::now() + wait;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(50));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    let holder = read_pid(&path)
                        .map(|pid| format!(" held by process {pid}"))
                        .unwrap_or_default();
                    return Err(Error::new(
                        ErrorKind::LockAcquire,
                        format!(
                            "unable to acquire lock on file '{}'{holder}",
                            path.display()
                        ),
                    )
                    .with_hint(format!(
                        "is another pgkeep {} process running for stanza '{stanza}'?",
                        kind.name()
                    )));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(Error::io(
                        ErrorKind::LockAcquire,
                        "lock",
                        path.display(),
                        &e,
                    ));
                }
            }
        }
        let mut lock = Lock { file, path };
        lock.write_pid()?;
        Ok(lock)
    }

    fn write_pid(&mut self) -> Result<()> {
        let text = format!("{}\n", std::process::id());
        self.file
            .set_len(0)
            .and_then(|()| std::io::Seek::rewind(&mut self.file))
            .and_then(|_| self.file.write_all(text.as_bytes()))
            .map_err(|e| {
                Error::io(
                    ErrorKind::LockAcquire,
                    "write lock file",
                    self.path.display(),
                    &e,
                )
            })
    }
}

impl Drop for Lock {
    fn drop(&mut self) {
        // Emptying the file tells `stop --force` nobody holds it; the OS drops the lock itself.
        let _ = self.file.set_len(0);
    }
}

fn ensure_lock_path(lock_path: &Path) -> Result<()> {
    std::fs::create_dir_all(lock_path).map_err(|e| {
        Error::io(
            ErrorKind::PathCreate,
            "create lock path",
            lock_path.display(),
            &e,
        )
    })
}

fn read_pid(path: &Path) -> Option<i32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

/// The pids holding locks in `lock_path`, for one stanza or all. A lock file whose lock can be
/// taken is stale and ignored.
pub fn holders(lock_path: &Path, stanza: Option<&str>) -> Result<Vec<(PathBuf, i32)>> {
    let entries = match std::fs::read_dir(lock_path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Error::io(
                ErrorKind::PathOpen,
                "list lock path",
                lock_path.display(),
                &e,
            ));
        }
    };
    let mut found = Vec::new();
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().to_string();
        let Some(base) = name.strip_suffix(".lock") else {
            continue;
        };
        let matches = match stanza {
            Some(stanza) => base.rsplit_once('-').is_some_and(|(s, _)| s == stanza),
            None => true,
        };
        if !matches {
            continue;
        }
        let path = entry.path();
        let Ok(file) = File::open(&path) else {
            continue;
        };
        if file.try_lock_shared().is_ok() {
            continue;
        }
        if let Some(pid) = read_pid(&path) {
            found.push((path, pid));
        }
    }
    Ok(found)
}

/// Whether a live process holds the `kind` lock of `stanza` (what `info` reports as
/// `backup/expire running`). A missing or unlocked lock file is not held. Like pgBackRest's own
/// check this takes the lock for an instant when it is free.
pub fn held(lock_path: &Path, stanza: &str, kind: LockKind) -> bool {
    let path = lock_path.join(format!("{stanza}-{}.lock", kind.name()));
    match File::open(&path) {
        Ok(file) => matches!(
            file.try_lock_shared(),
            Err(std::fs::TryLockError::WouldBlock)
        ),
        Err(_) => false,
    }
}

/// The stop file for a stanza, or for all stanzas.
pub fn stop_file(lock_path: &Path, stanza: Option<&str>) -> PathBuf {
    lock_path.join(format!("{}.stop", stanza.unwrap_or("all")))
}

/// Fails when a stop file forbids running for this stanza.
pub fn check_stop(lock_path: &Path, stanza: Option<&str>) -> Result<()> {
    if stop_file(lock_path, None).exists() {
        return Err(
            Error::new(ErrorKind::Stop, "stop file exists for all stanzas").with_hint(format!(
                "use '{}' to allow pgkeep to run again",
                crate::error::command_hint("start")
            )),
        );
    }
    if let Some(stanza) = stanza
        && stop_file(lock_path, Some(stanza)).exists()
    {
        return Err(Error::new(
            ErrorKind::Stop,
            format!("stop file exists for stanza {stanza}"),
        )
        .with_hint(format!(
            "use '{}' to allow pgkeep to run again",
            crate::error::command_hint(&format!("--stanza={stanza} start"))
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn second_lock_fails_naming_the_holder() {
        let dir = tempfile::tempdir().unwrap();
        let first = Lock::acquire(dir.path(), "demo", LockKind::Backup, Duration::ZERO).unwrap();
        let err = Lock::acquire(dir.path(), "demo", LockKind::Backup, Duration::ZERO).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::LockAcquire);
        assert!(
            err.message()
                .contains(&format!("held by process {}", std::process::id())),
            "{}",
            err.message()
        );
        let holders = holders(dir.path(), Some("demo")).unwrap();
        assert_eq!(holders.len(), 1);
        drop(first);
        assert!(holders_after_release(dir.path()));
        Lock::acquire(dir.path(), "demo", LockKind::Backup, Duration::ZERO).unwrap();
    }

    fn holders_after_release(path: &Path) -> bool {
        holders(path, None).unwrap().is_empty()
    }

    #[test]
    fn different_kinds_and_stanzas_do_not_conflict() {
        let dir = tempfile::tempdir().unwrap();
        let _a = Lock::acquire(dir.path(), "demo", LockKind::Backup, Duration::ZERO).unwrap();
        let _b = Lock::acquire(dir.path(), "demo", LockKind::Archive, Duration::ZERO).unwrap();
        let _c = Lock::acquire(dir.path(), "other", LockKind::Backup, Duration::ZERO).unwrap();
    }

    #[test]
    fn stop_files_name_their_scope() {
        let dir = tempfile::tempdir().unwrap();
        check_stop(dir.path(), Some("demo")).unwrap();
        std::fs::write(stop_file(dir.path(), Some("demo")), "").unwrap();
        let err = check_stop(dir.path(), Some("demo")).unwrap_err();
        assert_eq!(err.message(), "stop file exists for stanza demo");
        check_stop(dir.path(), Some("other")).unwrap();
        std::fs::write(stop_file(dir.path(), None), "").unwrap();
        let err = check_stop(dir.path(), Some("other")).unwrap_err();
        assert_eq!(err.message(), "stop file exists for all stanzas");
    }
}
