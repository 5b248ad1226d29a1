//! LZ4 frame compress and decompress filters.
//!
//! Compression writes the frame format here around `lz4_flex`'s block compressor (see
//! `Lz4Compress::new` for why not its `FrameEncoder`). Decompression parses the LZ4 frame format
//! (lz4_Frame_format.md) here, as neither library has a push-mode decoder, and decodes each
//! block with liblz4 (the `lz4` crate; see `Lz4Decompress::block` for why), or with
//! `lz4_flex::block` when a linked block needs the previous block as its dictionary. It accepts what the
//! `lz4` tool and liblz4 write: independent or linked blocks (linked blocks see the previous
//! 64 KiB of output as their dictionary), block and content checksums (XXH32), the optional
//! content size, skippable frames and concatenated frames. Legacy frames and frames that need an
//! external dictionary are refused. Memory is bounded by the frame's maximum block size (4 MiB):
//! one compressed block being gathered, one decoded block handed on in pieces.

use std::cell::RefCell;
use std::hash::Hasher;

use twox_hash::XxHash32;

use super::{CompressType, compress_failed, corrupt};
use crate::error::Result;
use crate::io::filter::{Filter, FilterResult};

const MAGIC: u32 = 0x184D_2204;
const LEGACY_MAGIC: u32 = 0x184C_2102;
const SKIPPABLE_MAGIC: std::ops::RangeInclusive<u32> = 0x184D_2A50..=0x184D_2A5F;
/// How far back a linked block may refer.
const WINDOW: usize = 64 * 1024;
/// The high bit of a block size marks a block stored uncompressed.
const UNCOMPRESSED_BIT: u32 = 0x8000_0000;

const FLG_INDEPENDENT: u8 = 0x20;
const FLG_BLOCK_CHECKSUM: u8 = 0x10;
const FLG_CONTENT_SIZE: u8 = 0x08;
const FLG_CONTENT_CHECKSUM: u8 = 0x04;
const FLG_DICTIONARY_ID: u8 = 0x01;

/// The largest block a frame of ours holds, and its code in the frame descriptor's BD byte.
const BLOCK_SIZE: usize = 256 * 1024;
const BD_256KB: u8 = 5 << 4;
/// FLG of the frames written: version 01, independent blocks, no checksums, no content size.
const FLG_WRITTEN: u8 = 0x40 | FLG_INDEPENDENT;

