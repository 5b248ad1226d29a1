//! WAL segment files: their 24-hex-digit names and the order they come in.
//!
//! A segment name is three 8-digit upper-case hex numbers: timeline, log id and segment within
//! the log id (`000000010000000A000000FF`). How many segments make one log id depends on the
//! cluster's WAL segment size (0x1_0000_0000 / size: 256 for 16 MiB), so stepping from one
//! segment to the next needs that size. Sizes are validated where they are read
//! ([`check_segment_size`]); the arithmetic here never panics on a bad one.

use std::fmt;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::Lsn;

/// The smallest WAL segment size PostgreSQL allows (1 MiB).
pub const MIN_SEGMENT_SIZE: u32 = 1 << 20;
/// The largest WAL segment size PostgreSQL allows (1 GiB).
pub const MAX_SEGMENT_SIZE: u32 = 1 << 30;
/// The default WAL segment size (16 MiB).
pub const DEFAULT_SEGMENT_SIZE: u32 = 16 << 20;

/// An error unless `size` is a power of two from 1 MiB to 1 GiB, as PostgreSQL requires.
pub fn check_segment_size(size: u32) -> Result<u32> {
    if size.is_power_of_two() && (MIN_SEGMENT_SIZE..=MAX_SEGMENT_SIZE).contains(&size) {
        Ok(size)
    } else {
        Err(Error::new(
            ErrorKind::Format,
            format!("invalid WAL segment size {size}: must be a power of two from 1MB to 1GB"),
        ))
    }
}

/// How many segments one log id holds.
pub fn segments_per_log(segment_size: u32) -> u64 {
    0x1_0000_0000 / u64::from(segment_size.max(1))
}

/// One WAL segment file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WalSegment {
    pub timeline: u32,
    pub log: u32,
    pub seg: u32,
}

/// Parses one 8-digit upper-case hex field.
pub(crate) fn hex8(text: &str) -> Option<u32> {
    if text.len() == 8
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || b.is_ascii_uppercase())
    {
        u32::from_str_radix(text, 16).ok()
    } else {
        None
    }
}

impl WalSegment {
    /// Parses a 24-character segment name. PostgreSQL writes upper-case hex only, so lower
    /// case is refused: a file named otherwise is not one PostgreSQL made.
    pub fn parse(name: &str) -> Result<WalSegment> {
        let invalid = || {
            Error::new(
                ErrorKind::Format,
                format!("invalid WAL segment name '{name}'"),
            )
        };
        if name.len() != 24 || !name.is_ascii() {
            return Err(invalid());
        }
        let field = |range: std::ops::Range<usize>| hex8(&name[range]).ok_or_else(invalid);
        Ok(WalSegment {
            timeline: field(0..8)?,
            log: field(8..16)?,
            seg: field(16..24)?,
        })
    }

    /// The segment that holds byte `lsn` on `timeline`.
    pub fn from_lsn(timeline: u32, lsn: Lsn, segment_size: u32) -> WalSegment {
        WalSegment::from_segment_no(
            timeline,
            lsn.0 / u64::from(segment_size.max(1)),
            segment_size,
        )
    }

    /// The segment numbered `segment_no` (`XLogSegNo`) on `timeline`.
    pub fn from_segment_no(timeline: u32, segment_no: u64, segment_size: u32) -> WalSegment {
        let per_log = segments_per_log(segment_size);
        WalSegment {
            timeline,
            log: (segment_no / per_log) as u32,
            seg: (segment_no % per_log) as u32,
        }
    }

    /// The segment's number counted from the start of WAL (`XLogSegNo`).
    pub fn segment_no(self, segment_size: u32) -> u64 {
        u64::from(self.log) * segments_per_log(segment_size) + u64::from(self.seg)
    }

    /// The LSN of the segment's first byte.
    pub fn start_lsn(self, segment_size: u32) -> Lsn {
        Lsn(self.segment_no(segment_size) * u64::from(segment_size))
    }

    /// The segment after this one on the same timeline.
    pub fn next(self, segment_size: u32) -> WalSegment {
        WalSegment::from_segment_no(
            self.timeline,
            self.segment_no(segment_size) + 1,
            segment_size,
        )
    }

    /// The segments from `start` to `stop` inclusive, on `start`'s timeline; empty when `stop`
    /// comes before `start`.
    pub fn range(start: WalSegment, stop: WalSegment, segment_size: u32) -> WalSegmentRange {
        WalSegmentRange {
            timeline: start.timeline,
            next: start.segment_no(segment_size),
            last: stop.segment_no(segment_size),
            segment_size,
        }
    }

    /// The 24-character file name: `000000010000000A000000FF`.
    pub fn name(self) -> String {
        self.to_string()
    }

    /// The first 16 characters of the name (timeline and log id): the archive's directory for
    /// this segment.
    pub fn log_dir_name(self) -> String {
        format!("{:08X}{:08X}", self.timeline, self.log)
    }
}

impl fmt::Display for WalSegment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:08X}{:08X}{:08X}", self.timeline, self.log, self.seg)
    }
}

