//! Finding WAL files in the archive, and the temporary files interrupted pushes left there.

use crate::error::Result;
use crate::repo::layout;
use crate::storage::{FileInfo, FileType, Storage};

/// The suffix of a file whose write did not finish: never an archived file.
pub const TEMP_SUFFIX: &str = ".pgkeep.tmp";

/// A WAL file found in the archive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchivedWal {
    /// Path relative to the repository root.
    pub path: String,
    /// SHA-256 of the uncompressed content, from the stored name.
    pub checksum: String,
    /// The compression extension ("" for none).
    pub ext: String,
}

/// Looks for `wal_name` (a segment, `.partial` or `.backup` file) under one archive id.
/// Returns every stored version; more than one means the archive was damaged by hand.
pub fn find_wal(
    storage: &dyn Storage,
    stanza: &str,
    archive_id: &str,
    wal_name: &str,
) -> Result<Vec<ArchivedWal>> {
    let dir = layout::wal_dir(stanza, archive_id, wal_name);
    let entries = storage.list(&dir)?.unwrap_or_default();
    Ok(archived_in(&entries, &dir, wal_name))
}

/// The stored versions of `wal_name` among `entries`, the listing of its WAL directory `dir`.
pub fn archived_in(entries: &[FileInfo], dir: &str, wal_name: &str) -> Vec<ArchivedWal> {
    let prefix = format!("{wal_name}-");
    let mut found: Vec<ArchivedWal> = entries
        .iter()
        .filter_map(|entry| {
            let rest = entry.name.strip_prefix(&prefix)?;
            // A temp file of an unfinished write is not an archived file.
            if rest.ends_with(TEMP_SUFFIX) {
                return None;
            }
            let (checksum, ext) = match rest.split_once('.') {
                Some((checksum, ext)) => (checksum.to_string(), ext.to_string()),
                None => (rest.to_string(), String::new()),
            };
            (checksum.len() == 64 && checksum.bytes().all(|b| b.is_ascii_hexdigit())).then(|| {
                ArchivedWal {
                    path: format!("{dir}/{}", entry.name),
                    checksum,
                    ext,
                }
            })
        })
        .collect();
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// The temporary files in `dir` last modified before `before` (Unix seconds), as paths;
/// with `wal_name`, only those of that WAL file (`<name>.<pid>-<ns>.pgkeep.tmp` of a framed
/// push, `<name>-<checksum>[.<ext>].pgkeep.tmp` of a streamed one). A push writes its temporary
/// file without pause, so one untouched for long belongs to a push that was killed.
pub fn stale_temps(
    storage: &dyn Storage,
    dir: &str,
    wal_name: Option<&str>,
    before: i64,
) -> Result<Vec<String>> {
    let entries = storage.list(dir)?.unwrap_or_default();
    Ok(stale_in(&entries, dir, wal_name, before))
}

/// [`stale_temps`] among `entries`, the listing of `dir`.
pub fn stale_in(
    entries: &[FileInfo],
    dir: &str,
    wal_name: Option<&str>,
    before: i64,
) -> Vec<String> {
    let mut found: Vec<String> = entries
        .iter()
        .filter(|entry| {
            entry.file_type == FileType::File
                && entry.name.ends_with(TEMP_SUFFIX)
                && entry.mtime < before
                && wal_name.is_none_or(|name| {
                    entry
                        .name
                        .strip_prefix(name)
                        .is_some_and(|rest| rest.starts_with(['.', '-']))
                })
        })
        .map(|entry| format!("{dir}/{}", entry.name))
        .collect();
    found.sort();
    found
}
