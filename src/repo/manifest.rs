//! backup.manifest: everything one backup set holds, file by file.
//!
//! Written after every data file of the backup is durable and before the backup is added to
//! backup.info. Names are relative to the backup set: `pg_data/...` for the data directory
//! (tablespaces later under `pg_tblspc/<oid>/...`). A file unchanged since a prior backup is not
//! copied again: its entry carries `reference`, the label of the backup set that holds it. A
//! small file may be stored inside a bundle of its holder (`bundle_id`, `bundle_offset`; see
//! `repo::bundle`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::CompressType;
use crate::repo::label::checked;
use crate::repo::{BackupType, info_file, layout};
use crate::storage::Storage;

/// The prefix of every data-directory entry.
pub const PG_DATA: &str = "pg_data";

/// The content of `backup/<stanza>/<label>/backup.manifest`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    #[serde(deserialize_with = "checked::label")]
    pub label: String,
    #[serde(rename = "type")]
    pub backup_type: BackupType,
    #[serde(default, deserialize_with = "checked::optional")]
    pub prior: Option<String>,
    /// Every backup set this manifest's files reference, oldest first.
    #[serde(deserialize_with = "checked::list")]
    pub references: Vec<String>,
    pub db_id: u32,
    /// Major version, e.g. "15".
    pub pg_version: String,
    pub system_id: u64,
    /// The data directory the backup was taken from.
    pub pg_path: String,
    pub compress_type: CompressType,
    pub timestamp_start: i64,
    pub timestamp_stop: i64,
    pub lsn_start: String,
    pub lsn_stop: String,
    pub archive_start: String,
    pub archive_stop: String,
    pub timeline: u32,
    /// Whether the cluster had data checksums enabled.
    pub data_checksums: bool,
    /// Whether page checksums were verified while copying.
    #[serde(default)]
    pub checksum_page: bool,
    /// False for a backup of a stopped cluster (`--no-online`): consistent without WAL.
    #[serde(default = "yes")]
    pub online: bool,
    /// Whether the WAL from start to stop is stored in the backup (`archive-copy`).
    #[serde(default)]
    pub archive_copy: bool,
    /// The databases of the cluster when the backup started.
    #[serde(default)]
    pub databases: Vec<DatabaseEntry>,
    /// User-defined `annotation` pairs.
    #[serde(default)]
    pub annotation: BTreeMap<String, String>,
    pub paths: Vec<PathEntry>,
    pub files: Vec<FileEntry>,
    pub links: Vec<LinkEntry>,
}

/// A directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PathEntry {
    pub name: String,
    pub mode: u32,
    pub user: Option<String>,
    pub group: Option<String>,
}

/// A regular file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    pub name: String,
    pub size: u64,
    /// Unix seconds.
    pub mtime: i64,
    pub mode: u32,
    pub user: Option<String>,
    pub group: Option<String>,
    /// SHA-256 of the content as it is in the data directory.
    pub checksum: String,
    /// Bytes stored in the repository (after compression).
    pub repo_size: u64,
    /// The backup set holding the content, when it is not this one.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "checked::optional"
    )]
    pub reference: Option<String>,
    /// Blocks whose page checksum failed (absolute block numbers), when pages were checked
    /// and some failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page_errors: Option<Vec<u32>>,
    /// Set when the file is stored block-incrementally (`repo::block_map`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub block: Option<BlockRef>,
    /// The bundle of the holder's set that stores the content (`bundle/<id>`), when bundled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_id: Option<u64>,
    /// Where the content starts in its bundle; `repo_size` bytes from there are its stored form.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bundle_offset: Option<u64>,
}

/// The block map of a block-incremental file, held by the same backup set as the entry
/// (`reference`, else this one) as `<name>.map`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockRef {
    /// Size of the map file.
    pub map_size: u64,
    /// SHA-256 (hex) of the map's content before its trailer, which the trailer repeats.
    pub map_checksum: String,
    /// Every backup set the map takes blocks from: they must stay while this entry does.
    #[serde(deserialize_with = "checked::list")]
    pub holders: Vec<String>,
    /// Bytes of the file's content the holding set stored itself (its changed blocks).
    pub stored_size: u64,
}

/// A database of the cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatabaseEntry {
    pub name: String,
    pub oid: u32,
}

fn yes() -> bool {
    true
}

/// A symbolic link in the data directory (e.g. a tablespace or a relocated pg_wal).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEntry {
    pub name: String,
    pub target: String,
}

impl Manifest {
    pub fn load(storage: &dyn Storage, stanza: &str, label: &str) -> Result<Option<Manifest>> {
        info_file::load(storage, &layout::manifest(stanza, label))
    }

    pub fn save(&self, storage: &dyn Storage, stanza: &str) -> Result<()> {
        info_file::save(storage, &layout::manifest(stanza, &self.label), self)
    }

    /// The backup set that holds a file's content.
    pub fn holder<'a>(&'a self, file: &'a FileEntry) -> &'a str {
        file.reference.as_deref().unwrap_or(&self.label)
    }

    pub fn file(&self, name: &str) -> Option<&FileEntry> {
        self.files.iter().find(|f| f.name == name)
    }

    /// Total size of the cluster's files in this backup.
    pub fn size(&self) -> u64 {
        saturating_sum(self.files.iter().map(|f| f.size))
    }

    /// Size of the content this backup copied itself (for a block-incremental file, the
    /// blocks it stored).
    pub fn delta(&self) -> u64 {
        let sizes = self
            .files
            .iter()
            .filter(|f| f.reference.is_none())
            .map(|f| f.block.as_ref().map_or(f.size, |b| b.stored_size));
        saturating_sum(sizes)
    }

    /// Every backup set this manifest's files need: references and block map holders.
    pub fn needed_sets(files: &[FileEntry], label: &str) -> Vec<String> {
        let mut sets: Vec<String> = files
            .iter()
            .flat_map(|f| {
                f.reference
                    .iter()
                    .chain(f.block.iter().flat_map(|b| b.holders.iter()))
            })
            .filter(|l| *l != label)
            .cloned()
            .collect();
        sets.sort();
        sets.dedup();
        sets
    }

    pub fn repo_size(&self) -> u64 {
        saturating_sum(self.files.iter().map(|f| f.repo_size))
    }

    pub fn repo_delta(&self) -> u64 {
        let sizes = self
            .files
            .iter()
            .filter(|f| f.reference.is_none())
            .map(|f| f.repo_size);
        saturating_sum(sizes)
    }
}

/// A total of sizes read from a manifest: sizes anyone who can write the repository can set
/// (the envelope checksum is recomputable) must not overflow (a panic in a debug build, a
/// wrapped total in a release one), so the total stops at `u64::MAX`.
fn saturating_sum(sizes: impl Iterator<Item = u64>) -> u64 {
    sizes.fold(0, u64::saturating_add)
}