/// The most segments [`WalSegmentRange`]'s size hint promises (a day of 16 MiB segments at
/// 1 GB/minute is under 100 000).
const RANGE_HINT_MAX: usize = 4096;

/// The iterator of [`WalSegment::range`].
#[derive(Debug, Clone)]
pub struct WalSegmentRange {
    timeline: u32,
    next: u64,
    last: u64,
    segment_size: u32,
}

impl Iterator for WalSegmentRange {
    type Item = WalSegment;

    fn next(&mut self) -> Option<WalSegment> {
        if self.next > self.last {
            return None;
        }
        let segment = WalSegment::from_segment_no(self.timeline, self.next, self.segment_size);
        self.next += 1;
        Some(segment)
    }

    /// The lower bound is capped: a range's ends can come from a manifest or an archive's file
    /// names, and `collect` reserves the lower bound up front, so a claimed range of 2^40
    /// segments would be a 2^40-element allocation before the first segment is produced.
    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from((self.last + 1).saturating_sub(self.next)).unwrap_or(usize::MAX);
        (left.min(RANGE_HINT_MAX), Some(left))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB16: u32 = DEFAULT_SEGMENT_SIZE;

    fn seg(name: &str) -> WalSegment {
        WalSegment::parse(name).unwrap()
    }

    #[test]
    fn names_parse_and_format_as_24_hex_digits() {
        let segment = seg("000000020000000A000000FF");
        assert_eq!(
            segment,
            WalSegment {
                timeline: 2,
                log: 10,
                seg: 255
            }
        );
        assert_eq!(segment.to_string(), "000000020000000A000000FF");
        assert_eq!(segment.name(), "000000020000000A000000FF");
        assert_eq!(segment.log_dir_name(), "000000020000000A");
    }

    #[test]
    fn malformed_names_are_refused() {
        for bad in [
            "",
            "00000001000000000000001",
            "0000000100000000000000011",
            "00000001000000000000001a",
            "00000001000000000000001G",
            "0000000100000000000000é",
        ] {
            let err = WalSegment::parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::Format, "{bad}");
        }
    }

    #[test]
    fn next_rolls_over_to_the_next_log_id_by_segment_size() {
        assert_eq!(
            seg("0000000100000000000000FE").next(MIB16),
            seg("0000000100000000000000FF")
        );
        assert_eq!(
            seg("0000000100000000000000FF").next(MIB16),
            seg("000000010000000100000000")
        );
        // 64 MiB segments: 64 per log id.
        assert_eq!(
            seg("00000001000000000000003F").next(64 << 20),
            seg("000000010000000100000000")
        );
        // 1 MiB segments: 4096 per log id.
        assert_eq!(
            seg("000000010000000000000FFF").next(1 << 20),
            seg("000000010000000100000000")
        );
    }

    #[test]
    fn lsn_maps_to_the_segment_holding_it() {
        let lsn: Lsn = "1/1A000028".parse().unwrap();
        assert_eq!(
            WalSegment::from_lsn(3, lsn, MIB16),
            seg("00000003000000010000001A")
        );
        assert_eq!(
            WalSegment::from_lsn(1, "0/1000000".parse().unwrap(), MIB16),
            seg("000000010000000000000001")
        );
        assert_eq!(
            seg("00000003000000010000001A").start_lsn(MIB16).to_string(),
            "1/1A000000"
        );
    }

    #[test]
    fn range_is_inclusive_and_crosses_log_ids() {
        let names: Vec<String> = WalSegment::range(
            seg("0000000100000000000000FE"),
            seg("000000010000000100000001"),
            MIB16,
        )
        .map(|s| s.to_string())
        .collect();
        assert_eq!(
            names,
            [
                "0000000100000000000000FE",
                "0000000100000000000000FF",
                "000000010000000100000000",
                "000000010000000100000001",
            ]
        );
        let one = seg("000000010000000000000005");
        assert_eq!(WalSegment::range(one, one, MIB16).count(), 1);
        assert_eq!(
            WalSegment::range(one, seg("000000010000000000000004"), MIB16).count(),
            0
        );
    }

    /// A range between the first and the last segment names anyone can write claims 2^40
    /// segments: collecting it must not reserve room for all of them before the first.
    #[test]
    fn a_huge_range_does_not_promise_its_length_up_front() {
        let range = WalSegment::range(
            seg("000000010000000000000000"),
            seg("00000001FFFFFFFF000000FF"),
            MIB16,
        );
        assert_eq!(range.size_hint(), (4096, Some(1 << 40)));
    }

    #[test]
    fn segment_sizes_must_be_powers_of_two_from_1mb_to_1gb() {
        for good in [1 << 20, 16 << 20, 1 << 30] {
            assert_eq!(check_segment_size(good).unwrap(), good);
        }
        for bad in [0, 8192, (1 << 20) + 1, 3 << 20, 1 << 31] {
            assert_eq!(
                check_segment_size(bad).unwrap_err().kind(),
                ErrorKind::Format
            );
        }
    }
}
