//! The block map of a block-incremental file: where every block of the file lives.
//!
//! A relation file stored block-incrementally by backup L has two objects in L's set: the data
//! object `pg_data/X<.ext>`, holding only the blocks L stored (ascending block number, one
//! compressed stream), and the map `pg_data/X.map`. The map is complete: it names, for every
//! block of the file as of L, its XXH3-128 hash and its layers — where the pieces of the block
//! are. The first layer is a raw block; every further layer is a delta, stored as the block's
//! new content XOR its content as of the layer before (so an index page with one new tuple is
//! a few hundred compressed bytes, not 8 KiB). A layer names the backup set holding it (an
//! index into the map's label table) and its position among that set's stored blocks. A
//! restore needs only L's map; positions of one holder grow with the block number, which lets
//! a reader stream every holder's object once, forward only, whatever the layers.
//!
//! The binary forms (version 1: one raw layer a block; version 2: layered and compressed) are
//! in [`codec`] and documented in docs/repository-format.md.

mod codec;

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::{BlockHashes, BlockIncrResult};
use crate::io::hash::to_hex;
use crate::storage::{Storage, WriteOptions};

pub use codec::TRAILER;

/// The extension of a map next to its data object: `pg_data/X.map`.
pub const MAP_EXT: &str = "map";

/// The most layers a block may have: a block whose chain is this long is stored raw again, so
/// a block that changes in every incremental of a long chain costs a restore at most this many
/// reads.
pub const MAX_LAYERS: usize = 16;

/// One piece of a block: a raw block (the first layer) or a delta (any later one).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layer {
    /// Index into `BlockMap::labels`.
    pub holder: u16,
    /// Ordinal of the block among the blocks the holder stored for this file.
    pub pos: u32,
}

/// One block of the file: its hash and where its layers are in `BlockMap::layers`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapBlock {
    pub hash: u128,
    pub first: u32,
    pub count: u8,
}

/// A decoded block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    pub block_size: u32,
    /// The backup sets holding layers of the file's blocks, in order of first use.
    pub labels: Vec<String>,
    /// Every block of the file, block 0 first.
    pub blocks: Vec<MapBlock>,
    /// The layers of every block, block 0's first, base before delta.
    pub layers: Vec<Layer>,
}

impl BlockMap {
    /// The map of the file as backup `label` stored it: blocks in `result.stored` are in
    /// `label`'s object (in that order) — a delta on top of `prior`'s layers when the matching
    /// entry of `result.deltas` is set, raw otherwise — and the others where `prior` has them.
    /// Fails when an unchanged block (or the base of a delta) is not in `prior`.
    pub fn next(
        prior: Option<&BlockMap>,
        label: &str,
        result: &BlockIncrResult,
        block_size: u32,
    ) -> Result<BlockMap> {
        let mut map = BlockMap {
            block_size,
            labels: Vec::new(),
            blocks: Vec::with_capacity(result.hashes.0.len()),
            layers: Vec::with_capacity(result.hashes.0.len()),
        };
        // Prior label index → this map's label index, filled on first use.
        let mut renumber: Vec<Option<u16>> = vec![None; prior.map_or(0, |p| p.labels.len())];
        let mut own: Option<u16> = None;
        let mut stored = result.stored.iter().peekable();
        let mut pos = 0u32;
        for (number, hash) in result.hashes.0.iter().enumerate() {
            let first = u32::try_from(map.layers.len()).map_err(|_| too_many())?;
            let is_stored = stored.next_if(|n| **n as usize == number).is_some();
            let delta = is_stored && result.deltas.get(pos as usize).copied().unwrap_or(false);
            if !is_stored || delta {
                let old = prior.filter(|p| number < p.blocks.len()).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Assert,
                        format!("block {number} was neither stored nor in the prior map"),
                    )
                })?;
                for layer in old.layers(number) {
                    let index = match renumber[layer.holder as usize] {
                        Some(index) => index,
                        None => {
                            let index = map.label(&old.labels[layer.holder as usize])?;
                            renumber[layer.holder as usize] = Some(index);
                            index
                        }
                    };
                    map.layers.push(Layer {
                        holder: index,
                        pos: layer.pos,
                    });
                }
            }
            if is_stored {
                let index = match own {
                    Some(index) => index,
                    None => *own.insert(map.label(label)?),
                };
                map.layers.push(Layer { holder: index, pos });
                pos += 1;
            }
            let count = map.layers.len() - first as usize;
            map.blocks.push(MapBlock {
                hash: *hash,
                first,
                count: u8::try_from(count).map_err(|_| too_many())?,
            });
        }
        Ok(map)
    }

    /// The index of `label` in the label table, added when new.
    fn label(&mut self, label: &str) -> Result<u16> {
        let index = match self.labels.iter().position(|l| l == label) {
            Some(index) => index,
            None => {
                self.labels.push(label.to_string());
                self.labels.len() - 1
            }
        };
        u16::try_from(index).map_err(|_| too_many())
    }

    /// The layers of block `n`, base first.
    pub fn layers(&self, n: usize) -> &[Layer] {
        let block = &self.blocks[n];
        let first = block.first as usize;
        &self.layers[first..first + block.count as usize]
    }

    /// The hashes of every block, for the next backup's filter.
    pub fn hashes(&self) -> BlockHashes {
        BlockHashes(self.blocks.iter().map(|b| b.hash).collect())
    }

    /// The label holding `layer`.
    pub fn holder(&self, layer: &Layer) -> &str {
        &self.labels[layer.holder as usize]
    }

    /// The binary form (current version), with its trailing SHA-256.
    pub fn encode(&self) -> Result<Vec<u8>> {
        codec::encode(self)
    }

    /// The version 1 form, as the first release wrote it (one raw layer a block).
    #[cfg(test)]
    pub fn encode_v1(&self) -> Vec<u8> {
        codec::encode_v1(self)
    }

    /// Decodes a map of any known version, checking its trailing SHA-256, its structure, and,
    /// when given, that the SHA-256 is `expected` (hex, from the manifest). `what` names the
    /// map in errors.
    pub fn decode(bytes: &[u8], expected: Option<&str>, what: &str) -> Result<BlockMap> {
        codec::decode(bytes, expected, what)
    }

    /// Reads and decodes the map at `path` (relative to the repository).
    pub fn load(repo: &dyn Storage, path: &str, expected: Option<&str>) -> Result<BlockMap> {
        let bytes = repo.read_all(path)?.ok_or_else(|| {
            Error::new(
                ErrorKind::FileMissing,
                format!("block map '{}' is missing", repo.describe(path)),
            )
            .with_hint("the repository is damaged; run verify")
        })?;
        BlockMap::decode(&bytes, expected, &repo.describe(path))
    }

    /// Writes the map at `path` atomically and durably; returns its size and SHA-256 (hex).
    pub fn save(&self, repo: &dyn Storage, path: &str) -> Result<(u64, String)> {
        let bytes = self.encode()?;
        let options = WriteOptions {
            mode: 0o640,
            mtime: None,
            create_path: false,
            atomic: true,
            sync_file: true,
            sync_path: false,
        };
        repo.put(path, &bytes, &options)?;
        Ok((bytes.len() as u64, to_hex(&bytes[bytes.len() - TRAILER..])))
    }
}

