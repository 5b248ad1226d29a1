//! The binary forms of a block map (little-endian), documented in docs/repository-format.md.
//!
//! Both versions start `PGKEEPBM` · u16 version · u32 block size · u16 label count · per label
//! (u16 length, UTF-8 bytes) · u32 block count, and end with the 32-byte SHA-256 of everything
//! before it (the manifest entry records that SHA-256 too).
//! - Version 1 (first block-incremental release): per block a 16-byte hash, a u16 label index
//!   and a u32 position — one raw layer a block. Still read, so its backups stay restorable.
//! - Version 2 (written now): u32 layer count, then one zstd frame of columns: every hash
//!   (16 bytes each), every block's layer count (u8), every layer's label index (u16), every
//!   layer's position gap (u32: the position less the holder's previous position plus one).
//!   Columns keep alike values together, and gaps are nearly all zero, so the label and
//!   position columns compress to almost nothing; the hashes are what is left.

use crate::error::{Error, ErrorKind, Result};
use crate::io::hash::to_hex;

use super::sparse::{self, Sparse};
use super::{BlockMap, Layer, MapBlock};

const MAGIC: &[u8; 8] = b"PGKEEPBM";
pub(super) const MAGIC_BYTES: &[u8; 8] = MAGIC;
const VERSION: u16 = 2;
/// The length of the trailing SHA-256.
pub const TRAILER: usize = 32;
/// zstd level for the columns: the hash column is incompressible, the others are long runs.
const LEVEL: i32 = 3;

/// The current binary form of `map`. The columns are packed before the output is allocated,
/// and dropped before it is filled: for a 1 GiB segment they are 3 MiB and the packed form
/// 2 MiB, and this is the peak of a backup worker's memory.
pub fn encode(map: &BlockMap) -> Result<Vec<u8>> {
    let mut columns = Vec::with_capacity(map.blocks.len() * 17 + map.layers.len() * 6);
    for block in &map.blocks {
        columns.extend_from_slice(&block.hash.to_le_bytes());
    }
    columns.extend(map.blocks.iter().map(|b| b.count));
    for layer in &map.layers {
        columns.extend_from_slice(&layer.holder.to_le_bytes());
    }
    let mut next = vec![0u32; map.labels.len()];
    for n in 0..map.blocks.len() {
        for layer in map.layers(n) {
            let expected = &mut next[layer.holder as usize];
            let gap = layer.pos.checked_sub(*expected).ok_or_else(|| {
                Error::new(
                    ErrorKind::Assert,
                    format!("block {n} is placed before an earlier block of its holder"),
                )
            })?;
            columns.extend_from_slice(&gap.to_le_bytes());
            *expected = layer.pos + 1;
        }
    }
    let packed = zstd::bulk::compress(&columns, LEVEL).map_err(|err| {
        Error::new(
            ErrorKind::Assert,
            format!("unable to compress a block map: {err}"),
        )
    })?;
    drop(columns);
    let mut out = header(map, VERSION, 4 + packed.len())?;
    out.extend_from_slice(&u32_of(map.layers.len())?.to_le_bytes());
    out.extend_from_slice(&packed);
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    Ok(out)
}

/// The start shared by both versions, up to and including the block count, in a vector with
/// room for `body` more bytes and the trailer.
fn header(map: &BlockMap, version: u16, body: usize) -> Result<Vec<u8>> {
    let labels: usize = map.labels.iter().map(|l| 2 + l.len()).sum();
    let mut out = Vec::with_capacity(20 + labels + body + TRAILER);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&version.to_le_bytes());
    out.extend_from_slice(&map.block_size.to_le_bytes());
    let count = u16::try_from(map.labels.len()).map_err(|_| too_many())?;
    out.extend_from_slice(&count.to_le_bytes());
    for label in &map.labels {
        let len = u16::try_from(label.len()).map_err(|_| too_many())?;
        out.extend_from_slice(&len.to_le_bytes());
        out.extend_from_slice(label.as_bytes());
    }
    out.extend_from_slice(&u32_of(map.blocks.len())?.to_le_bytes());
    Ok(out)
}

