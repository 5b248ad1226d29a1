//! Restoring a block-incremental file (`repo::block_map`): reassembled from its map's holders.
//!
//! A fresh restore streams the reassembled content (`repo::block_read`) into the file; every
//! block is checked against its XXH3-128 hash in the map (itself checked against the manifest)
//! as it is assembled, and the file's size against the manifest. That checks the whole file, so
//! no SHA-256 pass is made over it: it was a third of a restore's CPU time. With `--delta` (without
//! `--force`) an existing file is not replaced whole: each of its blocks is hashed (XXH3-128, as
//! the backup did) and compared with the hash the map records; only blocks that differ, or lie
//! past the file's current end, are read from the repository and written in place, so a holder
//! none of whose blocks is needed is never read. The file is then cut to the manifest's size.

use std::fs::{FileTimes, OpenOptions, Permissions};
use std::io::Write;
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::block_hash;
use crate::io::stream::read_full_at;
use crate::io::{FilterChain, FilterResult, FilterSpec, stream};
use crate::log_detail;
use crate::repo::Manifest;
use crate::repo::block_read::{ReassembledRead, Reassembler};
use crate::repo::manifest::FileEntry;
use crate::storage::{AlignedBuf, FileType, PosixStorage, Storage, StorageWrite};

use super::files::{Outcome, Settings, chown, write_options};

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
    // Every block either matched the hash the map records (XXH3-128 of the backed-up block,
    // the comparison the backup itself made) or was rewritten from the repository and checked
    // against that hash as it was assembled: the file is the backup's without a second read
    // for its SHA-256.
    let rewritten = rewrite_blocks(settings, root, rel, file)?;
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

/// Files at least this large are written by a thread of their own while their blocks are
/// assembled: when the restore runs several workers (process-max=1 keeps it on one core, as
/// far as CPU goes), and whenever the writes bypass the page cache, where that thread spends
/// its time waiting for the device, not on a core. Otherwise the kernel's copy into the page
/// cache is a third of a restore's work, and a 1 GiB relation segment restored by one worker
/// would keep the other cores waiting at the end of a parallel restore.
const WRITE_BEHIND_MIN: u64 = 16 << 20;

/// Files at least this large are written by a second thread when the restore runs several
/// workers, even where the writes go through the page cache.
const WRITE_BEHIND_BUFFERED_MIN: u64 = 64 << 20;

/// Writes the reassembled content of `file` to `rel` under `root`. Every block is checked
/// against its hash in the map as it is assembled, and the map against the manifest, so the
/// file is checked whole without a SHA-256 pass over it (a third of a restore's CPU time).
pub fn copy_from_repo(
    settings: &Settings,
    root: &PosixStorage,
    rel: &str,
    file: &FileEntry,
) -> Result<()> {
    let mut blocks = blocks(settings.repo, settings.stanza, settings.manifest, file)?;
    let options = write_options(file, settings.created_ahead);
    let mut writer = root.open_write(rel, &options)?;
    let describe = || root.describe(rel);
    // Blocks are assembled straight into the write buffer (page-aligned, so that a direct write
    // takes it as it is): one write per buffer, not per block.
    let gather = settings.buffer_size.max(blocks.block_size() as usize);
    let behind = if options.direct {
        file.size >= WRITE_BEHIND_MIN
    } else {
        file.size >= WRITE_BEHIND_BUFFERED_MIN && settings.parallel
    };
    let written = if !behind {
        assemble(&mut blocks, gather, &describe, &mut |mut full| {
            writer
                .write_all(full.content())
                .map_err(|e| Error::io(ErrorKind::FileWrite, "write", describe(), &e))?;
            full.clear();
            Ok(full)
        })?
    } else {
        write_behind(&mut blocks, gather, &describe, &mut writer)?
    };
    if written != file.size {
        return Err(mismatch(root, rel, file, "once reassembled"));
    }
    writer.commit()
}

/// Assembles every block of `blocks` into buffers of about `gather` bytes, handing each full
/// one to `write`, which gives back an empty buffer to fill next. Returns the bytes assembled.
fn assemble(
    blocks: &mut Reassembler,
    gather: usize,
    describe: &dyn Fn() -> String,
    write: &mut dyn FnMut(AlignedBuf) -> Result<AlignedBuf>,
) -> Result<u64> {
    let block_size = blocks.block_size() as usize;
    let mut pending = AlignedBuf::with_capacity(gather);
    let mut size = 0u64;
    for n in 0..blocks.blocks() {
        blocks
            .read_into(n, pending.appender())
            .map_err(|e| e.context(format!("unable to restore '{}'", describe())))?;
        if pending.len() + block_size > gather || n + 1 == blocks.blocks() {
            size += pending.len() as u64;
            pending = write(pending)?;
        }
    }
    Ok(size)
}

/// `assemble` with the writes made by a second thread, three buffers in flight at most.
fn write_behind(
    blocks: &mut Reassembler,
    gather: usize,
    describe: &dyn Fn() -> String,
    writer: &mut Box<dyn StorageWrite>,
) -> Result<u64> {
    let (full_tx, full_rx) = crossbeam_channel::bounded::<AlignedBuf>(2);
    let (empty_tx, empty_rx) = crossbeam_channel::bounded::<AlignedBuf>(3);
    let path = describe();
    std::thread::scope(|scope| {
        let writing = scope.spawn(move || -> Result<()> {
            for mut full in full_rx.iter() {
                writer
                    .write_all(full.content())
                    .map_err(|e| Error::io(ErrorKind::FileWrite, "write", &path, &e))?;
                full.clear();
                // The assembling side may have finished; a buffer it does not take is freed.
                let _ = empty_tx.try_send(full);
            }
            Ok(())
        });
        let mut spare = 2;
        let assembled = assemble(blocks, gather, describe, &mut |full| {
            full_tx
                .send(full)
                .map_err(|_| Error::new(ErrorKind::FileWrite, "the writing thread stopped"))?;
            if let Ok(empty) = empty_rx.try_recv() {
                return Ok(empty);
            }
            if spare > 0 {
                spare -= 1;
                return Ok(AlignedBuf::with_capacity(gather));
            }
            empty_rx
                .recv()
                .map_err(|_| Error::new(ErrorKind::FileWrite, "the writing thread stopped"))
        });
        drop(full_tx);
        let written = writing
            .join()
            .unwrap_or_else(|_| Err(Error::new(ErrorKind::Assert, "writing thread panicked")));
        // The writer's own error explains a failed hand-over better than the hand-over does.
        written.and(assembled)
    })
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
        let current = read_full_at(&out, &mut existing[..len], offset)
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
