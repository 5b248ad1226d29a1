//! Restoring one file: keep it when delta finds it matches, zero it when its database is left
//! out, or stream it from the repository, verified against the manifest.
//!
//! A file restored from the repository is written in place and must end with exactly the
//! manifest's size and SHA-256, or the restore fails. With `--delta` an existing file is kept
//! when its size and SHA-256 match (with `--force` too: size and modification time, cheaper but
//! blind to a change that kept both); a kept file gets the manifest's mode, time and owner.
//! `--force` alone restores every file. Each decision is logged at detail level.

use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::io::Read;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::io::{FilterChain, FilterResult, FilterSpec, stream};
use crate::log_detail;
use crate::repo::Manifest;
use crate::repo::bundle::{self, Stored};
use crate::repo::manifest::FileEntry;
use crate::storage::{FileType, PosixStorage, Storage, WriteOptions};

use super::super::format_size;

/// How files are compared and written, the same for every file of a restore.
pub struct Settings<'a> {
    pub repo: &'a dyn Storage,
    pub stanza: &'a str,
    pub manifest: &'a Manifest,
    /// Compare existing files with the backup (`--delta`).
    pub delta: bool,
    /// With delta: compare size and time instead of checksums; without: no comparison.
    pub force: bool,
    pub buffer_size: usize,
    /// More than one worker (process-max > 1): a large file may use a second thread.
    pub parallel: bool,
    /// The files were created ahead of the workers (`write::create_files_ahead`).
    pub created_ahead: bool,
    /// Set file owners from the manifest (only root can).
    pub set_owner: bool,
    /// Bytes of the whole restore, and bytes done so far, for the percentages logged.
    pub total: u64,
    pub done: AtomicU64,
}

/// What happened to a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Matched,
    Restored,
    Zeroed,
}

/// Restores `file` to `rel` under `root`; `zero` when its database is left out.
pub fn restore(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
    zero: bool,
) -> Result<Outcome> {
    let path = root.describe(rel);
    let progress = || {
        let done = settings.done.fetch_add(file.size, Ordering::Relaxed) + file.size;
        let pct = if settings.total == 0 {
            100.0
        } else {
            done as f64 * 100.0 / settings.total as f64
        };
        format!("{}, {pct:.2}%", format_size(file.size))
    };
    if zero {
        zero_fill(Path::new(&path), file)?;
        if settings.set_owner {
            chown(
                Path::new(&path),
                file.user.as_deref(),
                file.group.as_deref(),
            )?;
        }
        log_detail!("restore zeroed file {path} ({})", progress());
        return Ok(Outcome::Zeroed);
    }
    // A block-incremental file is compared block by block instead (`restore::block`).
    if settings.delta
        && !settings.force
        && let Some(outcome) = super::block::delta(settings, root, rel, file, &progress)?
    {
        return Ok(outcome);
    }
    if settings.delta
        && let Some(info) = root.info(rel)?
        && info.file_type == FileType::File
        && info.size == file.size
    {
        let matched = if settings.force {
            info.mtime == file.mtime
        } else {
            checksum_of(root, rel, settings.buffer_size)? == file.checksum
        };
        if matched {
            fix_attributes(
                Path::new(&path),
                file,
                info.mode,
                info.mtime,
                settings.set_owner,
            )?;
            let how = if settings.force {
                "exists and matches size and modification time"
            } else {
                "exists and matches backup"
            };
            log_detail!("restore file {path} ({}) - {how}", progress());
            return Ok(Outcome::Matched);
        }
    }
    copy_from_repo(settings, root, rel, file)?;
    if settings.set_owner {
        chown(
            Path::new(&path),
            file.user.as_deref(),
            file.group.as_deref(),
        )?;
    }
    log_detail!(
        "restore file {path} ({}) checksum {}",
        progress(),
        file.checksum
    );
    Ok(Outcome::Restored)
}