thread_local! {
    /// Block scratch buffers given back on this thread. archive-push compresses a segment as
    /// many frames, each by a new compressor: a fresh scratch costs its page faults (over
    /// 256 KiB) every frame.
    static IDLE_SCRATCH: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// Scratch buffers kept per thread.
const IDLE_MAX: usize = 2;

pub(super) struct Lz4Compress {
    /// The hash table of the block compressor, cleared (not reallocated) for every block.
    table: lz4_flex::block::CompressTable,
    /// The input of a block still short of `BLOCK_SIZE`.
    pending: Vec<u8>,
    /// Where a block is compressed before its size is known.
    scratch: Vec<u8>,
    header_written: bool,
}

impl Lz4Compress {
    /// The frame is written here rather than by `lz4_flex`'s `FrameEncoder`, which copies all
    /// input into its own buffers and allocates them for every frame: blocks are compressed
    /// straight from the input with one reused hash table (a third less CPU for a WAL segment
    /// pushed as 1 MiB frames). Independent 256 KiB blocks, so each block decodes alone and the
    /// buffers stay small. No XXH32 content checksum: every reader of the repository checks the
    /// content's SHA-256 (manifest or WAL name) anyway, and it cost a quarter of lz4's CPU time.
    pub(super) fn new() -> Lz4Compress {
        Lz4Compress {
            table: lz4_flex::block::CompressTable::large(),
            pending: Vec::new(),
            scratch: IDLE_SCRATCH
                .with(|idle| idle.borrow_mut().pop())
                .unwrap_or_default(),
            header_written: false,
        }
    }

    fn header(&mut self, out: &mut Vec<u8>) {
        if std::mem::replace(&mut self.header_written, true) {
            return;
        }
        let descriptor = [FLG_WRITTEN, BD_256KB];
        out.extend_from_slice(&MAGIC.to_le_bytes());
        out.extend_from_slice(&descriptor);
        out.push((XxHash32::oneshot(0, &descriptor) >> 8) as u8);
    }

    /// Appends `block` (at most `BLOCK_SIZE` bytes) as one block: compressed, or as it is when
    /// it does not shrink.
    fn block(&mut self, block: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let max = lz4_flex::block::get_maximum_output_size(block.len());
        if self.scratch.len() < max {
            self.scratch.resize(max, 0);
        }
        let size =
            lz4_flex::block::compress_into_with_table(block, &mut self.scratch, &mut self.table)
                .map_err(|err| compress_failed(CompressType::Lz4, err))?;
        if size < block.len() {
            out.extend_from_slice(&(size as u32).to_le_bytes());
            out.extend_from_slice(&self.scratch[..size]);
        } else {
            out.extend_from_slice(&(block.len() as u32 | UNCOMPRESSED_BIT).to_le_bytes());
            out.extend_from_slice(block);
        }
        Ok(())
    }
}

impl Drop for Lz4Compress {
    fn drop(&mut self) {
        let scratch = std::mem::take(&mut self.scratch);
        // try_with: a thread being torn down simply frees it.
        let _ = IDLE_SCRATCH.try_with(|idle| {
            let mut idle = idle.borrow_mut();
            if idle.len() < IDLE_MAX {
                idle.push(scratch);
            }
        });
    }
}

impl Filter for Lz4Compress {
    fn process(&mut self, mut input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.header(out);
        if !self.pending.is_empty() {
            let take = (BLOCK_SIZE - self.pending.len()).min(input.len());
            self.pending.extend_from_slice(&input[..take]);
            input = &input[take..];
            if self.pending.len() < BLOCK_SIZE {
                return Ok(());
            }
            let pending = std::mem::take(&mut self.pending);
            let done = self.block(&pending, out);
            self.pending = pending;
            self.pending.clear();
            done?;
        }
        while input.len() >= BLOCK_SIZE {
            self.block(&input[..BLOCK_SIZE], out)?;
            input = &input[BLOCK_SIZE..];
        }
        self.pending.extend_from_slice(input);
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        self.header(out);
        if !self.pending.is_empty() {
            let pending = std::mem::take(&mut self.pending);
            let done = self.block(&pending, out);
            self.pending = pending;
            self.pending.clear();
            done?;
        }
        out.extend_from_slice(&0u32.to_le_bytes());
        self.header_written = false;
        Ok(None)
    }
}

/// Where the decoder is in the frame format; each state waits for a fixed number of bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// The 4-byte magic number of the next frame.
    Magic,
    /// The 4-byte length of a skippable frame.
    SkipSize,
    /// Bytes of a skippable frame still to skip.
    Skip(u64),
    /// FLG and BD.
    Descriptor,
    /// The rest of the descriptor: optional content size, then the header checksum.
    DescriptorRest(usize),
    /// A 4-byte block size, or the end mark 0.
    BlockHeader,
    /// A block of `size` bytes (plus its checksum when the frame has them).
    Block { size: usize, compressed: bool },
    /// The 4-byte XXH32 of the frame's content.
    ContentChecksum,
}

pub(super) struct Lz4Decompress {
    state: State,
    /// Bytes of the current unit gathered across calls.
    pending: Vec<u8>,
    flags: u8,
    descriptor: [u8; 2],
    max_block: usize,
    content_size: Option<u64>,
    content_len: u64,
    content_hash: XxHash32,
    /// The decoded block, reused for every block; `block[ready.0..ready.1]` is not yet handed
    /// on, so a limited call can release a 4 MiB block in pieces.
    block: Vec<u8>,
    ready: (usize, usize),
    /// The last `WINDOW` bytes of output, for linked blocks.
    dictionary: Vec<u8>,
    frames: u64,
}

impl Lz4Decompress {
    pub(super) fn new() -> Lz4Decompress {
        Lz4Decompress {
            state: State::Magic,
            pending: Vec::new(),
            flags: 0,
            descriptor: [0; 2],
            max_block: 0,
            content_size: None,
            content_len: 0,
            content_hash: XxHash32::with_seed(0),
            block: Vec::new(),
            ready: (0, 0),
            dictionary: Vec::new(),
            frames: 0,
        }
    }

