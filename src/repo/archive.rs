//! Finding WAL files in the archive.

use crate::error::Result;
use crate::repo::layout;
use crate::storage::Storage;

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
    let Some(entries) = storage.list(&dir)? else {
        return Ok(Vec::new());
    };
    let prefix = format!("{wal_name}-");
    let mut found: Vec<ArchivedWal> = entries
        .into_iter()
        .filter_map(|entry| {
            let rest = entry.name.strip_prefix(&prefix)?;
            // A temp file of an unfinished write is not an archived file.
            if rest.ends_with(".pgkeep.tmp") {
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
    Ok(found)
}
