//! `recheck`: re-reading the pages `PageChecksumFilter` (in `io::page_checksum`) found
//! suspicious as a relation file streamed past.
//!
//! A file flows through a backup's filter chain once, in pieces of any size, so the filter
//! keeps the unfinished tail of a page (at most one page) between calls and checks each page
//! as soon as it is whole. A page that fails is only suspicious: PostgreSQL may have been
//! writing it while it was read and the read may have caught half of the write (a torn page).
//! PostgreSQL's base backup re-reads a failed block once before reporting it; [`recheck`] does
//! the same after the copy, so the stream never waits on it.

use std::fs::File;
use std::path::Path;

use super::{PAGE_SIZE, page_is_invalid};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::Lsn;
use crate::storage::Storage;

/// Re-reads each of `blocks` (absolute block numbers from a `PageChecksumFilter` over `path`,
/// whose first page is block `first_block`) and returns those still invalid for a backup that
/// started at `start_lsn`.
///
/// A page that the file no longer holds whole (a concurrent truncation, or a file dropped
/// since) is not invalid: the backup's WAL records the truncation or the drop, as PostgreSQL's
/// base backup reasons when its re-read hits the end of the file.
pub fn recheck(path: &Path, blocks: &[u32], first_block: u32, start_lsn: Lsn) -> Result<Vec<u32>> {
    if blocks.is_empty() {
        return Ok(Vec::new());
    }
    let file = match File::open(path) {
        Ok(file) => file,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(err) => return Err(Error::io(ErrorKind::FileOpen, "open", path.display(), &err)),
    };
    let mut page = Box::new([0u8; PAGE_SIZE]);
    let mut still_invalid = Vec::new();
    for &block in blocks {
        let Some(index) = block.checked_sub(first_block) else {
            return Err(Error::new(
                ErrorKind::Assert,
                format!(
                    "block {block} is before block {first_block}, the first of '{}'",
                    path.display()
                ),
            ));
        };
        let offset = u64::from(index) * PAGE_SIZE as u64;
        if read_page(&file, offset, &mut page)
            .map_err(|err| Error::io(ErrorKind::FileRead, "read", path.display(), &err))?
            && page_is_invalid(&page, block, start_lsn)
        {
            still_invalid.push(block);
        }
    }
    Ok(still_invalid)
}

/// [`recheck`] through a storage driver, for a data directory that may be on another host:
/// each suspicious page of `rel` is read again with `Storage::read_range`.
pub fn recheck_in(
    storage: &dyn Storage,
    rel: &str,
    blocks: &[u32],
    first_block: u32,
    start_lsn: Lsn,
) -> Result<Vec<u32>> {
    let mut still_invalid = Vec::new();
    for &block in blocks {
        let Some(index) = block.checked_sub(first_block) else {
            return Err(Error::new(
                ErrorKind::Assert,
                format!(
                    "block {block} is before block {first_block}, the first of '{}'",
                    storage.describe(rel)
                ),
            ));
        };
        let offset = u64::from(index) * PAGE_SIZE as u64;
        let Some(bytes) = storage.read_range(rel, offset, PAGE_SIZE)? else {
            return Ok(Vec::new());
        };
        // A page no longer whole in the file is not invalid (see `recheck`).
        if let Ok(page) = <&[u8; PAGE_SIZE]>::try_from(bytes.as_slice())
            && page_is_invalid(page, block, start_lsn)
        {
            still_invalid.push(block);
        }
    }
    Ok(still_invalid)
}

/// Reads the page at `offset` into `page`; false when the file ends before the page does.
fn read_page(file: &File, offset: u64, page: &mut [u8; PAGE_SIZE]) -> std::io::Result<bool> {
    Ok(crate::io::stream::read_full_at(file, page, offset)? == PAGE_SIZE)
}

#[cfg(test)]
mod tests {
    use super::super::PageChecksumFilter;
    use super::super::test_pages::valid_page;
    use super::*;
    use crate::io::filter::{Filter, FilterResult, PageChecksumResult};

    const START: Lsn = Lsn(0x1_0000_0000);

    /// `count` valid pages from block `first`, with the pages at `corrupt` (indexes in the
    /// file) changed after their checksum was set.
    fn relation(first: u32, count: u32, corrupt: &[u32]) -> Vec<u8> {
        let mut data = Vec::new();
        for index in 0..count {
            let mut page = valid_page(first + index, Lsn(0x1000 + u64::from(index)));
            if corrupt.contains(&index) {
                page[PAGE_SIZE - 100] ^= 0x55;
            }
            data.extend_from_slice(&page[..]);
        }
        data
    }

