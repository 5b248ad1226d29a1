//! Reading a block-incremental file back: its blocks in order, from the sets its map names.
//!
//! A [`Reassembler`] loads the file's map from the set holding the entry, then hands out
//! blocks in ascending order. A block is its first layer (a raw block) XOR every later layer
//! (deltas), each read from the set the map names. Each holder's data object is opened (and
//! decompressed) the first time one of its layers is wanted and only ever read forward,
//! because a holder's positions grow with the block number: every object is streamed at most
//! once, with one buffer per holder, whatever the file's size or the chain's length. Blocks not
//! asked for are skipped over (a delta restore asks only for the blocks it must rewrite; a
//! holder none of whose layers is wanted is never opened). Every block read is checked against
//! its hash in the map, so damage is found at the block it hits. [`ReassembledRead`] turns the
//! whole file into a `Read` for restore and verify.

use std::io::Read;

use crate::error::{Error, ErrorKind, Result};
use crate::io::CompressType;
use crate::io::block_incr::block_hash;
use crate::io::decoded::DecodedReader;
use crate::io::stream::to_io_error;
use crate::repo::block_map::{BlockMap, MAP_EXT};
use crate::repo::block_write::xor_into;
use crate::repo::layout;
use crate::repo::manifest::FileEntry;
use crate::storage::Storage;

const DAMAGED: &str = "the repository is damaged; run verify or restore another set with --set";

struct Holder {
    path: String,
    reader: Option<DecodedReader>,
    /// The position of the next block the reader yields.
    next: u32,
}

/// The blocks of one block-incremental file, in order.
pub struct Reassembler<'a> {
    repo: &'a dyn Storage,
    compress: CompressType,
    map: BlockMap,
    size: u64,
    holders: Vec<Holder>,
    block: Vec<u8>,
    delta: Vec<u8>,
}

