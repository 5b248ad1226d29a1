//! Restoring a block-incremental file (`repo::block_map`): reassembled from its map's holders.
//!
//! A fresh restore streams the reassembled content (`repo::block_read`) into the file and
//! checks its size and SHA-256 against the manifest, as for any file. With `--delta` (without
//! `--force`) an existing file is not replaced whole: each of its blocks is hashed (XXH3-128, as
//! the backup did) and compared with the hash the map records; only blocks that differ, or lie
//! past the file's current end, are read from the repository and written in place, so a holder
//! none of whose blocks is needed is never read. The file is then cut to the manifest's size and,
//! when any block was rewritten, must match the manifest's SHA-256 too.

use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::block_hash;
use crate::io::{FilterChain, FilterResult, FilterSpec, stream};
use crate::log_detail;
use crate::repo::Manifest;
use crate::repo::block_read::{ReassembledRead, Reassembler};
use crate::repo::manifest::FileEntry;
use crate::storage::{FileType, PosixStorage, Storage};

use super::files::{Outcome, Settings, checksum_of, chown, write_options};

/// Delta restore of `file` when it is block-incremental and exists as a file under `root`:
/// rewrites the blocks that differ, checks the result and logs it. `None` when the file is not
/// one this applies to. `progress` gives the size and percentage for the log line.
pub fn delta(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
    progress: &dyn Fn() -> String,
) -> Result<Option<Outcome>> {
    if file.block.is_none()
        || !root
            .info(rel)?
            .is_some_and(|info| info.file_type == FileType::File)
    {
        return Ok(None);
    }
    let path = root.describe(rel);
    let rewritten = rewrite_blocks(settings, root, rel, file)?;
    // When every block matched the hash the map records (XXH3-128 of the backed-up block, the
    // comparison the backup itself made), the file is the backup's: a second read of the whole
    // file for its SHA-256 would double the cost of a delta restore of an unchanged cluster. A
    // file with rewritten blocks is checked whole.
    if rewritten > 0 && checksum_of(root, rel, settings.buffer_size)? != file.checksum {
        return Err(mismatch(root, rel, file, "after a block delta restore"));
    }
    if settings.set_owner {
        chown(
            Path::new(&path),
            file.user.as_deref(),
            file.group.as_deref(),
        )?;
    }
    if rewritten == 0 {
        log_detail!(
            "restore file {path} ({}) - exists and matches backup",
            progress()
        );
        return Ok(Some(Outcome::Matched));
    }
    log_detail!(
        "restore file {path} ({}) - {rewritten} block(s) rewritten, checksum {}",
        progress(),
        file.checksum
    );
    Ok(Some(Outcome::Restored))
}

/// The blocks of `file`, from the set holding its entry.
fn blocks<'a>(
    repo: &'a dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    file: &FileEntry,
) -> Result<Reassembler<'a>> {
    Reassembler::open(
        repo,
        stanza,
        manifest.holder(file),
        manifest.compress_type,
        file,
    )
}

/// Writes the reassembled content of `file` to `rel` under `root` and checks it.
pub fn copy_from_repo(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
) -> Result<()> {
    let mut reader = ReassembledRead::new(blocks(
        settings.repo,
        settings.stanza,
        settings.manifest,
        file,
    )?);
    let mut writer = root.open_write(rel, &write_options(file))?;
    let results = stream::copy_through(
        &mut reader,
        &mut FilterChain::from_specs(&[FilterSpec::Size, FilterSpec::Hash])?,
        &mut writer,
        settings.buffer_size,
    )
    .map_err(|e| e.context(format!("unable to restore '{}'", root.describe(rel))))?;
    match results.as_slice() {
        [FilterResult::Size(size), FilterResult::Hash(hash)]
            if *size == file.size && *hash == file.checksum => {}
        _ => return Err(mismatch(root, rel, file, "once reassembled")),
    }
    writer.commit()
}

/// The whole content of a small block-incremental file (a catalog file), checked.
pub fn read_whole(
    repo: &dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    file: &FileEntry,
    buffer_size: usize,
) -> Result<Vec<u8>> {
    let mut reader = ReassembledRead::new(blocks(repo, stanza, manifest, file)?);
    let mut content = Vec::new();
    let results = stream::copy_through(
        &mut reader,
        &mut FilterChain::from_specs(&[FilterSpec::Hash])?,
        &mut content,
        buffer_size,
    )?;
    match results.as_slice() {
        [FilterResult::Hash(hash)] if *hash == file.checksum => Ok(content),
        _ => Err(Error::new(
            ErrorKind::Checksum,
            format!(
                "backup file '{}' of backup set '{}' does not match its checksum once reassembled",
                file.name,
                manifest.holder(file)
            ),
        )),
    }
}

/// The error for a restored file whose content is not the backup's.
fn mismatch(root: &PosixStorage, rel: &str, file: &FileEntry, how: &str) -> Error {
    Error::new(
        ErrorKind::Checksum,
        format!(
            "restored file '{}' does not match the backup {how}: expected size {} checksum {}",
            root.describe(rel),
            file.size,
            file.checksum
        ),
    )
    .with_hint("the repository is damaged; run verify")
}

/// Brings the existing file `rel` under `root` to the backup's content by rewriting the blocks
/// that differ; returns how many were rewritten.
fn rewrite_blocks(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
) -> Result<u64> {
    let path_text = root.describe(rel);
    let path = Path::new(&path_text);
    let mut blocks = blocks(settings.repo, settings.stanza, settings.manifest, file)?;
    let out = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|e| Error::io(ErrorKind::FileOpen, "open", path.display(), &e))?;
    let block_size = u64::from(blocks.block_size());
    let mut existing = vec![0u8; block_size as usize];
    let mut rewritten = 0;
    for n in 0..blocks.blocks() {
        let len = blocks.block_len(n);
        let offset = n as u64 * block_size;
        let current = read_at(&out, &mut existing[..len], offset)
            .map_err(|e| Error::io(ErrorKind::FileRead, "read", path.display(), &e))?;
        if current == len && block_hash(&existing[..len]) == blocks.hash(n) {
            continue;
        }
        let data = blocks
            .read(n)
            .map_err(|e| e.context(format!("unable to restore '{path_text}'")))?;
        out.write_all_at(data, offset)
            .map_err(|e| Error::io(ErrorKind::FileWrite, "write", path.display(), &e))?;
        rewritten += 1;
    }
    out.set_len(file.size)
        .map_err(|e| Error::io(ErrorKind::FileWrite, "truncate", path.display(), &e))?;
    let time = UNIX_EPOCH + Duration::from_secs(file.mtime.max(0).unsigned_abs());
    out.set_times(FileTimes::new().set_accessed(time).set_modified(time))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set time of", path.display(), &e))?;
    out.set_permissions(Permissions::from_mode(file.mode))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set mode of", path.display(), &e))?;
    out.sync_all()
        .map_err(|e| Error::io(ErrorKind::FileSync, "sync", path.display(), &e))?;
    Ok(rewritten)
}

/// Reads up to `buf.len()` bytes at `offset`; fewer at the end of the file.
fn read_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
