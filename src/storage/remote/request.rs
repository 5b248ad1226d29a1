//! The storage requests: one variant per `Storage` method the remote driver forwards, shared
//! by the driver (`RemoteStorage`, which sends them) and the far side (`serve`, which answers
//! them with an exhaustive `match`).
//!
//! Each variant wraps a struct of the same name holding the method's arguments; the table at
//! the end ([`calls!`]) says what each one answers. Paths are relative to the far side's root,
//! as `Storage` sees them. Numbers are sent as the method takes them and checked by the far
//! side before use (`serve`): a client is not trusted to send what this driver sends.

use serde::{Deserialize, Serialize};

use crate::io::{FilterResult, FilterSpec};
use crate::protocol::calls;
use crate::storage::{FileInfo, WriteOptions};

/// A storage request, tagged on the wire as `{"op":"storage.<name>","args":{...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args")]
pub enum StorageRequest {
    #[serde(rename = "storage.info")]
    Info(Info),
    #[serde(rename = "storage.list")]
    List(List),
    #[serde(rename = "storage.read")]
    ReadFile(ReadFile),
    #[serde(rename = "storage.read_range")]
    ReadRange(ReadRange),
    #[serde(rename = "storage.write")]
    WriteFile(WriteFile),
    #[serde(rename = "storage.write_abort")]
    WriteAbort(WriteAbort),
    #[serde(rename = "storage.remove")]
    Remove(Remove),
    #[serde(rename = "storage.remove_dir")]
    RemoveDir(RemoveDir),
    #[serde(rename = "storage.create_dir")]
    CreateDir(CreateDir),
    #[serde(rename = "storage.sync_dir")]
    SyncDir(SyncDir),
    #[serde(rename = "storage.rename")]
    Rename(Rename),
    #[serde(rename = "storage.symlink")]
    Symlink(Symlink),
}

/// `Storage::info`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Info {
    pub path: String,
}

/// `Storage::list`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct List {
    pub path: String,
}

/// `Storage::open_read_filtered`: `specs` run on the far side. Answers whether the file was
/// found; when it was, data frames, an end frame and a closing response carrying
/// [`ReadResults`] follow (or an error response in place of the rest, when the read fails).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadFile {
    pub path: String,
    #[serde(default)]
    pub specs: Vec<FilterSpec>,
}

/// What the closing response of a [`ReadFile`] stream carries: the filters' results.
pub type ReadResults = Vec<FilterResult>;

/// `Storage::read_range`: answers the bytes as lowercase hex (`serve::to_hex`), `None` when
/// the file is missing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ReadRange {
    pub path: String,
    pub offset: u64,
    pub len: u64,
}

/// `Storage::open_write`: answers once the file is open; data frames follow, and the end frame
/// commits (answered once committed) or a [`WriteAbort`] discards.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteFile {
    pub path: String,
    pub options: WriteOptions,
}

/// Discards the file a [`WriteFile`] opened; with none open (the open failed), does nothing.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteAbort;

/// `Storage::remove`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Remove {
    pub path: String,
}

/// `Storage::remove_dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RemoveDir {
    pub path: String,
}

/// `Storage::create_dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateDir {
    pub path: String,
    pub mode: u32,
}

/// `Storage::sync_dir`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncDir {
    pub path: String,
}

/// `Storage::rename`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rename {
    pub from: String,
    pub to: String,
}

/// `Storage::symlink`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Symlink {
    pub target: String,
    pub path: String,
}

calls!(StorageRequest {
    Info => Option<FileInfo>,
    List => Option<Vec<FileInfo>>,
    ReadFile => bool,
    ReadRange => Option<String>,
    WriteFile => (),
    WriteAbort => (),
    Remove => (),
    RemoveDir => (),
    CreateDir => (),
    SyncDir => (),
    Rename => (),
    Symlink => (),
});
