//! `FilterChain`: runs filters in order over a stream pushed through it.
//!
//! Each transforming stage owns one output buffer that is cleared and reused on every call, so a
//! warm chain does not allocate. Observing stages (size, hash) read the bytes where they already
//! are: the input, or the output buffer of the last transforming stage before them.
//!
//! Two ways to drive a chain:
//! - `process`/`finish` return the last stage's output for each input as one slice. Simple, but
//!   the slice grows with whatever a stage makes of the input, so use it where output is about
//!   the input's size or smaller (hashing, compressing).
//! - `process_into`/`finish_into` hand the output to a sink in pieces of about `output_limit`
//!   bytes at most per stage, so memory stays bounded even behind a decompressor that turns a
//!   few KiB into a GiB. `io::stream::copy_through` uses these.

use crate::error::{Error, ErrorKind, Result};
use crate::io::filter::{Filter, FilterResult, FilterSpec};

/// The default for `output_limit`: pgBackRest's default `buffer-size`.
pub const DEFAULT_OUTPUT_LIMIT: usize = 1024 * 1024;

/// Where chain output goes, piece by piece.
pub type Sink<'a> = dyn FnMut(&[u8]) -> Result<()> + 'a;

struct Stage {
    filter: Box<dyn Filter>,
    observes: bool,
    out: Vec<u8>,
}

/// Filters run in order over one stream; single use (`finish` ends it).
pub struct FilterChain {
    stages: Vec<Stage>,
    output_limit: usize,
    finished: bool,
}

impl FilterChain {
    /// A chain of `filters`, first to last.
    pub fn new(filters: Vec<Box<dyn Filter>>) -> FilterChain {
        let stages = filters
            .into_iter()
            .map(|filter| Stage {
                observes: filter.observes_only(),
                filter,
                out: Vec::new(),
            })
            .collect();
        FilterChain {
            stages,
            output_limit: DEFAULT_OUTPUT_LIMIT,
            finished: false,
        }
    }

    /// A chain built from specs, e.g. received from the far side of the remote protocol.
    pub fn from_specs(specs: &[FilterSpec]) -> Result<FilterChain> {
        let filters = specs
            .iter()
            .map(FilterSpec::build)
            .collect::<Result<Vec<_>>>()?;
        Ok(FilterChain::new(filters))
    }

    /// Sets roughly how many bytes a stage hands on at a time in `process_into`/`finish_into`.
    pub fn set_output_limit(&mut self, limit: usize) {
        self.output_limit = limit.max(1);
    }

    /// Pushes `input` through every stage and returns what the last transforming stage made of
    /// it (`input` itself when no stage transforms).
    pub fn process<'a>(&'a mut self, input: &'a [u8]) -> Result<&'a [u8]> {
        self.check_open()?;
        let mut source: Option<usize> = None;
        for index in 0..self.stages.len() {
            let (before, rest) = self.stages.split_at_mut(index);
            let data: &[u8] = match source {
                Some(previous) => &before[previous].out,
                None => input,
            };
            let stage = &mut rest[0];
            if !stage.observes {
                stage.out.clear();
                source = Some(index);
            }
            stage.filter.process(data, &mut stage.out)?;
        }
        Ok(match source {
            Some(last) => &self.stages[last].out,
            None => input,
        })
    }

    /// Ends the stream: finishes every stage in order, feeding each one what the stages before
    /// it flushed. Returns the last output and the results in chain order.
    pub fn finish(&mut self) -> Result<(&[u8], Vec<FilterResult>)> {
        self.check_open()?;
        self.finished = true;
        let mut results = Vec::new();
        let mut source: Option<usize> = None;
        for index in 0..self.stages.len() {
            let (before, rest) = self.stages.split_at_mut(index);
            let data: &[u8] = match source {
                Some(previous) => &before[previous].out,
                None => &[],
            };
            let stage = &mut rest[0];
            if !stage.observes {
                stage.out.clear();
                source = Some(index);
            }
            if !data.is_empty() {
                stage.filter.process(data, &mut stage.out)?;
            }
            results.extend(stage.filter.finish(&mut stage.out)?);
        }
        let last: &[u8] = match source {
            Some(last) => &self.stages[last].out,
            None => &[],
        };
        Ok((last, results))
    }