/// SHA-256 of a file on disk.
pub(super) fn checksum_of(root: &PosixStorage, rel: &str, buffer_size: usize) -> Result<String> {
    let Some(mut reader) = root.open_read(rel)? else {
        return Ok(String::new());
    };
    let results = stream::copy_through(
        &mut reader as &mut dyn Read,
        &mut FilterChain::from_specs(&[FilterSpec::Hash])?,
        &mut std::io::sink(),
        buffer_size,
    )?;
    match results.last() {
        Some(FilterResult::Hash(hash)) => Ok(hash.clone()),
        _ => Err(Error::new(ErrorKind::Assert, "hash filter gave no result")),
    }
}

fn copy_from_repo(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
) -> Result<()> {
    if file.block.is_some() {
        return super::block::copy_from_repo(settings, root, rel, file);
    }
    let manifest = settings.manifest;
    let repo = settings.repo;
    let stored = bundle::locate(settings.stanza, manifest, file);
    let mut reader = open_stored(repo, &stored)
        .map_err(|e| e.context(format!("unable to restore '{}'", root.describe(rel))))?;
    let mut writer = root.open_write(rel, &write_options(file, settings.created_ahead))?;
    let mut specs = bundle::decompress_specs(&stored, manifest.compress_type);
    specs.push(FilterSpec::Size);
    specs.push(FilterSpec::Hash);
    let results = stream::copy_through(
        &mut reader as &mut dyn Read,
        &mut FilterChain::from_specs(&specs)?,
        &mut stream::CappedWrite::new(&mut writer, file.size),
        small_buffer(settings.buffer_size, file.size),
    )
    .map_err(|e| e.context(format!("unable to restore '{}'", root.describe(rel))))?;
    match results.as_slice() {
        [.., FilterResult::Size(size), FilterResult::Hash(hash)]
            if *size == file.size && *hash == file.checksum => {}
        other => {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "restored file '{}' does not match the backup: expected size {} checksum {}, got {other:?}",
                    root.describe(rel),
                    file.size,
                    file.checksum
                ),
            )
            .with_hint("the repository is damaged; run verify"));
        }
    }
    writer.commit()
}

/// The buffer for copying a file of `size` bytes: no larger than the file needs. A restore of
/// many small files would otherwise allocate and clear a whole `buffer-size` per file.
pub fn small_buffer(buffer_size: usize, size: u64) -> usize {
    let needed = usize::try_from(size).unwrap_or(usize::MAX).max(64 * 1024);
    buffer_size.min(needed)
}

/// How a restored file is written: in place, with the manifest's mode and time. No file is
/// synced on its own: the restore syncs each file system it wrote once, before pg_control is
/// written (`write::sync_file_systems`); per-file fsyncs made a worker wait for the disk after
/// every file instead of decompressing the next one.
/// Files at least this large are written bypassing the page cache (`WriteOptions::direct`):
/// for them the kernel's copy into fresh page-cache pages and their writeback at the final
/// sync cost more than waiting for the device. Smaller files stay buffered, where one syncfs
/// at the end writes many of them at once and no write waits for the device.
pub(super) const DIRECT_MIN: u64 = 16 << 20;

pub(super) fn write_options(file: &FileEntry, created_ahead: bool) -> WriteOptions {
    WriteOptions {
        direct: file.size >= DIRECT_MIN,
        start_writeback: false,
        mode: file.mode,
        mtime: Some(file.mtime),
        create_path: false,
        atomic: false,
        sync_file: false,
        sync_path: false,
        created_ahead,
    }
}

/// Opens the stored form of a file of the backup set; a missing repository file is an error.
fn open_stored(repo: &dyn Storage, stored: &Stored) -> Result<Box<dyn Read + Send>> {
    bundle::open(repo, stored)?.ok_or_else(|| {
        let path = stored.path().unwrap_or_default();
        let what = if matches!(stored, Stored::Range { .. }) {
            "bundle"
        } else {
            "backup file"
        };
        Error::new(
            ErrorKind::FileMissing,
            format!("{what} '{}' is missing", repo.describe(path)),
        )
        .with_hint("the repository is damaged; run verify or restore another set with --set")
    })
}

