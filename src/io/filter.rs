//! The `Filter` seam and the chain that runs filters in order.

use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::io::compress::CompressType;

/// What a filter reports when its stream ends.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterResult {
    /// Bytes that passed through a `Size` filter.
    Size(u64),
    /// Hex digest from a `Hash` filter.
    Hash(String),
}

/// One stage of a stream. Implementations must not buffer more than a bounded amount.
pub trait Filter: Send {
    /// Consumes `input`; transforming filters append their output to `out`.
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()>;

    /// Ends the stream: appends any remaining output to `out` and returns the result, if any.
    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>>;

    /// True for filters that only observe (size, hash): the chain passes their input on
    /// unchanged instead of copying it through `out`.
    fn observes_only(&self) -> bool {
        false
    }
}

/// A serialisable description of a filter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FilterSpec {
    Size,
    Hash,
    Compress { kind: CompressType, level: i32 },
    Decompress { kind: CompressType },
}
