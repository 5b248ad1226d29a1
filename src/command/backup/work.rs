//! The types backup's phases and workers share: what one file to copy is ([`Item`]), where and
//! how files are written ([`CopySettings`], [`BlockSettings`]), and what copying one produced
//! ([`Copied`]). `copy`, `block` and `bundle` use them from here instead of from each other.

use crate::io::CompressType;
use crate::io::block_incr::BlockIncrResult;
use crate::io::filter::PageChecksumResult;
use crate::pg::wal::Lsn;
use crate::repo::Manifest;
use crate::repo::manifest::FileEntry;
use crate::storage::Storage;

use super::plan::{Action, SourceFile};

/// The owner names recorded for a file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Owner {
    pub user: Option<String>,
    pub group: Option<String>,
}

/// One file to back up, with what the plan decided and its owner.
#[derive(Debug)]
pub struct Item {
    pub file: SourceFile,
    pub action: Action,
    pub owner: Owner,
}

/// Where and how files are written.
pub struct CopySettings<'a> {
    pub pg: &'a dyn Storage,
    pub repo: &'a dyn Storage,
    pub stanza: &'a str,
    pub label: &'a str,
    pub compress: CompressType,
    pub level: i32,
    pub buffer_size: usize,
    /// The backup's start LSN when page checksums are verified.
    pub checksum_page: Option<Lsn>,
    /// Set when relation files are stored block-incrementally (`repo1-block`).
    pub block: Option<BlockSettings<'a>>,
}

/// The outcome for one file.
#[derive(Debug)]
pub enum Copied {
    /// Stored in this backup.
    Stored(FileEntry),
    /// Checked and found unchanged: the prior entry stands.
    Unchanged(FileEntry),
    /// Gone from the data directory.
    Removed(String),
}

/// How a backup stores relation files block-incrementally.
pub struct BlockSettings<'a> {
    /// The cluster's page size (from pg_control).
    pub block_size: u32,
    /// The manifest the backup compares with: the latest backup for incr, the full for diff.
    pub prior: Option<&'a Manifest>,
}

/// What storing one stream produced.
pub struct Stored {
    pub size: u64,
    pub checksum: String,
    pub repo_size: u64,
    pub pages: Option<PageChecksumResult>,
    pub block: Option<BlockIncrResult>,
}
