//! Reading a file through a filter chain: what `Storage::open_read_filtered` returns.
//!
//! [`FilteredRead`] is a reader of a chain's output that also gives the chain's results (size,
//! hash, page checksums) once the end is reached. [`ChainReader`] runs the chain in this
//! process over any reader; it is what a local driver returns, and what the far side of the
//! remote protocol runs before it sends the output over the wire.

use std::collections::VecDeque;
use std::io::Read;

use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::{from_io_error, to_io_error};
use crate::io::{FilterChain, FilterResult, FilterSpec};

/// How much input a `ChainReader` reads at a time.
const CHUNK: usize = 256 * 1024;

/// A reader of a filter chain's output.
pub trait FilteredRead: Read + Send {
    /// The chain's results, in chain order, handed over once (a block-incremental result is
    /// megabytes); an error when called before the reader returned end of file, or again.
    fn results(&mut self) -> Result<Vec<FilterResult>>;
}

/// Runs a filter chain over a reader in this process.
pub struct ChainReader {
    inner: Box<dyn Read + Send>,
    chain: FilterChain,
    input: Vec<u8>,
    /// The part of `input` read but not yet pushed through the chain.
    pending: std::ops::Range<usize>,
    output: VecDeque<u8>,
    /// The chain's results once it has finished, until `results` hands them over.
    results: Option<Vec<FilterResult>>,
    /// The chain has finished (its results may have been handed over since).
    finished: bool,
}

impl ChainReader {
    /// A reader of `inner` passed through the filters `specs` describe.
    pub fn new(inner: Box<dyn Read + Send>, specs: &[FilterSpec]) -> Result<ChainReader> {
        let mut chain = FilterChain::from_specs(specs)?;
        chain.set_output_limit(CHUNK);
        Ok(ChainReader {
            inner,
            chain,
            input: vec![0; CHUNK],
            pending: 0..0,
            output: VecDeque::new(),
            results: None,
            finished: false,
        })
    }

    /// Reads input and pushes it through the chain, a step at a time, until there is output or
    /// the end.
    fn fill(&mut self) -> Result<()> {
        while self.output.is_empty() && !self.finished {
            if self.pending.is_empty() {
                let read = loop {
                    match self.inner.read(&mut self.input) {
                        Ok(read) => break read,
                        Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(err) => return Err(from_io_error(err, ErrorKind::FileRead, "read")),
                    }
                };
                self.pending = 0..read;
            }
            let output = &mut self.output;
            let mut sink = |bytes: &[u8]| {
                output.extend(bytes);
                Ok(())
            };
            if self.pending.is_empty() {
                self.results = Some(self.chain.finish_into(&mut sink)?);
                self.finished = true;
            } else {
                // One step at a time: a decompressor can turn a little input into a lot of
                // output (pages of zeros compress a thousandfold), and all a push yields is held
                // until read; pushing whole 256 KiB inputs held tens of MiB per open reader.
                let consumed = self
                    .chain
                    .process_step(&self.input[self.pending.clone()], &mut sink)?;
                self.pending.start += consumed;
            }
        }
        Ok(())
    }
}

impl Read for ChainReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        self.fill().map_err(to_io_error)?;
        let (front, _) = self.output.as_slices();
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        self.output.drain(..n);
        Ok(n)
    }
}

impl FilteredRead for ChainReader {
    fn results(&mut self) -> Result<Vec<FilterResult>> {
        if !self.output.is_empty() {
            return Err(Error::new(
                ErrorKind::Assert,
                "filter results asked for before the end of the stream",
            ));
        }
        self.fill()?;
        self.results.take().ok_or_else(|| {
            Error::new(
                ErrorKind::Assert,
                "filter results asked for before the end of the stream",
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::CompressType;

    #[test]
    fn output_and_results_match_the_chain_run_directly() {
        let content: Vec<u8> = (0..1_000_000u32).map(|i| (i % 251) as u8).collect();
        let specs = [
            FilterSpec::Size,
            FilterSpec::Hash,
            FilterSpec::Compress {
                kind: CompressType::Zst,
                level: 3,
            },
            FilterSpec::Size,
        ];
        let mut reader =
            ChainReader::new(Box::new(std::io::Cursor::new(content.clone())), &specs).unwrap();
        let mut compressed = Vec::new();
        reader.read_to_end(&mut compressed).unwrap();
        let results = reader.results().unwrap();
        assert_eq!(results[0], FilterResult::Size(content.len() as u64));
        assert_eq!(
            results[1],
            FilterResult::Hash(crate::io::sha256_hex(&content))
        );
        assert_eq!(results[2], FilterResult::Size(compressed.len() as u64));
        assert_eq!(zstd::decode_all(compressed.as_slice()).unwrap(), content);
    }

    #[test]
    fn results_before_the_end_are_refused() {
        let mut reader =
            ChainReader::new(Box::new(std::io::Cursor::new(vec![1u8; 10])), &[]).unwrap();
        let mut one = [0u8; 1];
        reader.read_exact(&mut one).unwrap();
        assert_eq!(reader.results().unwrap_err().kind(), ErrorKind::Assert);
    }
}