/// Decodes a map of either version; see `BlockMap::decode`.
pub fn decode(bytes: &[u8], expected: Option<&str>, what: &str) -> Result<Decoded> {
    let corrupt = |why: &str| corrupt(what, why);
    if bytes.len() < MAGIC.len() + 2 + TRAILER || &bytes[..MAGIC.len()] != MAGIC {
        return Err(corrupt("bad header"));
    }
    let (body, trailer) = bytes.split_at(bytes.len() - TRAILER);
    let digest = sha256(body);
    if digest.as_slice() != trailer {
        return Err(corrupt("checksum mismatch"));
    }
    if let Some(expected) = expected
        && to_hex(&digest) != expected
    {
        return Err(corrupt(&format!(
            "checksum '{}' does not match '{expected}' in the manifest",
            to_hex(&digest)
        )));
    }
    let mut cursor = Cursor {
        bytes: body,
        at: MAGIC.len(),
    };
    let too_short = || corrupt("truncated");
    let version = cursor.u16().ok_or_else(too_short)?;
    if version == sparse::VERSION {
        return sparse::decode(&mut cursor, what).map(Decoded::Sparse);
    }
    if version != 1 && version != VERSION {
        return Err(corrupt(&format!("unknown version {version}")));
    }
    let block_size = check_block_size(cursor.u32().ok_or_else(too_short)?, what)?;
    let count = cursor.u16().ok_or_else(too_short)?;
    // Each label takes at least its 2-byte length: the file's own length bounds the table.
    let mut labels = Vec::with_capacity(usize::from(count).min(body.len() / 2));
    for _ in 0..count {
        let len = cursor.u16().ok_or_else(too_short)?;
        let text = cursor.take(len.into()).ok_or_else(too_short)?;
        labels.push(String::from_utf8(text.to_vec()).map_err(|_| corrupt("label is not UTF-8"))?);
    }
    let blocks = check_blocks(cursor.u32().ok_or_else(too_short)?, what)?;
    if version == 1 && body.len() - cursor.at != blocks * 22 {
        return Err(corrupt("block count does not match its length"));
    }
    // Version 1's length was just checked; version 2's counts are only claims until its
    // columns decompress to them, so its vectors grow with what is really there.
    let room = if version == 1 {
        blocks
    } else {
        blocks.min(PREALLOC)
    };
    let mut map = BlockMap {
        block_size,
        labels,
        blocks: Vec::with_capacity(room),
        layers: Vec::with_capacity(room),
        maps: Vec::new(),
        depth: 0,
    };
    if version == 1 {
        for n in 0..blocks {
            let hash = cursor.u128().ok_or_else(too_short)?;
            let holder = cursor.u16().ok_or_else(too_short)?;
            let pos = cursor.u32().ok_or_else(too_short)?;
            if holder as usize >= map.labels.len() {
                return Err(corrupt("label index out of range"));
            }
            map.blocks.push(MapBlock {
                hash,
                first: n as u32,
                count: 1,
            });
            map.layers.push(Layer { holder, pos });
        }
        return Ok(Decoded::Complete(map));
    }
    let layers = cursor.u32().ok_or_else(too_short)? as usize;
    // Every block has from 1 to 255 layers (its count is a byte).
    if layers < blocks || layers > blocks * usize::from(u8::MAX) {
        return Err(corrupt(&format!(
            "{layers} layers for {blocks} blocks is impossible"
        )));
    }
    let size = blocks * 17 + layers * 6;
    let columns =
        inflate(&body[cursor.at..], size).ok_or_else(|| corrupt("columns do not decompress"))?;
    if columns.len() != size {
        return Err(corrupt("block and layer counts do not match its length"));
    }
    let mut hashes = Cursor {
        bytes: &columns,
        at: 0,
    };
    let mut counts = Cursor {
        bytes: &columns,
        at: blocks * 16,
    };
    let mut holders = Cursor {
        bytes: &columns,
        at: blocks * 17,
    };
    let mut gaps = Cursor {
        bytes: &columns,
        at: blocks * 17 + layers * 2,
    };
    let mut next = vec![0u32; map.labels.len()];
    for _ in 0..blocks {
        let hash = hashes.u128().ok_or_else(too_short)?;
        let count = counts.take(1).ok_or_else(too_short)?[0];
        if count == 0 {
            return Err(corrupt("a block has no layers"));
        }
        let first = map.layers.len() as u32;
        for _ in 0..count {
            let holder = holders.u16().ok_or_else(too_short)?;
            let gap = gaps.u32().ok_or_else(too_short)?;
            let Some(expected) = next.get_mut(holder as usize) else {
                return Err(corrupt("label index out of range"));
            };
            let pos = expected
                .checked_add(gap)
                .ok_or_else(|| corrupt("position out of range"))?;
            *expected = pos.saturating_add(1);
            map.layers.push(Layer { holder, pos });
        }
        map.blocks.push(MapBlock { hash, first, count });
    }
    if map.layers.len() != layers {
        return Err(corrupt("layer count does not match the blocks"));
    }
    Ok(Decoded::Complete(map))
}

