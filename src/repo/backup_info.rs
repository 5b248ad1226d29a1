//! backup.info: the list of a stanza's valid backups.
//!
//! A backup is listed here only after all its files and its manifest are durable in the
//! repository; expire removes the entry before removing the files. So a listed backup is always
//! complete, and a directory that is not listed is at worst an unfinished or half-expired set.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::archive_info::stanza_missing;
use crate::repo::label::checked;
use crate::repo::{BackupType, DbHistory, info_file, layout};
use crate::storage::Storage;

/// The content of `backup/<stanza>/backup.info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupInfo {
    /// Every cluster this stanza has backed up, oldest first; the last is current.
    pub db_history: Vec<DbHistory>,
    /// Valid backups, oldest first.
    pub backups: Vec<BackupRecord>,
}

/// What backup.info records of one backup (the manifest holds the full detail).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BackupRecord {
    #[serde(deserialize_with = "checked::label")]
    pub label: String,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    /// The backup this one is based on (diff: its full; incr: the previous backup).
    #[serde(default, deserialize_with = "checked::optional")]
    pub prior: Option<String>,
    /// Every backup holding files this one references, oldest first.
    #[serde(deserialize_with = "checked::list")]
    pub references: Vec<String>,
    /// Id of the `db_history` entry of the cluster backed up.
    pub db_id: u32,
    /// Unix seconds.
    pub timestamp_start: i64,
    pub timestamp_stop: i64,
    pub lsn_start: String,
    pub lsn_stop: String,
    /// First and last WAL segment needed to make the backup consistent.
    pub archive_start: String,
    pub archive_stop: String,
    /// Size of the cluster's files in the backup.
    pub size: u64,
    /// Size of the files copied by this backup (the rest are references).
    pub delta: u64,
    /// Repository bytes of all the files of the backup, including referenced ones.
    pub repo_size: u64,
    /// Repository bytes written by this backup.
    pub repo_delta: u64,
    /// User-defined `annotation` pairs.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub annotation: std::collections::BTreeMap<String, String>,
    /// The pgkeep version that made the backup (`info`'s `backrest.version`); absent in
    /// backups made before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the backup found invalid page checksums (`info`'s `error`); absent in backups
    /// made before it was recorded, which `info` then reports as unknown, as pgBackRest does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<bool>,
}

impl BackupInfo {
    pub fn new(db: DbHistory) -> BackupInfo {
        BackupInfo {
            db_history: vec![db],
            backups: Vec::new(),
        }
    }

    pub fn current(&self) -> Result<&DbHistory> {
        self.db_history.last().ok_or_else(|| {
            Error::new(
                ErrorKind::FileInvalid,
                "backup.info has an empty db history",
            )
        })
    }

    pub fn find(&self, label: &str) -> Option<&BackupRecord> {
        self.backups.iter().find(|b| b.label == label)
    }

    /// The newest backup, of any type.
    pub fn latest(&self) -> Option<&BackupRecord> {
        self.backups.last()
    }

    /// The newest full backup.
    pub fn latest_full(&self) -> Option<&BackupRecord> {
        self.backups
            .iter()
            .rev()
            .find(|b| b.backup_type == BackupType::Full)
    }

    /// Adds a backup, keeping the list in label order.
    pub fn add(&mut self, record: BackupRecord) {
        self.backups.retain(|b| b.label != record.label);
        self.backups.push(record);
        self.backups.sort_by(|a, b| a.label.cmp(&b.label));
    }

    pub fn load(storage: &dyn Storage, stanza: &str) -> Result<Option<BackupInfo>> {
        info_file::load(storage, &layout::backup_info(stanza))
    }

    pub fn load_required(storage: &dyn Storage, stanza: &str) -> Result<BackupInfo> {
        BackupInfo::load(storage, stanza)?
            .ok_or_else(|| stanza_missing(storage, stanza, &layout::backup_info(stanza)))
    }

    pub fn save(&self, storage: &dyn Storage, stanza: &str) -> Result<()> {
        info_file::save(storage, &layout::backup_info(stanza), self)
    }
}
