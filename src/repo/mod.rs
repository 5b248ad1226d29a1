//! The repository format: where things live, and the files that describe them.
//!
//! Everything about the repository's layout and its metadata files is here; nothing here
//! knows about options, PostgreSQL sessions or the clock (callers pass `now`). The format and
//! its write-ordering invariants are specified in docs/repository-format.md.

pub mod archive;
pub mod archive_info;
pub mod archived_wal;
pub mod backup_info;
pub mod block_map;
pub mod block_read;
pub mod block_write;
pub mod bundle;
pub mod expire;
pub mod info_file;
pub mod label;
pub mod layout;
pub mod manifest;
pub mod manifest_check;
pub mod retention;
pub mod stanza;

pub use archive_info::ArchiveInfo;
pub use backup_info::{BackupInfo, BackupRecord};
pub use label::{BackupLabel, BackupType};
pub use manifest::Manifest;

use serde::{Deserialize, Serialize};

/// One entry of a stanza's database history: a cluster the stanza has backed up.
/// A new entry is added when the cluster is upgraded (stanza-upgrade); ids start at 1.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DbHistory {
    pub id: u32,
    /// Major version, e.g. "15".
    pub version: String,
    pub system_id: u64,
    pub catalog_version: u32,
    pub control_version: u32,
}

impl DbHistory {
    /// The archive id of this cluster, e.g. `15-1`: the directory its WAL is archived under.
    pub fn archive_id(&self) -> String {
        format!("{}-{}", self.version, self.id)
    }
}
