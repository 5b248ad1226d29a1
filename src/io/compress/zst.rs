//! zstd compress and decompress filters over the `zstd` crate's raw push API.
//!
//! Frames carry zstd's own content checksum (XXH64), so a corrupt repository file is caught
//! while it is decompressed, before its SHA-256 is even compared. Concatenated frames decode as
//! one stream, as `zstd -d` does.
//!
//! Contexts are reused: a backup or restore of many small files would otherwise allocate and
//! initialise a context (about 1 MiB of tables at level 3) per file, which cost more than
//! compressing a 16 KiB file. Each thread keeps the contexts its finished filters gave back.

use std::cell::RefCell;

use zstd::stream::raw::{CParameter, Decoder, Encoder, InBuffer, Operation, OutBuffer};

use super::{CompressType, compress_failed, corrupt, reserve_step};
use crate::error::{Error, ErrorKind, Result};
use crate::io::filter::{Filter, FilterResult};

thread_local! {
    /// The one-shot context of `compress_whole` on this thread, with its level.
    static WHOLE: RefCell<Option<(i32, zstd::bulk::Compressor<'static>)>> =
        const { RefCell::new(None) };
    /// Compression contexts given back on this thread, with their level.
    static IDLE_ENCODERS: RefCell<Vec<(i32, Encoder<'static>)>> = const { RefCell::new(Vec::new()) };
    /// Decompression contexts given back on this thread.
    static IDLE_DECODERS: RefCell<Vec<Decoder<'static>>> = const { RefCell::new(Vec::new()) };
}

/// Contexts kept per thread: a worker runs one or two chains at a time.
const IDLE_MAX: usize = 2;

/// `input` compressed as one frame into `out` (emptied first), in one call with the input's
/// size known: zstd sizes its tables to the input and compresses without first copying the
/// input into its window, which the streaming filter must do (archive-push's 512 KiB frames:
/// fewer fresh pages and less CPU). The frame is the same format, with its content size and
/// checksum.
pub(super) fn compress_whole(level: i32, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
    let failed = |err: std::io::Error| compress_failed(CompressType::Zst, err);
    out.clear();
    out.reserve(zstd::zstd_safe::compress_bound(input.len()));
    WHOLE.with(|whole| {
        let mut whole = whole.borrow_mut();
        if whole.as_ref().is_none_or(|(l, _)| *l != level) {
            let mut compressor = zstd::bulk::Compressor::new(level).map_err(failed)?;
            compressor
                .set_parameter(CParameter::ChecksumFlag(true))
                .map_err(failed)?;
            *whole = Some((level, compressor));
        }
        let Some((_, compressor)) = whole.as_mut() else {
            return Err(Error::new(ErrorKind::Assert, "zst context missing"));
        };
        compressor.compress_to_buffer(input, out).map_err(failed)?;
        Ok(())
    })
}

pub(super) struct ZstCompress {
    level: i32,
    /// Always Some until dropped.
    encoder: Option<Encoder<'static>>,
}

impl ZstCompress {
    pub(super) fn new(level: i32) -> Result<ZstCompress> {
        let failed = |err: std::io::Error| compress_failed(CompressType::Zst, err);
        let idle = IDLE_ENCODERS.with(|idle| {
            let mut idle = idle.borrow_mut();
            let at = idle.iter().position(|(l, _)| *l == level)?;
            Some(idle.swap_remove(at).1)
        });
        let encoder = match idle {
            // A reset keeps the parameters (level, checksum) and the allocated tables.
            Some(mut encoder) => {
                encoder.reinit().map_err(failed)?;
                encoder
            }
            None => {
                let mut encoder = Encoder::new(level).map_err(failed)?;
                encoder
                    .set_parameter(CParameter::ChecksumFlag(true))
                    .map_err(failed)?;
                encoder
            }
        };
        Ok(ZstCompress {
            level,
            encoder: Some(encoder),
        })
    }

    fn encoder(&mut self) -> Result<&mut Encoder<'static>> {
        self.encoder.as_mut().ok_or_else(|| {
            Error::new(
                ErrorKind::Assert,
                "zst compressor used after it was dropped",
            )
        })
    }
}

impl Drop for ZstCompress {
    fn drop(&mut self) {
        if let Some(encoder) = self.encoder.take() {
            let level = self.level;
            // try_with: a thread being torn down simply frees the context.
            let _ = IDLE_ENCODERS.try_with(|idle| {
                let mut idle = idle.borrow_mut();
                if idle.len() < IDLE_MAX {
                    idle.push((level, encoder));
                }
            });
        }
    }
}

impl Filter for ZstCompress {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut input = InBuffer::around(input);
        while input.pos() < input.src.len() {
            reserve_step(out);
            let mut output = OutBuffer::around_pos(out, out.len());
            self.encoder()?
                .run(&mut input, &mut output)
                .map_err(|err| compress_failed(CompressType::Zst, err))?;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        loop {
            reserve_step(out);
            let mut output = OutBuffer::around_pos(out, out.len());
            let remaining = self
                .encoder()?
                .finish(&mut output, true)
                .map_err(|err| compress_failed(CompressType::Zst, err))?;
            if remaining == 0 {
                return Ok(None);
            }
        }
    }
}

pub(super) struct ZstDecompress {
    decoder: Option<Decoder<'static>>,
    /// The last call ended exactly at the end of a frame, with all its output flushed.
    frame_done: bool,
    /// The last call filled the output space, so the decoder may still hold output.
    maybe_pending: bool,
}

impl ZstDecompress {
    pub(super) fn new() -> ZstDecompress {
        ZstDecompress {
            decoder: None,
            frame_done: false,
            maybe_pending: false,
        }
    }
}

impl Filter for ZstDecompress {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.process_limited(input, out, usize::MAX)?;
        Ok(())
    }

    fn process_limited(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize> {
        // The context is created on first use so that building a chain cannot fail.
        let decoder = match &mut self.decoder {
            Some(decoder) => decoder,
            None => {
                let idle = IDLE_DECODERS.with(|idle| idle.borrow_mut().pop());
                let decoder = match idle {
                    Some(mut decoder) => {
                        decoder
                            .reinit()
                            .map_err(|err| corrupt(format!("zst decoder: {err}")))?;
                        decoder
                    }
                    None => Decoder::new().map_err(|err| corrupt(format!("zst decoder: {err}")))?,
                };
                self.decoder.insert(decoder)
            }
        };
        let mut input = InBuffer::around(input);
        while out.len() < limit && (input.pos() < input.src.len() || self.maybe_pending) {
            reserve_step(out);
            let (before_in, before_out) = (input.pos(), out.len());
            let hint = {
                let mut output = OutBuffer::around_pos(out, out.len());
                decoder
                    .run(&mut input, &mut output)
                    .map_err(|err| corrupt(format!("zst data is corrupt: {err}")))?
            };
            // zstd returns 0 only when a frame is complete and fully flushed; after that, a
            // call without input would report the next frame's header size instead.
            self.frame_done = hint == 0;
            self.maybe_pending = !self.frame_done && out.len() == out.capacity();
            if input.pos() == before_in && out.len() == before_out {
                if input.pos() < input.src.len() {
                    return Err(corrupt("zst data is corrupt: the decoder made no progress"));
                }
                self.maybe_pending = false;
                break;
            }
        }
        Ok(input.pos())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        self.process_limited(&[], out, usize::MAX)?;
        if !self.frame_done {
            return Err(corrupt("zst stream is truncated"));
        }
        Ok(None)
    }
}

impl Drop for ZstDecompress {
    fn drop(&mut self) {
        if let Some(decoder) = self.decoder.take() {
            let _ = IDLE_DECODERS.try_with(|idle| {
                let mut idle = idle.borrow_mut();
                if idle.len() < IDLE_MAX {
                    idle.push(decoder);
                }
            });
        }
    }
}