impl<'a> Reassembler<'a> {
    /// Loads the map of `file` (which must have one) from `holder`, the set holding the entry,
    /// and checks it against the manifest entry; objects are compressed with `compress`.
    pub fn open(
        repo: &'a dyn Storage,
        stanza: &str,
        holder: &str,
        compress: CompressType,
        file: &FileEntry,
    ) -> Result<Reassembler<'a>> {
        let Some(block) = &file.block else {
            return Err(Error::new(
                ErrorKind::Assert,
                format!("'{}' is not stored block-incrementally", file.name),
            ));
        };
        let map_path = layout::backup_file(stanza, holder, &file.name, MAP_EXT);
        let map = BlockMap::load(repo, stanza, holder, &file.name, Some(&block.map_checksum))?;
        let expected = file.size.div_ceil(u64::from(map.block_size.max(1)));
        if map.blocks.len() as u64 != expected {
            return Err(Error::new(
                ErrorKind::Format,
                format!(
                    "block map '{}' has {} blocks, the manifest's size {} needs {expected}",
                    repo.describe(&map_path),
                    map.blocks.len(),
                    file.size
                ),
            )
            .with_hint("the repository is damaged; run verify"));
        }
        Ok(Reassembler::with_map(
            repo, stanza, &file.name, compress, map, file.size,
        ))
    }

    /// A reassembler of manifest name `name`, `size` bytes, whose map is already loaded.
    pub fn with_map(
        repo: &'a dyn Storage,
        stanza: &str,
        name: &str,
        compress: CompressType,
        map: BlockMap,
        size: u64,
    ) -> Reassembler<'a> {
        let ext = compress.extension();
        let holders = map
            .labels
            .iter()
            .map(|label| Holder {
                path: layout::backup_file(stanza, label, name, ext),
                reader: None,
                next: 0,
            })
            .collect();
        Reassembler {
            repo,
            compress,
            block: Vec::with_capacity(map.block_size as usize),
            delta: Vec::with_capacity(map.block_size as usize),
            map,
            size,
            holders,
        }
    }

    /// How many blocks the file has.
    pub fn blocks(&self) -> usize {
        self.map.blocks.len()
    }

    /// The hash the map records for block `n`.
    pub fn hash(&self, n: usize) -> u128 {
        self.map.blocks[n].hash
    }

    /// The file's map.
    pub fn map(&self) -> &BlockMap {
        &self.map
    }

    /// The length of block `n`: the block size, less for a partial last block.
    pub fn block_len(&self, n: usize) -> usize {
        let block_size = u64::from(self.map.block_size);
        block_size.min(self.size.saturating_sub(n as u64 * block_size)) as usize
    }

    /// The block size of the file.
    pub fn block_size(&self) -> u32 {
        self.map.block_size
    }

    /// Reads block `n`, checked against its hash. Blocks must be asked for in ascending order.
    pub fn read(&mut self, n: usize) -> Result<&[u8]> {
        let mut block = std::mem::take(&mut self.block);
        block.clear();
        let read = self.read_into(n, &mut block);
        self.block = block;
        read.map(|()| self.block.as_slice())
    }

    /// Appends block `n`, checked against its hash, to `out`: a restore gathers its writes
    /// there without another copy. Blocks must be asked for in ascending order.
    pub fn read_into(&mut self, n: usize, out: &mut Vec<u8>) -> Result<()> {
        let len = self.block_len(n);
        let start = out.len();
        let count = self.map.blocks[n].count as usize;
        let mut delta = std::mem::take(&mut self.delta);
        delta.resize(len, 0);
        let mut read = Ok(());
        for index in 0..count {
            let layer = self.map.layers(n)[index];
            // The first layer lands where the block goes; every later one is XORed onto it.
            read = if index == 0 {
                self.read_layer(n, layer.holder as usize, layer.pos, Into::Append(out, len))
            } else {
                self.read_layer(n, layer.holder as usize, layer.pos, Into::Slice(&mut delta))
            };
            if read.is_err() {
                out.truncate(start);
                break;
            }
            if index > 0 {
                xor_into(&mut out[start..], &delta);
            }
        }
        self.delta = delta;
        read?;
        if block_hash(&out[start..]) != self.map.blocks[n].hash {
            out.truncate(start);
            return Err(self.damaged(n));
        }
        Ok(())
    }

    /// The error for block `n` not matching its hash, naming the sets it was rebuilt from.
    fn damaged(&self, n: usize) -> Error {
        let layers = self.map.layers(n);
        let top = layers[layers.len() - 1];
        let path = &self.holders[top.holder as usize].path;
        let message = if layers.len() == 1 {
            format!(
                "block {n} in backup file '{}' does not match its hash in the block map",
                self.repo.describe(path)
            )
        } else {
            let sets: Vec<String> = layers
                .iter()
                .map(|l| format!("'{}'", self.map.holder(l)))
                .collect();
            format!(
                "block {n} of backup file '{}', rebuilt from backup sets {}, does not match \
                 its hash in the block map",
                self.repo.describe(path),
                sets.join(", ")
            )
        };
        Error::new(ErrorKind::Checksum, message).with_hint(DAMAGED)
    }

    /// Reads the layer of block `n` at position `pos` of holder `index` into `into` (exactly the
    /// block's length), skipping forward over the holder's blocks not wanted.
    fn read_layer(&mut self, n: usize, index: usize, pos: u32, into: Into) -> Result<()> {
        let label = self.map.labels[index].as_str();
        let holder = &mut self.holders[index];
        if holder.next > pos {
            return Err(Error::new(
                ErrorKind::Assert,
                format!("block {n} asked for after a later block of its holder"),
            ));
        }
        let repo = self.repo;
        let Holder { path, reader, next } = holder;
        // Named only when something fails: this runs for every block.
        let describe = || repo.describe(path);
        if reader.is_none() {
            let raw = repo.open_read(path)?.ok_or_else(|| {
                Error::new(
                    ErrorKind::FileMissing,
                    format!("backup file '{}' is missing", describe()),
                )
                .with_hint(DAMAGED)
            })?;
            *reader = Some(DecodedReader::new(raw, self.compress)?);
        }
        let Some(reader) = reader.as_mut() else {
            return Err(Error::new(ErrorKind::Assert, "holder reader not open"));
        };
        let block_size = self.map.block_size as usize;
        let failed = |err: Error| err.context(format!("unable to read '{}'", describe()));
        let short = || {
            Error::new(
                ErrorKind::Format,
                format!(
                    "backup file '{}' of backup set '{label}' ends before block {n}",
                    describe()
                ),
            )
            .with_hint(DAMAGED)
        };
        // Skip the holder's blocks that are not wanted (changed again in a later set, or
        // already right on disk for a delta restore).
        let skip = u64::from(pos - *next) * block_size as u64;
        if skip > 0 && reader.skip(skip).map_err(failed)? != skip {
            return Err(short());
        }
        let (got, wanted) = match into {
            Into::Append(out, len) => (reader.append_to(out, len).map_err(failed)?, len),
            Into::Slice(slice) => (reader.read_into(slice).map_err(failed)?, slice.len()),
        };
        if got != wanted {
            return Err(short());
        }
        *next = pos + 1;
        Ok(())
    }
}

/// Where a layer goes: appended to the block being assembled, or into a scratch slice.
enum Into<'b> {
    Append(&'b mut Vec<u8>, usize),
    Slice(&'b mut [u8]),
}

/// The whole content of a block-incremental file as a reader.
pub struct ReassembledRead<'a> {
    inner: Reassembler<'a>,
    next_block: usize,
    /// Bytes of the current block already handed out.
    at: usize,
    len: usize,
}

impl<'a> ReassembledRead<'a> {
    pub fn new(inner: Reassembler<'a>) -> ReassembledRead<'a> {
        ReassembledRead {
            inner,
            next_block: 0,
            at: 0,
            len: 0,
        }
    }
}

impl Read for ReassembledRead<'_> {
    /// Fills as much of `buf` as the file has left, block after block: one read of a 1 MiB
    /// buffer means one 1 MiB write of the restored file, not 128 writes of 8 KiB.
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let mut filled = 0;
        while filled < buf.len() {
            if self.at == self.len {
                if self.next_block == self.inner.blocks() {
                    break;
                }
                self.len = self.inner.read(self.next_block).map_err(to_io_error)?.len();
                self.next_block += 1;
                self.at = 0;
            }
            let n = (buf.len() - filled).min(self.len - self.at);
            buf[filled..filled + n].copy_from_slice(&self.inner.block[self.at..self.at + n]);
            self.at += n;
            filled += n;
        }
        Ok(filled)
    }
}

#[cfg(test)]
#[path = "block_read_tests.rs"]
mod tests;
