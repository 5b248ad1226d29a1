//! Reading and writing files of a `PosixStorage`.
//!
//! `PosixWrite` is the only way a file appears. Atomic writes go to `<name>.pgkeep.tmp` in the
//! same directory; `commit` sets mode and mtime, fsyncs the file, renames it over the final name
//! and fsyncs the directory, so the file is visible only once complete and durable. Mode and
//! mtime are set before the fsync so that they are durable too. In-place writes (restoring into
//! a data directory) follow the same steps without the rename. Dropping a writer without
//! `commit` removes what it wrote. Errors, ENOSPC included, carry the file's path and the OS
//! cause through `std::io::Error` (see `io::stream`).

use std::fs::{self, File, FileTimes, OpenOptions, Permissions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::direct::DirectWrite;
use super::fs_ops::{create_path, os_error, sync_path, temp_path};
use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::to_io_error;
use crate::storage::{StorageWrite, WriteOptions};

/// Parent directories made by `create_path` get this mode.
const PATH_MODE: u32 = 0o750;

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
    /// Where the bytes go: the temp name for atomic writes, else the final name.
    written: PathBuf,
    /// The name the file has once committed; used in messages.
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
    pub(super) fn open(path: PathBuf, options: &WriteOptions) -> Result<PosixWrite> {
        let written = if options.atomic {
            temp_path(&path)
        } else {
            path.clone()
        };
        // O_DIRECT is asked for at open; a file system that refuses it says EINVAL, and the
        // file is then opened as any other.
        let flags = |direct: bool| if direct { nix::libc::O_DIRECT } else { 0 };
        let open_as = |direct: bool| {
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(options.mode)
                .custom_flags(flags(direct))
                .open(&written)
        };
        let mut direct = options.direct;
        let mut open = || match open_as(direct) {
            Err(err) if direct && err.raw_os_error() == Some(nix::libc::EINVAL) => {
                direct = false;
                open_as(false)
            }
            other => other,
        };
        let existing = if options.atomic || !options.created_ahead {
            None
        } else {
            let opened = OpenOptions::new()
                .write(true)
                .truncate(true)
                .custom_flags(flags(options.direct))
                .open(&written);
            match opened {
                Ok(file) => Some(Ok(file)),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => None,
                // Refused O_DIRECT: `open` tries again without it.
                Err(err) if err.raw_os_error() == Some(nix::libc::EINVAL) => None,
                Err(err) => Some(Err(err)),
            }
        };
        let opened = match existing.unwrap_or_else(&mut open) {
            Err(err) if err.kind() == std::io::ErrorKind::NotFound && options.create_path => {
                if let Some(parent) = path.parent() {
                    create_path(parent, PATH_MODE)?;
                }
                open()
            }
            other => other,
        };
        let file = opened.map_err(|err| {
            let what = format!("unable to open '{}' for write", path.display());
            os_error(ErrorKind::FileOpen, what, &err)
        })?;
        let direct = options.direct.then(|| DirectWrite::new(direct));
        Ok(PosixWrite {
            file: Some(file),
            direct,
            offset: 0,
            written,
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
            fs::rename(&self.written, &self.path).map_err(|err| {
                let what = format!(
                    "unable to move '{}' to '{}'",
                    self.written.display(),
                    self.path.display()
                );
                os_error(ErrorKind::FileWrite, what, &err)
            })?;
        }
        self.committed = true;
        fail::fail_point!("storage-write-renamed");
        if self.options.sync_path
            && let Some(parent) = self.path.parent()
        {
            sync_path(parent)?;
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
            let _ = fs::remove_file(&self.written);
        }
    }
}
