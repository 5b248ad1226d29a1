//! PostgreSQL's data page checksum (`pg_checksum_page`, src/include/storage/checksum_impl.h).
//!
//! The page is read as 64 rows of 32 native-endian `u32` values; each of the 32 columns is
//! folded into its own FNV-1a-like sum (`(sum ^ value) * FNV_PRIME ^ ((sum ^ value) >> 17)`)
//! started from a fixed base offset, two rounds of zeros are mixed in, the sums are xor-folded,
//! the block number is xor-ed in and the result is reduced to `1..=65535`. Every constant here
//! is part of the on-disk format: changing one breaks compatibility with every cluster. This
//! file computes the value only; deciding whether a page is valid is `page::page_is_invalid`.

use super::PAGE_SIZE;

/// The number of sums computed in parallel: the page's column count.
const N_SUMS: usize = 32;

/// The FNV-1a prime PostgreSQL multiplies by.
const FNV_PRIME: u32 = 16_777_619;

/// Bytes in one row of `N_SUMS` values.
const ROW_BYTES: usize = N_SUMS * 4;

/// `checksumBaseOffsets`: the starting value of each column's sum.
const BASE_OFFSETS: [u32; N_SUMS] = [
    0x5B1F36E9, 0xB8525960, 0x02AB50AA, 0x1DE66D2A, 0x79FF467A, 0x9BB9F8A3, 0x217E7CD2, 0x83E13D2C,
    0xF8D4474F, 0xE39EB970, 0x42C6AE16, 0x993216FA, 0x7B093B5D, 0x98DAFF3C, 0xF718902A, 0x0B1C9CDB,
    0xE58F764B, 0x187636BC, 0x5D7B3BB1, 0xE73DE7DE, 0x92BEC979, 0xCCA6C0B2, 0x304A0979, 0x85AA43D4,
    0x783125BB, 0x6CA8EAA2, 0xE407EAC6, 0x4B5CFC3E, 0x9FBF8C76, 0x15CA20BE, 0xF2CA9FD3, 0x959BD756,
];

/// The byte offset of `pd_checksum` in the page header.
pub(super) const PD_CHECKSUM_OFFSET: usize = 8;

/// PostgreSQL's checksum of `page` as block `blkno` of its relation (counted across segment
/// files). `pd_checksum` itself is treated as zero, as PostgreSQL does, so the result can be
/// compared with the stored value. Never returns 0. Meaningless for a new (all-zero) page,
/// which PostgreSQL never checksums.
pub fn pg_checksum_page(page: &[u8; PAGE_SIZE], blkno: u32) -> u16 {
    let mut sums = BASE_OFFSETS;
    let (first, rest) = page.split_at(ROW_BYTES);

    // The first row holds the header: PostgreSQL zeroes pd_checksum (a u16) before summing,
    // so its word is rebuilt with those two bytes cleared; pd_flags, the other half, stays.
    let mut row = load_row(first);
    let word = PD_CHECKSUM_OFFSET / 4;
    let at = PD_CHECKSUM_OFFSET;
    row[word] = u32::from_ne_bytes([0, 0, first[at + 2], first[at + 3]]);
    mix(&mut sums, &row);

    for chunk in rest.chunks_exact(ROW_BYTES) {
        mix(&mut sums, &load_row(chunk));
    }

    // Two rounds of zeros so the last values reach every bit of their sum.
    mix(&mut sums, &[0; N_SUMS]);
    mix(&mut sums, &[0; N_SUMS]);

    let checksum = sums.iter().fold(0, |acc, sum| acc ^ sum) ^ blkno;
    // `% 65535 + 1` is at most 65535, so the narrowing cannot lose anything.
    ((checksum % 65535) + 1) as u16
}

/// One row of the page as native-endian words: PostgreSQL reads the page in place, so the
/// byte order is the server's, the same as every other field of the page.
#[inline(always)]
fn load_row(row: &[u8]) -> [u32; N_SUMS] {
    let mut values = [0u32; N_SUMS];
    for (value, bytes) in values.iter_mut().zip(row.chunks_exact(4)) {
        *value = u32::from_ne_bytes([bytes[0], bytes[1], bytes[2], bytes[3]]);
    }
    values
}

/// `CHECKSUM_COMP` over a whole row. Written column-wise without branches so the compiler
/// vectorises it: this loop is the whole cost of verifying a backup's pages.
#[inline(always)]
fn mix(sums: &mut [u32; N_SUMS], values: &[u32; N_SUMS]) {
    for (sum, value) in sums.iter_mut().zip(values) {
        let tmp = *sum ^ value;
        *sum = tmp.wrapping_mul(FNV_PRIME) ^ (tmp >> 17);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A page with a header and some pseudo-random tuple bytes, deterministic.
    fn sample_page() -> Box<[u8; PAGE_SIZE]> {
        let mut page = Box::new([0u8; PAGE_SIZE]);
        let mut state = 0x2545_f491_4f6c_dd1du64;
        for byte in page[4096..].iter_mut() {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            *byte = state as u8;
        }
        page[0..8].copy_from_slice(&[0, 0, 0, 0, 0x28, 0x6b, 0x55, 0x01]);
        page[12..16].copy_from_slice(&[0x28, 0x00, 0x00, 0x10]);
        page
    }

    #[test]
    fn sample_page_checksums_are_postgresql_values() {
        // Computed by PostgreSQL 15: pageinspect's page_checksum() over the same 8192 bytes.
        let page = sample_page();
        assert_eq!(pg_checksum_page(&page, 0), 17934);
        assert_eq!(pg_checksum_page(&page, 7), 17939);
        assert_eq!(pg_checksum_page(&page, 131_073), 17931);
    }

    #[test]
    fn the_stored_checksum_does_not_change_the_result() {
        let mut page = sample_page();
        let before = pg_checksum_page(&page, 7);
        page[8] = 0xab;
        page[9] = 0xcd;
        assert_eq!(pg_checksum_page(&page, 7), before);
        // pd_flags shares the word with pd_checksum and is summed.
        page[10] ^= 1;
        assert_ne!(pg_checksum_page(&page, 7), before);
    }

    #[test]
    fn the_block_number_is_part_of_the_checksum() {
        let page = sample_page();
        assert_ne!(pg_checksum_page(&page, 0), pg_checksum_page(&page, 1));
        assert_ne!(pg_checksum_page(&page, 0), pg_checksum_page(&page, 131_072));
    }

    #[test]
    fn any_single_byte_change_changes_the_checksum() {
        let page = sample_page();
        let reference = pg_checksum_page(&page, 3);
        for offset in [0, 7, 12, 127, 128, 4095, 4096, 8000, PAGE_SIZE - 1] {
            let mut changed = page.clone();
            changed[offset] ^= 0x40;
            assert_ne!(pg_checksum_page(&changed, 3), reference, "offset {offset}");
        }
    }

    #[test]
    fn the_result_is_never_zero() {
        let mut page = sample_page();
        for blkno in 0..2000 {
            page[100] = blkno as u8;
            assert_ne!(pg_checksum_page(&page, blkno), 0);
        }
    }
}
