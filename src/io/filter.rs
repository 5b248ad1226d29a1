//! The `Filter` seam and its serialisable description.
//!
//! A [`Filter`] is one stage of a stream: it is pushed slices of bytes and either observes them
//! (size, hash) or transforms them (compress, decompress). A [`FilterSpec`] names a filter in a
//! form that crosses the remote protocol, so the far side can rebuild the same chain next to the
//! data. Running stages in order is the job of `io::chain`; this file owns only the contract.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::block_incr::{BlockHashes, BlockIncrFilter, BlockIncrResult};
use crate::io::compress::{self, CompressType};
use crate::io::hash::{HashFilter, SizeFilter};
use crate::io::page_checksum::PageChecksumFilter;

/// What a filter reports when its stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterResult {
    /// Bytes that passed through a `Size` filter.
    Size(u64),
    /// Hex digest from a `Hash` filter.
    Hash(String),
    /// Data page verification of a relation file (`io::page_checksum::PageChecksumFilter`).
    PageChecksum(PageChecksumResult),
    /// Block hashes and the blocks passed on by a `BlockIncr` filter.
    BlockIncr(BlockIncrResult),
}

/// What page checksum verification found in one relation file. Generic data so it can cross
/// the remote protocol and be stored in a manifest; the filter that makes it lives in
/// `pg::page`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageChecksumResult {
    /// Absolute block numbers (counted across segment files) of the pages that failed, in
    /// ascending order.
    pub invalid: Vec<u32>,
    /// The file's size is not a multiple of the page size: its partial last page was not
    /// checked.
    pub misaligned: bool,
}

/// One stage of a stream. Implementations must not buffer more than a bounded amount.
pub trait Filter: Send {
    /// Consumes `input`; transforming filters append their output to `out`.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;

    /// Ends the stream: appends any remaining output to `out` and returns the result, if any.
    /// A decompressor fails here when its input stopped before the end of the compressed stream.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>>;

    /// True for filters that only observe (size, hash): the chain passes their input on
    /// unchanged instead of copying it through `out`.
    fn observes_only(&self) -> bool {
        false
    }

    /// Like `process`, but may stop once `out` holds `limit` bytes or more, and returns how many
    /// bytes of `input` it consumed.
    ///
    /// This is how a chain keeps memory bounded behind a filter whose output can be far larger
    /// than its input: a few KiB of zstd can hold a GiB of zeros. A filter that stops at the
    /// limit may still hold output for input it has already consumed, so the caller calls
    /// again, with the rest of the input (possibly empty), for as long as a call leaves `limit`
    /// bytes or more in `out`. The default suits filters whose output is about the size of their
    /// input or smaller: it consumes everything.
    fn process_limited(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize> {
        let _ = limit;
        self.process(input, out)?;
        Ok(input.len())
    }
}

/// A serialisable description of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterSpec {
    Size,
    Hash,
    Compress {
        kind: CompressType,
        level: i32,
    },
    Decompress {
        kind: CompressType,
    },
    /// Page checksum verification of a relation file whose first page is block `first_block`,
    /// for a backup that started at LSN `start_lsn`.
    PageChecksum {
        first_block: u32,
        start_lsn: u64,
    },
    /// Passes on only the blocks of `block_size` bytes whose hash differs from `prior` at the
    /// same block number (`io::block_incr`).
    BlockIncr {
        prior: Option<BlockHashes>,
        block_size: u32,
        /// Each block passed on is preceded by its number and length.
        #[serde(default)]
        framed: bool,
    },
}

impl FilterSpec {
    /// Builds the filter this spec describes. Fails when a compression level is outside the
    /// range of its type.
    pub fn build(&self) -> Result<Box<dyn Filter>> {
        Ok(match self {
            FilterSpec::Size => Box::new(SizeFilter::new()),
            FilterSpec::Hash => Box::new(HashFilter::new()),
            FilterSpec::Compress { kind, level } => compress::compressor(*kind, *level)?,
            FilterSpec::Decompress { kind } => compress::decompressor(*kind),
            FilterSpec::PageChecksum {
                first_block,
                start_lsn,
            } => Box::new(PageChecksumFilter::new(*first_block, *start_lsn)),
            FilterSpec::BlockIncr {
                prior,
                block_size,
                framed,
            } => Box::new(BlockIncrFilter::new(prior.clone(), *block_size, *framed)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    #[test]
    fn specs_round_trip_through_json() {
        let specs = vec![
            FilterSpec::Size,
            FilterSpec::Hash,
            FilterSpec::Compress {
                kind: CompressType::Zst,
                level: 3,
            },
            FilterSpec::Decompress {
                kind: CompressType::Lz4,
            },
            FilterSpec::PageChecksum {
                first_block: 131_072,
                start_lsn: 0x1_0000_0028,
            },
            FilterSpec::BlockIncr {
                prior: Some(BlockHashes(vec![1, 2])),
                block_size: 8192,
                framed: true,
            },
        ];
        let json = serde_json::to_string(&specs).unwrap();
        assert!(json.contains("\"zst\""), "{json}");
        let back: Vec<FilterSpec> = serde_json::from_str(&json).unwrap();
        assert_eq!(back, specs);
    }

    #[test]
    fn build_refuses_a_level_out_of_range() {
        let spec = FilterSpec::Compress {
            kind: CompressType::Gz,
            level: 10,
        };
        let err = spec.build().err().unwrap();
        assert_eq!(err.kind(), ErrorKind::OptionInvalidValue);
        assert_eq!(
            err.message(),
            "compress level 10 is out of range for 'gz' (allowed 0 to 9)"
        );
    }

    #[test]
    fn observers_say_so_and_transformers_do_not() {
        assert!(FilterSpec::Size.build().unwrap().observes_only());
        assert!(FilterSpec::Hash.build().unwrap().observes_only());
        let zst = FilterSpec::Compress {
            kind: CompressType::Zst,
            level: 3,
        };
        assert!(!zst.build().unwrap().observes_only());
    }
}