    /// How many bytes the current state needs before it can be handled.
    fn need(&self) -> usize {
        match self.state {
            State::Magic | State::SkipSize | State::BlockHeader | State::ContentChecksum => 4,
            State::Skip(_) => 0,
            State::Descriptor => 2,
            State::DescriptorRest(size) => size,
            State::Block { size, .. } => size + self.block_checksum_len(),
        }
    }

    fn block_checksum_len(&self) -> usize {
        if self.flags & FLG_BLOCK_CHECKSUM != 0 {
            4
        } else {
            0
        }
    }

    /// Handles one complete unit of `need()` bytes.
    fn handle(&mut self, unit: &[u8]) -> Result<()> {
        self.state = match self.state {
            State::Magic => match le_u32(unit) {
                MAGIC => State::Descriptor,
                magic if SKIPPABLE_MAGIC.contains(&magic) => State::SkipSize,
                LEGACY_MAGIC => return Err(corrupt("legacy lz4 frames are not supported")),
                magic => {
                    return Err(corrupt(format!(
                        "lz4 data is corrupt: bad magic number 0x{magic:08x}"
                    )));
                }
            },
            State::SkipSize => match le_u32(unit) {
                0 => State::Magic,
                size => State::Skip(u64::from(size)),
            },
            State::Skip(_) => State::Magic,
            State::Descriptor => self.descriptor(unit[0], unit[1])?,
            State::DescriptorRest(_) => self.descriptor_rest(unit)?,
            State::BlockHeader => match le_u32(unit) {
                0 if self.flags & FLG_CONTENT_CHECKSUM != 0 => State::ContentChecksum,
                0 => self.end_frame()?,
                word => {
                    let size = (word & !UNCOMPRESSED_BIT) as usize;
                    if size > self.max_block {
                        return Err(corrupt(format!(
                            "lz4 data is corrupt: block of {size} bytes exceeds the frame's \
                             maximum of {}",
                            self.max_block
                        )));
                    }
                    State::Block {
                        size,
                        compressed: word & UNCOMPRESSED_BIT == 0,
                    }
                }
            },
            State::Block { size, compressed } => {
                self.block(&unit[..size], &unit[size..], compressed)?;
                State::BlockHeader
            }
            State::ContentChecksum => {
                if le_u32(unit) != self.content_hash.finish_32() {
                    return Err(corrupt("lz4 data is corrupt: content checksum mismatch"));
                }
                self.end_frame()?
            }
        };
        Ok(())
    }

    fn descriptor(&mut self, flags: u8, bd: u8) -> Result<State> {
        if flags >> 6 != 1 || flags & 0x02 != 0 || bd & 0x8f != 0 {
            return Err(corrupt("lz4 data is corrupt: bad frame descriptor"));
        }
        if flags & FLG_DICTIONARY_ID != 0 {
            return Err(corrupt(
                "lz4 frames that need a dictionary are not supported",
            ));
        }
        self.max_block = match (bd >> 4) & 0x07 {
            4 => 64 * 1024,
            5 => 256 * 1024,
            6 => 1024 * 1024,
            7 => 4 * 1024 * 1024,
            _ => return Err(corrupt("lz4 data is corrupt: bad maximum block size")),
        };
        self.flags = flags;
        self.descriptor = [flags, bd];
        let content_size_len = if flags & FLG_CONTENT_SIZE != 0 { 8 } else { 0 };
        Ok(State::DescriptorRest(content_size_len + 1))
    }

    fn descriptor_rest(&mut self, unit: &[u8]) -> Result<State> {
        let (content_size, checksum) = unit.split_at(unit.len() - 1);
        let mut hasher = XxHash32::with_seed(0);
        hasher.write(&self.descriptor);
        hasher.write(content_size);
        if (hasher.finish_32() >> 8) as u8 != checksum[0] {
            return Err(corrupt("lz4 data is corrupt: header checksum mismatch"));
        }
        self.content_size = match content_size.try_into() {
            Ok(bytes) => Some(u64::from_le_bytes(bytes)),
            Err(_) => None,
        };
        self.content_len = 0;
        self.content_hash = XxHash32::with_seed(0);
        self.dictionary.clear();
        if self.block.len() < self.max_block {
            self.block.resize(self.max_block, 0);
        }
        Ok(State::BlockHeader)
    }