    /// Pushes `input` through every stage, handing the output to `sink` in bounded pieces.
    pub fn process_into(&mut self, input: &[u8], sink: &mut Sink<'_>) -> Result<()> {
        self.check_open()?;
        push(&mut self.stages, input, self.output_limit, sink)
    }

    /// Pushes a prefix of `input` through the chain, as much as its first transforming stage
    /// takes before producing about the output limit, and returns how many bytes that was. A
    /// reader pulling from the chain calls this instead of `process_into` so that one call never
    /// yields more than about the limit, however well the input was compressed; the caller
    /// passes the rest again (a call may take nothing while it flushes held output).
    pub fn process_step(&mut self, input: &[u8], sink: &mut Sink<'_>) -> Result<usize> {
        self.check_open()?;
        push_step(&mut self.stages, input, self.output_limit, sink)
    }

    /// Ends the stream like `finish`, handing the remaining output to `sink`.
    pub fn finish_into(&mut self, sink: &mut Sink<'_>) -> Result<Vec<FilterResult>> {
        self.check_open()?;
        self.finished = true;
        let mut results = Vec::new();
        for index in 0..self.stages.len() {
            let Some((stage, rest)) = self.stages[index..].split_first_mut() else {
                break;
            };
            stage.out.clear();
            results.extend(stage.filter.finish(&mut stage.out)?);
            if !stage.observes && !stage.out.is_empty() {
                push(rest, &stage.out, self.output_limit, sink)?;
            }
        }
        Ok(results)
    }

    fn check_open(&self) -> Result<()> {
        if self.finished {
            return Err(Error::new(
                ErrorKind::Assert,
                "filter chain used after its stream was finished",
            ));
        }
        Ok(())
    }
}

/// Pushes `data` into the first of `stages` and on down the chain, at most about `limit` bytes
/// of any stage's output at a time.
fn push(stages: &mut [Stage], data: &[u8], limit: usize, sink: &mut Sink<'_>) -> Result<()> {
    let Some((stage, rest)) = stages.split_first_mut() else {
        return if data.is_empty() { Ok(()) } else { sink(data) };
    };
    if stage.observes {
        stage.filter.process(data, &mut stage.out)?;
        return push(rest, data, limit, sink);
    }
    let mut pos = 0;
    loop {
        stage.out.clear();
        let consumed = stage
            .filter
            .process_limited(&data[pos..], &mut stage.out, limit)?;
        if consumed > data.len() - pos {
            return Err(Error::new(
                ErrorKind::Assert,
                "filter consumed more input than it was given",
            ));
        }
        pos += consumed;
        // At the limit the filter may hold more output for input it already took.
        let full = stage.out.len() >= limit;
        if !stage.out.is_empty() {
            push(rest, &stage.out, limit, sink)?;
        } else if consumed == 0 && pos < data.len() {
            return Err(Error::new(ErrorKind::Assert, "filter made no progress"));
        }
        if pos == data.len() && !full {
            return Ok(());
        }
    }
}

