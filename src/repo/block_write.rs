//! Storing the changed blocks of a block-incremental file, each raw or as a delta.
//!
//! The block-incremental filter runs where the file is and sends its changed blocks framed
//! (block number, length, bytes), uncompressed. Here, on the repository side, each block with
//! a prior version of the same length is replaced by `new XOR prior` — zeros wherever the page
//! did not change, so the compressor squeezes a page with one new tuple to a few hundred bytes —
//! and every other block (beyond the prior file's end, or whose chain of layers is already
//! [`MAX_LAYERS`] long) is stored raw. The prior version is read with a [`Reassembler`] over
//! the prior backup's map: changed blocks arrive in ascending order, so that is one forward
//! pass over the prior objects. What was stored as a delta goes back in the filter's result,
//! from which the new map is built. A prior version that cannot be read (a damaged or missing
//! object) is reported and the file's remaining blocks are stored raw.

use std::io::{BufReader, Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::io::block_incr::{BlockIncrResult, FRAME_HEADER};
use crate::io::stream::from_io_error;
use crate::io::{FilterChain, FilterResult};
use crate::log_warn;
use crate::repo::block_map::{MAX_BLOCK_SIZE, MAX_LAYERS};
use crate::repo::block_read::Reassembler;

/// Streams the framed blocks of `framed` through `chain` (compression, size) into `writer`,
/// as deltas against `prior` where it has the block. Returns, per block in stream order,
/// whether it was stored as a delta, and the chain's results.
pub fn write_blocks(
    framed: &mut dyn Read,
    mut prior: Option<&mut Reassembler>,
    chain: &mut FilterChain,
    writer: &mut dyn Write,
    buffer_size: usize,
) -> Result<(Vec<bool>, Vec<FilterResult>)> {
    let mut input = BufReader::with_capacity(buffer_size.max(FRAME_HEADER), framed);
    chain.set_output_limit(buffer_size);
    let mut sink = |bytes: &[u8]| {
        writer
            .write_all(bytes)
            .map_err(|err| from_io_error(err, ErrorKind::FileWrite, "write"))
    };
    let bad = |why: String| Error::new(ErrorKind::Format, format!("block stream {why}"));
    let io_fail = |err| from_io_error(err, ErrorKind::FileRead, "read block stream");
    let mut deltas = Vec::new();
    let mut block = Vec::new();
    let mut after: Option<u32> = None;
    loop {
        let mut header = [0u8; FRAME_HEADER];
        match input.read(&mut header[..1]).map_err(io_fail)? {
            0 => break,
            _ => input.read_exact(&mut header[1..]).map_err(io_fail)?,
        }
        let number = u32::from_le_bytes([header[0], header[1], header[2], header[3]]);
        let len = u32::from_le_bytes([header[4], header[5], header[6], header[7]]) as usize;
        if after.is_some_and(|a| number <= a) {
            return Err(bad(format!("has block {number} out of order")));
        }
        // The stream may come from another host: its length sizes the block buffer, so it
        // is held to what a page can be before anything is allocated.
        if len > MAX_BLOCK_SIZE as usize {
            return Err(bad(format!(
                "has block {number} of {len} bytes, more than the largest page ({MAX_BLOCK_SIZE})"
            )));
        }
        after = Some(number);
        block.resize(len, 0);
        input.read_exact(&mut block).map_err(io_fail)?;
        let n = number as usize;
        let mut failed = None;
        let base = match prior.as_deref_mut() {
            Some(p)
                if n < p.blocks()
                    && p.block_len(n) == len
                    && p.map().layers(n).len() < MAX_LAYERS =>
            {
                match p.read(n) {
                    Ok(base) => Some(base),
                    Err(err) => {
                        failed = Some(err);
                        None
                    }
                }
            }
            _ => None,
        };
        let delta = base.is_some();
        if let Some(base) = base {
            xor_into(&mut block, base);
        }
        // A damaged prior version must not stop every later backup: the rest of the file is
        // stored raw, and verify reports the damage.
        if let Some(err) = failed {
            log_warn!(
                "unable to read the prior version of block {n}, the file's remaining changed \
                 blocks are stored whole: {}",
                err.message()
            );
            prior = None;
        }
        deltas.push(delta);
        chain.process_into(&block, &mut sink)?;
    }
    let results = chain.finish_into(&mut sink)?;
    Ok((deltas, results))
}

/// `into ^= other`, over their common length. Sixteen bytes at a time: this runs over every
/// changed block of a backup and every delta of a restore, also in unoptimised builds.
pub fn xor_into(into: &mut [u8], other: &[u8]) {
    let len = into.len().min(other.len());
    let (into, other) = (&mut into[..len], &other[..len]);
    let mut wide = into.chunks_exact_mut(16);
    let mut others = other.chunks_exact(16);
    for (a, b) in (&mut wide).zip(&mut others) {
        let mut x = [0u8; 16];
        x.copy_from_slice(a);
        let mut y = [0u8; 16];
        y.copy_from_slice(b);
        a.copy_from_slice(&(u128::from_ne_bytes(x) ^ u128::from_ne_bytes(y)).to_ne_bytes());
    }
    for (a, b) in wide.into_remainder().iter_mut().zip(others.remainder()) {
        *a ^= b;
    }
}

/// Records in `result` which stored blocks are deltas; fails when the stream and the filter
/// disagree on how many blocks were stored.
pub fn record_deltas(result: &mut BlockIncrResult, deltas: Vec<bool>) -> Result<()> {
    if deltas.len() != result.stored.len() {
        return Err(Error::new(
            ErrorKind::Format,
            format!(
                "block stream has {} blocks, the filter stored {}",
                deltas.len(),
                result.stored.len()
            ),
        ));
    }
    result.deltas = deltas;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xor_covers_every_byte_of_the_common_length() {
        let mut a: Vec<u8> = (0..37).collect();
        let b: Vec<u8> = (0..40).map(|i| i * 3).collect();
        let expected: Vec<u8> = a.iter().zip(&b).map(|(x, y)| x ^ y).collect();
        xor_into(&mut a, &b);
        assert_eq!(a, expected);
        xor_into(&mut a, &b[..37]);
        assert_eq!(a, (0..37).collect::<Vec<u8>>());
    }

    /// A frame claiming 4 GiB resized the block buffer to that before reading a byte of it.
    #[test]
    fn a_frame_longer_than_a_page_is_refused_before_allocating() {
        let mut framed = Vec::new();
        framed.extend_from_slice(&0u32.to_le_bytes());
        framed.extend_from_slice(&u32::MAX.to_le_bytes());
        framed.extend_from_slice(&[0; 100]);
        let mut chain = FilterChain::from_specs(&[crate::io::FilterSpec::Size]).unwrap();
        let err =
            write_blocks(&mut &framed[..], None, &mut chain, &mut Vec::new(), 4096).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Format);
        assert_eq!(
            err.message(),
            "block stream has block 0 of 4294967295 bytes, more than the largest page (32768)"
        );
    }
}