/// A decoded map file: complete, or the blocks one backup stored on top of a base map.
#[derive(Debug)]
pub enum Decoded {
    Complete(BlockMap),
    Sparse(Sparse),
}

/// The most blocks a map may describe: 2^24 blocks is a 128 GiB relation segment of 8 KiB
/// pages (PostgreSQL's default segment is 1 GiB, 131072 blocks). A map claiming more is
/// corrupt; the bound keeps what a forged count can make a reader allocate finite.
pub const MAX_BLOCKS: u32 = 1 << 24;

/// Room reserved up front for a count read from a map before the data backing it is seen.
const PREALLOC: usize = 1 << 16;

/// The block size of a map: PostgreSQL's page size, a power of two from 1 KiB to 32 KiB. A
/// reader allocates a block's worth of buffer, so nothing else is accepted.
pub(super) fn check_block_size(block_size: u32, what: &str) -> Result<u32> {
    if block_size.is_power_of_two() && (1024..=super::MAX_BLOCK_SIZE).contains(&block_size) {
        Ok(block_size)
    } else {
        Err(corrupt(what, &format!("invalid block size {block_size}")))
    }
}

/// A block count read from a map, checked against [`MAX_BLOCKS`].
pub(super) fn check_blocks(blocks: u32, what: &str) -> Result<usize> {
    if blocks > MAX_BLOCKS {
        return Err(corrupt(
            what,
            &format!("block count {blocks} exceeds the limit of {MAX_BLOCKS}"),
        ));
    }
    Ok(blocks as usize)
}

/// Decompresses a map's columns, expected to be `size` bytes: at most `size + 1` bytes are
/// produced (one more shows the claim was short) into a vector that grows with the output,
/// so a count claimed by the map never sizes an allocation by itself, and the decoder's
/// window is limited (a frame may ask for up to 2 GiB). `None` when the frame is damaged.
pub(super) fn inflate(compressed: &[u8], size: usize) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut decoder = zstd::stream::read::Decoder::with_buffer(compressed).ok()?;
    decoder.window_log_max(WINDOW_LOG_MAX).ok()?;
    let mut out = Vec::with_capacity(size.min(COLUMNS_PREALLOC));
    decoder.take(size as u64 + 1).read_to_end(&mut out).ok()?;
    Some(out)
}

/// Room reserved up front for a map's columns: exactly what the map claims up to this (a
/// 1 GiB segment's map has 3 MiB of columns, so real maps never regrow), no more for a claim.
const COLUMNS_PREALLOC: usize = 16 << 20;

/// The largest zstd window a map's columns may use: 8 MiB, far above what `LEVEL` writes.
const WINDOW_LOG_MAX: u32 = 23;

/// The error for a map that does not decode.
pub fn corrupt(what: &str, why: &str) -> Error {
    Error::new(
        ErrorKind::Format,
        format!("block map '{what}' is corrupt: {why}"),
    )
    .with_hint("the repository is damaged; run verify")
}

pub(super) fn u32_of(len: usize) -> Result<u32> {
    u32::try_from(len).map_err(|_| too_many())
}

fn too_many() -> Error {
    Error::new(
        ErrorKind::Assert,
        "too many backup sets, blocks or layers for a block map",
    )
}

pub(super) fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

pub(super) struct Cursor<'a> {
    pub bytes: &'a [u8],
    pub at: usize,
}

impl<'a> Cursor<'a> {
    pub fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(slice)
    }

    pub fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    pub fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }

    pub fn u128(&mut self) -> Option<u128> {
        Some(u128::from_le_bytes(self.take(16)?.try_into().ok()?))
    }
}

