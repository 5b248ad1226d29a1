//! The storage seam: where bytes live.
//!
//! A [`Storage`] driver sees paths relative to its root and bytes; it knows nothing of
//! repositories, backups or WAL. Drivers: `posix` (a local directory), later `remote` (over the
//! protocol) and `s3`. Every driver passes the shared conformance suite, `storage::conformance`.
//!
//! The only way a file appears is [`StorageWrite::commit`]: until then it is invisible under its
//! final name, and a write dropped without commit leaves nothing behind but, at worst, a temp
//! file that later runs ignore. (In-place writes, `atomic: false`, are for restoring into a data
//! directory: there the bytes show as they are written, and a dropped write removes the file.)

#[cfg(any(test, feature = "testing"))]
pub mod conformance;
pub mod driver;
pub mod filtered;
pub mod posix;
pub mod remote;

use std::io::{Read, Write};

use serde::{Deserialize, Serialize};

use crate::error::{ErrorKind, Result};
use crate::io::FilterSpec;
use crate::io::stream::from_io_error;

pub use driver::Driver;
pub use filtered::{ChainReader, FilteredRead};
pub use posix::{AlignedBuf, PosixStorage};
pub use remote::RemoteStorage;

/// The type of a directory entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum FileType {
    File,
    Path,
    Link,
    /// Sockets, devices, fifos: listed so callers can skip them deliberately.
    Special,
}

/// What `info` and `list` report about an entry. Links are not followed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileInfo {
    /// The entry name (for `list`) or the path asked for (for `info`).
    pub name: String,
    pub file_type: FileType,
    pub size: u64,
    /// Modification time, seconds since the Unix epoch.
    pub mtime: i64,
    /// Permission bits, e.g. 0o600.
    pub mode: u32,
    pub uid: u32,
    pub gid: u32,
    /// Link destination, for links.
    pub link_target: Option<String>,
}

/// How a file is written.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WriteOptions {
    /// Permission bits of the new file.
    pub mode: u32,
    /// Set the modification time (seconds since the epoch) after writing.
    pub mtime: Option<i64>,
    /// Create missing parent directories (mode 0750).
    pub create_path: bool,
    /// Write under a temp name and rename on commit; otherwise write in place.
    pub atomic: bool,
    /// fsync the file on commit.
    pub sync_file: bool,
    /// fsync the parent directory on commit, so the new name is durable.
    pub sync_path: bool,
    /// The file was most likely created already (a restore creates its files ahead of its
    /// workers): open it without O_CREAT, which would take its directory's lock, and create it
    /// only if it is missing. Only for writes in place.
    pub created_ahead: bool,
    /// Bypass the page cache (O_DIRECT) where the file system allows it; see
    /// `storage::posix::direct`. For large files a restore writes in place and syncs later.
    #[serde(default)]
    pub direct: bool,
    /// Start writing each write's pages to the device at once, so that the fsync at commit
    /// finds little left to wait for: for a file that must be durable before the command
    /// answers (archive-push), written while the rest of it is still being produced.
    #[serde(default)]
    pub start_writeback: bool,
}

impl Default for WriteOptions {
    /// The repository default: atomic and durable.
    fn default() -> Self {
        WriteOptions {
            mode: 0o640,
            mtime: None,
            create_path: true,
            atomic: true,
            sync_file: true,
            sync_path: true,
            created_ahead: false,
            direct: false,
            start_writeback: false,
        }
    }
}

impl WriteOptions {
    /// The repository default for a file whose directory was created up front and is synced
    /// once after all its files (a backup set's files, bundles and block maps): atomic and
    /// fsynced, without creating or syncing the directory per file.
    pub fn in_prepared_dir() -> WriteOptions {
        WriteOptions {
            create_path: false,
            sync_path: false,
            ..WriteOptions::default()
        }
    }
}

/// A file being written. Dropping it without `commit` discards it.
pub trait StorageWrite: Write + Send {
    /// Makes the file visible under its final name, durably as the options asked.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A storage driver. Paths are relative to the driver's root; "" is the root itself.
pub trait Storage: Send + Sync {
    /// Information about one entry, `None` when it does not exist.
    fn info(&self, path: &str) -> Result<Option<FileInfo>>;

