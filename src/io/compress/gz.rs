//! gzip compress and decompress filters over flate2's push API (zlib-rs backend).
//!
//! zlib writes and checks the gzip header and trailer (CRC-32 and length) itself when given
//! window bits 15 + 16, so these filters only move bytes between the caller's slices and zlib.
//! Concatenated gzip members decode as one stream, as `gzip -d` does; anything else after a
//! member is corrupt input.

use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, Status};

use super::{CompressType, compress_failed, corrupt, reserve_step};
use crate::error::{Error, ErrorKind, Result};
use crate::io::filter::{Filter, FilterResult};

/// zlib's largest window; the gzip variant is selected inside flate2.
const WINDOW_BITS: u8 = 15;

thread_local! {
    /// Compression states given back on this thread, with their level: a deflate state is
    /// about 270 KiB to allocate and initialise, per file otherwise.
    static IDLE: std::cell::RefCell<Vec<(u32, Compress)>> = const { std::cell::RefCell::new(Vec::new()) };
}

pub(super) struct GzCompress {
    level: u32,
    /// Always Some until dropped.
    zlib: Option<Compress>,
}

impl GzCompress {
    /// `level` must be in 0..=9 (checked by the caller).
    pub(super) fn new(level: i32) -> GzCompress {
        let level = u32::try_from(level).unwrap_or(6);
        let idle = IDLE.with(|idle| {
            let mut idle = idle.borrow_mut();
            let at = idle.iter().position(|(l, _)| *l == level)?;
            Some(idle.swap_remove(at).1)
        });
        let zlib = match idle {
            // reset() starts a new gzip member with the same level and window.
            Some(mut zlib) => {
                zlib.reset();
                zlib
            }
            None => Compress::new_gzip(Compression::new(level), WINDOW_BITS),
        };
        GzCompress {
            level,
            zlib: Some(zlib),
        }
    }

    fn zlib(&mut self) -> Result<&mut Compress> {
        self.zlib
            .as_mut()
            .ok_or_else(|| Error::new(ErrorKind::Assert, "gz compressor used after it was dropped"))
    }
}

impl Drop for GzCompress {
    fn drop(&mut self) {
        let Some(zlib) = self.zlib.take() else {
            return;
        };
        let level = self.level;
        let _ = IDLE.try_with(|idle| {
            let mut idle = idle.borrow_mut();
            if idle.len() < 2 {
                idle.push((level, zlib));
            }
        });
    }
}

impl Filter for GzCompress {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        let mut pos = 0;
        while pos < input.len() {
            reserve_step(out);
            let zlib = self.zlib()?;
            let before = zlib.total_in();
            zlib.compress_vec(&input[pos..], out, FlushCompress::None)
                .map_err(|err| compress_failed(CompressType::Gz, err))?;
            pos += (zlib.total_in() - before) as usize;
        }
        Ok(())
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        loop {
            reserve_step(out);
            let status = self
                .zlib()?
                .compress_vec(&[], out, FlushCompress::Finish)
                .map_err(|err| compress_failed(CompressType::Gz, err))?;
            if status == Status::StreamEnd {
                return Ok(None);
            }
        }
    }
}

pub(super) struct GzDecompress {
    zlib: Decompress,
    /// The current member reached its trailer (true before any input: no member is open).
    member_ended: bool,
    /// At least one member was decoded completely.
    any_member: bool,
    /// The last call filled the output space, so zlib may still hold output.
    maybe_pending: bool,
}

impl GzDecompress {
    pub(super) fn new() -> GzDecompress {
        GzDecompress {
            zlib: Decompress::new_gzip(WINDOW_BITS),
            member_ended: true,
            any_member: false,
            maybe_pending: false,
        }
    }
}

impl Filter for GzDecompress {
    fn process(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<()> {
        self.process_limited(input, out, usize::MAX)?;
        Ok(())
    }

    fn process_limited(&mut self, input: &[u8], out: &mut Vec<u8>, limit: usize) -> Result<usize> {
        let mut pos = 0;
        while out.len() < limit && (pos < input.len() || self.maybe_pending) {
            if self.member_ended {
                if pos == input.len() {
                    break;
                }
                // Another member follows: a fresh inflater checks its header.
                if self.any_member {
                    self.zlib = Decompress::new_gzip(WINDOW_BITS);
                }
                self.member_ended = false;
            }
            reserve_step(out);
            let (before_in, before_out) = (self.zlib.total_in(), self.zlib.total_out());
            let status = self
                .zlib
                .decompress_vec(&input[pos..], out, FlushDecompress::None)
                .map_err(|err| {
                    corrupt(format!(
                        "gz data is corrupt: {}",
                        err.message().unwrap_or("invalid data")
                    ))
                })?;
            let consumed = (self.zlib.total_in() - before_in) as usize;
            let produced = self.zlib.total_out() - before_out;
            pos += consumed;
            self.maybe_pending = out.len() == out.capacity();
            if status == Status::StreamEnd {
                self.member_ended = true;
                self.any_member = true;
                self.maybe_pending = false;
            } else if consumed == 0 && produced == 0 {
                // With output space to spare, zlib stalls only when it needs more input.
                if pos < input.len() {
                    return Err(corrupt("gz data is corrupt: the decoder made no progress"));
                }
                self.maybe_pending = false;
                break;
            }
        }
        Ok(pos)
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        self.process_limited(&[], out, usize::MAX)?;
        if !self.member_ended || !self.any_member {
            return Err(corrupt("gz stream is truncated"));
        }
        Ok(None)
    }
}
