//! Streaming I/O filters.
//!
//! A file flows once through a chain of [`Filter`]s: size, checksum, compress or decompress.
//! Filters work on byte slices pushed through them (`process`, then `finish`), so a chain can run
//! anywhere a stream passes (a worker thread, the far side of the remote protocol) and memory
//! stays bounded by the buffer size whatever the file size. [`FilterSpec`] is the serialisable
//! description of a filter, so a chain can be rebuilt on another host.

pub mod block_incr;
pub mod chain;
pub mod compress;
pub mod decoded;
pub mod filter;
pub mod hash;
pub mod page_checksum;
pub mod parallel_compress;
pub mod stream;

pub use chain::FilterChain;
pub use compress::CompressType;
pub use filter::{Filter, FilterResult, FilterSpec};
pub use hash::sha256_hex;
pub use stream::copy_through;
