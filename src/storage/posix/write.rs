//! Reading and writing files of a `PosixStorage`.
//!
//! `PosixWrite` is the only way a file appears. Atomic writes go to `<name>.pgkeep.tmp` in the
//! same directory; `commit` sets mode and mtime, fsyncs the file, renames it over the final name
//! and fsyncs the directory, so the file is visible only once complete and durable. Mode and
//! mtime are set before the fsync so that they are durable too. In-place writes (restoring into
//! a data directory) follow the same steps without the rename. Dropping a writer without
//! `commit` removes what it wrote. Errors, ENOSPC included, carry the file's path and the OS
//! cause through `std::io::Error` (see `io::stream`). Every step works on the descriptor of
//! the file's directory, reached beneath the storage's root (`beneath.rs`): the temp file, the
//! rename and the directory sync all happen in that very directory.

use std::ffi::OsString;
use std::fs::{File, FileTimes, Permissions};
use std::io::{Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use nix::errno::Errno;
use nix::fcntl::OFlag;
use nix::sys::stat::Mode;
use nix::unistd::{UnlinkatFlags, unlinkat};

use super::beneath::{Beneath, sync_dir_fd};
use super::direct::DirectWrite;
use super::fs_ops::{os_error, sync_error, temp_name};
use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::to_io_error;
use crate::storage::{StorageWrite, WriteOptions};

/// Parent directories made for `WriteOptions::create_path` get this mode.
pub(super) const PATH_MODE: u32 = 0o750;

/// A file open for reading; errors name the file.
pub(super) struct PosixRead {
    file: File,
    path: PathBuf,
}

impl PosixRead {
    pub(super) fn new(file: File, path: PathBuf) -> PosixRead {
        PosixRead { file, path }
    }
}

impl Read for PosixRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.file.read(buf).map_err(|err| {
            if err.kind() == std::io::ErrorKind::Interrupted {
                return err;
            }
            let what = format!("unable to read '{}'", self.path.display());
            to_io_error(os_error(ErrorKind::FileRead, what, &err))
        })
    }
}

/// A file being written; see the module comment for the commit protocol.
pub(super) struct PosixWrite {
    file: Option<File>,
    /// The directory the file is written in.
    dir: OwnedFd,
    /// Where the bytes go: the temp name for atomic writes, else the final name.
    written: OsString,
    /// The final name in `dir`.
    name: OsString,
    /// The name the file has once committed, in full; used in messages.
    path: PathBuf,
    options: WriteOptions,
    /// Set when the file is written bypassing the page cache (`WriteOptions::direct`).
    direct: Option<DirectWrite>,
    /// Bytes written so far: where the next write's writeback starts
    /// (`WriteOptions::start_writeback`).
    offset: u64,
    committed: bool,
}

