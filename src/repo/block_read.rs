//! Reading a block-incremental file back: its blocks in order, from the sets its map names.
//!
//! A [`Reassembler`] loads the file's map from the set holding the entry, then hands out
//! blocks in ascending order. Each holder's data object is opened (and decompressed) the first
//! time one of its blocks is wanted and only ever read forward, because a holder's positions
//! grow with the block number: every object is streamed at most once, with one buffer per
//! holder, whatever the file's size. Blocks not asked for are skipped over (a delta restore
//! asks only for the blocks it must rewrite; a holder none of whose blocks is wanted is never
//! opened). Every block read is checked against its hash in the map, so damage is found at the
//! block it hits. [`ReassembledRead`] turns the whole file into a `Read` for restore and verify.

use std::io::Read;

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::block_hash;
use crate::io::stream::{from_io_error, to_io_error};
use crate::io::{CompressType, FilterSpec};
use crate::repo::block_map::{BlockMap, MAP_EXT};
use crate::repo::layout;
use crate::repo::manifest::FileEntry;
use crate::storage::{ChainReader, Storage};

struct Holder {
    path: String,
    reader: Option<Box<dyn Read + Send>>,
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
        let map = BlockMap::load(repo, &map_path, Some(&block.map_checksum))?;
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
        let ext = compress.extension();
        let holders = map
            .labels
            .iter()
            .map(|label| Holder {
                path: layout::backup_file(stanza, label, &file.name, ext),
                reader: None,
                next: 0,
            })
            .collect();
        Ok(Reassembler {
            repo,
            compress,
            block: Vec::with_capacity(map.block_size as usize),
            map,
            size: file.size,
            holders,
        })
    }

    /// How many blocks the file has.
    pub fn blocks(&self) -> usize {
        self.map.blocks.len()
    }

    /// The hash the map records for block `n`.
    pub fn hash(&self, n: usize) -> u128 {
        self.map.blocks[n].hash
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
        let entry = self.map.blocks[n];
        let len = self.block_len(n);
        let label = self.map.labels[entry.holder as usize].as_str();
        let holder = &mut self.holders[entry.holder as usize];
        if holder.next > entry.pos {
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
                .with_hint(
                    "the repository is damaged; run verify or restore another set with --set",
                )
            })?;
            let opened: Box<dyn Read + Send> = match self.compress {
                CompressType::None => raw,
                kind => Box::new(ChainReader::new(raw, &[FilterSpec::Decompress { kind }])?),
            };
            *reader = Some(opened);
        }
        let Some(reader) = reader.as_mut() else {
            return Err(Error::new(ErrorKind::Assert, "holder reader not open"));
        };
        let block_size = self.map.block_size as usize;
        let io_fail =
            |err| from_io_error(err, ErrorKind::FileRead, &format!("read '{}'", describe()));
        let short = || {
            Error::new(
                ErrorKind::Format,
                format!(
                    "backup file '{}' of backup set '{label}' ends before block {n}",
                    describe()
                ),
            )
            .with_hint("the repository is damaged; run verify or restore another set with --set")
        };
        // Skip the holder's blocks that are not wanted (changed again in a later set, or
        // already right on disk for a delta restore).
        let skip = u64::from(entry.pos - *next) * block_size as u64;
        if skip > 0 {
            let skipped =
                std::io::copy(&mut reader.take(skip), &mut std::io::sink()).map_err(io_fail)?;
            if skipped != skip {
                return Err(short());
            }
        }
        self.block.resize(len, 0);
        reader.read_exact(&mut self.block).map_err(|err| {
            if err.kind() == std::io::ErrorKind::UnexpectedEof {
                short()
            } else {
                io_fail(err)
            }
        })?;
        *next = entry.pos + 1;
        if block_hash(&self.block) != entry.hash {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "block {n} in backup file '{}' does not match its hash in the block map",
                    describe()
                ),
            )
            .with_hint("the repository is damaged; run verify or restore another set with --set"));
        }
        Ok(&self.block)
    }
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
mod tests {
    use super::*;
    use crate::io::{FilterChain, FilterResult, sha256_hex, stream};
    use crate::repo::manifest::BlockRef;
    use crate::storage::{PosixStorage, WriteOptions};

    const BS: usize = 8192;
    const NAME: &str = "pg_data/base/1/16384";