    /// Decodes one block into `self.block` and marks it ready.
    fn block(&mut self, data: &[u8], checksum: &[u8], compressed: bool) -> Result<()> {
        if !checksum.is_empty() && le_u32(checksum) != XxHash32::oneshot(0, data) {
            return Err(corrupt("lz4 data is corrupt: block checksum mismatch"));
        }
        let linked = self.flags & FLG_INDEPENDENT == 0;
        let block = &mut self.block[..self.max_block];
        let size = if !compressed {
            block[..data.len()].copy_from_slice(data);
            data.len()
        } else if linked && !self.dictionary.is_empty() {
            lz4_flex::block::decompress_into_with_dict(data, block, &self.dictionary)
                .map_err(|err| corrupt(format!("lz4 data is corrupt: {err}")))?
        } else {
            // liblz4 here, not lz4_flex: lz4_flex copies an overlapping match a byte at a time,
            // so a block of zeros (a WAL segment's unused tail, an empty page) decoded at
            // 0.56 GB/s where liblz4 fills it at 13 GB/s (data blocks: 4.2 against 5.7 GB/s).
            let capacity = i32::try_from(block.len())
                .map_err(|_| corrupt("lz4 data is corrupt: block too large"))?;
            lz4::block::decompress_to_buffer(data, Some(capacity), block)
                .map_err(|err| corrupt(format!("lz4 data is corrupt: {err}")))?
        };
        self.ready = (0, size);
        let decoded = &self.block[..size];
        if self.flags & FLG_CONTENT_CHECKSUM != 0 {
            self.content_hash.write(decoded);
        }
        self.content_len += decoded.len() as u64;
        if linked {
            // Keep the newest WINDOW bytes of output as the next block's dictionary.
            if decoded.len() >= WINDOW {
                self.dictionary.clear();
                self.dictionary
                    .extend_from_slice(&decoded[decoded.len() - WINDOW..]);
            } else {
                let keep = (WINDOW - decoded.len()).min(self.dictionary.len());
                self.dictionary.drain(..self.dictionary.len() - keep);
                self.dictionary.extend_from_slice(decoded);
            }
        }
        Ok(())
    }

    fn end_frame(&mut self) -> Result<State> {
        if let Some(expected) = self.content_size
            && expected != self.content_len
        {
            return Err(corrupt(format!(
                "lz4 data is corrupt: frame holds {} bytes but its header says {expected}",
                self.content_len
            )));
        }
        self.frames += 1;
        Ok(State::Magic)
    }
}

impl Filter for Lz4Decompress {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.process_limited(input, out, usize::MAX)?;
        Ok(())
    }

    fn process_limited(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize> {
        let mut pos = 0;
        loop {
            self.emit(out, limit);
            if self.ready.0 < self.ready.1 || pos == input.len() {
                return Ok(pos);
            }
            if let State::Skip(left) = self.state {
                let step = left.min((input.len() - pos) as u64);
                pos += step as usize;
                self.state = if step == left {
                    State::Magic
                } else {
                    State::Skip(left - step)
                };
                continue;
            }
            let need = self.need();
            if self.pending.is_empty() && input.len() - pos >= need {
                // The whole unit is in this input: decode it in place, without a copy.
                self.handle(&input[pos..pos + need])?;
                pos += need;
                continue;
            }
            let take = (need - self.pending.len()).min(input.len() - pos);
            self.pending.extend_from_slice(&input[pos..pos + take]);
            pos += take;
            if self.pending.len() == need {
                let unit = std::mem::take(&mut self.pending);
                let handled = self.handle(&unit);
                self.pending = unit;
                self.pending.clear();
                handled?;
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        self.emit(out, usize::MAX);
        if self.state != State::Magic || !self.pending.is_empty() || self.frames == 0 {
            return Err(corrupt("lz4 stream is truncated"));
        }
        Ok(None)
    }
}

impl Lz4Decompress {
    /// Hands on as much of the decoded block as fits under `limit`.
    fn emit(&mut self, out: &mut Vec<u8>, limit: usize) {
        let (start, end) = self.ready;
        let take = (end - start).min(limit.saturating_sub(out.len()));
        out.extend_from_slice(&self.block[start..start + take]);
        self.ready.0 += take;
    }
}

fn le_u32(bytes: &[u8]) -> u32 {
    let mut word = [0; 4];
    word.copy_from_slice(&bytes[..4]);
    u32::from_le_bytes(word)
}
