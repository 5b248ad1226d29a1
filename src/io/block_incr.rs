//! The block-incremental filter: passes on only the blocks of a file that changed.
//!
//! A relation file is cut into blocks of the cluster's page size. Each block is hashed with
//! XXH3-128 (fast enough never to be the bottleneck, and 128 bits make an accidental match of
//! a changed block negligible); a block whose hash equals the prior backup's hash at the same
//! block number is dropped, every other block is passed on downstream (to the compressor), in
//! ascending order. The result lists every block's new hash and which blocks were passed on,
//! which is what the repository's block map is built from (`repo::block_map`). The filter knows
//! nothing of labels or files: the prior hashes come in its spec, so it runs unchanged on the
//! far side of the remote protocol. Framed (as a backup asks for it), each block passed on is
//! preceded by its block number and length (u32 LE each), so the repository side can store it
//! as a delta against the block's prior version (`command::backup::block`).

use std::fmt::Write as _;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::error::Result;
use crate::io::filter::{Filter, FilterResult};

/// The XXH3-128 hash of one block.
pub fn block_hash(block: &[u8]) -> u128 {
    twox_hash::XxHash3_128::oneshot(block)
}

/// Per-block hashes of a file, block 0 first. Serialised as one hex string (32 digits a
/// block), which keeps a 1 GiB segment's list at 4 MiB of JSON on the remote protocol.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BlockHashes(pub Vec<u128>);

impl Serialize for BlockHashes {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        let mut text = String::with_capacity(self.0.len() * 32);
        for hash in &self.0 {
            let _ = write!(text, "{hash:032x}");
        }
        serializer.serialize_str(&text)
    }
}

impl<'de> Deserialize<'de> for BlockHashes {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        if text.len() % 32 != 0 || !text.is_ascii() {
            return Err(serde::de::Error::custom(
                "block hash list is not 32 hex digits a block",
            ));
        }
        text.as_bytes()
            .chunks(32)
            .map(|chunk| {
                std::str::from_utf8(chunk)
                    .ok()
                    .and_then(|digits| u128::from_str_radix(digits, 16).ok())
                    .ok_or_else(|| serde::de::Error::custom("block hash is not hex"))
            })
            .collect::<std::result::Result<Vec<_>, _>>()
            .map(BlockHashes)
    }
}

/// What the block-incremental filter found: every block's hash, and the blocks it passed on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BlockIncrResult {
    pub hashes: BlockHashes,
    /// Block numbers passed on downstream, ascending.
    pub stored: Vec<u32>,
    /// Per stored block, whether the repository side stored it as a delta against its prior
    /// version (filled in there: the filter itself stores nothing).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deltas: Vec<bool>,
}

/// Cuts the stream into blocks and passes on those whose hash differs from `prior`.
pub struct BlockIncrFilter {
    prior: Vec<u128>,
    block_size: usize,
    pending: Vec<u8>,
    next_block: u32,
    framed: bool,
    result: BlockIncrResult,
}

/// The bytes before each block in a framed stream: block number and length, u32 LE each.
pub const FRAME_HEADER: usize = 8;

impl BlockIncrFilter {
    /// A filter comparing with `prior` (every block is passed on when there is none).
    /// With `framed`, each block passed on is preceded by its number and length.
    pub fn new(prior: Option<BlockHashes>, block_size: u32, framed: bool) -> BlockIncrFilter {
        let block_size = (block_size as usize).max(1);
        BlockIncrFilter {
            prior: prior.map(|p| p.0).unwrap_or_default(),
            block_size,
            pending: Vec::with_capacity(block_size),
            next_block: 0,
            framed,
            result: BlockIncrResult::default(),
        }
    }

    fn block(&mut self, data: &[u8], out: &mut Vec<u8>) {
        let hash = block_hash(data);
        if self.prior.get(self.next_block as usize) != Some(&hash) {
            self.result.stored.push(self.next_block);
            if self.framed {
                out.extend_from_slice(&self.next_block.to_le_bytes());
                out.extend_from_slice(&(data.len() as u32).to_le_bytes());
            }
            out.extend_from_slice(data);
        }
        self.result.hashes.0.push(hash);
        self.next_block += 1;
    }
}

