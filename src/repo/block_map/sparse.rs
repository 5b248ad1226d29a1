//! Version 3 of the map file: only the blocks one backup stored, on top of a base map.
//!
//! An incremental or differential usually stores a fraction of a file's blocks, yet a complete
//! map repeats every block's 16-byte hash. A sparse map records the blocks the backup stored
//! (their numbers, whether each is a delta, their hashes) and names the map it builds on (the
//! prior backup's, by set label and SHA-256); every other block is as the base map has it.
//! Loading it loads the chain of maps back to a complete one and composes them with
//! `BlockMap::next`, exactly as the backup did, so readers see the same complete map.
//!
//! Layout after `PGKEEPBM` · u16 version (3): u32 block size · own label · base label (u16
//! length + UTF-8 each) · base map SHA-256 (u16 length + hex) · u8 depth (maps to the complete
//! one) · u32 block count · u32 stored count (S) · one zstd frame of S u32 block-number gaps
//! (the number less the previous stored number plus one), S u8 kinds (0 raw, 1 delta) and S
//! 16-byte hashes · the 32-byte SHA-256 trailer.

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::{BlockHashes, BlockIncrResult};

use super::BlockMap;
use super::codec::{
    Cursor, MAGIC_BYTES, check_block_size, check_blocks, corrupt, inflate, sha256, u32_of,
};

pub const VERSION: u16 = 3;
/// zstd level: the hashes do not compress, the gaps and kinds are long runs.
const LEVEL: i32 = 3;

/// A decoded sparse map, not yet composed with its base.
#[derive(Debug)]
pub struct Sparse {
    /// The backup set that wrote it.
    pub label: String,
    /// The backup set holding the base map, and the base map's SHA-256 (hex).
    pub base: String,
    pub base_checksum: String,
    /// How many maps lead back to a complete one (1 when the base is complete).
    pub depth: u8,
    pub block_size: u32,
    pub blocks: u32,
    /// The stored blocks, their kinds and their hashes (only theirs).
    pub stored: Vec<u32>,
    pub deltas: Vec<bool>,
    pub hashes: Vec<u128>,
}

