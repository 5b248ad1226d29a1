//! Compression types and their streaming compress/decompress filters.
//!
//! [`CompressType`] is the closed set of formats a repository file may use; its `extension` is
//! the suffix of the stored file name. Each format has a compressor and a decompressor in its own
//! file (`gz`, `lz4`, `zst`), all push-mode [`Filter`]s whose memory stays bounded whatever the
//! stream length: no filter ever holds a whole file. Decompressors are strict: corrupt input or
//! a stream that stops before the end of its last frame is a `FormatError`
//! ("unable to decompress: ..."), never a panic or a silently short output.

mod gz;
mod lz4;
mod zst;

#[cfg(test)]
mod tests;

use std::ops::RangeInclusive;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::io::filter::{Filter, FilterResult};

/// A compression format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompressType {
    None,
    Gz,
    Lz4,
    Zst,
}

impl CompressType {
    /// Every type, in option-help order.
    pub const ALL: [CompressType; 4] = [
        CompressType::None,
        CompressType::Gz,
        CompressType::Lz4,
        CompressType::Zst,
    ];

    /// The name used by the `compress-type` option: "none", "gz", "lz4" or "zst".
    pub fn name(self) -> &'static str {
        match self {
            CompressType::None => "none",
            CompressType::Gz => "gz",
            CompressType::Lz4 => "lz4",
            CompressType::Zst => "zst",
        }
    }

    /// The type with this option name, if any.
    pub fn parse(text: &str) -> Option<CompressType> {
        CompressType::ALL
            .into_iter()
            .find(|kind| kind.name() == text)
    }

    /// The file name suffix without the dot; empty for `None`.
    pub fn extension(self) -> &'static str {
        match self {
            CompressType::None => "",
            CompressType::Gz => "gz",
            CompressType::Lz4 => "lz4",
            CompressType::Zst => "zst",
        }
    }

    /// The type whose extension is `ext` ("" for none).
    pub fn from_extension(ext: &str) -> Option<CompressType> {
        CompressType::ALL
            .into_iter()
            .find(|kind| kind.extension() == ext)
    }

    /// The level used when `compress-level` is not set (pgBackRest's defaults).
    pub fn default_level(self) -> i32 {
        match self {
            CompressType::None => 0,
            CompressType::Gz => 6,
            CompressType::Lz4 => 1,
            CompressType::Zst => 3,
        }
    }

    /// The levels `compress-level` accepts (pgBackRest's ranges). lz4_flex implements only
    /// LZ4's fast mode, so every lz4 level compresses the same way; the range is kept so that
    /// pgBackRest configurations stay valid.
    pub fn level_range(self) -> RangeInclusive<i32> {
        match self {
            CompressType::None => 0..=0,
            CompressType::Gz => 0..=9,
            CompressType::Lz4 => -5..=12,
            CompressType::Zst => -7..=22,
        }
    }
}

/// `input` compressed as one whole frame (gzip member, zstd or LZ4 frame) of `kind` at `level`
/// into `out`, which is emptied first: the same bytes a compressor filter writes for one file,
/// except that a zstd frame is made in one call with its size known (see
/// `zst::compress_whole`). `None` copies the input.
pub fn compress_whole(
    kind: CompressType,
    level: i32,
    input: &[u8],
    out: &mut Vec<u8>,
) -> Result<()> {
    if kind == CompressType::Zst && kind.level_range().contains(&level) {
        return zst::compress_whole(level, input, out);
    }
    out.clear();
    let mut filter = compressor(kind, level)?;
    if filter.observes_only() {
        // As a chain does: a filter that only observes (`none`) passes its input on.
        out.extend_from_slice(input);
        return Ok(());
    }
    // Room for incompressible input up front: the frame is written without reallocating.
    out.reserve(input.len() + input.len() / 64 + 1024);
    filter.process(input, out)?;
    filter.finish(out)?;
    Ok(())
}

/// A compressor for `kind` at `level`; fails when the level is outside `kind.level_range()`.
pub fn compressor(kind: CompressType, level: i32) -> Result<Box<dyn Filter>> {
    let range = kind.level_range();
    if !range.contains(&level) {
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!(
                "compress level {level} is out of range for '{}' (allowed {} to {})",
                kind.name(),
                range.start(),
                range.end()
            ),
        ));
    }
    Ok(match kind {
        CompressType::None => Box::new(PassFilter),
        CompressType::Gz => Box::new(gz::GzCompress::new(level)),
        CompressType::Lz4 => Box::new(lz4::Lz4Compress::new()),
        CompressType::Zst => Box::new(zst::ZstCompress::new(level)?),
    })
}

/// A decompressor for `kind`.
pub fn decompressor(kind: CompressType) -> Box<dyn Filter> {
    match kind {
        CompressType::None => Box::new(PassFilter),
        CompressType::Gz => Box::new(gz::GzDecompress::new()),
        CompressType::Lz4 => Box::new(lz4::Lz4Decompress::new()),
        CompressType::Zst => Box::new(zst::ZstDecompress::new()),
    }
}

/// `CompressType::None`: the data passes unchanged. Declared an observer so the chain hands
/// the input on without copying it.
struct PassFilter;

impl Filter for PassFilter {
    fn process(&mut self, _input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        Ok(None)
    }

    fn observes_only(&self) -> bool {
        true
    }
}

/// Output is produced in steps of this size: large enough that library calls are few, small
/// enough that a limited call stops near its limit.
const OUTPUT_STEP: usize = 64 * 1024;

/// Makes sure `out` has room for at least `OUTPUT_STEP` more bytes without reallocating.
/// `reserve` grows geometrically, so a warm buffer stops reallocating altogether.
fn reserve_step(out: &mut Vec<u8>) {
    if out.capacity() - out.len() < OUTPUT_STEP {
        out.reserve(OUTPUT_STEP);
    }
}

/// The error for corrupt or truncated compressed input.
fn corrupt(detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Format,
        format!("unable to decompress: {}", lower_first(&detail.to_string())),
    )
}

/// The error for a failure inside a compression library.
fn compress_failed(kind: CompressType, detail: impl std::fmt::Display) -> Error {
    Error::new(
        ErrorKind::Format,
        format!(
            "unable to compress '{}': {}",
            kind.name(),
            lower_first(&detail.to_string())
        ),
    )
}

/// Library messages start with a capital; ours do not.
fn lower_first(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}
