//! `PosixStorage`: a storage driver over a local directory.
//!
//! Paths given to the driver are relative to its root; an absolute path or a `..` component is
//! refused by name, and links on the way are followed only as the storage's [`Confine`] allows,
//! checked by the kernel while it resolves the path (`beneath.rs`), so neither a caller nor a
//! client of `:remote` reaches outside the root. `info` and `list` never follow the final
//! link. Writes are in `write.rs`: atomic (temp name, fsync, rename, fsync directory) for the
//! repository, in place for restoring into a data directory. Every error names the absolute
//! path and the OS cause.

mod beneath;
mod direct;
mod fs_ops;
mod write;

use std::ffi::OsStr;
use std::io::Read;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use nix::fcntl::{AtFlags, OFlag, readlinkat};
use nix::sys::stat::{FileStat, Mode, SFlag, fstat, fstatat};

use self::beneath::{Beneath, is_relative_and_plain, sync_dir_fd};
use self::fs_ops::{create_path, is_missing, os_error, remove_tree, replace_symlink};
use self::write::{PosixRead, PosixWrite};

pub use self::beneath::Confine;
pub use self::direct::AlignedBuf;
use crate::error::{Error, ErrorKind, Result};
use crate::storage::{FileInfo, FileType, Storage, StorageWrite, WriteOptions};

/// Suffix of a file being written atomically; a crash leaves at most such a file behind.
pub const TEMP_SUFFIX: &str = ".pgkeep.tmp";

/// A storage rooted at a local directory.
#[derive(Debug, Clone)]
pub struct PosixStorage {
    root: PathBuf,
    confine: Confine,
}

impl PosixStorage {
    /// A driver for the directory `root` (which need not exist yet) that follows links
    /// wherever they lead: for directories whose paths the command itself decides (a restore's
    /// targets). A relative root is made absolute against the current directory, so messages
    /// always show absolute paths.
    pub fn new(root: PathBuf) -> PosixStorage {
        PosixStorage::confined(root, Confine::Follow)
    }

    /// A driver for a repository: every path stays beneath `root`, links included, and a link
    /// it creates may only name an entry of its own directory (`latest` -> `<label>`).
    pub fn repository(root: PathBuf) -> PosixStorage {
        PosixStorage::confined(root, Confine::Beneath)
    }

    /// A read-only driver for a data directory: its own links (tablespaces, a relocated
    /// `pg_wal`) are followed one hop, and nothing can be written, removed or linked.
    pub fn data_dir(root: PathBuf) -> PosixStorage {
        PosixStorage::confined(root, Confine::DataDir)
    }

    pub fn confined(root: PathBuf, confine: Confine) -> PosixStorage {
        let root = std::path::absolute(&root).unwrap_or(root);
        PosixStorage { root, confine }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn confine(&self) -> Confine {
        self.confine
    }

    /// The absolute path of `path` (for messages) and `path` itself as a relative path,
    /// refusing by name anything that could leave the root; links are the kernel's to check
    /// (`beneath`).
    fn resolve<'a>(&self, path: &'a str) -> Result<(PathBuf, &'a Path)> {
        let relative = Path::new(path);
        if !is_relative_and_plain(relative) {
            return Err(Error::new(
                ErrorKind::Assert,
                format!("path '{path}' must be relative to the storage root and free of '..'"),
            ));
        }
        let full = if path.is_empty() {
            self.root.clone()
        } else {
            self.root.join(relative)
        };
        Ok((full, relative))
    }

