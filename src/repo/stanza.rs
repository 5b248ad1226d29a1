//! A stanza's bookkeeping: the clusters it has recorded (the db history kept in both archive.info
//! and backup.info), checking a cluster against it, creating it, and recording an upgrade.
//!
//! The cluster's facts come from its `pg_control`; creating a stanza that exists and matches is
//! a no-op, one that exists for another cluster is refused. `ensure` serves stanza-create and
//! the first archive-push or backup of a stanza (the historic flow), which initialise it the
//! same way.

use crate::error::{Error, ErrorKind, Result};
use crate::log_warn;
use crate::pg::control::ControlData;
use crate::repo::{ArchiveInfo, BackupInfo, DbHistory};
use crate::storage::Storage;

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
    let entry = db_history(control, id);
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