    /// Stores `data` as backup `label` would, comparing with `prior`; returns the entry.
    fn store(
        repo: &PosixStorage,
        label: &str,
        data: &[u8],
        prior: Option<&BlockMap>,
    ) -> (FileEntry, BlockMap) {
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::BlockIncr {
                prior: prior.map(BlockMap::hashes),
                block_size: BS as u32,
            },
            FilterSpec::Compress {
                kind: CompressType::Zst,
                level: 1,
            },
        ])
        .unwrap();
        let mut object = Vec::new();
        let results = stream::copy_through(&mut &data[..], &mut chain, &mut object, 4096).unwrap();
        let [FilterResult::BlockIncr(result)] = results.as_slice() else {
            panic!("{results:?}")
        };
        let options = WriteOptions {
            create_path: true,
            ..WriteOptions::default()
        };
        repo.put(
            &layout::backup_file("s", label, NAME, "zst"),
            &object,
            &options,
        )
        .unwrap();
        let map = BlockMap::next(prior, label, result, BS as u32).unwrap();
        let path = layout::backup_file("s", label, NAME, MAP_EXT);
        let (map_size, map_checksum) = map.save(repo, &path).unwrap();
        let entry = FileEntry {
            name: NAME.into(),
            size: data.len() as u64,
            mtime: 0,
            mode: 0o600,
            user: None,
            group: None,
            checksum: sha256_hex(data),
            repo_size: object.len() as u64 + map_size,
            reference: None,
            page_errors: None,
            block: Some(BlockRef {
                map_size,
                map_checksum,
                holders: map.labels.clone(),
                stored_size: 0,
            }),
            bundle_id: None,
            bundle_offset: None,
        };
        (entry, map)
    }

    fn read_all(repo: &PosixStorage, label: &str, entry: &FileEntry) -> Result<Vec<u8>> {
        let blocks = Reassembler::open(repo, "s", label, CompressType::Zst, entry)?;
        let mut out = Vec::new();
        ReassembledRead::new(blocks)
            .read_to_end(&mut out)
            .map_err(|e| from_io_error(e, ErrorKind::FileRead, "read"))?;
        Ok(out)
    }

    fn content(blocks: usize, seed: u8) -> Vec<u8> {
        (0..blocks * BS)
            .map(|i| (i / 13) as u8 ^ seed ^ (i / BS) as u8)
            .collect()
    }

    #[test]
    fn a_chain_reassembles_to_each_backups_content() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let v1 = content(40, 1);
        let (full, map1) = store(&repo, "F", &v1, None);
        let mut v2 = v1.clone();
        v2[5 * BS + 3] ^= 1;
        v2[30 * BS] ^= 1;
        v2.extend_from_slice(&[7; 3000]);
        let (incr1, map2) = store(&repo, "I1", &v2, Some(&map1));
        let mut v3 = v2.clone();
        v3.truncate(35 * BS);
        v3[6 * BS] ^= 1;
        let (incr2, _) = store(&repo, "I2", &v3, Some(&map2));
        assert_eq!(read_all(&repo, "F", &full).unwrap(), v1);
        assert_eq!(read_all(&repo, "I1", &incr1).unwrap(), v2);
        assert_eq!(read_all(&repo, "I2", &incr2).unwrap(), v3);

        // Only wanted blocks are read; a holder never asked for is never opened.
        std::fs::remove_file(dir.path().join("backup/s/F/pg_data/base/1/16384.zst")).unwrap();
        let mut blocks = Reassembler::open(&repo, "s", "I2", CompressType::Zst, &incr2).unwrap();
        assert_eq!(blocks.read(6).unwrap(), &v3[6 * BS..7 * BS]);
        assert_eq!(blocks.read(30).unwrap(), &v3[30 * BS..31 * BS]);
        let err = blocks.read(31).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileMissing);
        assert!(
            err.message().contains("16384.zst' is missing"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn a_damaged_block_or_map_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let repo = PosixStorage::new(dir.path().to_path_buf());
        let (full, _) = store(&repo, "F", &content(8, 2), None);
        let mut other = full.clone();
        other.block.as_mut().unwrap().map_checksum = "0".repeat(64);
        let err = read_all(&repo, "F", &other).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        let object = dir.path().join("backup/s/F/pg_data/base/1/16384.zst");
        let uncompressed = zstd::decode_all(&std::fs::read(&object).unwrap()[..]).unwrap();
        let mut damaged = uncompressed.clone();
        damaged[3 * BS + 17] ^= 1;
        std::fs::write(&object, zstd::encode_all(&damaged[..], 1).unwrap()).unwrap();
        let err = read_all(&repo, "F", &full).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Checksum);
        assert!(
            err.message().starts_with("block 3 in backup file"),
            "{}",
            err.message()
        );
    }
}