    fn run(first: u32, data: &[u8], piece: usize) -> PageChecksumResult {
        let mut filter = PageChecksumFilter::new(first, START);
        let mut out = Vec::new();
        for chunk in data.chunks(piece) {
            filter.process(chunk, &mut out).unwrap();
        }
        assert!(out.is_empty(), "an observer writes nothing");
        match filter.finish(&mut out).unwrap() {
            Some(FilterResult::PageChecksum(result)) => result,
            other => panic!("unexpected result {other:?}"),
        }
    }

    #[test]
    fn every_piece_size_finds_the_same_blocks() {
        let data = relation(0, 300, &[0, 17, 18, 299]);
        for piece in [1, 100, 4096, 8191, 8192, 8193, 65536, 1 << 20, data.len()] {
            let result = run(0, &data, piece);
            assert_eq!(result.invalid, vec![0, 17, 18, 299], "piece {piece}");
            assert!(!result.misaligned, "piece {piece}");
        }
    }

    #[test]
    fn a_segment_reports_absolute_block_numbers() {
        let first = 2 * super::super::RELSEG_SIZE;
        let data = relation(first, 4, &[1]);
        assert_eq!(run(first, &data, 10_000).invalid, vec![first + 1]);
        // Read as the first segment, every page sits at the wrong block number.
        assert_eq!(run(0, &data, 10_000).invalid, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_partial_last_page_is_reported_not_checked() {
        let mut data = relation(0, 3, &[]);
        data.extend_from_slice(&[0xee; 1000]);
        for piece in [1, 8193, 1 << 20] {
            let result = run(0, &data, piece);
            assert_eq!(result.invalid, Vec::<u32>::new());
            assert!(result.misaligned);
        }
        assert!(run(0, &data[..100], 7).misaligned);
        assert_eq!(run(0, &[], 7), PageChecksumResult::default());
    }

    #[test]
    fn new_pages_are_skipped_and_late_pages_are_trusted() {
        let mut data = relation(0, 2, &[1]);
        data.extend_from_slice(&[0; PAGE_SIZE]);
        let mut late = valid_page(3, START);
        late[5000] ^= 1;
        data.extend_from_slice(&late[..]);
        assert_eq!(run(0, &data, 3000).invalid, vec![1]);
    }

    #[test]
    fn recheck_keeps_only_pages_still_invalid() {
        let first = super::super::RELSEG_SIZE;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("16384.1");
        let mut data = relation(first, 5, &[1, 3]);
        std::fs::write(&path, &data).unwrap();
        let suspicious = run(first, &data, 1 << 20).invalid;
        assert_eq!(suspicious, vec![first + 1, first + 3]);

        // The write that was torn has finished: page 1 is whole again.
        data[PAGE_SIZE..2 * PAGE_SIZE].copy_from_slice(&valid_page(first + 1, Lsn(0x1001))[..]);
        std::fs::write(&path, &data).unwrap();
        assert_eq!(
            recheck(&path, &suspicious, first, START).unwrap(),
            vec![first + 3]
        );
        // Pages past the end (a truncation) and a file gone (a drop) are not errors.
        std::fs::write(&path, &data[..3 * PAGE_SIZE + 10]).unwrap();
        assert_eq!(
            recheck(&path, &suspicious, first, START).unwrap(),
            Vec::<u32>::new()
        );
        std::fs::remove_file(&path).unwrap();
        assert_eq!(
            recheck(&path, &suspicious, first, START).unwrap(),
            Vec::<u32>::new()
        );
    }

    #[test]
    fn recheck_refuses_a_block_before_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("16384.1");
        std::fs::write(&path, relation(0, 1, &[])).unwrap();
        let err = recheck(&path, &[5], super::super::RELSEG_SIZE, START).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Assert);
    }

    #[test]
    fn results_cross_the_protocol_as_json() {
        let result = FilterResult::PageChecksum(PageChecksumResult {
            invalid: vec![3, 131_075],
            misaligned: true,
        });
        let json = serde_json::to_string(&result).unwrap();
        assert_eq!(serde_json::from_str::<FilterResult>(&json).unwrap(), result);
    }
}
