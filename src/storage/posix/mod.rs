//! `PosixStorage`: a storage driver over a local directory.
//!
//! Paths given to the driver are relative to its root; an absolute path or a `..` component is
//! refused, so no caller can reach outside the root by accident. `info` and `list` never follow
//! links. Writes are in `write.rs`: atomic (temp name, fsync, rename, fsync directory) for the
//! repository, in place for restoring into a data directory. Every error names the absolute path
//! and the OS cause.

mod direct;
mod fs_ops;
mod write;

use std::fs;
use std::io::Read;
use std::os::unix::fs::MetadataExt;
use std::path::{Component, Path, PathBuf};

use self::fs_ops::{create_path, is_missing, os_error, remove_tree, sync_path};
use self::write::{PosixRead, PosixWrite};

pub use self::direct::AlignedBuf;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileInfo, FileType, Storage, StorageWrite, WriteOptions};

/// Suffix of a file being written atomically; a crash leaves at most such a file behind.
pub const TEMP_SUFFIX: &str = ".pgkeep.tmp";

/// A storage rooted at a local directory.
#[derive(Debug, Clone)]
pub struct PosixStorage {
    root: PathBuf,
}

impl PosixStorage {
    /// A driver for the directory `root` (which need not exist yet). A relative root is made
    /// absolute against the current directory, so messages always show absolute paths.
    pub fn new(root: PathBuf) -> PosixStorage {
        let root = std::path::absolute(&root).unwrap_or(root);
        PosixStorage { root }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The absolute path of `path`, refusing anything that could leave the root.
    fn resolve(&self, path: &str) -> Result<PathBuf> {
        let relative = Path::new(path);
        let escapes = relative
            .components()
            .any(|part| !matches!(part, Component::Normal(_) | Component::CurDir));
        if escapes {
            return Err(Error::new(
                ErrorKind::Assert,
                format!("path '{path}' must be relative to the storage root and free of '..'"),
            ));
        }
        Ok(if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(relative)
        })
    }
}

/// Builds a `FileInfo` from `lstat` data; `full` is only read for a link's target.
fn file_info(name: String, full: &Path, meta: &fs::Metadata) -> Result<FileInfo> {
    let kind = meta.file_type();
    let file_type = if kind.is_file() {
        FileType::File
    } else if kind.is_dir() {
        FileType::Path
    } else if kind.is_symlink() {
        FileType::Link
    } else {
        FileType::Special
    };
    let link_target = if file_type == FileType::Link {
        let target = fs::read_link(full).map_err(|err| {
            os_error(
                ErrorKind::FileOpen,
                format!("unable to read link '{}'", full.display()),
                &err,
            )
        })?;
        Some(utf8(target.into_os_string(), full)?)
    } else {
        None
    };
    Ok(FileInfo {
        name,
        file_type,
        size: if file_type == FileType::File {
            meta.len()
        } else {
            0
        },
        mtime: meta.mtime(),
        mode: meta.mode() & 0o7777,
        uid: meta.uid(),
        gid: meta.gid(),
        link_target,
    })
}

/// Names are handed out as `String`s; a name that is not UTF-8 is refused rather than mangled.
fn utf8(name: std::ffi::OsString, place: &Path) -> Result<String> {
    name.into_string().map_err(|name| {
        Error::new(
            ErrorKind::FileInvalid,
            format!(
                "name '{}' in '{}' is not valid UTF-8",
                name.to_string_lossy(),
                place.display()
            ),
        )
    })
}

impl Storage for PosixStorage {
    fn info(&self, path: &str) -> Result<Option<FileInfo>> {
        let full = self.resolve(path)?;
        match fs::symlink_metadata(&full) {
            Ok(meta) => Ok(Some(file_info(path.to_string(), &full, &meta)?)),
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(os_error(
                ErrorKind::FileOpen,
                format!("unable to get info for '{}'", full.display()),
                &err,
            )),
        }
    }