fn too_many() -> Error {
    Error::new(
        ErrorKind::Assert,
        "too many backup sets, blocks or layers for a block map",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(hashes: &[u128], stored: &[u32], deltas: &[bool]) -> BlockIncrResult {
        BlockIncrResult {
            hashes: BlockHashes(hashes.to_vec()),
            stored: stored.to_vec(),
            deltas: deltas.to_vec(),
        }
    }

    fn placed(map: &BlockMap) -> Vec<Vec<(&str, u32)>> {
        (0..map.blocks.len())
            .map(|n| {
                map.layers(n)
                    .iter()
                    .map(|l| (map.holder(l), l.pos))
                    .collect()
            })
            .collect()
    }

    #[test]
    fn a_chain_of_maps_names_every_blocks_layers() {
        let full =
            BlockMap::next(None, "F", &result(&[1, 2, 3, 4], &[0, 1, 2, 3], &[]), 8192).unwrap();
        assert_eq!(full.labels, vec!["F"]);
        assert_eq!(full.layers(3), &[Layer { holder: 0, pos: 3 }]);
        let incr1 = BlockMap::next(
            Some(&full),
            "I1",
            &result(&[1, 9, 3, 4, 5], &[1, 4], &[true, false]),
            8192,
        )
        .unwrap();
        assert_eq!(
            placed(&incr1),
            vec![
                vec![("F", 0)],
                vec![("F", 1), ("I1", 0)],
                vec![("F", 2)],
                vec![("F", 3)],
                vec![("I1", 1)],
            ]
        );
        let incr2 = BlockMap::next(
            Some(&incr1),
            "I2",
            &result(&[1, 8, 7], &[1, 2], &[true, false]),
            8192,
        )
        .unwrap();
        assert_eq!(
            placed(&incr2),
            vec![
                vec![("F", 0)],
                vec![("F", 1), ("I1", 0), ("I2", 0)],
                vec![("I2", 1)],
            ]
        );
        assert_eq!(incr2.hashes().0, vec![1, 8, 7]);
    }

    #[test]
    fn an_unchanged_block_without_prior_is_refused() {
        let err = BlockMap::next(None, "I", &result(&[1, 2], &[0], &[]), 8192).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert);
        let err = BlockMap::next(None, "I", &result(&[1], &[0], &[true]), 8192).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert);
    }
}
