//! stanza-upgrade: record a cluster's new major version and system identifier after pg_upgrade.
//!
//! The stanza keeps a history of the clusters it has backed up. After an upgrade the cluster at
//! pg1-path has another version and system identifier, which backup and archive-push refuse
//! until this command appends it to that history: a new entry (id + 1) in archive.info, then in
//! backup.info (the same order as stanza-create, so a crash in between is repaired by running it
//! again). New WAL then goes to the new archive id (`<version>-<id>`), the next backup is a full
//! one, and the old backups and their WAL stay where they are, restorable with the old binaries.

use std::time::Duration;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::{self, Lock, LockKind};
use crate::log_info;
use crate::pg::control::ControlData;
use crate::repo::{ArchiveInfo, BackupInfo, DbHistory};
use crate::storage::Storage;

use super::{open, stanza_create};

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let lock_path = open::lock_path(cfg);
    lock::check_stop(&lock_path, Some(stanza))?;
    let _lock = Lock::acquire(&lock_path, stanza, LockKind::Backup, Duration::ZERO)?;
    let repo = open::repo(cfg)?;
    let pg = open::pg_storage(cfg)?;
    let control = open::pg_control(&pg)?;
    if upgrade(&repo, stanza, &control)? {
        log_info!(
            "stanza '{stanza}' upgraded to version {} system id {}",
            control.version,
            control.system_id
        );
    } else {
        log_info!("stanza '{stanza}' is already up to date");
    }
    Ok(0)
}

/// Appends the cluster to the stanza's history when it is not the current one; false when
/// there was nothing to do.
pub fn upgrade(repo: &dyn Storage, stanza: &str, control: &ControlData) -> Result<bool> {
    let mut archive = ArchiveInfo::load_required(repo, stanza)?;
    let mut backup = BackupInfo::load_required(repo, stanza)?;
    let archive_current = archive.current()?.clone();
    let backup_current = backup.current()?.clone();
    let matches = |db: &DbHistory| {
        db.system_id == control.system_id && db.version == control.version.to_string()
    };
    if matches(&archive_current) && matches(&backup_current) {
        return Ok(false);
    }
    if control.version.to_string().parse::<u32>().ok() < archive_current.version.parse::<u32>().ok()
    {
        return Err(Error::new(
            ErrorKind::VersionNotSupported,
            format!(
                "the cluster at pg1-path is version {} but stanza '{stanza}' already records version {}",
                control.version, archive_current.version
            ),
        )
        .with_hint("stanza-upgrade records an upgrade to a newer major version; is pg1-path the upgraded cluster?"));
    }
    // One id for both files: the one a half-finished earlier run gave, else the next after
    // every id either file has used.
    let next_id = archive
        .db_history
        .iter()
        .chain(backup.db_history.iter())
        .map(|db| db.id)
        .max()
        .unwrap_or(0)
        + 1;
    let id = if matches(&archive_current) {
        archive_current.id
    } else if matches(&backup_current) {
        backup_current.id
    } else {
        next_id
    };
    let entry = stanza_create::db_history(control, id);
    if !matches(&archive_current) {
        archive.db_history.push(entry.clone());
        archive.save(repo, stanza)?;
    }
    if !matches(&backup_current) {
        backup.db_history.push(entry);
        backup.save(repo, stanza)?;
    }
    Ok(true)
}
