//! Block-incremental backup of one relation file (`repo1-block`).
//!
//! A relation file of at least [`BLOCK_INCR_MIN_SIZE`] is copied through the `BlockIncr`
//! filter, given the block hashes of the prior backup's map of the same file: only changed
//! blocks reach the compressor and the data object, and a new complete map is written beside
//! it (`repo::block_map`). The filter's output is framed and not compressed at the source:
//! here, on the repository side, each changed block is stored as a delta against its version
//! in the prior backup and then compressed (`repo::block_write`). Full backups write maps too,
//! so the next backup can compare with them. Smaller files, and every file when the option is
//! off, are copied whole as before.

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::BlockIncrResult;
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec};
use crate::log_warn;
use crate::pg::page;
use crate::repo::block_map::{BlockMap, MAP_EXT, MAX_MAP_DEPTH};
use crate::repo::block_read::Reassembler;
use crate::repo::block_write::{record_deltas, write_blocks};
use crate::repo::layout;
use crate::repo::manifest::BlockRef;
use crate::storage::FilteredRead;

use super::copy;
use super::work::{CopySettings, Stored};

/// Relation files smaller than this are copied whole: a map and a second object would cost
/// more than the blocks they save.
pub const BLOCK_INCR_MIN_SIZE: u64 = 2 * 1024 * 1024;

/// The prior backup's version of a file: its map (and where that is), size and compression.
struct PriorFile {
    map: BlockMap,
    holder: String,
    map_checksum: String,
    size: u64,
    compress: CompressType,
}

/// A file about to be copied block-incrementally.
pub struct BlockJob {
    prior: Option<PriorFile>,
    block_size: u32,
}

impl BlockJob {
    /// The filter to put in the file's chain, in place of compression (which happens on the
    /// repository side, after the deltas).
    pub fn spec(&self) -> FilterSpec {
        FilterSpec::BlockIncr {
            prior: self.prior.as_ref().map(|p| p.map.hashes()),
            block_size: self.block_size,
            framed: true,
        }
    }
}

/// Where the map of manifest name `name` is in backup set `label`.
pub fn map_path(stanza: &str, label: &str, name: &str) -> String {
    layout::backup_file(stanza, label, name, MAP_EXT)
}

/// Whether the relation file `rel` of `size` bytes is stored block-incrementally.
pub fn eligible(rel: &str, size: u64) -> bool {
    size >= BLOCK_INCR_MIN_SIZE && page::checked_file(rel).is_some()
}

/// The block job for `rel` (manifest name `name`), or `None` when it is copied whole. Reads
/// the prior backup's map of the file when there is one; a damaged or unreadable prior map is
/// reported and the file's blocks are all stored again.
pub fn prepare(
    settings: &CopySettings,
    rel: &str,
    name: &str,
    size: u64,
) -> Result<Option<BlockJob>> {
    let Some(block) = settings.block.as_ref().filter(|_| eligible(rel, size)) else {
        return Ok(None);
    };
    let prior = block
        .prior
        .and_then(|manifest| Some((manifest, manifest.file(name)?)))
        .and_then(|(manifest, entry)| Some((manifest, entry, entry.block.as_ref()?)))
        .map(|(manifest, entry, block_ref)| {
            let holder = manifest.holder(entry);
            let map = BlockMap::load(
                settings.repo,
                settings.stanza,
                holder,
                name,
                Some(&block_ref.map_checksum),
            )?;
            Ok::<_, Error>(PriorFile {
                map,
                holder: holder.to_string(),
                map_checksum: block_ref.map_checksum.clone(),
                size: entry.size,
                compress: manifest.compress_type,
            })
        })
        .transpose();
    let prior = match prior {
        Ok(prior) => prior.filter(|p| p.map.block_size == block.block_size),
        Err(err) => {
            log_warn!(
                "unable to use the prior block map of '{name}', all its blocks are stored: {}",
                err.message()
            );
            None
        }
    };
    Ok(Some(BlockJob {
        prior,
        block_size: block.block_size,
    }))
}

/// Writes the map of a file the filter has been through, and returns the manifest's record of
/// it. `repo_size` is the data object's size; the map's is added by the caller from the record.
pub fn finish(
    settings: &CopySettings,
    name: &str,
    job: &BlockJob,
    result: &BlockIncrResult,
    size: u64,
) -> Result<BlockRef> {
    let prior = job.prior.as_ref();
    let mut map = BlockMap::next(
        prior.map(|p| &p.map),
        settings.label,
        result,
        job.block_size,
    )?;
    let (map_size, map_checksum) = map.save_next(
        settings.repo,
        &map_path(settings.stanza, settings.label, name),
        prior.map(|p| (&p.map, p.holder.as_str(), p.map_checksum.as_str())),
        settings.label,
        result,
    )?;
    if let Some(prior) = prior.filter(|p| p.map.depth < MAX_MAP_DEPTH) {
        map.maps = prior.map.maps.clone();
        map.maps.push(prior.holder.clone());
    }
    let block_size = u64::from(job.block_size);
    let stored_size = result
        .stored
        .iter()
        .map(|n| block_size.min(size.saturating_sub(u64::from(*n) * block_size)))
        .sum();
    Ok(BlockRef {
        map_size,
        map_checksum,
        holders: map.needed(),
        stored_size,
    })
}

/// Writes the framed changed blocks `reader` yields into the backup set as `name`: each a
/// delta against the prior backup's version where there is one, then compressed. Commits once
/// the chain's results are in; the results record which blocks are deltas.
pub fn store(
    settings: &CopySettings,
    name: &str,
    job: &BlockJob,
    reader: &mut Box<dyn FilteredRead>,
) -> Result<Stored> {
    let (target, options) = copy::target(settings, name);
    let mut writer = settings.repo.open_write(&target, &options)?;
    let mut filters = Vec::new();
    if settings.compress != CompressType::None {
        let compress = FilterSpec::Compress {
            kind: settings.compress,
            level: settings.level,
        };
        filters.push(compress.build()?);
    }
    filters.push(FilterSpec::Size.build()?);
    let mut chain = FilterChain::new(filters);
    let mut prior = job.prior.as_ref().map(|p| {
        Reassembler::with_map(
            settings.repo,
            settings.stanza,
            name,
            p.compress,
            p.map.clone(),
            p.size,
        )
    });
    let (deltas, results) = write_blocks(
        &mut **reader,
        prior.as_mut(),
        &mut chain,
        &mut writer,
        settings.buffer_size,
    )?;
    let mut stored = copy::stored_from(reader.results()?)?;
    let [.., FilterResult::Size(repo_size)] = results.as_slice() else {
        return Err(Error::new(
            ErrorKind::Assert,
            "unexpected filter results for a block object",
        ));
    };
    stored.repo_size = *repo_size;
    if let Some(result) = stored.block.as_mut() {
        record_deltas(result, deltas)?;
    }
    writer.commit()?;
    Ok(stored)
}