/// A sparse file of the backed-up size, all zeros: no data is written, only the length.
fn zero_fill(path: &Path, file: &FileEntry) -> Result<()> {
    let out = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(file.mode)
        .open(path)
        .map_err(|e| Error::io(ErrorKind::FileOpen, "open", path.display(), &e))?;
    out.set_len(file.size)
        .map_err(|e| Error::io(ErrorKind::FileWrite, "extend", path.display(), &e))?;
    set_times(&out, path, file.mtime)?;
    out.set_permissions(Permissions::from_mode(file.mode))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set mode of", path.display(), &e))?;
    out.sync_all()
        .map_err(|e| Error::io(ErrorKind::FileSync, "sync", path.display(), &e))
}

fn set_times(file: &File, path: &Path, mtime: i64) -> Result<()> {
    let time = UNIX_EPOCH + Duration::from_secs(mtime.max(0).unsigned_abs());
    file.set_times(FileTimes::new().set_accessed(time).set_modified(time))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set time of", path.display(), &e))
}

/// Gives a kept file the manifest's mode, time and owner where they differ.
fn fix_attributes(
    path: &Path,
    file: &FileEntry,
    mode: u32,
    mtime: i64,
    set_owner: bool,
) -> Result<()> {
    if mode != file.mode {
        std::fs::set_permissions(path, Permissions::from_mode(file.mode))
            .map_err(|e| Error::io(ErrorKind::FileWrite, "set mode of", path.display(), &e))?;
    }
    if mtime != file.mtime {
        let handle = File::open(path)
            .map_err(|e| Error::io(ErrorKind::FileOpen, "open", path.display(), &e))?;
        set_times(&handle, path, file.mtime)?;
    }
    if set_owner {
        chown(path, file.user.as_deref(), file.group.as_deref())?;
    }
    Ok(())
}

/// Sets the owner by name, as recorded in the manifest; unknown names leave it unchanged.
pub fn chown(path: &Path, user: Option<&str>, group: Option<&str>) -> Result<()> {
    let uid = user
        .and_then(|u| nix::unistd::User::from_name(u).ok().flatten())
        .map(|u| u.uid);
    let gid = group
        .and_then(|g| nix::unistd::Group::from_name(g).ok().flatten())
        .map(|g| g.gid);
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        uid,
        gid,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| {
        Error::new(
            ErrorKind::FileWrite,
            format!("unable to set owner of '{}': {e}", path.display()),
        )
    })
}

/// The content of a small file of the backup set (a catalog file read before restoring),
/// decompressed and checked against the manifest.
pub fn read_backup_file(
    repo: &dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    name: &str,
    buffer_size: usize,
) -> Result<Vec<u8>> {
    let file = manifest.file(name).ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!("backup set '{}' has no '{name}'", manifest.label),
        )
    })?;
    if file.block.is_some() {
        return super::block::read_whole(repo, stanza, manifest, file, buffer_size);
    }
    let stored = bundle::locate(stanza, manifest, file);
    let mut reader = open_stored(repo, &stored)?;
    let source = stored.path().unwrap_or(&file.name).to_string();
    let mut specs = bundle::decompress_specs(&stored, manifest.compress_type);
    specs.push(FilterSpec::Hash);
    let mut content = Vec::new();
    let results = stream::copy_through(
        &mut reader as &mut dyn Read,
        &mut FilterChain::from_specs(&specs)?,
        &mut content,
        buffer_size,
    )?;
    match results.last() {
        Some(FilterResult::Hash(hash)) if *hash == file.checksum => Ok(content),
        _ => Err(Error::new(
            ErrorKind::Checksum,
            format!(
                "backup file '{}' does not match its checksum",
                repo.describe(&source)
            ),
        )),
    }
}