impl Filter for BlockIncrFilter {
    fn process(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        if !self.pending.is_empty() {
            let take = (self.block_size - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() == self.block_size {
                let pending = std::mem::take(&mut self.pending);
                self.block(&pending, out);
                self.pending = pending;
                self.pending.clear();
            }
        }
        while input.len() >= self.block_size {
            let (block, rest) = input.split_at(self.block_size);
            self.block(block, out);
            input = rest;
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        // A last partial block (a file being extended while it is read) is a block of its own.
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            self.block(&pending, out);
        }
        Ok(Some(FilterResult::BlockIncr(std::mem::take(
            &mut self.result,
        ))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BS: u32 = 8192;

    fn file(blocks: u32, seed: u8) -> Vec<u8> {
        (0..blocks * BS)
            .map(|i| (i / 7) as u8 ^ seed ^ (i / BS) as u8)
            .collect()
    }

    /// Runs the filter over `data` in uneven pieces; returns output and result.
    fn run(prior: Option<BlockHashes>, data: &[u8]) -> (Vec<u8>, BlockIncrResult) {
        let mut filter = BlockIncrFilter::new(prior, BS, false);
        let mut out = Vec::new();
        for piece in data.chunks(5000) {
            filter.process(piece, &mut out).unwrap();
        }
        match filter.finish(&mut out).unwrap() {
            Some(FilterResult::BlockIncr(result)) => (out, result),
            other => panic!("{other:?}"),
        }
    }

    fn block(data: &[u8], n: u32) -> &[u8] {
        &data[(n * BS) as usize..((n + 1) * BS) as usize]
    }

    #[test]
    fn without_prior_every_block_passes() {
        let data = file(5, 1);
        let (out, result) = run(None, &data);
        assert_eq!(out, data);
        assert_eq!(result.stored, vec![0, 1, 2, 3, 4]);
        assert_eq!(result.hashes.0.len(), 5);
        assert_eq!(result.hashes.0[2], block_hash(block(&data, 2)));
    }

    #[test]
    fn unchanged_blocks_are_dropped_and_changed_ones_pass() {
        let data = file(6, 1);
        let (_, first) = run(None, &data);
        let mut changed = data.clone();
        changed[(BS + 10) as usize] ^= 1;
        changed[(4 * BS + 8191) as usize] ^= 1;
        let (out, result) = run(Some(first.hashes.clone()), &changed);
        assert_eq!(result.stored, vec![1, 4]);
        let mut expected = block(&changed, 1).to_vec();
        expected.extend_from_slice(block(&changed, 4));
        assert_eq!(out, expected);
        let (out, result) = run(Some(first.hashes), &data);
        assert!(out.is_empty() && result.stored.is_empty());
    }

    #[test]
    fn grown_file_stores_the_new_blocks() {
        let data = file(3, 2);
        let (_, first) = run(None, &data);
        let grown = file(5, 2);
        let (out, result) = run(Some(first.hashes), &grown);
        assert_eq!(result.stored, vec![3, 4]);
        assert_eq!(out, grown[(3 * BS) as usize..]);
        assert_eq!(result.hashes.0.len(), 5);
    }

    #[test]
    fn shrunk_file_has_fewer_hashes_and_stores_nothing() {
        let data = file(5, 3);
        let (_, first) = run(None, &data);
        let (out, result) = run(Some(first.hashes.clone()), &data[..(2 * BS) as usize]);
        assert!(out.is_empty());
        assert_eq!(result.hashes.0, first.hashes.0[..2]);
    }

    #[test]
    fn a_partial_last_block_is_a_block() {
        let data = file(2, 4);
        let (out, result) = run(None, &data[..(BS + 100) as usize]);
        assert_eq!(out.len(), (BS + 100) as usize);
        assert_eq!(result.stored, vec![0, 1]);
    }

    #[test]
    fn a_framed_stream_names_each_block() {
        let data = file(3, 5);
        let (_, first) = run(None, &data);
        let mut changed = data.clone();
        changed[(2 * BS) as usize] ^= 1;
        let mut filter = BlockIncrFilter::new(Some(first.hashes), BS, true);
        let mut out = Vec::new();
        filter.process(&changed[..100], &mut out).unwrap();
        filter.process(&changed[100..], &mut out).unwrap();
        filter.finish(&mut out).unwrap();
        assert_eq!(&out[..4], &2u32.to_le_bytes());
        assert_eq!(&out[4..8], &BS.to_le_bytes());
        assert_eq!(&out[8..], block(&changed, 2));
    }

    #[test]
    fn hashes_round_trip_through_json() {
        let hashes = BlockHashes(vec![0, u128::MAX, 0x0123_4567_89ab_cdef]);
        let json = serde_json::to_string(&hashes).unwrap();
        assert_eq!(json.len(), 3 * 32 + 2);
        assert_eq!(serde_json::from_str::<BlockHashes>(&json).unwrap(), hashes);
        assert!(serde_json::from_str::<BlockHashes>("\"abc\"").is_err());
    }
}
