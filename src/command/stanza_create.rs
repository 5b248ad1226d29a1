//! stanza-create: record the cluster a stanza backs up, and create its repository directories.
//!
//! The cluster's facts (system identifier, major version, catalog and control versions) come
//! from its `global/pg_control`, so the command works whether the cluster is running or not.
//! Creating a stanza that exists and matches is a no-op; one that exists for another cluster is
//! refused. `ensure` is also used by the first archive-push or backup of a stanza (the historic
//! flow), which initialises it the same way.

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::lock::{self, Lock, LockKind};
use crate::pg::control::ControlData;
use crate::repo::{ArchiveInfo, BackupInfo, DbHistory};
use crate::storage::Storage;
use crate::{log_info, log_warn};

use super::open;

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let lock_path = open::lock_path(cfg);
    lock::check_stop(&lock_path, Some(stanza))?;
    let _lock = Lock::acquire(
        &lock_path,
        stanza,
        LockKind::Backup,
        std::time::Duration::ZERO,
    )?;
    let repo = open::repo(cfg)?;
    let control = open::pg_control(&open::pg_storage(cfg)?)?;
    match ensure(&repo, stanza, &control)? {
        Ensured::Created => log_info!("stanza-create for stanza '{stanza}' on repo1"),
        Ensured::Existed => log_info!("stanza '{stanza}' already exists and is valid"),
    }
    Ok(0)
}

/// What `ensure` found.
#[derive(Debug, PartialEq, Eq)]
pub enum Ensured {
    Created,
    Existed,
}

/// The db history entry describing a cluster, as the first of a stanza.
pub fn db_history(control: &ControlData, id: u32) -> DbHistory {
    DbHistory {
        id,
        version: control.version.to_string(),
        system_id: control.system_id,
        catalog_version: control.catalog_version,
        control_version: control.control_version,
    }
}

/// Fails when `db` (the current cluster recorded in the info file named `file`) is not the
/// cluster `control` describes: another system identifier or major version.
pub fn check_matches(
    stanza: &str,
    file: &str,
    db: &DbHistory,
    control: &ControlData,
) -> Result<()> {
    let wanted = db_history(control, db.id);
    if db.system_id != wanted.system_id || db.version != wanted.version {
        return Err(Error::new(
            ErrorKind::DbMismatch,
            format!(
                "{file} for stanza '{stanza}' records version {} system id {}, but the cluster is version {} system id {}",
                db.version, db.system_id, wanted.version, wanted.system_id
            ),
        )
        .with_hint("is pg1-path the right cluster for this stanza? after an upgrade run stanza-upgrade"));
    }
    Ok(())
}

/// Makes sure the stanza exists for this cluster: creates what is missing, accepts what
/// matches, refuses what belongs to another cluster.
pub fn ensure(repo: &dyn Storage, stanza: &str, control: &ControlData) -> Result<Ensured> {
    let archive = ArchiveInfo::load(repo, stanza)?;
    let backup = BackupInfo::load(repo, stanza)?;
    let wanted = db_history(control, 1);
    let check = |db: &DbHistory, file: &str| check_matches(stanza, file, db, control);
    match (archive, backup) {
        (Some(archive), Some(backup)) => {
            check(archive.current()?, "archive.info")?;
            check(backup.current()?, "backup.info")?;
            Ok(Ensured::Existed)
        }
        (Some(archive), None) => {
            check(archive.current()?, "archive.info")?;
            log_warn!(
                "backup.info is missing for stanza '{stanza}', recreating it from archive.info"
            );
            BackupInfo {
                db_history: archive.db_history.clone(),
                backups: Vec::new(),
            }
            .save(repo, stanza)?;
            Ok(Ensured::Created)
        }
        (None, Some(backup)) => {
            check(backup.current()?, "backup.info")?;
            log_warn!(
                "archive.info is missing for stanza '{stanza}', recreating it from backup.info"
            );
            ArchiveInfo {
                db_history: backup.db_history.clone(),
            }
            .save(repo, stanza)?;
            Ok(Ensured::Created)
        }
        (None, None) => {
            // archive.info first: a stanza with only archive.info is repaired by the next run.
            ArchiveInfo::new(wanted.clone()).save(repo, stanza)?;
            BackupInfo::new(wanted).save(repo, stanza)?;
            Ok(Ensured::Created)
        }
    }
}
