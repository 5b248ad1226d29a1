//! stanza-delete: remove a stanza's backups and WAL archive from the repository.
//!
//! Deleting is deliberate work: the stanza must have been stopped first (`pgkeep
//! --stanza=<stanza> stop`), so no new backup or archive-push starts, and the command takes
//! the stanza's backup and archive locks, so none is still running. It refuses while the
//! cluster at pg1-path runs (its archive_command would fail from now on) unless `--force`.
//! The info files go first (backup.info, archive.info and their copies): a crash after that
//! leaves a stanza that no longer exists, never a half-deleted one that still looks valid.
//! Then the backup and archive directories. The stop file stays, as in pgBackRest: archiving
//! into a deleted stanza must keep failing until the DBA runs `start`.

use std::path::Path;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::repo::layout::{self, COPY_EXT};
use crate::repo::{BackupInfo, BackupLabel};
use crate::storage::{FileType, Storage};
use crate::{log_detail, log_info, log_warn};

use super::open::{self, Access};

pub fn run(cfg: &Config) -> Result<i32> {
    let opened = open::stanza_repo(cfg, Access::Delete)?;
    let stanza = opened.stanza;
    let pg_path = open::pg_path(cfg)?;
    check_not_running(&pg_path, stanza, cfg.bool(Opt::Force))?;
    delete(&opened.repo, stanza)?;
    log_info!(
        "the stop file for stanza '{stanza}' is kept: run 'pgkeep --stanza={stanza} start' before creating the stanza again"
    );
    Ok(0)
}

/// Refuses while a live process holds the cluster's postmaster.pid, unless forced. A pid file
/// whose process is gone is stale (a crashed server): the cluster is not running.
fn check_not_running(pg_path: &Path, stanza: &str, force: bool) -> Result<()> {
    let pid_file = pg_path.join("postmaster.pid");
    let Some(pid) = running_postmaster(&pid_file) else {
        return Ok(());
    };
    if force {
        log_warn!(
            "PostgreSQL is running (process {pid}), deleting stanza '{stanza}' anyway (--force)"
        );
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::PgRunning,
        format!(
            "PostgreSQL is running for stanza '{stanza}': '{}' names live process {pid}",
            pid_file.display()
        ),
    )
    .with_hint("shut down the cluster and try again, or use --force to delete the stanza of a running cluster"))
}

/// The postmaster's pid when `pid_file` names a process that is alive.
fn running_postmaster(pid_file: &Path) -> Option<i32> {
    let text = std::fs::read_to_string(pid_file).ok()?;
    let pid: i32 = text.lines().next()?.trim().parse().ok()?;
    if pid <= 0 {
        return None;
    }
    // Signal 0 checks that the process exists; EPERM means it exists but belongs to another
    // user, which still means running.
    match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None) {
        Ok(()) | Err(nix::errno::Errno::EPERM) => Some(pid),
        Err(_) => None,
    }
}

/// Removes the stanza from the repository: the info files first, then everything else.
pub fn delete(repo: &dyn Storage, stanza: &str) -> Result<()> {
    let backup_dir = layout::backup_dir(stanza);
    let archive_dir = layout::archive_dir(stanza);
    if !repo.exists(&backup_dir)? && !repo.exists(&archive_dir)? {
        log_info!("stanza '{stanza}' does not exist in the repository, nothing to delete");
        return Ok(());
    }
    // What is about to go, for the log; an unreadable backup.info must not stop a delete.
    let backups = backup_labels(repo, stanza);
    let archive_ids = archive_ids(repo, &archive_dir)?;
    for info in [layout::backup_info(stanza), layout::archive_info(stanza)] {
        for path in [info.clone(), format!("{info}{COPY_EXT}")] {
            if repo.exists(&path)? {
                log_detail!("remove '{}'", repo.describe(&path));
                repo.remove(&path)?;
            }
        }
    }
    for dir in [&backup_dir, &archive_dir] {
        if !repo.exists(dir)? {
            continue;
        }
        log_detail!("remove '{}'", repo.describe(dir));
        repo.remove_dir(dir)?;
        // The removal is durable only once the parent directory's entry is gone on disk.
        let parent = dir.rsplit_once('/').map(|(parent, _)| parent).unwrap_or("");
        repo.sync_dir(parent)?;
    }
    for label in &backups {
        log_detail!("removed backup {label}");
    }
    let archive = if archive_ids.is_empty() {
        "an empty WAL archive".to_string()
    } else {
        format!("the WAL archive of archive id {}", archive_ids.join(", "))
    };
    log_info!(
        "stanza '{stanza}' deleted: {} backup(s) and {archive} removed",
        backups.len()
    );
    Ok(())
}

/// The labels of the stanza's backups: from backup.info, or from the directory names when it
/// cannot be read.
fn backup_labels(repo: &dyn Storage, stanza: &str) -> Vec<String> {
    if let Ok(Some(info)) = BackupInfo::load(repo, stanza) {
        return info.backups.into_iter().map(|b| b.label).collect();
    }
    let mut labels: Vec<String> = repo
        .list(&layout::backup_dir(stanza))
        .ok()
        .flatten()
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_type == FileType::Path && BackupLabel::parse(&e.name).is_some())
        .map(|e| e.name)
        .collect();
    labels.sort();
    labels
}

/// The archive ids (`15-1`, ...) under the stanza's archive directory.
fn archive_ids(repo: &dyn Storage, archive_dir: &str) -> Result<Vec<String>> {
    let mut ids: Vec<String> = repo
        .list(archive_dir)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_type == FileType::Path)
        .map(|e| e.name)
        .collect();
    ids.sort();
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_pid_file_naming_a_live_process_means_running() {
        let dir = tempfile::tempdir().unwrap();
        let pid_file = dir.path().join("postmaster.pid");
        assert_eq!(running_postmaster(&pid_file), None);
        let me = std::process::id() as i32;
        std::fs::write(&pid_file, format!("{me}\n/var/lib/postgresql/data\n")).unwrap();
        assert_eq!(running_postmaster(&pid_file), Some(me));
        // Beyond any pid_max: the process cannot exist, the file is stale.
        std::fs::write(&pid_file, format!("{}\n", i32::MAX)).unwrap();
        assert_eq!(running_postmaster(&pid_file), None);
        std::fs::write(&pid_file, "garbage\n").unwrap();
        assert_eq!(running_postmaster(&pid_file), None);
        assert!(check_not_running(dir.path(), "demo", false).is_ok());
        std::fs::write(&pid_file, format!("{me}\n")).unwrap();
        let err = check_not_running(dir.path(), "demo", false).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::PgRunning);
        assert!(check_not_running(dir.path(), "demo", true).is_ok());
    }
}
