//! The block map of a block-incremental file: where every block of the file lives.
//!
//! A relation file stored block-incrementally by backup L has two objects in L's set: the data
//! object `pg_data/X<.ext>`, holding only the blocks L stored (ascending block number, one
//! compressed stream), and the map `pg_data/X.map`. The map is complete: it names, for every
//! block of the file as of L, its XXH3-128 hash, the backup set holding it (an index into the
//! map's label table) and its position among that set's stored blocks, so a restore needs only
//! L's map. Positions of one holder grow with the block number, which lets a reader stream
//! every holder's object once, forward only.
//!
//! Binary layout (little-endian), documented in docs/repository-format.md:
//! `PGKEEPBM` · u16 version (1) · u32 block size · u16 label count · per label (u16 length,
//! UTF-8 bytes) · u32 block count · per block (16-byte hash, u16 label index, u32 position) ·
//! 32-byte SHA-256 of everything before it. The manifest entry records that SHA-256 too.

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::{BlockHashes, BlockIncrResult};
use crate::io::hash::to_hex;
use crate::storage::{Storage, WriteOptions};

const MAGIC: &[u8; 8] = b"PGKEEPBM";
const VERSION: u16 = 1;
const TRAILER: usize = 32;

/// The extension of a map next to its data object: `pg_data/X.map`.
pub const MAP_EXT: &str = "map";

/// Where one block of the file lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapBlock {
    pub hash: u128,
    /// Index into `BlockMap::labels`.
    pub holder: u16,
    /// Ordinal of the block among the blocks the holder stored for this file.
    pub pos: u32,
}

/// A decoded block map.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BlockMap {
    pub block_size: u32,
    /// The backup sets holding blocks of the file, in order of first use.
    pub labels: Vec<String>,
    /// Every block of the file, block 0 first.
    pub blocks: Vec<MapBlock>,
}