/// The version 1 form of a map with one raw layer a block, as the first release wrote it.
#[cfg(test)]
pub fn encode_v1(map: &BlockMap) -> Vec<u8> {
    let mut out = header(map, 1, map.blocks.len() * 22).unwrap();
    for (n, block) in map.blocks.iter().enumerate() {
        let [layer] = map.layers(n) else {
            panic!("version 1 has one layer a block")
        };
        out.extend_from_slice(&block.hash.to_le_bytes());
        out.extend_from_slice(&layer.holder.to_le_bytes());
        out.extend_from_slice(&layer.pos.to_le_bytes());
    }
    let digest = sha256(&out);
    out.extend_from_slice(&digest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::block_incr::{BlockHashes, BlockIncrResult};

    fn complete(decoded: Decoded) -> BlockMap {
        match decoded {
            Decoded::Complete(map) => map,
            Decoded::Sparse(_) => panic!("sparse"),
        }
    }

    fn chain() -> BlockMap {
        let result = |hashes: &[u128], stored: &[u32], deltas: &[bool]| BlockIncrResult {
            hashes: BlockHashes(hashes.to_vec()),
            stored: stored.to_vec(),
            deltas: deltas.to_vec(),
        };
        let full = BlockMap::next(
            None,
            "20261124-100000F",
            &result(&[1, 2, 3], &[0, 1, 2], &[]),
            8192,
        )
        .unwrap();
        BlockMap::next(
            Some(&full),
            "20261124-100000F_20261124-110000I",
            &result(&[1, 5, u128::MAX, 4], &[1, 2, 3], &[true, false, false]),
            8192,
        )
        .unwrap()
    }

    #[test]
    fn maps_round_trip_and_corruption_is_detected() {
        let map = chain();
        let bytes = encode(&map).unwrap();
        let digest = to_hex(&bytes[bytes.len() - 32..]);
        assert_eq!(complete(decode(&bytes, Some(&digest), "m").unwrap()), map);
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        let err = decode(&flipped, None, "m").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        assert_eq!(err.message(), "block map 'm' is corrupt: checksum mismatch");
        let err = decode(&bytes, Some("00"), "m").unwrap_err();
        assert!(
            err.message()
                .contains("does not match '00' in the manifest")
        );
        assert!(decode(&bytes[..20], None, "m").is_err());
    }

    #[test]
    fn a_version_1_map_still_decodes() {
        let result = BlockIncrResult {
            hashes: BlockHashes(vec![7, 8, 9]),
            stored: vec![0, 1, 2],
            deltas: Vec::new(),
        };
        let map = BlockMap::next(None, "F", &result, 8192).unwrap();
        let bytes = encode_v1(&map);
        assert_eq!(&bytes[8..10], &1u16.to_le_bytes());
        assert_eq!(bytes.len(), 8 + 2 + 4 + 2 + 3 + 4 + 3 * 22 + 32);
        assert_eq!(complete(decode(&bytes, None, "m").unwrap()), map);
    }

    #[test]
    fn runs_of_positions_compress_to_almost_nothing() {
        let hashes: Vec<u128> = (0..10_000u128).map(|h| h * 0x9e37_79b9_7f4a_7c15).collect();
        let result = BlockIncrResult {
            stored: (0..10_000).collect(),
            hashes: BlockHashes(hashes),
            deltas: Vec::new(),
        };
        let map = BlockMap::next(None, "F", &result, 8192).unwrap();
        let v2 = encode(&map).unwrap().len();
        assert!(v2 < 10_000 * 17, "{v2}");
        assert!(encode_v1(&map).len() > 10_000 * 22);
    }

    /// `bytes` with `value` written at `at` and the trailer recomputed, as anyone who can write
    /// the repository can (the manifest's copy of the checksum is recomputable too).
    fn forged(bytes: &[u8], at: usize, value: u32) -> Vec<u8> {
        let mut body = bytes[..bytes.len() - TRAILER].to_vec();
        body[at..at + 4].copy_from_slice(&value.to_le_bytes());
        let digest = sha256(&body);
        body.extend_from_slice(&digest);
        body
    }

    #[track_caller]
    fn refused(bytes: &[u8], expected: &str) {
        let Err(err) = decode(bytes, None, "m") else {
            panic!("decoded, expected: {expected}")
        };
        assert_eq!(err.kind(), ErrorKind::Format, "{expected}");
        assert!(err.message().contains(expected), "{}", err.message());
    }

    /// Found by tests/integration/hostile_input/: a count of u32::MAX blocks sized two vectors
    /// of 32 and 8 bytes a block (a 137 GB allocation, SIGABRT), and the claimed column size
    /// sized the decompression buffer.
    #[test]
    fn impossible_block_sizes_and_counts_are_refused_before_allocating() {
        let map = chain();
        let bytes = encode(&map).unwrap();
        let labels: usize = map.labels.iter().map(|l| 2 + l.len()).sum();
        // magic, version, block size, label count, then the labels.
        let blocks_at = 8 + 2 + 4 + 2 + labels;
        let layers_at = blocks_at + 4;
        assert_eq!(map.layers.len(), 5);
        refused(&forged(&bytes, 10, 0), "invalid block size 0");
        refused(&forged(&bytes, 10, 8193), "invalid block size 8193");
        refused(
            &forged(&bytes, 10, u32::MAX),
            "invalid block size 4294967295",
        );
        refused(
            &forged(&bytes, blocks_at, u32::MAX),
            "block count 4294967295 exceeds the limit of 16777216",
        );
        refused(
            &forged(&bytes, blocks_at, MAX_BLOCKS),
            "5 layers for 16777216 blocks is impossible",
        );
        refused(
            &forged(&bytes, layers_at, u32::MAX),
            "4294967295 layers for 4 blocks is impossible",
        );
        refused(&forged(&bytes, layers_at, 3), "3 layers for 4 blocks");
        // Consistent counts the columns do not back: refused once the columns run out.
        let claimed = forged(&forged(&bytes, blocks_at, 100_000), layers_at, 100_000);
        refused(&claimed, "counts do not match its length");

        let v1 = encode_v1(&map_of_one_layer());
        refused(
            &forged(&v1, 8 + 2 + 4 + 2 + 3, u32::MAX),
            "exceeds the limit",
        );
        refused(
            &forged(&v1, 8 + 2 + 4 + 2 + 3, 1000),
            "block count does not match its length",
        );
    }

    /// A sparse map claiming more blocks than it and its base hold, or more stored blocks than
    /// blocks, is refused before either count sizes anything.
    #[test]
    fn a_sparse_map_claiming_blocks_nothing_holds_is_refused() {
        let base = map_of_one_layer();
        let result = BlockIncrResult {
            hashes: BlockHashes(vec![7, 10, 9]),
            stored: vec![1],
            deltas: vec![false],
        };
        let bytes = super::super::sparse::encode("I", "F", "ab", &base, &result).unwrap();
        // magic, version, block size, three texts ("I", "F", "ab"), depth: then the counts.
        let blocks_at = 8 + 2 + 4 + 3 + 3 + 4 + 1;
        let count_at = blocks_at + 4;
        let sparse = |bytes: &[u8]| match decode(bytes, None, "m") {
            Ok(Decoded::Sparse(sparse)) => sparse,
            other => panic!("{other:?}"),
        };
        let compose = super::super::sparse::compose;
        assert_eq!(compose(&base, sparse(&bytes), "m").unwrap().blocks.len(), 3);
        let err = compose(&base, sparse(&forged(&bytes, blocks_at, 10_000_000)), "m").unwrap_err();
        assert!(
            err.message()
                .contains("10000000 blocks, but its base has 3 and it stores 1"),
            "{}",
            err.message()
        );
        refused(
            &forged(&bytes, blocks_at, u32::MAX),
            "block count 4294967295 exceeds the limit",
        );
        refused(
            &forged(&bytes, count_at, 4),
            "4 stored blocks of 3 is impossible",
        );
        refused(&forged(&bytes, 10, 3), "invalid block size 3");
    }

    fn map_of_one_layer() -> BlockMap {
        let result = BlockIncrResult {
            hashes: BlockHashes(vec![7, 8, 9]),
            stored: vec![0, 1, 2],
            deltas: Vec::new(),
        };
        BlockMap::next(None, "F", &result, 8192).unwrap()
    }
}
