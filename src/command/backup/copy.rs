//! Copying one file of the data directory into the backup set, on a worker thread.
//!
//! The file streams once through size → SHA-256 → page checksum verification (relation files
//! of a cluster with data checksums) → compression into the repository; memory is one buffer
//! per worker whatever the file's size. A file removed by the database while the backup runs
//! (a dropped table) is skipped: WAL replay recreates the state the backup ends at.

use std::io::Write;

use crate::error::{Error, ErrorKind, Result};
use crate::io::filter::PageChecksumResult;
use crate::io::{CompressType, Filter, FilterChain, FilterResult, FilterSpec, stream};
use crate::log_warn;
use crate::pg::page;
use crate::pg::wal::Lsn;
use crate::repo::layout;
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::storage::{FilteredRead, WriteOptions};

use super::block;
use super::bundle::OpenBundle;
use super::plan::SourceFile;
use super::work::{Copied, CopySettings, Owner, Stored};

/// Where a copied file's stored form goes.
pub enum Target<'b, 'a> {
    /// A repository file of its own.
    Object,
    /// Appended to the worker's open bundle.
    Bundle(&'b mut OpenBundle<'a>),
}

/// Copies `file` into the backup set, to `target`.
pub fn copy_file_to(
    settings: &CopySettings,
    file: &SourceFile,
    owner: Owner,
    target: Target,
) -> Result<Copied> {
    let name = format!("{PG_DATA}/{}", file.rel);
    let first_block = settings
        .checksum_page
        .and_then(|_| page::checked_file(&file.rel));
    let mut specs = vec![FilterSpec::Size, FilterSpec::Hash];
    if let (Some(start_lsn), Some(first)) = (settings.checksum_page, first_block) {
        specs.push(FilterSpec::PageChecksum {
            first_block: first,
            start_lsn: start_lsn.into(),
        });
    }
    // A bundled file is stored whole (bundle::destination keeps block-eligible files out of
    // bundles, so this only guards the rule).
    let block_job = match &target {
        Target::Bundle(_) => None,
        Target::Object => block::prepare(settings, &file.rel, &name, file.info.size)?,
    };
    specs.extend(block_job.as_ref().map(block::BlockJob::spec));
    // A block-incremental file is compressed on the repository side, after its deltas.
    if settings.compress != CompressType::None && block_job.is_none() {
        specs.push(FilterSpec::Compress {
            kind: settings.compress,
            level: settings.level,
        });
    }
    specs.push(FilterSpec::Size);
    // The chain runs where the file is: on the database host when pg1-host is set, so the
    // file is checksummed and compressed there and only the compressed bytes travel.
    let Some(mut reader) = settings.pg.open_read_filtered(&file.rel, &specs)? else {
        return Ok(Copied::Removed(file.rel.clone()));
    };
    let (stored, bundle) = match (&block_job, target) {
        (Some(job), _) => block::store(settings, &name, job, &mut reader).map(|s| (s, None)),
        (None, Target::Object) => store_filtered(settings, &name, &mut reader).map(|s| (s, None)),
        (None, Target::Bundle(open)) => append_filtered(settings, file, &mut reader, open),
    }
    .map_err(|e| {
        e.context(format!(
            "unable to back up '{}'",
            settings.pg.describe(&file.rel)
        ))
    })?;
    let page_errors = match (stored.pages, settings.checksum_page, first_block) {
        (Some(pages), Some(start_lsn), Some(first)) => {
            page_errors(settings, &file.rel, &pages, first, start_lsn)?
        }
        _ => None,
    };
    let block = match (&block_job, &stored.block) {
        (Some(job), Some(result)) => {
            Some(block::finish(settings, &name, job, result, stored.size)?)
        }
        _ => None,
    };
    Ok(Copied::Stored(FileEntry {
        name,
        size: stored.size,
        mtime: file.info.mtime,
        mode: file.info.mode,
        user: owner.user,
        group: owner.group,
        checksum: stored.checksum,
        repo_size: stored.repo_size + block.as_ref().map_or(0, |b| b.map_size),
        reference: None,
        page_errors,
        block,
        bundle_id: bundle.map(|b| b.0),
        bundle_offset: bundle.map(|b| b.1),
    }))
}

/// Appends the output of a filter chain that ran at the source to the worker's bundle and
/// returns what was stored with its bundle id and offset (`None` for a file found empty: it is
/// stored nowhere). A file empty at listing time is collected in memory first, so that it
/// leaves no compressed empty frame in the bundle; a file that grew meanwhile is small anyway.
fn append_filtered(
    settings: &CopySettings,
    file: &SourceFile,
    reader: &mut Box<dyn FilteredRead>,
    open: &mut OpenBundle,
) -> Result<(Stored, Option<(u64, u64)>)> {
    let mut pass = FilterChain::new(Vec::new());
    let offset = open.offset;
    // Bundled files are small: a whole `buffer-size` per file would cost more to allocate and
    // clear than copying the file.
    let buffer_size = settings.buffer_size.min(
        usize::try_from(file.info.size)
            .unwrap_or(usize::MAX)
            .max(64 * 1024),
    );
    if file.info.size == 0 {
        let mut bytes = Vec::new();
        stream::copy_through(reader, &mut pass, &mut bytes, buffer_size)?;
        let stored = stored_from(reader.results()?)?;
        if stored.size == 0 {
            return Ok((
                Stored {
                    repo_size: 0,
                    ..stored
                },
                None,
            ));
        }
        open.write_all(&bytes)
            .map_err(|err| stream::from_io_error(err, ErrorKind::FileWrite, "write bundle"))?;
        return Ok((stored, Some((open.id, offset))));
    }
    stream::copy_through(reader, &mut pass, open, buffer_size)?;
    let stored = stored_from(reader.results()?)?;
    if open.offset - offset != stored.repo_size {
        return Err(Error::new(
            ErrorKind::Assert,
            format!(
                "bundle {} received {} bytes of a file stored as {}",
                open.id,
                open.offset - offset,
                stored.repo_size
            ),
        ));
    }
    Ok((stored, Some((open.id, offset))))
}

