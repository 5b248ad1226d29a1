//! Reading a stored object decompressed, lending out the decompressor's own buffer.
//!
//! A restore of a block-incremental file pulls 8 KiB blocks from every holder object in turn.
//! Through a generic [`ChainReader`](crate::storage::ChainReader) each byte is copied twice
//! before it reaches the file's write buffer (the chain's output into the reader's queue, the
//! queue into the caller's slice); [`DecodedReader`] keeps the decompressor's output where it
//! was made and copies each byte once, into its destination, or not at all when it is skipped.
//! Memory is one input piece and about one output piece, however well the object compressed.

use std::io::Read;
use std::ops::Range;

use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::from_io_error;
use crate::io::{CompressType, Filter, FilterSpec};

/// Bytes read from the object at a time, and about the most decompressed output held.
const PIECE: usize = 256 * 1024;

/// An object's content, decompressed (or as stored, for compress-type none), forward only.
pub struct DecodedReader {
    raw: Box<dyn Read + Send>,
    /// None: the object is stored uncompressed.
    filter: Option<Box<dyn Filter>>,
    input: Vec<u8>,
    pending: Range<usize>,
    out: Vec<u8>,
    /// Bytes of `out` already handed out.
    pos: usize,
    /// The last call filled `out` to the limit: the filter may hold more for input it took.
    more: bool,
    ended: bool,
}

impl DecodedReader {
    pub fn new(raw: Box<dyn Read + Send>, compress: CompressType) -> Result<DecodedReader> {
        let filter = match compress {
            CompressType::None => None,
            kind => Some(FilterSpec::Decompress { kind }.build()?),
        };
        Ok(DecodedReader {
            raw,
            filter,
            input: vec![0; PIECE],
            pending: 0..0,
            out: Vec::new(),
            pos: 0,
            more: false,
            ended: false,
        })
    }

    /// Makes decoded bytes available; false once the object has none left.
    fn fill(&mut self) -> Result<bool> {
        while self.pos == self.out.len() {
            if self.ended {
                return Ok(false);
            }
            self.pos = 0;
            let Some(filter) = self.filter.as_mut() else {
                self.out.resize(PIECE, 0);
                let read = read_some(&mut self.raw, &mut self.out)?;
                self.out.truncate(read);
                self.ended = read == 0;
                continue;
            };
            self.out.clear();
            if self.pending.is_empty() && !self.more {
                let read = read_some(&mut self.raw, &mut self.input)?;
                if read == 0 {
                    filter.finish(&mut self.out)?;
                    self.ended = true;
                    continue;
                }
                self.pending = 0..read;
            }
            let consumed =
                filter.process_limited(&self.input[self.pending.clone()], &mut self.out, PIECE)?;
            if consumed > self.pending.len() {
                return Err(Error::new(
                    ErrorKind::Assert,
                    "filter consumed more input than it was given",
                ));
            }
            self.pending.start += consumed;
            self.more = self.out.len() >= PIECE;
            if consumed == 0 && self.out.is_empty() && !self.pending.is_empty() && !self.more {
                return Err(Error::new(ErrorKind::Assert, "filter made no progress"));
            }
        }
        Ok(true)
    }

    /// Copies decoded bytes into all of `into`; how many there were (fewer only at the end).
    pub fn read_into(&mut self, into: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < into.len() && self.fill()? {
            let n = (into.len() - filled).min(self.out.len() - self.pos);
            into[filled..filled + n].copy_from_slice(&self.out[self.pos..self.pos + n]);
            self.pos += n;
            filled += n;
        }
        Ok(filled)
    }

    /// Appends the next `len` decoded bytes to `out`; how many there were (fewer only at the
    /// end).
    pub fn append_to(&mut self, out: &mut Vec<u8>, len: usize) -> Result<usize> {
        let mut added = 0;
        while added < len && self.fill()? {
            let n = (len - added).min(self.out.len() - self.pos);
            out.extend_from_slice(&self.out[self.pos..self.pos + n]);
            self.pos += n;
            added += n;
        }
        Ok(added)
    }

    /// Passes over the next `len` decoded bytes without copying them; how many there were.
    pub fn skip(&mut self, len: u64) -> Result<u64> {
        let mut skipped = 0;
        while skipped < len && self.fill()? {
            let n = (len - skipped).min((self.out.len() - self.pos) as u64);
            self.pos += n as usize;
            skipped += n;
        }
        Ok(skipped)
    }
}

fn read_some(raw: &mut Box<dyn Read + Send>, buf: &mut [u8]) -> Result<usize> {
    loop {
        match raw.read(buf) {
            Ok(read) => return Ok(read),
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
            Err(err) => return Err(from_io_error(err, ErrorKind::FileRead, "read")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::FilterChain;

    fn content() -> Vec<u8> {
        (0..3_000_000u32)
            .map(|i| if i % 5 == 0 { (i / 13) as u8 } else { 0 })
            .collect()
    }

    fn stored(kind: CompressType, data: &[u8]) -> Box<dyn Read + Send> {
        if kind == CompressType::None {
            return Box::new(std::io::Cursor::new(data.to_vec()));
        }
        let mut chain =
            FilterChain::from_specs(&[FilterSpec::Compress { kind, level: 1 }]).unwrap();
        let mut packed = chain.process(data).unwrap().to_vec();
        packed.extend_from_slice(chain.finish().unwrap().0);
        Box::new(std::io::Cursor::new(packed))
    }

    #[test]
    fn reads_appends_and_skips_give_the_content_in_order() {
        let data = content();
        for kind in [
            CompressType::None,
            CompressType::Lz4,
            CompressType::Zst,
            CompressType::Gz,
        ] {
            let mut reader = DecodedReader::new(stored(kind, &data), kind).unwrap();
            let mut got = Vec::new();
            let mut at = 0usize;
            let mut step = 0;
            while at < data.len() {
                step += 1;
                let len = (step * 7919) % 300_000 + 1;
                match step % 3 {
                    0 => {
                        let skipped = reader.skip(len as u64).unwrap() as usize;
                        got.extend_from_slice(&data[at..at + skipped]);
                        at += skipped;
                    }
                    1 => {
                        let mut buf = vec![0u8; len];
                        let n = reader.read_into(&mut buf).unwrap();
                        got.extend_from_slice(&buf[..n]);
                        at += n;
                    }
                    _ => at += reader.append_to(&mut got, len).unwrap(),
                }
            }
            assert!(got == data, "{kind:?}");
            assert_eq!(reader.skip(1).unwrap(), 0, "{kind:?} ends");
        }
    }

    #[test]
    fn a_truncated_object_is_an_error() {
        let data = content();
        let Ok(mut packed) = ({
            let mut reader = stored(CompressType::Zst, &data);
            let mut packed = Vec::new();
            reader.read_to_end(&mut packed).map(|_| packed)
        }) else {
            panic!("read");
        };
        packed.truncate(packed.len() / 2);
        let mut reader =
            DecodedReader::new(Box::new(std::io::Cursor::new(packed)), CompressType::Zst).unwrap();
        assert!(reader.skip(data.len() as u64).is_err());
    }
}
