//! Streaming a reader through a filter chain into a writer, and carrying pgkeep errors through
//! `std::io::Read`/`Write`.
//!
//! Storage drivers hand out plain `Read` and `Write` objects, whose errors are `std::io::Error`.
//! A driver wraps its own [`Error`] (which names the file and the OS cause) with
//! [`to_io_error`]; [`from_io_error`] takes it back out whole, so the message the user sees
//! still says which file failed and how.

use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result, io_cause};
use crate::io::chain::FilterChain;
use crate::io::filter::FilterResult;

/// Wraps `err` so it can cross a `Read` or `Write` implementation.
pub fn to_io_error(err: Error) -> std::io::Error {
    std::io::Error::other(err)
}

/// The pgkeep error inside `err` when it came from [`to_io_error`]; otherwise a `kind` error
/// "unable to <action>: <cause>".
pub fn from_io_error(err: std::io::Error, kind: ErrorKind, action: &str) -> Error {
    if let Some(inner) = err
        .get_ref()
        .and_then(|inner| inner.downcast_ref::<Error>())
    {
        return inner.clone();
    }
    Error::new(kind, format!("unable to {action}: {}", io_cause(&err)))
}

/// Reads until `buf` is full or `reader` ends; how much was read (fewer only at the end).
pub fn read_full(reader: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// Reads `buf.len()` bytes of `file` from `offset` (pread, the file position is untouched);
/// how many there were (fewer only at the end of the file).
pub fn read_full_at(file: &std::fs::File, buf: &mut [u8], offset: u64) -> std::io::Result<usize> {
    use std::os::unix::fs::FileExt;
    let mut filled = 0;
    while filled < buf.len() {
        match file.read_at(&mut buf[filled..], offset + filled as u64) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A writer that takes at most `limit` bytes and fails at the write that would go past them
/// (`FileInvalid`). Restored data comes from a repository someone else may have written: a
/// stored file that decompresses to more than the size recorded for it (damaged, or a
/// compression bomb) must not fill the disk before its checksum is checked at the end.
pub struct CappedWrite<'a> {
    inner: &'a mut dyn Write,
    left: u64,
    limit: u64,
}

impl<'a> CappedWrite<'a> {
    pub fn new(inner: &'a mut dyn Write, limit: u64) -> CappedWrite<'a> {
        CappedWrite {
            inner,
            left: limit,
            limit,
        }
    }
}

impl Write for CappedWrite<'_> {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if bytes.len() as u64 > self.left {
            return Err(to_io_error(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "it decompresses to more than the {} bytes it may hold",
                    self.limit
                ),
            )));
        }
        let written = self.inner.write(bytes)?;
        self.left -= written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

/// Streams everything `reader` yields through `chain` into `writer`, with one read buffer of
/// `buffer_size` bytes; the chain's output limit is set to `buffer_size` too, so memory stays
/// near a few times `buffer_size` whatever the stream. Returns the chain's results in order.
/// The writer is not flushed or committed: that is the caller's decision.
pub fn copy_through(
    reader: &mut dyn Read,
    chain: &mut FilterChain,
    writer: &mut dyn Write,
    buffer_size: usize,
) -> Result<Vec<FilterResult>> {
    let buffer_size = buffer_size.max(1);
    let mut buffer = vec![0; buffer_size];
    chain.set_output_limit(buffer_size);
    let mut sink = |bytes: &[u8]| {
        writer
            .write_all(bytes)
            .map_err(|err| from_io_error(err, ErrorKind::FileWrite, "write"))
    };
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(from_io_error(err, ErrorKind::FileRead, "read")),
        };
        chain.process_into(&buffer[..read], &mut sink)?;
    }
    chain.finish_into(&mut sink)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::compress::CompressType;
    use crate::io::filter::FilterSpec;
    use crate::io::hash::sha256_hex;

    /// A reader that fails after yielding some bytes, as a disk might.
    struct FailingReader(usize);

    impl Read for FailingReader {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            if self.0 == 0 {
                return Err(to_io_error(Error::new(
                    ErrorKind::FileRead,
                    "unable to read '/pg/base/1/1259': [5] Input/output error",
                )));
            }
            let n = self.0.min(buf.len());
            buf[..n].fill(7);
            self.0 -= n;
            Ok(n)
        }
    }

    #[test]
    fn copy_through_compresses_hashes_and_counts() {
        let data: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Size,
            FilterSpec::Hash,
            FilterSpec::Compress {
                kind: CompressType::Zst,
                level: 3,
            },
            FilterSpec::Size,
        ])
        .unwrap();
        let mut written = Vec::new();
        let results = copy_through(&mut &data[..], &mut chain, &mut written, 4096).unwrap();
        assert_eq!(
            results,
            vec![
                FilterResult::Size(300_000),
                FilterResult::Hash(sha256_hex(&data)),
                FilterResult::Size(written.len() as u64),
            ]
        );
        assert_eq!(zstd::decode_all(&written[..]).unwrap(), data);
    }

    #[test]
    fn copy_through_keeps_the_readers_own_error() {
        let mut chain = FilterChain::from_specs(&[FilterSpec::Size]).unwrap();
        let mut reader = FailingReader(10_000);
        let err = copy_through(&mut reader, &mut chain, &mut Vec::new(), 4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileRead);
        assert_eq!(
            err.message(),
            "unable to read '/pg/base/1/1259': [5] Input/output error"
        );
    }

    #[test]
    fn foreign_io_errors_get_the_kind_and_action() {
        let err = from_io_error(
            std::io::Error::from_raw_os_error(28),
            ErrorKind::FileWrite,
            "write",
        );
        assert_eq!(err.kind(), ErrorKind::FileWrite);
        assert_eq!(
            err.message(),
            "unable to write: [28] No space left on device"
        );
    }
}
