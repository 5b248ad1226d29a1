//! WAL: positions, segment files, the kinds of file `archive_command` is given, and segment
//! headers.
//!
//! PostgreSQL hands an archiver four kinds of file from pg_wal: segments, `.partial` segments
//! (the last, incomplete segment of a timeline, written on promotion), `.backup` history files
//! (written by a backup's stop) and timeline `.history` files. [`WalFileKind::of`] tells them
//! apart by name alone. Parsing a `.history` file's content is `pg::history`.

mod header;
mod lsn;
mod segment;

pub use header::WalHeader;
pub use lsn::Lsn;
pub use segment::{
    DEFAULT_SEGMENT_SIZE, MAX_SEGMENT_SIZE, MIN_SEGMENT_SIZE, WalSegment, WalSegmentRange,
    check_segment_size, segments_per_log,
};

use segment::hex8;

/// What a file in pg_wal (or given to `archive_command`) is, by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WalFileKind {
    /// `000000010000000000000001`: a complete segment.
    Segment(WalSegment),
    /// `000000010000000000000001.partial`: the unfinished last segment of a timeline.
    Partial(WalSegment),
    /// `000000010000000000000001.00000028.backup`: the backup history file of a backup that
    /// started in `segment` at byte `offset`.
    Backup { segment: WalSegment, offset: u32 },
    /// `00000002.history`: the history of timeline `timeline`.
    History(u32),
    /// Anything else.
    NotWal,
}

impl WalFileKind {
    /// Classifies a file name (not a path).
    pub fn of(name: &str) -> WalFileKind {
        let segment = |text: &str| WalSegment::parse(text).ok();
        if let Some(found) = segment(name) {
            return WalFileKind::Segment(found);
        }
        if let Some(found) = name.strip_suffix(".partial").and_then(segment) {
            return WalFileKind::Partial(found);
        }
        if let Some(stem) = name.strip_suffix(".backup")
            && let Some((seg_name, offset)) = stem.split_once('.')
            && let (Some(found), Some(offset)) = (segment(seg_name), hex8(offset))
        {
            return WalFileKind::Backup {
                segment: found,
                offset,
            };
        }
        if let Some(timeline) = name.strip_suffix(".history").and_then(hex8) {
            return WalFileKind::History(timeline);
        }
        WalFileKind::NotWal
    }

    /// The segment the file belongs to, for segments, partials and backup history files.
    pub fn segment(self) -> Option<WalSegment> {
        match self {
            WalFileKind::Segment(segment)
            | WalFileKind::Partial(segment)
            | WalFileKind::Backup { segment, .. } => Some(segment),
            WalFileKind::History(_) | WalFileKind::NotWal => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_are_told_apart_by_name() {
        let segment = WalSegment::parse("000000010000000000000001").unwrap();
        assert_eq!(
            WalFileKind::of("000000010000000000000001"),
            WalFileKind::Segment(segment)
        );
        assert_eq!(
            WalFileKind::of("000000010000000000000001.partial"),
            WalFileKind::Partial(segment)
        );
        assert_eq!(
            WalFileKind::of("000000010000000000000001.00000028.backup"),
            WalFileKind::Backup {
                segment,
                offset: 0x28
            }
        );
        assert_eq!(
            WalFileKind::of("0000000A.history"),
            WalFileKind::History(10)
        );
        assert_eq!(
            WalFileKind::of("000000010000000000000001.00000028.backup").segment(),
            Some(segment)
        );
        assert_eq!(WalFileKind::of("0000000A.history").segment(), None);
    }

    #[test]
    fn other_names_are_not_wal() {
        for name in [
            "",
            "archive_status",
            "00000001000000000000000",
            "000000010000000000000001.ready",
            "000000010000000000000001.partial.tmp",
            "000000010000000000000001.28.backup",
            "0000000a.history",
            "00000001.history.tmp",
            "history",
        ] {
            assert_eq!(WalFileKind::of(name), WalFileKind::NotWal, "{name}");
        }
    }
}