impl BlockMap {
    /// The map of the file as backup `label` stored it: blocks in `result.stored` are in
    /// `label`'s object (in that order), the others where `prior` has them. Fails when an
    /// unchanged block is not in `prior` (the filter passes on every block it cannot compare).
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
        };
        let mut stored = result.stored.iter().peekable();
        let mut pos = 0u32;
        for (number, hash) in result.hashes.0.iter().enumerate() {
            let (holder, at) = if stored.next_if(|n| **n as usize == number).is_some() {
                pos += 1;
                (label, pos - 1)
            } else {
                let old = prior.and_then(|p| p.blocks.get(number)).ok_or_else(|| {
                    Error::new(
                        ErrorKind::Assert,
                        format!("block {number} was neither stored nor in the prior map"),
                    )
                })?;
                let prior = prior.map(|p| p.labels[old.holder as usize].as_str());
                (prior.unwrap_or(label), old.pos)
            };
            let index = match map.labels.iter().position(|l| l == holder) {
                Some(index) => index,
                None => {
                    map.labels.push(holder.to_string());
                    map.labels.len() - 1
                }
            };
            map.blocks.push(MapBlock {
                hash: *hash,
                holder: u16::try_from(index).map_err(|_| too_many_labels())?,
                pos: at,
            });
        }
        Ok(map)
    }

    /// The hashes of every block, for the next backup's filter.
    pub fn hashes(&self) -> BlockHashes {
        BlockHashes(self.blocks.iter().map(|b| b.hash).collect())
    }

    /// The label holding `block`.
    pub fn holder(&self, block: &MapBlock) -> &str {
        &self.labels[block.holder as usize]
    }

    /// The binary form, with its trailing SHA-256.
    pub fn encode(&self) -> Result<Vec<u8>> {
        let mut out = Vec::with_capacity(32 + self.blocks.len() * 22 + TRAILER);
        out.extend_from_slice(MAGIC);
        out.extend_from_slice(&VERSION.to_le_bytes());
        out.extend_from_slice(&self.block_size.to_le_bytes());
        let count = u16::try_from(self.labels.len()).map_err(|_| too_many_labels())?;
        out.extend_from_slice(&count.to_le_bytes());
        for label in &self.labels {
            let len = u16::try_from(label.len()).map_err(|_| too_many_labels())?;
            out.extend_from_slice(&len.to_le_bytes());
            out.extend_from_slice(label.as_bytes());
        }
        let blocks = u32::try_from(self.blocks.len())
            .map_err(|_| Error::new(ErrorKind::Assert, "too many blocks for a block map"))?;
        out.extend_from_slice(&blocks.to_le_bytes());
        for block in &self.blocks {
            out.extend_from_slice(&block.hash.to_le_bytes());
            out.extend_from_slice(&block.holder.to_le_bytes());
            out.extend_from_slice(&block.pos.to_le_bytes());
        }
        let digest = sha256(&out);
        out.extend_from_slice(&digest);
        Ok(out)
    }

    /// Decodes a map, checking its trailing SHA-256, its structure, and, when given, that the
    /// SHA-256 is `expected` (hex, from the manifest). `what` names the map in errors.
    pub fn decode(bytes: &[u8], expected: Option<&str>, what: &str) -> Result<BlockMap> {
        let corrupt = |why: &str| {
            Error::new(
                ErrorKind::Format,
                format!("block map '{what}' is corrupt: {why}"),
            )
            .with_hint("the repository is damaged; run verify")
        };
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
        if version != VERSION {
            return Err(corrupt(&format!("unknown version {version}")));
        }
        let block_size = cursor.u32().ok_or_else(too_short)?;
        let count = cursor.u16().ok_or_else(too_short)?;
        let mut labels = Vec::with_capacity(count.into());
        for _ in 0..count {
            let len = cursor.u16().ok_or_else(too_short)?;
            let text = cursor.take(len.into()).ok_or_else(too_short)?;
            labels
                .push(String::from_utf8(text.to_vec()).map_err(|_| corrupt("label is not UTF-8"))?);
        }
        let blocks = cursor.u32().ok_or_else(too_short)? as usize;
        if body.len() - cursor.at != blocks * 22 {
            return Err(corrupt("block count does not match its length"));
        }
        let mut map = BlockMap {
            block_size,
            labels,
            blocks: Vec::with_capacity(blocks),
        };
        for _ in 0..blocks {
            let hash = cursor.take(16).ok_or_else(too_short)?;
            let hash = u128::from_le_bytes(hash.try_into().map_err(|_| too_short())?);
            let holder = cursor.u16().ok_or_else(too_short)?;
            let pos = cursor.u32().ok_or_else(too_short)?;
            if holder as usize >= map.labels.len() {
                return Err(corrupt("label index out of range"));
            }
            map.blocks.push(MapBlock { hash, holder, pos });
        }
        Ok(map)
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

fn too_many_labels() -> Error {
    Error::new(ErrorKind::Assert, "too many backup sets for a block map")
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(bytes).into()
}

struct Cursor<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Cursor<'a> {
    fn take(&mut self, len: usize) -> Option<&'a [u8]> {
        let slice = self.bytes.get(self.at..self.at.checked_add(len)?)?;
        self.at += len;
        Some(slice)
    }

    fn u16(&mut self) -> Option<u16> {
        Some(u16::from_le_bytes(self.take(2)?.try_into().ok()?))
    }

    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(hashes: &[u128], stored: &[u32]) -> BlockIncrResult {
        BlockIncrResult {
            hashes: BlockHashes(hashes.to_vec()),
            stored: stored.to_vec(),
        }
    }

    #[test]
    fn a_chain_of_maps_names_every_blocks_holder() {
        let full = BlockMap::next(None, "F", &result(&[1, 2, 3, 4], &[0, 1, 2, 3]), 8192).unwrap();
        assert_eq!(full.labels, vec!["F"]);
        assert_eq!(full.blocks[3].pos, 3);
        let incr1 =
            BlockMap::next(Some(&full), "I1", &result(&[1, 9, 3, 4, 5], &[1, 4]), 8192).unwrap();
        let incr2 = BlockMap::next(Some(&incr1), "I2", &result(&[1, 9, 7], &[2]), 8192).unwrap();
        let placed: Vec<(&str, u32)> = incr2
            .blocks
            .iter()
            .map(|b| (incr2.holder(b), b.pos))
            .collect();
        assert_eq!(placed, vec![("F", 0), ("I1", 0), ("I2", 0)]);
        assert_eq!(incr2.hashes().0, vec![1, 9, 7]);
        assert_eq!(incr1.holder(&incr1.blocks[4]), "I1");
        assert_eq!(incr1.blocks[4].pos, 1);
    }

    #[test]
    fn an_unchanged_block_without_prior_is_refused() {
        let err = BlockMap::next(None, "I", &result(&[1, 2], &[0]), 8192).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert);
    }

    #[test]
    fn maps_round_trip_and_corruption_is_detected() {
        let map = BlockMap::next(
            None,
            "20261124-100000F",
            &result(&[7, u128::MAX], &[0, 1]),
            8192,
        )
        .unwrap();
        let bytes = map.encode().unwrap();
        let digest = to_hex(&bytes[bytes.len() - 32..]);
        assert_eq!(BlockMap::decode(&bytes, Some(&digest), "m").unwrap(), map);
        let mut flipped = bytes.clone();
        flipped[40] ^= 1;
        let err = BlockMap::decode(&flipped, None, "m").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        assert_eq!(err.message(), "block map 'm' is corrupt: checksum mismatch");
        let err = BlockMap::decode(&bytes, Some("00"), "m").unwrap_err();
        assert!(
            err.message()
                .contains("does not match '00' in the manifest")
        );
        assert!(BlockMap::decode(&bytes[..20], None, "m").is_err());
    }
}
