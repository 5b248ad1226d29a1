//! Copying one file of the data directory into the backup set, on a worker thread.
//!
//! The file streams once through size → SHA-256 → compression into the repository; memory is
//! one buffer per worker whatever the file's size. A file removed by the database while the
//! backup runs (a dropped table) is skipped: WAL replay recreates the state the backup ends at.

use crate::error::{Error, ErrorKind, Result};
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::repo::layout;
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::storage::{Storage, WriteOptions};

use super::plan::SourceFile;

/// The owner names recorded for a file: user and group.
pub type Owner = (Option<String>, Option<String>);

/// Where and how files are written.
pub struct CopySettings<'a> {
    pub pg: &'a dyn Storage,
    pub repo: &'a dyn Storage,
    pub stanza: &'a str,
    pub label: &'a str,
    pub compress: CompressType,
    pub level: i32,
    pub buffer_size: usize,
}

/// The outcome for one file.
#[derive(Debug)]
pub enum Copied {
    /// Stored in this backup.
    Stored(FileEntry),
    /// Checked and found unchanged: the prior entry stands.
    Unchanged(FileEntry),
    /// Gone from the data directory.
    Removed(String),
}

/// Copies `file` into the backup set.
pub fn copy_file(settings: &CopySettings, file: &SourceFile, owner: Owner) -> Result<Copied> {
    let name = format!("{PG_DATA}/{}", file.rel);
    let Some(mut reader) = settings.pg.open_read(&file.rel)? else {
        return Ok(Copied::Removed(file.rel.clone()));
    };
    let (size, checksum, repo_size) = store(settings, &name, &mut reader, None).map_err(|e| {
        e.context(format!(
            "unable to back up '{}'",
            settings.pg.describe(&file.rel)
        ))
    })?;
    Ok(Copied::Stored(FileEntry {
        name,
        size,
        mtime: file.info.mtime,
        mode: file.info.mode,
        user: owner.0,
        group: owner.1,
        checksum,
        repo_size,
        reference: None,
        page_errors: None,
    }))
}

/// Streams `reader` into the backup set as `name` (a manifest name), decompressing it first when
/// it is compressed with `decompress`; returns the size, the SHA-256 of the content and the bytes
/// stored.
pub fn store(
    settings: &CopySettings,
    name: &str,
    reader: &mut dyn std::io::Read,
    decompress: Option<CompressType>,
) -> Result<(u64, String, u64)> {
    let target = layout::backup_file(
        settings.stanza,
        settings.label,
        name,
        settings.compress.extension(),
    );
    let options = WriteOptions {
        mode: 0o640,
        mtime: None,
        // Directories are created up front and synced once at the end.
        create_path: false,
        atomic: true,
        sync_file: true,
        sync_path: false,
    };
    let mut writer = settings.repo.open_write(&target, &options)?;
    let mut specs = Vec::new();
    if let Some(kind) = decompress.filter(|k| *k != CompressType::None) {
        specs.push(FilterSpec::Decompress { kind });
    }
    specs.extend([FilterSpec::Size, FilterSpec::Hash]);
    if settings.compress != CompressType::None {
        specs.push(FilterSpec::Compress {
            kind: settings.compress,
            level: settings.level,
        });
    }
    specs.push(FilterSpec::Size);
    let mut chain = FilterChain::from_specs(&specs)?;
    let results = stream::copy_through(reader, &mut chain, &mut writer, settings.buffer_size)?;
    writer.commit()?;
    match results.as_slice() {
        [
            FilterResult::Size(size),
            FilterResult::Hash(hash),
            ..,
            FilterResult::Size(repo_size),
        ] => Ok((*size, hash.clone(), *repo_size)),
        _ => Err(Error::new(
            ErrorKind::Assert,
            "unexpected filter results for a backup file",
        )),
    }
}

/// Hashes `file` and compares it with the prior backup's entry: unchanged content is
/// referenced, anything else copied.
pub fn check_file(
    settings: &CopySettings,
    file: &SourceFile,
    prior: FileEntry,
    owner: Owner,
) -> Result<Copied> {
    let Some(mut reader) = settings.pg.open_read(&file.rel)? else {
        return Ok(Copied::Removed(file.rel.clone()));
    };
    let mut chain = FilterChain::from_specs(&[FilterSpec::Size, FilterSpec::Hash])?;
    let results = stream::copy_through(
        &mut reader,
        &mut chain,
        &mut std::io::sink(),
        settings.buffer_size,
    )?;
    if let [FilterResult::Size(size), FilterResult::Hash(hash)] = results.as_slice()
        && *size == prior.size
        && *hash == prior.checksum
    {
        return Ok(Copied::Unchanged(prior));
    }
    copy_file(settings, file, owner)
}