impl PosixWrite {
    /// Opens `name` in the directory `dir` (the caller made missing parents already).
    pub(super) fn open(
        beneath: &Beneath<'_>,
        dir: OwnedFd,
        name: OsString,
        path: PathBuf,
        options: &WriteOptions,
    ) -> Result<PosixWrite> {
        let written = if options.atomic {
            temp_name(&name)
        } else {
            name.clone()
        };
        // O_DIRECT is asked for at open; a file system that refuses it says EINVAL, and the
        // file is then opened as any other.
        let flags = |direct: bool| {
            let base = OFlag::O_WRONLY | OFlag::O_TRUNC;
            if direct { base | OFlag::O_DIRECT } else { base }
        };
        let mode = Mode::from_bits_truncate(options.mode);
        let open_as =
            |direct: bool| beneath.open_in(&dir, &written, flags(direct) | OFlag::O_CREAT, mode);
        let mut direct = options.direct;
        let open = || match open_as(direct) {
            Err(err) if direct && err.raw_os_error() == Some(Errno::EINVAL as i32) => {
                direct = false;
                open_as(false)
            }
            other => other,
        };
        let existing = if options.atomic || !options.created_ahead {
            None
        } else {
            match beneath.open_in(&dir, &written, flags(options.direct), Mode::empty()) {
                Ok(file) => Some(Ok(file)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                // Refused O_DIRECT: `open` tries again without it.
                Err(err) if err.raw_os_error() == Some(Errno::EINVAL as i32) => None,
                Err(err) => Some(Err(err)),
            }
        };
        let opened = existing.unwrap_or_else(open);
        let file = opened.map(File::from).map_err(|err| {
            let what = format!("unable to open '{}' for write", path.display());
            os_error(ErrorKind::FileOpen, what, &err)
        })?;
        let direct = options.direct.then(|| DirectWrite::new(direct));
        Ok(PosixWrite {
            file: Some(file),
            dir,
            direct,
            offset: 0,
            written,
            name,
            path,
            options: options.clone(),
            committed: false,
        })
    }

    fn error(&self, kind: ErrorKind, action: &str, err: &std::io::Error) -> Error {
        os_error(
            kind,
            format!("unable to {action} '{}'", self.path.display()),
            err,
        )
    }
}

/// Starts writing `len` bytes of `file` from `offset` back to the device, without waiting.
/// Linux starts the writeback of dirty pages a POSIX_FADV_DONTNEED names (and drops them from
/// the page cache once written, which suits a file nobody reads soon); PostgreSQL flushes data
/// the same way where sync_file_range is missing. Advice only: a failure changes nothing, the
/// fsync at commit is what makes the file durable.
fn start_writeback(file: &File, offset: u64, len: usize) {
    let (Ok(offset), Ok(len)) = (i64::try_from(offset), i64::try_from(len)) else {
        return;
    };
    let _ = nix::fcntl::posix_fadvise(
        file,
        offset,
        len,
        nix::fcntl::PosixFadviseAdvice::POSIX_FADV_DONTNEED,
    );
}

/// `seconds` since the epoch as a `SystemTime`, before the epoch included.
fn system_time(seconds: i64) -> Option<SystemTime> {
    let offset = Duration::from_secs(seconds.unsigned_abs());
    if seconds >= 0 {
        UNIX_EPOCH.checked_add(offset)
    } else {
        UNIX_EPOCH.checked_sub(offset)
    }
}

impl Write for PosixWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let Some(file) = self.file.as_mut() else {
            let err = Error::new(ErrorKind::Assert, "write to a file already committed");
            return Err(to_io_error(err));
        };
        let written = match self.direct.as_mut() {
            Some(direct) => direct.write(file, buf),
            None => file.write(buf),
        };
        match written {
            Ok(written) => {
                if self.options.start_writeback {
                    start_writeback(file, self.offset, written);
                }
                self.offset += written as u64;
                Ok(written)
            }
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => Err(err),
            Err(err) => Err(to_io_error(self.error(ErrorKind::FileWrite, "write", &err))),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StorageWrite for PosixWrite {
    fn commit(mut self: Box<Self>) -> Result<()> {
        let Some(mut file) = self.file.take() else {
            return Err(Error::new(ErrorKind::Assert, "file committed twice"));
        };
        let finished = match self.direct.as_mut() {
            Some(direct) => direct.finish(&mut file),
            None => Ok(()),
        };
        finished.map_err(|err| self.error(ErrorKind::FileWrite, "write", &err))?;
        fail::fail_point!("storage-write-written");
        file.set_permissions(Permissions::from_mode(self.options.mode))
            .map_err(|err| self.error(ErrorKind::FileWrite, "set mode of", &err))?;
        if let Some(mtime) = self.options.mtime {
            let time = system_time(mtime).ok_or_else(|| {
                Error::new(
                    ErrorKind::Assert,
                    format!("modification time {mtime} is out of range"),
                )
            })?;
            let times = FileTimes::new().set_accessed(time).set_modified(time);
            file.set_times(times)
                .map_err(|err| self.error(ErrorKind::FileWrite, "set time of", &err))?;
        }
        if self.options.sync_file {
            // A full disk may only show here, with delayed allocation: never ignore it.
            file.sync_all()
                .map_err(|err| self.error(ErrorKind::FileSync, "sync", &err))?;
        }
        drop(file);
        fail::fail_point!("storage-write-synced");
        if self.options.atomic {
            nix::fcntl::renameat(
                &self.dir,
                self.written.as_os_str(),
                &self.dir,
                self.name.as_os_str(),
            )
            .map_err(|errno| {
                let mut temp = self.path.clone().into_os_string();
                temp.push(super::TEMP_SUFFIX);
                let what = format!(
                    "unable to move '{}' to '{}'",
                    PathBuf::from(temp).display(),
                    self.path.display()
                );
                os_error(ErrorKind::FileWrite, what, &std::io::Error::from(errno))
            })?;
        }
        self.committed = true;
        fail::fail_point!("storage-write-renamed");
        if self.options.sync_path {
            let parent = self.path.parent().unwrap_or(&self.path);
            sync_dir_fd(&self.dir).map_err(|err| sync_error(parent, &err))?;
        }
        fail::fail_point!("storage-write-path-synced");
        Ok(())
    }
}

impl Drop for PosixWrite {
    fn drop(&mut self) {
        if !self.committed {
            // Best effort: the caller is already handling whatever made it give up, and a temp
            // file left behind is recognisable by its suffix.
            self.file = None;
            let _ = unlinkat(
                &self.dir,
                self.written.as_os_str(),
                UnlinkatFlags::NoRemoveDir,
            );
        }
    }
}
