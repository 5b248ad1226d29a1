//! Data page checksums: PostgreSQL's algorithm, the page header facts verification needs, and
//! which data-directory files hold checksummed pages.
//!
//! When a cluster has data checksums (`pg_control`'s `data_checksum_version` > 0), a backup
//! verifies every page of every relation file it reads, as PostgreSQL's own base backup does
//! (basebackup.c, `sendFile`): [`PageChecksumFilter`] watches a file stream page by page,
//! [`recheck`] re-reads the pages it found suspicious, [`checked_file`] says which files to
//! watch and from which block number, and [`condense`] shortens block lists for log lines.
//! Pages are [`PAGE_SIZE`] bytes and segment files hold [`RELSEG_SIZE`] pages: PostgreSQL's
//! defaults, which pgkeep requires. What to do about invalid pages (warn, record in the
//! manifest) is the backup command's business, not this module's.

mod filter;
mod path;

pub use crate::io::page_checksum::{
    PAGE_SIZE, PageChecksumFilter, page_checksum, page_upper, pg_checksum_page,
};
pub use filter::{recheck, recheck_in};
pub use path::checked_file;

use crate::pg::wal::Lsn;

/// `RELSEG_SIZE`: pages in one segment file of a relation (1 GiB of 8 KiB pages). Block numbers
/// count across segments, so `<relfilenode>.<N>` starts at block `N * RELSEG_SIZE`.
pub const RELSEG_SIZE: u32 = 131_072;

/// `pd_lsn`: the LSN of the last WAL record that changed the page.
pub fn page_lsn(page: &[u8; PAGE_SIZE]) -> Lsn {
    Lsn(crate::io::page_checksum::page_lsn(page))
}

/// Whether a page fails verification for a backup that started at `start_lsn`, as block
/// `blkno` of its relation (see `io::page_checksum::page_is_invalid`).
pub fn page_is_invalid(page: &[u8; PAGE_SIZE], blkno: u32, start_lsn: Lsn) -> bool {
    crate::io::page_checksum::page_is_invalid(page, blkno, start_lsn.0)
}

/// Block numbers as ranges for log lines: `[1, 2, 3, 7, 9, 10]` gives `1-3, 7, 9-10`. The
/// blocks may come in any order and repeat.
pub fn condense(blocks: &[u32]) -> String {
    let mut sorted = blocks.to_vec();
    sorted.sort_unstable();
    sorted.dedup();
    let mut parts: Vec<String> = Vec::new();
    let mut iter = sorted.into_iter().peekable();
    while let Some(first) = iter.next() {
        let mut last = first;
        while iter
            .peek()
            .is_some_and(|&next| Some(next) == last.checked_add(1))
        {
            last += 1;
            iter.next();
        }
        parts.push(if first == last {
            first.to_string()
        } else {
            format!("{first}-{last}")
        });
    }
    parts.join(", ")
}

/// Pages for the tests of this module's files.
#[cfg(test)]
pub(super) mod test_pages {
    use super::*;

    /// A valid page for block `blkno`: a header with `lsn` and pd_upper, bytes in the tuple
    /// space, and the checksum PostgreSQL would store.
    pub fn valid_page(blkno: u32, lsn: Lsn) -> Box<[u8; PAGE_SIZE]> {
        let mut page = Box::new([0u8; PAGE_SIZE]);
        page[0..4].copy_from_slice(&lsn.high().to_ne_bytes());
        page[4..8].copy_from_slice(&lsn.low().to_ne_bytes());
        page[12..14].copy_from_slice(&40u16.to_ne_bytes());
        page[14..16].copy_from_slice(&4096u16.to_ne_bytes());
        for (index, byte) in page[4096..].iter_mut().enumerate() {
            *byte = (index as u32)
                .wrapping_mul(2_654_435_761)
                .wrapping_add(blkno) as u8;
        }
        let checksum = pg_checksum_page(&page, blkno);
        page[8..10].copy_from_slice(&checksum.to_ne_bytes());
        page
    }
}

#[cfg(test)]
mod tests {
    use super::test_pages::valid_page;
    use super::*;

    #[test]
    fn header_fields_are_read_where_postgresql_puts_them() {
        let page = valid_page(5, Lsn(0x0000_0002_1A00_0028));
        assert_eq!(page_lsn(&page), Lsn(0x0000_0002_1A00_0028));
        assert_eq!(page_upper(&page), 4096);
        assert_eq!(page_checksum(&page), pg_checksum_page(&page, 5));
    }

    #[test]
    fn a_valid_page_passes_and_a_changed_byte_fails() {
        let start = Lsn(0x1_0000_0000);
        let mut page = valid_page(9, Lsn(0x100));
        assert!(!page_is_invalid(&page, 9, start));
        // The same bytes at another block number: a transposed page.
        assert!(page_is_invalid(&page, 10, start));
        page[5000] ^= 1;
        assert!(page_is_invalid(&page, 9, start));
    }

    #[test]
    fn a_page_written_after_the_backup_started_is_never_invalid() {
        let mut page = valid_page(0, Lsn(0x500));
        page[6000] ^= 0xff;
        assert!(page_is_invalid(&page, 0, Lsn(0x501)));
        assert!(!page_is_invalid(&page, 0, Lsn(0x500)));
        assert!(!page_is_invalid(&page, 0, Lsn(0x400)));
    }

    #[test]
    fn a_new_page_is_valid_only_when_all_zeros() {
        let start = Lsn(0x1000);
        let mut page = Box::new([0u8; PAGE_SIZE]);
        assert!(!page_is_invalid(&page, 3, start));
        page[PAGE_SIZE - 1] = 1;
        assert!(page_is_invalid(&page, 3, start));
    }

    #[test]
    fn condense_joins_runs() {
        assert_eq!(condense(&[1, 2, 3, 7, 9, 10]), "1-3, 7, 9-10");
        assert_eq!(condense(&[]), "");
        assert_eq!(condense(&[4]), "4");
        assert_eq!(condense(&[10, 9, 9, 1]), "1, 9-10");
        assert_eq!(condense(&[u32::MAX - 1, u32::MAX]), "4294967294-4294967295");
    }
}
