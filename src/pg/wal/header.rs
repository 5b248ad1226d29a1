//! The long page header at the start of every WAL segment file.
//!
//! The first page of a segment starts with `XLogLongPageHeaderData`: the short page header
//! (magic, flags, timeline, page address, remaining length of a continued record) followed by
//! the system identifier, segment size and WAL block size of the cluster that wrote it. This is
//! how pgkeep tells which cluster and PostgreSQL version a WAL file belongs to before
//! archiving it. Only the header is read here; WAL records are none of pgkeep's business.
//! The layout has not changed since PostgreSQL 9.x; the fixture tests check it for 10 to 18.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::version::PgVersion;
use crate::pg::wal::Lsn;

/// `XLP_LONG_HEADER`: set in `xlp_info` when the page starts with the long header.
const XLP_LONG_HEADER: u16 = 0x0002;

/// The fields of a segment's first page header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WalHeader {
    /// `xlp_magic`: identifies the WAL format, so the PostgreSQL version.
    pub magic: u16,
    /// The version whose WAL carries `magic`; `None` for versions pgkeep does not know.
    pub version: Option<PgVersion>,
    /// `xlp_info` flag bits.
    pub info: u16,
    /// `xlp_tli`: the timeline of the page.
    pub timeline: u32,
    /// `xlp_pageaddr`: the LSN of the page's first byte.
    pub page_address: Lsn,
    /// `xlp_sysid`: the system identifier of the cluster.
    pub system_id: u64,
    /// `xlp_seg_size`: the WAL segment size in bytes.
    pub segment_size: u32,
    /// `xlp_xlog_blcksz`: the WAL page size in bytes.
    pub block_size: u32,
}

impl WalHeader {
    /// `sizeof(XLogLongPageHeaderData)`: the bytes needed to parse a header.
    pub const LEN: usize = 40;

    /// Parses the start of a WAL segment file. Errors when fewer than [`WalHeader::LEN`] bytes
    /// are given or when the page is not a segment's first page (no long header).
    pub fn parse(bytes: &[u8]) -> Result<WalHeader> {
        if bytes.len() < WalHeader::LEN {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "WAL segment header is too short: {} bytes, at least {} expected",
                    bytes.len(),
                    WalHeader::LEN
                ),
            ));
        }
        let u16_at = |at: usize| u16::from_le_bytes([bytes[at], bytes[at + 1]]);
        let u32_at = |at: usize| {
            u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]])
        };
        let u64_at = |at: usize| u64::from(u32_at(at)) | u64::from(u32_at(at + 4)) << 32;

        let magic = u16_at(0);
        let info = u16_at(2);
        if info & XLP_LONG_HEADER == 0 {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "WAL page has no long header (xlp_info = 0x{info:04X}): not the first page of a segment"
                ),
            ));
        }
        Ok(WalHeader {
            magic,
            version: PgVersion::from_wal_magic(magic),
            info,
            timeline: u32_at(4),
            page_address: Lsn(u64_at(8)),
            // xlp_rem_len (4 bytes) and 4 bytes of padding come before the long fields.
            system_id: u64_at(24),
            segment_size: u32_at(32),
            block_size: u32_at(36),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pg::test_fixtures::{fixture, fixture_majors};
    use crate::pg::wal::{DEFAULT_SEGMENT_SIZE, WalSegment};

    #[test]
    fn first_pages_from_initdb_parse_for_every_version() {
        for major in fixture_majors() {
            let page = fixture(major, "wal-first-page");
            let header = WalHeader::parse(&page).unwrap();
            assert_eq!(
                header.version,
                Some(PgVersion::from_major(major)),
                "{major}"
            );
            assert_eq!(header.timeline, 1, "{major}");
            assert_eq!(header.segment_size, DEFAULT_SEGMENT_SIZE, "{major}");
            assert_eq!(header.block_size, 8192, "{major}");
            assert_ne!(header.system_id, 0, "{major}");

            // The page address is the start of the segment the file is named after.
            let name = String::from_utf8(fixture(major, "wal-first-name")).unwrap();
            let segment = WalSegment::parse(name.trim()).unwrap();
            assert_eq!(
                header.page_address,
                segment.start_lsn(header.segment_size),
                "{major}"
            );
        }
    }

    #[test]
    fn short_buffers_are_refused() {
        let page = fixture(15, "wal-first-page");
        let err = WalHeader::parse(&page[..39]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        assert_eq!(
            err.message(),
            "WAL segment header is too short: 39 bytes, at least 40 expected"
        );
    }

    #[test]
    fn pages_without_the_long_header_flag_are_refused() {
        let mut page = fixture(15, "wal-first-page");
        page[2] &= !(XLP_LONG_HEADER as u8);
        let err = WalHeader::parse(&page).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        assert!(
            err.message().contains("no long header"),
            "{}",
            err.message()
        );
    }

    #[test]
    fn unknown_magic_parses_without_a_version() {
        let mut page = fixture(15, "wal-first-page");
        page[0] = 0x00;
        page[1] = 0x00;
        let header = WalHeader::parse(&page).unwrap();
        assert_eq!(header.magic, 0);
        assert_eq!(header.version, None);
    }
}