    /// The entries of a directory (not recursive, unsorted); `None` when it does not exist.
    fn list(&self, path: &str) -> Result<Option<Vec<FileInfo>>>;

    /// Opens a file for reading; `None` when it does not exist.
    fn open_read(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>>;

    /// Opens a file for reading through a chain of filters run where the file is: on the far
    /// side for a remote driver, so a backup checksums and compresses a file on the database
    /// host and only the compressed bytes cross the network. The reader yields the chain's
    /// output; `FilteredRead::results` gives the filters' results once it has reached the end.
    /// `None` when the file does not exist.
    fn open_read_filtered(
        &self,
        path: &str,
        specs: &[FilterSpec],
    ) -> Result<Option<Box<dyn FilteredRead>>> {
        let Some(reader) = self.open_read(path)? else {
            return Ok(None);
        };
        Ok(Some(Box::new(ChainReader::new(reader, specs)?)))
    }

    /// Up to `len` bytes of a file from `offset` (fewer at the end of the file); `None` when
    /// the file does not exist. For re-reading a few pages, not for streaming.
    fn read_range(&self, path: &str, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let Some(reader) = self.open_read(path)? else {
            return Ok(None);
        };
        let fail = |err| {
            from_io_error(
                err,
                ErrorKind::FileRead,
                &format!("read '{}'", self.describe(path)),
            )
        };
        let mut reader = reader;
        std::io::copy(&mut (&mut reader).take(offset), &mut std::io::sink()).map_err(fail)?;
        let mut content = Vec::with_capacity(len);
        reader
            .take(len as u64)
            .read_to_end(&mut content)
            .map_err(fail)?;
        Ok(Some(content))
    }

    /// Opens a file for writing; nothing is visible until `commit`.
    fn open_write(&self, path: &str, options: &WriteOptions) -> Result<Box<dyn StorageWrite>>;

    /// Removes a file; a missing file is not an error.
    fn remove(&self, path: &str) -> Result<()>;

    /// Removes a directory and everything under it; a missing directory is not an error.
    fn remove_dir(&self, path: &str) -> Result<()>;

    /// Creates a directory and its missing parents.
    fn create_dir(&self, path: &str, mode: u32) -> Result<()>;

    /// Makes a directory's entries durable.
    fn sync_dir(&self, path: &str) -> Result<()>;

    /// Renames within the storage, durably (both directories synced).
    fn rename(&self, from: &str, to: &str) -> Result<()>;

    /// Creates a symbolic link at `path` pointing to `target`, replacing one already there.
    fn symlink(&self, target: &str, path: &str) -> Result<()>;

    /// A display name for messages, e.g. the absolute path of the root.
    fn describe(&self, path: &str) -> String;

    /// True when an entry exists at `path` (a link counts, whatever it points to).
    fn exists(&self, path: &str) -> Result<bool> {
        Ok(self.info(path)?.is_some())
    }

    /// The whole content of a small file (an info file, a manifest); `None` when it does not
    /// exist. Stream large files with `open_read` instead.
    fn read_all(&self, path: &str) -> Result<Option<Vec<u8>>> {
        let Some(mut reader) = self.open_read(path)? else {
            return Ok(None);
        };
        let mut content = Vec::new();
        reader.read_to_end(&mut content).map_err(|err| {
            from_io_error(
                err,
                ErrorKind::FileRead,
                &format!("read '{}'", self.describe(path)),
            )
        })?;
        Ok(Some(content))
    }

    /// Writes `content` to `path` and commits it.
    fn put(&self, path: &str, content: &[u8], options: &WriteOptions) -> Result<()> {
        let mut writer = self.open_write(path, options)?;
        writer.write_all(content).map_err(|err| {
            from_io_error(
                err,
                ErrorKind::FileWrite,
                &format!("write '{}'", self.describe(path)),
            )
        })?;
        writer.commit()
    }
}
