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
//! restore needs L's map (and the maps a sparse one builds on); positions of one holder grow with the block number, which lets
//! a reader stream every holder's object once, forward only, whatever the layers.
//!
//! The binary forms (version 1: one raw layer a block; version 2: layered and compressed;
//! version 3: only the blocks the backup stored, on top of the prior backup's map) are in
//! `codec` and `sparse`, documented in docs/repository-format.md. Whatever the form, loading a
//! map gives the complete map.

mod codec;
mod sparse;

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::{BlockHashes, BlockIncrResult};
use crate::io::hash::to_hex;
use crate::repo::layout;
use crate::storage::{Storage, WriteOptions};

use codec::Decoded;

pub use codec::TRAILER;

/// The extension of a map next to its data object: `pg_data/X.map`.
pub const MAP_EXT: &str = "map";

/// The most layers a block may have: a block whose chain is this long is stored raw again, so
/// a block that changes in every incremental of a long chain costs a restore at most this many
/// reads.
pub const MAX_LAYERS: usize = 16;

/// The largest block size: PostgreSQL's largest page (BLCKSZ is 1 to 32 KiB). Maps, block
/// streams and restore buffers hold blocks of at most this size.
pub const MAX_BLOCK_SIZE: u32 = 32 * 1024;

/// The most sparse maps in a row: the next map after this many is written complete, so loading
/// a map reads at most this many more.
pub const MAX_MAP_DEPTH: u8 = 8;

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
    /// The backup sets holding the maps this one was composed from (sparse maps' bases), which
    /// a restore needs as much as the holders of layers.
    pub maps: Vec<String>,
    /// Sparse maps leading to it from a complete map (0: it is complete).
    pub depth: u8,
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
            maps: Vec::new(),
            depth: 0,
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

    /// Loads the complete map of manifest name `name` from backup set `label`: the map file
    /// there, checked against `expected` (SHA-256 hex from the manifest) when given, and when
    /// it is sparse the chain of maps it builds on, each checked against the SHA-256 the next
    /// one records.
    pub fn load(
        repo: &dyn Storage,
        stanza: &str,
        label: &str,
        name: &str,
        expected: Option<&str>,
    ) -> Result<BlockMap> {
        let mut chain = Vec::new();
        let mut at = (label.to_string(), expected.map(str::to_string));
        let mut map = loop {
            let path = layout::backup_file(stanza, &at.0, name, MAP_EXT);
            let what = repo.describe(&path);
            let bytes = repo.read_all(&path)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::FileMissing,
                    format!("block map '{what}' is missing"),
                )
                .with_hint("the repository is damaged; run verify")
            })?;
            match codec::decode(&bytes, at.1.as_deref(), &what)? {
                Decoded::Complete(map) => break map,
                Decoded::Sparse(sparse) => {
                    if sparse.label != at.0 || chain.len() > usize::from(MAX_MAP_DEPTH) {
                        return Err(codec::corrupt(&what, "wrong label or chain too long"));
                    }
                    at = (sparse.base.clone(), Some(sparse.base_checksum.clone()));
                    chain.push((sparse, what));
                }
            }
        };
        for (sparse, what) in chain.into_iter().rev() {
            map = sparse::compose(&map, sparse, &what)?;
        }
        Ok(map)
    }

    /// Writes the map backup `label` made of the file, with `result` the filter's result:
    /// sparse on `prior` (the prior backup's map, in set `prior_label` with SHA-256
    /// `prior_checksum`) while the chain of sparse maps is short enough, complete otherwise.
    /// Returns the map file's size and SHA-256 (hex).
    pub fn save_next(
        &self,
        repo: &dyn Storage,
        path: &str,
        prior: Option<(&BlockMap, &str, &str)>,
        label: &str,
        result: &BlockIncrResult,
    ) -> Result<(u64, String)> {
        match prior.filter(|(map, _, _)| map.depth < MAX_MAP_DEPTH) {
            Some((map, prior_label, prior_checksum)) => {
                let bytes = sparse::encode(label, prior_label, prior_checksum, map, result)?;
                put(repo, path, &bytes)
            }
            None => self.save(repo, path),
        }
    }

    /// Writes the map at `path` atomically and durably; returns its size and SHA-256 (hex).
    pub fn save(&self, repo: &dyn Storage, path: &str) -> Result<(u64, String)> {
        put(repo, path, &self.encode()?)
    }

    /// Every backup set a restore of this map needs: layer holders, then sets of base maps.
    pub fn needed(&self) -> Vec<String> {
        let mut sets = self.labels.clone();
        for set in &self.maps {
            if !sets.contains(set) {
                sets.push(set.clone());
            }
        }
        sets
    }
}

/// Writes map bytes atomically and durably; returns their size and SHA-256 (hex).
fn put(repo: &dyn Storage, path: &str, bytes: &[u8]) -> Result<(u64, String)> {
    let options = WriteOptions::in_prepared_dir();
    repo.put(path, bytes, &options)?;
    Ok((bytes.len() as u64, to_hex(&bytes[bytes.len() - TRAILER..])))
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