/// Writes the output of a filter chain that ran at the source (size, hash, page checksums,
/// compression, size) into the backup set as `name`, unchanged, and commits it once the
/// chain's results are in.
fn store_filtered(
    settings: &CopySettings,
    name: &str,
    reader: &mut Box<dyn FilteredRead>,
) -> Result<Stored> {
    let (target, options) = target(settings, name);
    let mut writer = settings.repo.open_write(&target, &options)?;
    let mut pass = FilterChain::new(Vec::new());
    stream::copy_through(reader, &mut pass, &mut writer, settings.buffer_size)?;
    let stored = stored_from(reader.results()?)?;
    writer.commit()?;
    Ok(stored)
}

/// Where a manifest name is stored in the backup set, and how.
pub(super) fn target(settings: &CopySettings, name: &str) -> (String, WriteOptions) {
    let target = layout::backup_file(
        settings.stanza,
        settings.label,
        name,
        settings.compress.extension(),
    );
    let options = WriteOptions::in_prepared_dir();
    (target, options)
}

/// Re-reads the pages that failed (a read may have met a concurrent write) and reports those
/// that still fail.
fn page_errors(
    settings: &CopySettings,
    rel: &str,
    pages: &PageChecksumResult,
    first_block: u32,
    start_lsn: Lsn,
) -> Result<Option<Vec<u32>>> {
    let path = settings.pg.describe(rel);
    if pages.misaligned {
        log_warn!(
            "page misalignment in file {path}: file size is not divisible by the page size {}",
            page::PAGE_SIZE
        );
    }
    if pages.invalid.is_empty() {
        return Ok(None);
    }
    let still = page::recheck_in(settings.pg, rel, &pages.invalid, first_block, start_lsn)?;
    if still.is_empty() {
        return Ok(None);
    }
    log_warn!(
        "invalid page checksums found in file {path} at blocks {}",
        page::condense(&still)
    );
    Ok(Some(still))
}

/// Streams `reader` into the backup set as `name` (a manifest name), decompressing it first when
/// it is compressed with `decompress`, and passing the content through `verify` (page checksums)
/// when given.
pub fn store(
    settings: &CopySettings,
    name: &str,
    reader: &mut dyn std::io::Read,
    decompress: Option<CompressType>,
    verify: Option<Box<dyn Filter>>,
) -> Result<Stored> {
    let (target, options) = target(settings, name);
    let mut writer = settings.repo.open_write(&target, &options)?;
    let mut filters: Vec<Box<dyn Filter>> = Vec::new();
    if let Some(kind) = decompress.filter(|k| *k != CompressType::None) {
        filters.push(FilterSpec::Decompress { kind }.build()?);
    }
    filters.push(FilterSpec::Size.build()?);
    filters.push(FilterSpec::Hash.build()?);
    if let Some(verify) = verify {
        filters.push(verify);
    }
    if settings.compress != CompressType::None {
        filters.push(
            FilterSpec::Compress {
                kind: settings.compress,
                level: settings.level,
            }
            .build()?,
        );
    }
    filters.push(FilterSpec::Size.build()?);
    let mut chain = FilterChain::new(filters);
    let results = stream::copy_through(reader, &mut chain, &mut writer, settings.buffer_size)?;
    writer.commit()?;
    stored_from(results)
}

/// What a backup file's chain reported: size, hash, page checksums if checked, stored size.
pub(super) fn stored_from(results: Vec<FilterResult>) -> Result<Stored> {
    // Taken by value: a block-incremental result holds every block's hash (2 MiB for a 1 GiB
    // segment), which a copy here would double at a backup worker's peak of memory.
    let unexpected = || {
        Error::new(
            ErrorKind::Assert,
            "unexpected filter results for a backup file",
        )
    };
    let mut results = results.into_iter();
    let (Some(FilterResult::Size(size)), Some(FilterResult::Hash(checksum))) =
        (results.next(), results.next())
    else {
        return Err(unexpected());
    };
    let mut middle: Vec<FilterResult> = results.collect();
    let Some(FilterResult::Size(repo_size)) = middle.pop() else {
        return Err(unexpected());
    };
    let (mut pages, mut block) = (None, None);
    for result in middle {
        match result {
            FilterResult::PageChecksum(found) if pages.is_none() => pages = Some(found),
            FilterResult::BlockIncr(found) if block.is_none() => block = Some(found),
            _ => {}
        }
    }
    Ok(Stored {
        size,
        checksum,
        repo_size,
        pages,
        block,
    })
}

/// Hashes `file` and compares it with the prior backup's entry: unchanged content is
/// referenced, anything else copied.
pub fn check_file(
    settings: &CopySettings,
    file: &SourceFile,
    prior: FileEntry,
    owner: Owner,
    target: Target,
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
    copy_file_to(settings, file, owner, target)
}
