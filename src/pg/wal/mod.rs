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
    Segment,
    /// `000000010000000000000001.partial`: the unfinished last segment of a timeline.
    Partial,
    /// `000000010000000000000001.00000028.backup`: a backup history file, named after the
    /// segment and offset its backup started at.
    Backup,
    /// `00000002.history`: a timeline history.
    History,
}

impl WalFileKind {
    /// Classifies a file name (not a path); `None` when it is no WAL file.
    pub fn of(name: &str) -> Option<WalFileKind> {
        if WalSegment::parse(name).is_ok() {
            return Some(WalFileKind::Segment);
        }
        if name
            .strip_suffix(".partial")
            .is_some_and(|seg| WalSegment::parse(seg).is_ok())
        {
            return Some(WalFileKind::Partial);
        }
        if let Some(stem) = name.strip_suffix(".backup")
            && let Some((seg, offset)) = stem.split_once('.')
            && WalSegment::parse(seg).is_ok()
            && hex8(offset).is_some()
        {
            return Some(WalFileKind::Backup);
        }
        if name.strip_suffix(".history").and_then(hex8).is_some() {
            return Some(WalFileKind::History);
        }
        None
    }
}

impl WalSegment {
    /// The segment a segment, `.partial` or `.backup` file name belongs to.
    pub fn of_file_name(name: &str) -> Option<WalSegment> {
        match WalFileKind::of(name)? {
            WalFileKind::Segment | WalFileKind::Partial | WalFileKind::Backup => {
                WalSegment::parse(name.get(..24)?).ok()
            }
            WalFileKind::History => None,
        }
    }

    /// The timeline of a `.history` file name.
    pub fn history_timeline(name: &str) -> Option<u32> {
        name.strip_suffix(".history").and_then(hex8)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_kinds_are_told_apart_by_name() {
        let cases = [
            ("000000010000000000000001", WalFileKind::Segment),
            ("000000010000000000000001.partial", WalFileKind::Partial),
            (
                "000000010000000000000001.00000028.backup",
                WalFileKind::Backup,
            ),
            ("0000000A.history", WalFileKind::History),
        ];
        for (name, kind) in cases {
            assert_eq!(WalFileKind::of(name), Some(kind), "{name}");
        }
        let segment = WalSegment::parse("000000010000000000000001").unwrap();
        for (name, _) in &cases[..3] {
            assert_eq!(WalSegment::of_file_name(name), Some(segment), "{name}");
        }
        assert_eq!(WalSegment::of_file_name("0000000A.history"), None);
        assert_eq!(WalSegment::history_timeline("0000000A.history"), Some(10));
        assert_eq!(
            WalSegment::history_timeline("000000010000000000000001"),
            None
        );
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
            assert_eq!(WalFileKind::of(name), None, "{name}");
            assert_eq!(WalSegment::of_file_name(name), None, "{name}");
        }
    }
}