    fn beneath(&self) -> Beneath<'_> {
        Beneath {
            root: &self.root,
            confine: self.confine,
        }
    }

    /// Refuses a change to a read-only (data directory) storage before touching anything.
    fn writable(&self, kind: ErrorKind, what: impl FnOnce() -> String) -> Result<()> {
        if self.confine == Confine::DataDir {
            let cause = std::io::Error::other(format!(
                "the data directory '{}' is served read-only",
                self.root.display()
            ));
            return Err(os_error(kind, what(), &cause));
        }
        Ok(())
    }

    /// Creates `rel` and its missing parents beneath the root with exactly `mode`.
    fn create_rel(&self, rel: &Path, mode: u32) -> Result<()> {
        // The root itself is the command's own setting: made by path, as it always was.
        if std::fs::metadata(&self.root).is_err() {
            create_path(&self.root, mode)?;
        }
        fs_ops::create_dirs(&self.beneath(), rel, mode)
    }

    /// Opens a file for reading, with its metadata and absolute path; `None` when it does not
    /// exist. Linux opens a directory for reading without complaint: it is refused here, not at
    /// the first read.
    fn open_file(&self, path: &str) -> Result<Option<(std::fs::File, std::fs::Metadata, PathBuf)>> {
        let (full, rel) = self.resolve(path)?;
        let open_error = |err: &std::io::Error| {
            os_error(
                ErrorKind::FileOpen,
                format!("unable to open '{}' for read", full.display()),
                err,
            )
        };
        let file = match self.beneath().open(rel, OFlag::O_RDONLY, Mode::empty()) {
            Ok(fd) => std::fs::File::from(fd),
            Err(err) if is_missing(&err) => return Ok(None),
            Err(err) => return Err(open_error(&err)),
        };
        let meta = file.metadata().map_err(|err| open_error(&err))?;
        if meta.is_dir() {
            return Err(open_error(&std::io::Error::from_raw_os_error(21)));
        }
        Ok(Some((file, meta, full)))
    }
}

