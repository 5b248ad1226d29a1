//! Planning a verify run: which backups to check, their manifests, and one job per stored
//! file they need.
//!
//! A file unchanged since an earlier backup is stored once, in the backup that holds it, and
//! referenced by the later ones: it becomes one job, however many backups need it. Backup
//! directories that backup.info does not list (an unfinished backup, a half-done expire) and
//! archive ids that archive.info does not know are not checked; the log says so.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::WalSegment;
use crate::repo::manifest_check::check_manifest;
use crate::repo::{BackupInfo, BackupLabel, BackupRecord, DbHistory, Manifest, layout};
use crate::storage::{FileType, Storage};
use crate::{log_info, log_warn};

use super::file::{BlockCheck, Bundled, FileCheck};
use super::info::{self, Pair};
use super::{BackupCheck, Job};
use crate::repo::bundle::{self, Stored};

/// The backups to check: all of backup.info, or the one `--set` names. Backup directories that
/// backup.info does not list are unfinished or half-expired: not backups, so not checked.
pub fn select_backups(
    repo: &dyn Storage,
    stanza: &str,
    info: Option<&BackupInfo>,
    set: Option<&str>,
) -> Result<Vec<BackupRecord>> {
    let Some(info) = info else {
        return Ok(Vec::new());
    };
    if let Some(set) = set {
        let record = info.find(set).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::BackupSetInvalid,
                format!("backup set '{set}' does not exist in stanza '{stanza}'"),
            )
            .with_hint(format!(
                "'{}' lists the backup sets",
                crate::error::command_hint("info")
            ))
        })?;
        return Ok(vec![record]);
    }
    for entry in repo.list(&layout::backup_dir(stanza))?.unwrap_or_default() {
        if entry.file_type == FileType::Path
            && BackupLabel::parse(&entry.name).is_some()
            && info.find(&entry.name).is_none()
        {
            log_info!(
                "backup {}: not listed in backup.info (unfinished or expired), skipped",
                entry.name
            );
        }
    }
    Ok(info.backups.clone())
}

/// Reads a backup's manifest and adds the files it needs to `jobs`, once per stored file.
pub fn plan_backup(
    repo: &dyn Storage,
    stanza: &str,
    record: BackupRecord,
    db_history: &[DbHistory],
    jobs: &mut Vec<Job>,
    held: &mut BTreeMap<(String, String), usize>,
) -> Result<BackupCheck> {
    let label = record.label.clone();
    let path = layout::manifest(stanza, &label);
    let pair = info::check_pair::<Manifest>(repo, &path)?;
    let manifest_missing = matches!(pair, Pair::Missing);
    let (manifest, manifest_problem) = match pair {
        Pair::Usable(m) if m.label == label => (Some(m), None),
        Pair::Usable(m) => (
            None,
            Some(format!(
                "manifest '{}' describes backup {}, not {label}",
                repo.describe(&path),
                m.label
            )),
        ),
        Pair::Missing => (
            None,
            Some(format!(
                "manifest '{}' and its copy are missing",
                repo.describe(&path)
            )),
        ),
        Pair::Unusable(reason) => (None, Some(format!("no usable copy of manifest: {reason}"))),
    };
    // The very checks restore makes: a manifest restore would refuse is not a valid backup,
    // and its names are not followed into the repository either.
    let (manifest, manifest_problem) = match manifest.map(|m| (check_manifest(&m), m)) {
        Some((Err(err), _)) => (
            None,
            Some(format!("manifest refused by restore: {}", err.message())),
        ),
        Some((Ok(()), m)) => (Some(m), manifest_problem),
        None => (None, manifest_problem),
    };
    let mut files = Vec::new();
    let manifest_files = manifest.as_ref().map_or(0, |m| m.files.len());
    if let Some(manifest) = &manifest {
        for entry in &manifest.files {
            let holder = manifest.holder(entry).to_string();
            let (path, bundled) = match bundle::locate(stanza, manifest, entry) {
                // Nothing stored, nothing to read.
                Stored::Nowhere => continue,
                Stored::Object(path) => (path, None),
                Stored::Range { path, offset, .. } => {
                    // Named without a compression extension: it is not a file of its own.
                    let name = layout::backup_file(stanza, &holder, &entry.name, "");
                    (path, Some(Bundled { name, offset }))
                }
            };
            let key = (holder.clone(), entry.name.clone());
            let index = *held.entry(key).or_insert_with(|| {
                jobs.push(Job {
                    check: FileCheck {
                        path,
                        compress: manifest.compress_type,
                        checksum: entry.checksum.clone(),
                        size: Some(entry.size),
                        // A block-incremental entry's repo_size counts its map too.
                        repo_size: Some(
                            entry
                                .repo_size
                                .saturating_sub(entry.block.as_ref().map_or(0, |b| b.map_size)),
                        ),
                        block: entry.block.as_ref().map(|_| BlockCheck {
                            stanza: stanza.to_string(),
                            holder: holder.clone(),
                            entry: entry.clone(),
                        }),
                        bundled,
                    },
                    size_hint: entry.repo_size,
                    wal: None,
                });
                jobs.len() - 1
            });
            files.push(index);
        }
    }
    // Offline backups are consistent as they are; archive-copy stores the WAL in the backup,
    // where it is checked as backup files.
    let needs_wal = manifest
        .as_ref()
        .is_none_or(|m| m.online && !m.archive_copy);
    let archive_id = db_history
        .iter()
        .find(|db| db.id == record.db_id)
        .map(DbHistory::archive_id);
    let wal = match (needs_wal, archive_id) {
        (true, Some(archive_id)) => Some((
            archive_id,
            WalSegment::parse(&record.archive_start)?,
            WalSegment::parse(&record.archive_stop)?,
        )),
        _ => None,
    };
    Ok(BackupCheck {
        record,
        manifest_problem,
        manifest_missing,
        manifest_files,
        files,
        wal,
    })
}

/// Archive ids on disk that archive.info does not know are not verified; say so.
pub fn warn_unknown_archive_ids(repo: &dyn Storage, stanza: &str, known: &[String]) -> Result<()> {
    for entry in repo.list(&layout::archive_dir(stanza))?.unwrap_or_default() {
        if entry.file_type == FileType::Path && !known.contains(&entry.name) {
            log_warn!(
                "'{}' is not an archive id of archive.info, not verified",
                repo.describe(&layout::archive_id_dir(stanza, &entry.name))
            );
        }
    }
    Ok(())
}
