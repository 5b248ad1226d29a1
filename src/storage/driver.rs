//! [`Driver`]: the storage drivers pgkeep has, as one closed type.
//!
//! `command::open` chooses a driver from the host options (a local directory, or a directory
//! on the host named by `repo1-host` / `pg1-host`) and commands take it as `&dyn Storage`, so
//! no command knows which one it got. An enum rather than a box keeps the call sites that
//! already borrow a concrete storage (`&repo`) unchanged.

use std::io::Read;

use crate::error::Result;
use crate::io::FilterSpec;
use crate::storage::{
    FileInfo, FilteredRead, PosixStorage, RemoteStorage, Storage, StorageWrite, WriteOptions,
};

/// A storage driver chosen at run time.
pub enum Driver {
    Posix(PosixStorage),
    Remote(RemoteStorage),
}

impl Driver {
    fn inner(&self) -> &dyn Storage {
        match self {
            Driver::Posix(posix) => posix,
            Driver::Remote(remote) => remote,
        }
    }

    /// True for a driver that reaches another host.
    pub fn is_remote(&self) -> bool {
        matches!(self, Driver::Remote(_))
    }
}

impl Storage for Driver {
    fn info(&self, path: &str) -> Result<Option<FileInfo>> {
        self.inner().info(path)
    }

    fn list(&self, path: &str) -> Result<Option<Vec<FileInfo>>> {
        self.inner().list(path)
    }

    fn open_read(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>> {
        self.inner().open_read(path)
    }

    fn open_read_filtered(
        &self,
        path: &str,
        specs: &[FilterSpec],
    ) -> Result<Option<Box<dyn FilteredRead>>> {
        self.inner().open_read_filtered(path, specs)
    }

    fn read_range(&self, path: &str, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
        self.inner().read_range(path, offset, len)
    }

    fn open_write(&self, path: &str, options: &WriteOptions) -> Result<Box<dyn StorageWrite>> {
        self.inner().open_write(path, options)
    }

    fn remove(&self, path: &str) -> Result<()> {
        self.inner().remove(path)
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        self.inner().remove_dir(path)
    }

    fn create_dir(&self, path: &str, mode: u32) -> Result<()> {
        self.inner().create_dir(path, mode)
    }

    fn sync_dir(&self, path: &str) -> Result<()> {
        self.inner().sync_dir(path)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.inner().rename(from, to)
    }

    fn symlink(&self, target: &str, path: &str) -> Result<()> {
        self.inner().symlink(target, path)
    }

    fn describe(&self, path: &str) -> String {
        self.inner().describe(path)
    }

    fn exists(&self, path: &str) -> Result<bool> {
        self.inner().exists(path)
    }

    fn read_all(&self, path: &str) -> Result<Option<Vec<u8>>> {
        self.inner().read_all(path)
    }

    fn put(&self, path: &str, content: &[u8], options: &WriteOptions) -> Result<()> {
        self.inner().put(path, content, options)
    }
}