/// Builds a `FileInfo` from `stat` data; the link's target is read from `dir`/`name`.
fn file_info(
    name: String,
    stat: &FileStat,
    link: Option<(&OwnedFd, &OsStr)>,
    full: &Path,
) -> Result<FileInfo> {
    let format = SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT;
    let file_type = if format == SFlag::S_IFREG {
        FileType::File
    } else if format == SFlag::S_IFDIR {
        FileType::Path
    } else if format == SFlag::S_IFLNK {
        FileType::Link
    } else {
        FileType::Special
    };
    let link_target = match (file_type, link) {
        (FileType::Link, Some((dir, name))) => {
            let target = readlinkat(dir, name).map_err(|errno| {
                os_error(
                    ErrorKind::FileOpen,
                    format!("unable to read link '{}'", full.display()),
                    &std::io::Error::from(errno),
                )
            })?;
            Some(utf8(target, full)?)
        }
        _ => None,
    };
    Ok(FileInfo {
        name,
        file_type,
        size: if file_type == FileType::File {
            u64::try_from(stat.st_size).unwrap_or(0)
        } else {
            0
        },
        mtime: stat.st_mtime,
        mode: stat.st_mode & 0o7777,
        uid: stat.st_uid,
        gid: stat.st_gid,
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

fn io(errno: nix::errno::Errno) -> std::io::Error {
    std::io::Error::from(errno)
}

impl Storage for PosixStorage {
    fn info(&self, path: &str) -> Result<Option<FileInfo>> {
        let (full, rel) = self.resolve(path)?;
        let info_error = |err: &std::io::Error| {
            os_error(
                ErrorKind::FileOpen,
                format!("unable to get info for '{}'", full.display()),
                err,
            )
        };
        let found = if rel.file_name().is_none() || path.ends_with('/') {
            // The root, or a path that names a directory ("dir/"): links on the way, the last
            // one included, are followed as the storage allows.
            let flags = if path.ends_with('/') {
                OFlag::O_PATH | OFlag::O_DIRECTORY
            } else {
                OFlag::O_PATH
            };
            self.beneath()
                .open(rel, flags, Mode::empty())
                .and_then(|fd| fstat(&fd).map_err(io))
                .map(|stat| (stat, None))
        } else {
            self.beneath().parent(rel).and_then(|(dir, name)| {
                let stat =
                    fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
                Ok((stat, Some((dir, name))))
            })
        };
        match found {
            Ok((stat, link)) => {
                let link = link.as_ref().map(|(dir, name)| (dir, name.as_os_str()));
                Ok(Some(file_info(path.to_string(), &stat, link, &full)?))
            }
            Err(err) if is_missing(&err) => Ok(None),
            Err(err) => Err(info_error(&err)),
        }
    }

    fn list(&self, path: &str) -> Result<Option<Vec<FileInfo>>> {
        let (full, rel) = self.resolve(path)?;
        let list_error = |err: &std::io::Error| {
            os_error(
                ErrorKind::PathOpen,
                format!("unable to list '{}'", full.display()),
                err,
            )
        };
        let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY;
        let dir = match self.beneath().open(rel, flags, Mode::empty()) {
            Ok(dir) => dir,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(err) => return Err(list_error(&err)),
        };
        let names = fs_ops::entry_names(&dir).map_err(|err| list_error(&err))?;
        let mut infos = Vec::with_capacity(names.len());
        for name in names {
            // Links are not followed. An entry removed since readdir (a PostgreSQL temp file,
            // say) is simply no longer there.
            let entry_path = full.join(&name);
            let stat = match fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW) {
                Ok(stat) => stat,
                Err(nix::errno::Errno::ENOENT) => continue,
                Err(errno) => {
                    return Err(os_error(
                        ErrorKind::FileOpen,
                        format!("unable to get info for '{}'", entry_path.display()),
                        &io(errno),
                    ));
                }
            };
            let link = Some((&dir, name.as_os_str()));
            let info_name = utf8(name.clone(), &full)?;
            infos.push(file_info(info_name, &stat, link, &entry_path)?);
        }
        Ok(Some(infos))
    }

    fn open_read(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>> {
        Ok(self
            .open_file(path)?
            .map(|(file, _, full)| Box::new(PosixRead::new(file, full)) as Box<dyn Read + Send>))
    }

    /// With `pread`: no reading of the bytes before `offset`, and never more room than the
    /// file's real size leaves after `offset`, whatever `len` says.
    fn read_range(&self, path: &str, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let Some((file, meta, full)) = self.open_file(path)? else {
            return Ok(None);
        };
        let left = meta.len().saturating_sub(offset);
        let len = usize::try_from(left).map_or(len, |left| left.min(len));
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
        let (full, rel) = self.resolve(path)?;
        let what = || format!("unable to open '{}' for write", full.display());
        self.writable(ErrorKind::FileOpen, what)?;
        let parent = match self.beneath().parent(rel) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && options.create_path => {
                if let Some(dir) = rel.parent() {
                    self.create_rel(dir, write::PATH_MODE)?;
                }
                self.beneath().parent(rel)
            }
            other => other,
        };
        let (dir, name) = parent.map_err(|err| os_error(ErrorKind::FileOpen, what(), &err))?;
        Ok(Box::new(PosixWrite::open(
            &self.beneath(),
            dir,
            name,
            full,
            options,
        )?))
    }

    fn remove(&self, path: &str) -> Result<()> {
        let (full, rel) = self.resolve(path)?;
        let what = || format!("unable to remove '{}'", full.display());
        self.writable(ErrorKind::FileRemove, what)?;
        let removed = self.beneath().parent(rel).and_then(|(dir, name)| {
            nix::unistd::unlinkat(
                &dir,
                name.as_os_str(),
                nix::unistd::UnlinkatFlags::NoRemoveDir,
            )
            .map_err(io)
        });
        match removed {
            Ok(()) => Ok(()),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(os_error(ErrorKind::FileRemove, what(), &err)),
        }
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        let (full, rel) = self.resolve(path)?;
        let what = || format!("unable to remove path '{}'", full.display());
        self.writable(ErrorKind::FileRemove, what)?;
        if rel.file_name().is_none() {
            // A repository's root is the command's setting, not one of its entries: a client
            // of a repo remote may empty the repository entry by entry, never remove it.
            if self.confine == Confine::Beneath {
                let cause = std::io::Error::other("the storage root itself is not removed");
                return Err(os_error(ErrorKind::FileRemove, what(), &cause));
            }
            // The root itself: its contents through the storage, then the command's own path.
            let root =
                match self
                    .beneath()
                    .open(rel, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
                {
                    Ok(root) => root,
                    Err(err) if is_missing(&err) => return Ok(()),
                    Err(err) => return Err(os_error(ErrorKind::FileRemove, what(), &err)),
                };
            fs_ops::remove_contents(&root, &full)?;
            return match std::fs::remove_dir(&self.root) {
                Err(err) if !is_missing(&err) => Err(os_error(ErrorKind::FileRemove, what(), &err)),
                _ => Ok(()),
            };
        }
        let found = self.beneath().parent(rel).and_then(|(dir, name)| {
            let stat = fstatat(&dir, name.as_os_str(), AtFlags::AT_SYMLINK_NOFOLLOW).map_err(io)?;
            Ok((dir, name, stat))
        });
        match found {
            Ok((dir, name, stat))
                if SFlag::from_bits_truncate(stat.st_mode) & SFlag::S_IFMT == SFlag::S_IFDIR =>
            {
                remove_tree(&dir, &name, &full)
            }
            Ok(_) => Err(os_error(
                ErrorKind::FileRemove,
                what(),
                &std::io::Error::from_raw_os_error(20),
            )),
            Err(err) if is_missing(&err) => Ok(()),
            Err(err) => Err(os_error(ErrorKind::FileRemove, what(), &err)),
        }
    }

    fn create_dir(&self, path: &str, mode: u32) -> Result<()> {
        let (full, rel) = self.resolve(path)?;
        self.writable(ErrorKind::PathCreate, || {
            format!("unable to create path '{}'", full.display())
        })?;
        self.create_rel(rel, mode)
    }

    fn sync_dir(&self, path: &str) -> Result<()> {
        let (full, rel) = self.resolve(path)?;
        let synced = self
            .beneath()
            .open(rel, OFlag::O_PATH | OFlag::O_DIRECTORY, Mode::empty())
            .and_then(|dir| sync_dir_fd(&dir));
        synced.map_err(|err| fs_ops::sync_error(&full, &err))
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        let ((source, from_rel), (target, to_rel)) = (self.resolve(from)?, self.resolve(to)?);
        let what = || {
            format!(
                "unable to move '{}' to '{}'",
                source.display(),
                target.display()
            )
        };
        let fail = |err: &std::io::Error| {
            let kind = if err.kind() == std::io::ErrorKind::NotFound {
                ErrorKind::FileMissing
            } else {
                ErrorKind::FileWrite
            };
            os_error(kind, what(), err)
        };
        self.writable(ErrorKind::FileWrite, what)?;
        let (source_dir, source_name) = self.beneath().parent(from_rel).map_err(|e| fail(&e))?;
        let (target_dir, target_name) = self.beneath().parent(to_rel).map_err(|e| fail(&e))?;
        nix::fcntl::renameat(
            &source_dir,
            source_name.as_os_str(),
            &target_dir,
            target_name.as_os_str(),
        )
        .map_err(|errno| fail(&io(errno)))?;
        let (source_parent, target_parent) = (source.parent(), target.parent());
        sync_dir_fd(&target_dir)
            .map_err(|err| fs_ops::sync_error(target_parent.unwrap_or(&target), &err))?;
        if source_parent != target_parent {
            sync_dir_fd(&source_dir)
                .map_err(|err| fs_ops::sync_error(source_parent.unwrap_or(&source), &err))?;
        }
        Ok(())
    }

    /// A repository's link may only name an entry of its own directory (`latest` ->
    /// `<label>`); a link is never placed through another link out of the root.
    fn symlink(&self, target: &str, path: &str) -> Result<()> {
        let (full, rel) = self.resolve(path)?;
        let what = || format!("unable to create link '{}'", full.display());
        self.writable(ErrorKind::FileWrite, what)?;
        if self.confine == Confine::Beneath && !is_plain_name(target) {
            let cause = std::io::Error::other(format!(
                "target '{target}' is not the name of an entry in the same directory"
            ));
            return Err(os_error(ErrorKind::FileWrite, what(), &cause));
        }
        let (dir, name) = self
            .beneath()
            .parent(rel)
            .map_err(|err| os_error(ErrorKind::FileWrite, what(), &err))?;
        replace_symlink(target, &dir, &name, &full)
    }

    fn describe(&self, path: &str) -> String {
        match self.resolve(path) {
            Ok((full, _)) => full.display().to_string(),
            Err(_) => format!("{}/{path}", self.root.display()),
        }
    }
}

/// A single name: not empty, no '/', not '.' or '..'.
fn is_plain_name(name: &str) -> bool {
    !name.is_empty() && !name.contains('/') && name != "." && name != ".." && !name.contains('\0')
}

#[cfg(test)]
mod tests;
