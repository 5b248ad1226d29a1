//! Observing filters: SHA-256 of a stream and its size.
//!
//! SHA-256 comes from the `sha2` crate, which picks the SHA-NI instructions at run time on
//! x86_64 CPUs that have them (and the ARMv8 SHA2 extension on aarch64), falling back to
//! portable code elsewhere; no build flag is needed. Measure with `bench/filters.sh`. Digests are
//! lowercase hex, the form stored in manifests and WAL file names.

use sha2::{Digest, Sha256};

use crate::error::Result;
use crate::io::filter::{Filter, FilterResult};

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    to_hex(&Sha256::digest(bytes))
}

/// Lowercase hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        text.push(DIGITS[usize::from(byte >> 4)] as char);
        text.push(DIGITS[usize::from(byte & 0x0f)] as char);
    }
    text
}

/// Computes the SHA-256 of the stream; reports `FilterResult::Hash`.
#[derive(Default)]
pub struct HashFilter {
    hasher: Sha256,
}

impl HashFilter {
    pub fn new() -> HashFilter {
        HashFilter::default()
    }
}

impl Filter for HashFilter {
    fn process(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        self.hasher.update(input);
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        let digest = std::mem::take(&mut self.hasher).finalize();
        Ok(Some(FilterResult::Hash(to_hex(&digest))))
    }

    fn observes_only(&self) -> bool {
        true
    }
}

/// Counts the bytes of the stream; reports `FilterResult::Size`.
#[derive(Default)]
pub struct SizeFilter {
    size: u64,
}

impl SizeFilter {
    pub fn new() -> SizeFilter {
        SizeFilter::default()
    }
}

impl Filter for SizeFilter {
    fn process(&mut self, input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        self.size += input.len() as u64;
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        Ok(Some(FilterResult::Size(self.size)))
    }

    fn observes_only(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // FIPS 180-2 test vectors.
    const EMPTY: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const ABC: &str = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad";
    const TWO_BLOCKS: &str = "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1";
    const MILLION_A: &str = "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0";

    fn hash_in_pieces(data: &[u8], piece: usize) -> String {
        let mut filter = HashFilter::new();
        let mut out = Vec::new();
        for chunk in data.chunks(piece) {
            filter.process(chunk, &mut out).unwrap();
        }
        assert!(out.is_empty(), "an observer must not write output");
        match filter.finish(&mut out).unwrap() {
            Some(FilterResult::Hash(hex)) => hex,
            other => panic!("unexpected result {other:?}"),
        }
    }

    #[test]
    fn sha256_matches_known_vectors() {
        assert_eq!(sha256_hex(b""), EMPTY);
        assert_eq!(sha256_hex(b"abc"), ABC);
        let two = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
        assert_eq!(sha256_hex(two), TWO_BLOCKS);
        assert_eq!(hash_in_pieces(two, 1), TWO_BLOCKS);
        assert_eq!(hash_in_pieces(two, 7), TWO_BLOCKS);
    }

    #[test]
    fn hash_filter_matches_known_vectors_across_chunks() {
        let million = vec![b'a'; 1_000_000];
        assert_eq!(hash_in_pieces(&million, 4096), MILLION_A);
        assert_eq!(hash_in_pieces(&million, 1_000_000), MILLION_A);
        assert_eq!(hash_in_pieces(&million, 999), MILLION_A);
        assert_eq!(hash_in_pieces(b"", 1), EMPTY);
    }

    #[test]
    fn size_filter_counts_every_byte() {
        let mut filter = SizeFilter::new();
        let mut out = Vec::new();
        filter.process(&[1; 10], &mut out).unwrap();
        filter.process(&[], &mut out).unwrap();
        filter.process(&[2; 5], &mut out).unwrap();
        assert!(out.is_empty());
        assert_eq!(
            filter.finish(&mut out).unwrap(),
            Some(FilterResult::Size(15))
        );
    }

    #[test]
    fn hex_is_lowercase_and_padded() {
        assert_eq!(to_hex(&[0x00, 0x0f, 0xab, 0xff]), "000fabff");
    }
}