/// The sparse form of what backup `label` stored of a file whose prior map is `base` (held
/// by set `base_label`, SHA-256 `base_checksum`).
pub fn encode(
    label: &str,
    base_label: &str,
    base_checksum: &str,
    base: &BlockMap,
    result: &BlockIncrResult,
) -> Result<Vec<u8>> {
    let mut out = Vec::with_capacity(128 + result.stored.len() * 21);
    out.extend_from_slice(MAGIC_BYTES);
    out.extend_from_slice(&VERSION.to_le_bytes());
    out.extend_from_slice(&base.block_size.to_le_bytes());
    for text in [label, base_label, base_checksum] {
        let len = u16::try_from(text.len())
            .map_err(|_| Error::new(ErrorKind::Assert, "label too long for a block map"))?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(text.as_bytes());
    }
    out.push(base.depth + 1);
    out.extend_from_slice(&u32_of(result.hashes.0.len())?.to_le_bytes());
    out.extend_from_slice(&u32_of(result.stored.len())?.to_le_bytes());
    let mut columns = Vec::with_capacity(result.stored.len() * 21);
    let mut next = 0u32;
    for number in &result.stored {
        let gap = number.checked_sub(next).ok_or_else(|| {
            Error::new(
                ErrorKind::Assert,
                "stored blocks are not in ascending order",
            )
        })?;
        columns.extend_from_slice(&gap.to_le_bytes());
        next = number + 1;
    }
    for k in 0..result.stored.len() {
        columns.push(u8::from(result.deltas.get(k).copied().unwrap_or(false)));
    }
    for number in &result.stored {
        let hash = result
            .hashes
            .0
            .get(*number as usize)
            .ok_or_else(|| Error::new(ErrorKind::Assert, "a stored block has no hash"))?;
        columns.extend_from_slice(&hash.to_le_bytes());
    }
    let packed = zstd::bulk::compress(&columns, LEVEL).map_err(|err| {
        Error::new(
            ErrorKind::Assert,
            format!("unable to compress a block map: {err}"),
        )
    })?;
    out.extend_from_slice(&packed);
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// Decodes the rest of a version 3 map, `cursor` just past the version.
pub fn decode(cursor: &mut Cursor, what: &str) -> Result<Sparse> {
    let corrupt = |why: &str| corrupt(what, why);
    let too_short = || corrupt("truncated");
    let block_size = check_block_size(cursor.u32().ok_or_else(too_short)?, what)?;
    let mut texts = Vec::with_capacity(3);
    for _ in 0..3 {
        let len = cursor.u16().ok_or_else(too_short)?;
        let text = cursor.take(len.into()).ok_or_else(too_short)?;
        texts.push(String::from_utf8(text.to_vec()).map_err(|_| corrupt("label is not UTF-8"))?);
    }
    let depth = cursor.take(1).ok_or_else(too_short)?[0];
    let blocks = cursor.u32().ok_or_else(too_short)?;
    check_blocks(blocks, what)?;
    let count = cursor.u32().ok_or_else(too_short)?;
    // Stored block numbers are distinct and below the block count.
    if count > blocks {
        return Err(corrupt(&format!(
            "{count} stored blocks of {blocks} is impossible"
        )));
    }
    let count = count as usize;
    let size = count * 21;
    let columns = inflate(&cursor.bytes[cursor.at..], size)
        .ok_or_else(|| corrupt("columns do not decompress"))?;
    if columns.len() != size {
        return Err(corrupt("stored count does not match its length"));
    }
    let mut gaps = Cursor {
        bytes: &columns,
        at: 0,
    };
    let mut hashes = Cursor {
        bytes: &columns,
        at: count * 5,
    };
    let mut stored = Vec::with_capacity(count);
    let mut next = 0u32;
    for _ in 0..count {
        let gap = gaps.u32().ok_or_else(too_short)?;
        let number = next
            .checked_add(gap)
            .filter(|n| *n < blocks)
            .ok_or_else(|| corrupt("stored block out of range"))?;
        stored.push(number);
        next = number + 1;
    }
    let deltas = columns[count * 4..count * 5]
        .iter()
        .map(|k| *k == 1)
        .collect();
    let hashes = (0..count)
        .map(|_| hashes.u128().ok_or_else(too_short))
        .collect::<Result<Vec<_>>>()?;
    let [label, base, base_checksum] = <[String; 3]>::try_from(texts)
        .map_err(|_| Error::new(ErrorKind::Assert, "three texts expected"))?;
    Ok(Sparse {
        label,
        base,
        base_checksum,
        depth,
        block_size,
        blocks,
        stored,
        deltas,
        hashes,
    })
}

/// The complete map `sparse` describes on top of its complete `base`.
pub fn compose(base: &BlockMap, sparse: Sparse, what: &str) -> Result<BlockMap> {
    if base.block_size != sparse.block_size {
        return Err(corrupt(what, "block size differs from its base map's"));
    }
    // Every block is stored here or in the base: a larger count is a claim nothing backs,
    // refused before it sizes the hash vector.
    if sparse.blocks as usize > base.blocks.len() + sparse.stored.len() {
        return Err(corrupt(
            what,
            &format!(
                "{} blocks, but its base has {} and it stores {}",
                sparse.blocks,
                base.blocks.len(),
                sparse.stored.len()
            ),
        ));
    }
    let mut hashes = Vec::with_capacity(sparse.blocks as usize);
    let mut own = sparse.stored.iter().zip(&sparse.hashes).peekable();
    for n in 0..sparse.blocks as usize {
        let hash = match own.next_if(|(number, _)| **number as usize == n) {
            Some((_, hash)) => *hash,
            None => {
                base.blocks
                    .get(n)
                    .ok_or_else(|| {
                        corrupt(
                            what,
                            &format!("block {n} is neither stored nor in its base"),
                        )
                    })?
                    .hash
            }
        };
        hashes.push(hash);
    }
    let result = BlockIncrResult {
        hashes: BlockHashes(hashes),
        stored: sparse.stored,
        deltas: sparse.deltas,
    };
    let mut map = BlockMap::next(Some(base), &sparse.label, &result, base.block_size)
        .map_err(|err| corrupt(what, err.message()))?;
    map.maps = base.maps.clone();
    map.maps.push(sparse.base);
    map.depth = sparse.depth;
    Ok(map)
}
