//! archive.info: which clusters a stanza archives WAL for.

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::{DbHistory, info_file, layout};
use crate::storage::Storage;

/// The content of `archive/<stanza>/archive.info`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchiveInfo {
    /// Every cluster this stanza has archived for, oldest first; the last is current.
    pub db_history: Vec<DbHistory>,
}

impl ArchiveInfo {
    pub fn new(db: DbHistory) -> ArchiveInfo {
        ArchiveInfo {
            db_history: vec![db],
        }
    }

    /// The cluster WAL is archived for now.
    pub fn current(&self) -> Result<&DbHistory> {
        self.db_history.last().ok_or_else(|| {
            Error::new(
                ErrorKind::FileInvalid,
                "archive.info has an empty db history",
            )
        })
    }

    pub fn load(storage: &dyn Storage, stanza: &str) -> Result<Option<ArchiveInfo>> {
        info_file::load(storage, &layout::archive_info(stanza))
    }

    /// Loads archive.info, or fails with a hint to run stanza-create.
    pub fn load_required(storage: &dyn Storage, stanza: &str) -> Result<ArchiveInfo> {
        ArchiveInfo::load(storage, stanza)?
            .ok_or_else(|| stanza_missing(storage, stanza, &layout::archive_info(stanza)))
    }

    pub fn save(&self, storage: &dyn Storage, stanza: &str) -> Result<()> {
        info_file::save(storage, &layout::archive_info(stanza), self)
    }
}

/// The error for a stanza whose info file is missing.
pub fn stanza_missing(storage: &dyn Storage, stanza: &str, path: &str) -> Error {
    Error::new(
        ErrorKind::FileMissing,
        format!(
            "stanza '{stanza}' does not exist: '{}' is missing",
            storage.describe(path)
        ),
    )
    .with_hint(format!(
        "has a stanza-create been performed? ({})",
        crate::error::command_hint(&format!("--stanza={stanza} stanza-create"))
    ))
}
