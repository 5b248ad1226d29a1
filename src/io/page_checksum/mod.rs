//! Data page verification as a stream filter: PostgreSQL's page checksum algorithm and the
//! [`PageChecksumFilter`] that applies it to a relation file flowing through a chain.
//!
//! It lives in `io`, not in `pg`, so that a filter chain described by `FilterSpec` can be
//! rebuilt anywhere, including on the far side of the remote protocol: a backup host asks the
//! database host to read, checksum, verify and compress each file next to the data. The
//! PostgreSQL knowledge around it (which files hold checksummed pages, re-reading suspicious
//! pages, LSNs as a type) stays in `pg::page`, which re-exports what is here. LSNs are plain
//! `u64` in this module.

mod checksum;

pub use checksum::pg_checksum_page;

use crate::error::Result;
use crate::io::filter::{Filter, FilterResult, PageChecksumResult};

/// `BLCKSZ`: bytes in a data page.
pub const PAGE_SIZE: usize = 8192;

/// `pd_lsn`: the LSN of the last WAL record that changed the page, stored as two native-endian
/// `u32` halves (`xlogid`, then `xrecoff`).
pub fn page_lsn(page: &[u8; PAGE_SIZE]) -> u64 {
    let high = u32::from_ne_bytes([page[0], page[1], page[2], page[3]]);
    let low = u32::from_ne_bytes([page[4], page[5], page[6], page[7]]);
    (u64::from(high) << 32) | u64::from(low)
}

/// `pd_checksum`: the checksum PostgreSQL stored when it last wrote the page.
pub fn page_checksum(page: &[u8; PAGE_SIZE]) -> u16 {
    u16::from_ne_bytes([page[8], page[9]])
}

/// `pd_upper`: the start of the page's tuple space; zero only on a page never initialised.
pub fn page_upper(page: &[u8; PAGE_SIZE]) -> u16 {
    u16::from_ne_bytes([page[14], page[15]])
}

/// Whether a page fails verification for a backup that started at `start_lsn`, as block
/// `blkno` of its relation.
///
/// A page whose LSN is at or after `start_lsn` is never invalid: it may be being written while
/// it is read (a torn page), and the backup's WAL replaces it on recovery. Otherwise a new page
/// (`pd_upper` zero, PostgreSQL's `PageIsNew`) is valid only when it is all zeros, as
/// PostgreSQL's own `PageIsVerifiedExtended` requires, and any other page is valid when its
/// stored checksum equals [`pg_checksum_page`].
pub fn page_is_invalid(page: &[u8; PAGE_SIZE], blkno: u32, start_lsn: u64) -> bool {
    if page_lsn(page) >= start_lsn {
        return false;
    }
    if page_upper(page) == 0 {
        return page.iter().any(|&byte| byte != 0);
    }
    page_checksum(page) != pg_checksum_page(page, blkno)
}

/// Verifies every page of a relation file's stream; reports `FilterResult::PageChecksum` with
/// the absolute block numbers of the pages that failed (see `page_is_invalid`) and whether the
/// file ended in a partial page. A partial last page is not checked: it is what a concurrent
/// extension of the file looks like, and the backup's WAL rewrites it.
pub struct PageChecksumFilter {
    verifier: Verifier,
    /// The start of a page whose end has not arrived yet: `pending[..pending_len]`.
    pending: Box<[u8; PAGE_SIZE]>,
    pending_len: usize,
}

/// The state of verification, apart from the pending page so both can be borrowed at once.
struct Verifier {
    /// The block number of the next whole page.
    next_block: u32,
    start_lsn: u64,
    invalid: Vec<u32>,
}

impl Verifier {
    fn check(&mut self, page: &[u8; PAGE_SIZE]) {
        if page_is_invalid(page, self.next_block, self.start_lsn) {
            self.invalid.push(self.next_block);
        }
        // Block numbers are PostgreSQL's `BlockNumber`, a u32; no relation file reaches the
        // end of that range, so wrapping only keeps a malformed file from panicking.
        self.next_block = self.next_block.wrapping_add(1);
    }
}

impl PageChecksumFilter {
    /// A filter for a file whose first page is block `first_block` of its relation (see
    /// `checked_file`), in a backup that started at `start_lsn`.
    pub fn new(first_block: u32, start_lsn: impl Into<u64>) -> PageChecksumFilter {
        PageChecksumFilter {
            verifier: Verifier {
                next_block: first_block,
                start_lsn: start_lsn.into(),
                invalid: Vec::new(),
            },
            pending: Box::new([0; PAGE_SIZE]),
            pending_len: 0,
        }
    }
}

impl Filter for PageChecksumFilter {
    fn process(&mut self, mut input: &[u8], _out: &mut Vec<u8>) -> Result<()> {
        if self.pending_len > 0 {
            let take = (PAGE_SIZE - self.pending_len).min(input.len());
            self.pending[self.pending_len..self.pending_len + take].copy_from_slice(&input[..take]);
            self.pending_len += take;
            input = &input[take..];
            if self.pending_len < PAGE_SIZE {
                return Ok(());
            }
            self.verifier.check(&self.pending);
            self.pending_len = 0;
        }
        let (pages, tail) = input.as_chunks::<PAGE_SIZE>();
        for page in pages {
            self.verifier.check(page);
        }
        self.pending[..tail.len()].copy_from_slice(tail);
        self.pending_len = tail.len();
        Ok(())
    }

    fn finish(&mut self, _out: &mut Vec<u8>) -> Result<Option<FilterResult>> {
        Ok(Some(FilterResult::PageChecksum(PageChecksumResult {
            invalid: std::mem::take(&mut self.verifier.invalid),
            misaligned: self.pending_len > 0,
        })))
    }

    fn observes_only(&self) -> bool {
        true
    }
}