    fn list(&self, path: &str) -> Result<Option<Vec<FileInfo>>> {
        let full = self.resolve(path)?;
        let list_error = |err: &std::io::Error| {
            os_error(
                ErrorKind::PathOpen,
                format!("unable to list '{}'", full.display()),
                err,
            )
        };
        let entries = match fs::read_dir(&full) {
            Ok(entries) => entries,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(list_error(&err)),
        };
        let mut infos = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|err| list_error(&err))?;
            let entry_path = entry.path();
            // DirEntry::metadata does not follow links. An entry removed since readdir (a
            // PostgreSQL temp file, say) is simply no longer there.
            let meta = match entry.metadata() {
                Ok(meta) => meta,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                Err(err) => {
                    return Err(os_error(
                        ErrorKind::FileOpen,
                        format!("unable to get info for '{}'", entry_path.display()),
                        &err,
                    ));
                }
            };
            let name = utf8(entry.file_name(), &full)?;
            infos.push(file_info(name, &entry_path, &meta)?);
        }
        Ok(Some(infos))
    }

    fn open_read(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>> {
        let full = self.resolve(path)?;
        let open_error = |err: &std::io::Error| {
            os_error(
                ErrorKind::FileOpen,
                format!("unable to open '{}' for read", full.display()),
                err,
            )
        };
        let file = match fs::File::open(&full) {
            Ok(file) => file,
            Err(err) if is_missing(&err) => return Ok(None),
            Err(err) => return Err(open_error(&err)),
        };
        // Linux opens a directory for reading without complaint; refuse it here, not at the
        // first read.
        let meta = file.metadata().map_err(|err| open_error(&err))?;
        if meta.is_dir() {
            return Err(open_error(&std::io::Error::from_raw_os_error(21)));
        }
        Ok(Some(Box::new(PosixRead::new(file, full))))
    }

    /// With `pread`: no reading of the bytes before `offset`.
    fn read_range(&self, path: &str, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let full = self.resolve(path)?;
        let file = match fs::File::open(&full) {
            Ok(file) => file,
            Err(err) if is_missing(&err) => return Ok(None),
            Err(err) => {
                return Err(os_error(
                    ErrorKind::FileOpen,
                    format!("unable to open '{}' for read", full.display()),
                    &err,
                ));
            }
        };
        let mut content = vec![0u8; len];
        let filled =
            crate::io::stream::read_full_at(&file, &mut content, offset).map_err(|err| {
                os_error(
                    ErrorKind::FileRead,
                    format!("unable to read '{}'", full.display()),
                    &err,
                )
            })?;
        content.truncate(filled);
        Ok(Some(content))
    }

    fn open_write(&self, path: &str, options: &WriteOptions) -> Result<Box<dyn StorageWrite>> {
        let full = self.resolve(path)?;
        Ok(Box::new(PosixWrite::open(full, options)?))
    }

    fn remove(&self, path: &str) -> Result<()> {
        let full = self.resolve(path)?;
        match fs::remove_file(&full) {
            Ok(()) => Ok(()),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(os_error(
                ErrorKind::FileRemove,
                format!("unable to remove '{}'", full.display()),
                &err,
            )),
        }
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        let full = self.resolve(path)?;
        match fs::symlink_metadata(&full) {
            Ok(meta) if meta.is_dir() => remove_tree(&full),
            Ok(_) => Err(os_error(
                ErrorKind::FileRemove,
                format!("unable to remove path '{}'", full.display()),
                &std::io::Error::from_raw_os_error(20),
            )),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(os_error(
                ErrorKind::FileRemove,
                format!("unable to remove path '{}'", full.display()),
                &err,
            )),
        }
    }

    fn create_dir(&self, path: &str, mode: u32) -> Result<()> {
        create_path(&self.resolve(path)?, mode)
    }

    fn sync_dir(&self, path: &str) -> Result<()> {
        sync_path(&self.resolve(path)?)
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let (source, target) = (self.resolve(from)?, self.resolve(to)?);
        fs::rename(&source, &target).map_err(|err| {
            let kind = if err.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::FileMissing
            } else {
                ErrorKind::FileWrite
            };
            let what = format!(
                "unable to move '{}' to '{}'",
                source.display(),
                target.display()
            );
            os_error(kind, what, &err)
        })?;
        let (source_dir, target_dir) = (source.parent(), target.parent());
        if let Some(dir) = target_dir {
            sync_path(dir)?;
        }
        match source_dir {
            Some(dir) if source_dir != target_dir => sync_path(dir),
            _ => Ok(()),
        }
    }

    fn symlink(&self, target: &str, path: &str) -> Result<()> {
        fs_ops::replace_symlink(target, &self.resolve(path)?)
    }

    fn describe(&self, path: &str) -> String {
        match self.resolve(path) {
            Ok(full) => full.display().to_string(),
            Err(_) => format!("{}/{path}", self.root.display()),
        }
    }
}

#[cfg(test)]
mod tests;
