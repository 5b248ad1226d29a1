//! Delta restore of a block-incremental file: rewrite only the blocks that differ.
//!
//! With `--delta` (without `--force`) an existing file stored block-incrementally is not
//! replaced whole: each of its blocks is hashed (XXH3-128, as the backup did) and compared with
//! the hash the block map records; only blocks that differ, or lie past the file's current end,
//! are read from the repository and written in place. The file is then cut to the manifest's
//! size and must match the manifest's SHA-256, as a fully restored file must.

use std::fs::{File, FileTimes, OpenOptions, Permissions};
use std::os::unix::fs::{FileExt, PermissionsExt};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::block_hash;
use crate::repo::block_read::Reassembler;
use crate::repo::manifest::FileEntry;
use crate::storage::{PosixStorage, Storage};

use super::files::Settings;

/// Brings the existing file `rel` under `root` to the backup's content by rewriting the blocks
/// that differ; returns how many were rewritten.
pub fn delta(settings: &Settings, root: &PosixStorage, rel: &str, file: &FileEntry) -> Result<u64> {
    let path_text = root.describe(rel);
    let path = Path::new(&path_text);
    let mut blocks = Reassembler::open(
        settings.repo,
        settings.stanza,
        settings.manifest.holder(file),
        settings.manifest.compress_type,
        file,
    )?;
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