/// One step of `push`: the first transforming stage runs once, up to `limit` bytes of output,
/// and that output goes on down the chain; observers before it see exactly the input it took.
fn push_step(
    stages: &mut [Stage],
    data: &[u8],
    limit: usize,
    sink: &mut Sink<'_>,
) -> Result<usize> {
    let Some((stage, rest)) = stages.split_first_mut() else {
        if !data.is_empty() {
            sink(data)?;
        }
        return Ok(data.len());
    };
    if stage.observes {
        let consumed = push_step(rest, data, limit, sink)?;
        stage.filter.process(&data[..consumed], &mut stage.out)?;
        return Ok(consumed);
    }
    stage.out.clear();
    let consumed = stage.filter.process_limited(data, &mut stage.out, limit)?;
    if consumed > data.len() {
        return Err(Error::new(
            ErrorKind::Assert,
            "filter consumed more input than it was given",
        ));
    }
    if !stage.out.is_empty() {
        push(rest, &stage.out, limit, sink)?;
    } else if consumed == 0 && !data.is_empty() {
        return Err(Error::new(ErrorKind::Assert, "filter made no progress"));
    }
    Ok(consumed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::compress::CompressType;
    use crate::io::hash::sha256_hex;

    fn zst() -> FilterSpec {
        FilterSpec::Compress {
            kind: CompressType::Zst,
            level: 3,
        }
    }

    #[test]
    fn results_come_in_chain_order() {
        let data = vec![9u8; 100_000];
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Hash,
            FilterSpec::Size,
            zst(),
            FilterSpec::Size,
            FilterSpec::Hash,
        ])
        .unwrap();
        let mut packed = chain.process(&data[..50_000]).unwrap().to_vec();
        packed.extend_from_slice(chain.process(&data[50_000..]).unwrap());
        let (tail, results) = chain.finish().unwrap();
        packed.extend_from_slice(tail);
        assert_eq!(
            results,
            vec![
                FilterResult::Hash(sha256_hex(&data)),
                FilterResult::Size(100_000),
                FilterResult::Size(packed.len() as u64),
                FilterResult::Hash(sha256_hex(&packed)),
            ]
        );
        assert_eq!(zstd::decode_all(&packed[..]).unwrap(), data);
    }

    #[test]
    fn observers_alone_hand_back_the_input_itself() {
        let mut chain = FilterChain::from_specs(&[FilterSpec::Size, FilterSpec::Hash]).unwrap();
        let input = b"some bytes".to_vec();
        let output = chain.process(&input).unwrap();
        assert_eq!(output.as_ptr(), input.as_ptr(), "observers must not copy");
        let (tail, results) = chain.finish().unwrap();
        assert!(tail.is_empty());
        assert_eq!(results[0], FilterResult::Size(10));
    }

    #[test]
    fn a_warm_chain_reuses_its_buffers() {
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Decompress {
                kind: CompressType::None,
            },
            FilterSpec::Compress {
                kind: CompressType::Gz,
                level: 1,
            },
        ])
        .unwrap();
        let input: Vec<u8> = (0..65536u32).map(|i| (i * 31 % 256) as u8).collect();
        chain.process(&input).unwrap();
        let first = chain.stages[1].out.as_ptr();
        for _ in 0..20 {
            chain.process(&input).unwrap();
            assert_eq!(
                chain.stages[1].out.as_ptr(),
                first,
                "buffer was reallocated"
            );
        }
    }

    #[test]
    fn process_into_splits_output_at_the_limit() {
        let data = vec![0u8; 10 * 1024 * 1024];
        let packed = zstd::encode_all(&data[..], 3).unwrap();
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Decompress {
                kind: CompressType::Zst,
            },
            FilterSpec::Size,
        ])
        .unwrap();
        chain.set_output_limit(100_000);
        let (mut pieces, mut total, mut largest) = (0, 0, 0);
        let mut sink = |bytes: &[u8]| {
            pieces += 1;
            total += bytes.len();
            largest = largest.max(bytes.len());
            Ok(())
        };
        chain.process_into(&packed, &mut sink).unwrap();
        let results = chain.finish_into(&mut sink).unwrap();
        assert_eq!(total, data.len());
        assert!(pieces >= 50, "{pieces} pieces");
        assert!(largest < 300_000, "largest piece {largest}");
        assert_eq!(results, vec![FilterResult::Size(data.len() as u64)]);
    }

    #[test]
    fn a_finished_chain_refuses_more_input() {
        let mut chain = FilterChain::from_specs(&[FilterSpec::Size]).unwrap();
        chain.finish().unwrap();
        let err = chain.process(b"late").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert);
    }

    #[test]
    fn errors_from_a_stage_stop_the_chain() {
        let mut chain = FilterChain::from_specs(&[
            FilterSpec::Size,
            FilterSpec::Decompress {
                kind: CompressType::Gz,
            },
        ])
        .unwrap();
        let err = chain.process(b"not gzip at all").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        assert!(
            err.message()
                .starts_with("unable to decompress: gz data is corrupt")
        );
    }
}
