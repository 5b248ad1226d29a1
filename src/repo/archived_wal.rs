//! Archived WAL as the repository stores it: which files an archive id holds, and whether the
//! WAL a backup needs is all there. verify checks those files; restore checks the range before
//! it writes anything.
//!
//! Archived segment, `.partial` and `.backup` files carry the SHA-256 of their content in their
//! name, so each can be checked on its own. A backup needs every segment from its
//! `archive_start` to its `archive_stop` to be made consistent; [`range_status`] tells which of
//! them are missing or damaged. Stepping through that range needs the cluster's WAL segment
//! size, which the repository does not record: it is the size of the segments themselves,
//! taken from the ones verify has just read ([`segment_size`]). [`gaps`] finds the holes in an
//! archive that no backup needs, which only point-in-time recovery would miss. Timeline
//! `.history` files carry no checksum and are not checked here.

use std::collections::{BTreeMap, BTreeSet};

use crate::error::Result;
use crate::io::CompressType;
use crate::log_warn;
use crate::pg::wal::{DEFAULT_SEGMENT_SIZE, WalFileKind, WalSegment, check_segment_size};
use crate::repo::layout;
use crate::storage::{FileType, Storage};

/// A WAL file in the archive, as its name describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredWal {
    /// The WAL file name: a segment, `.partial` or `.backup` name.
    pub name: String,
    pub kind: WalFileKind,
    /// Path relative to the repository root.
    pub path: String,
    /// SHA-256 of the original content, from the stored name.
    pub checksum: String,
    pub compress: CompressType,
    /// Bytes stored in the repository.
    pub stored_size: u64,
}

impl StoredWal {
    /// The 24-character name of the segment the file belongs to.
    pub fn segment(&self) -> &str {
        self.name.get(..24).unwrap_or(&self.name)
    }
}

/// Segments from `first` to `last` inclusive, by name; both on one timeline.
#[derive(Debug, Clone, Copy)]
pub struct NameRange<'a> {
    pub first: &'a str,
    pub last: &'a str,
}

impl NameRange<'_> {
    /// Segment names are fixed-width upper-case hex, so on one timeline their order as
    /// strings is their order in WAL.
    fn holds(&self, segment: &str) -> bool {
        segment >= self.first && segment <= self.last
    }

    fn holds_dir(&self, dir: &str) -> bool {
        let prefix = |name: &str| name.get(..16).unwrap_or(name).to_string();
        dir >= prefix(self.first).as_str() && dir <= prefix(self.last).as_str()
    }
}

/// The WAL files stored under one archive id, all of them or those of `range`, sorted by path.
/// Names that are not archived WAL files are skipped with a warning; temp files of unfinished
/// writes silently.
pub fn list(
    repo: &dyn Storage,
    stanza: &str,
    archive_id: &str,
    range: Option<NameRange>,
) -> Result<Vec<StoredWal>> {
    let dir = layout::archive_id_dir(stanza, archive_id);
    let mut wal_dirs: Vec<String> = repo
        .list(&dir)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_type == FileType::Path && e.name.len() == 16)
        .map(|e| e.name)
        .filter(|name| range.is_none_or(|r| r.holds_dir(name)))
        .collect();
    wal_dirs.sort();
    let mut found = Vec::new();
    for wal_dir in wal_dirs {
        let path = format!("{dir}/{wal_dir}");
        for entry in repo.list(&path)?.unwrap_or_default() {
            if entry.name.ends_with(".pgkeep.tmp") {
                continue;
            }
            let file_path = format!("{path}/{}", entry.name);
            let Some(wal) = parse_stored_name(&entry.name, &file_path, entry.size) else {
                log_warn!(
                    "'{}' is not an archived WAL file name, skipped",
                    repo.describe(&file_path)
                );
                continue;
            };
            if range.is_none_or(|r| r.holds(wal.segment())) {
                found.push(wal);
            }
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    Ok(found)
}

/// Parses `<WAL name>-<sha256>[.<compression extension>]`.
fn parse_stored_name(stored: &str, path: &str, stored_size: u64) -> Option<StoredWal> {
    let (name, rest) = stored.split_once('-')?;
    let kind = WalFileKind::of(name).filter(|k| *k != WalFileKind::History)?;
    let (checksum, ext) = rest.split_once('.').unwrap_or((rest, ""));
    if checksum.len() != 64 || !checksum.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    Some(StoredWal {
        name: name.to_string(),
        kind,
        path: path.to_string(),
        checksum: checksum.to_string(),
        compress: CompressType::from_extension(ext)?,
        stored_size,
    })
}

/// The WAL segment size of an archive: the most common size among its valid segments, when it
/// is one PostgreSQL allows.
pub fn segment_size(sizes: &[u64]) -> Option<u32> {
    let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
    for size in sizes {
        *counts.entry(*size).or_default() += 1;
    }
    let (size, _) = counts.into_iter().max_by_key(|(_, count)| *count)?;
    u32::try_from(size)
        .ok()
        .and_then(|size| check_segment_size(size).ok())
}

/// What the archive holds of the WAL one backup needs.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct RangeStatus {
    /// Runs of consecutive missing segments: (first, last).
    pub missing: Vec<(String, String)>,
    /// Segments present but with no valid stored file.
    pub invalid: Vec<String>,
}

/// Checks every segment from `start` to `stop` against the valid and damaged segments found.
/// Without a known segment size, PostgreSQL's default is assumed.
///
/// The ends come from a manifest and the sets from the archive's file names, which anyone who
/// can write the repository can choose: a range of 2^40 segments must not be stepped through
/// one by one. Only the names found inside the range are visited (names of one timeline sort
/// as their segments do), and the missing runs between them are computed.
pub fn range_status(
    start: WalSegment,
    stop: WalSegment,
    segment_size: Option<u32>,
    valid: &BTreeSet<String>,
    damaged: &BTreeSet<String>,
) -> RangeStatus {
    let size = segment_size.unwrap_or(DEFAULT_SEGMENT_SIZE);
    let mut status = RangeStatus::default();
    let (first, last) = (start.segment_no(size), stop.segment_no(size));
    if last < first {
        return status;
    }
    let name_of = |no| WalSegment::from_segment_no(start.timeline, no, size).name();
    let bounds = name_of(first)..=name_of(last);
    // The segment numbers present in the range, each with whether it is only damaged. A name
    // that is not the canonical name of its number (e.g. a segment part beyond the last of
    // its log) is not a segment of this range.
    let mut present: BTreeMap<u64, bool> = BTreeMap::new();
    for (set, is_damaged) in [(valid, false), (damaged, true)] {
        for name in set.range(bounds.clone()) {
            let Ok(segment) = WalSegment::parse(name) else {
                continue;
            };
            let no = segment.segment_no(size);
            if segment.timeline == start.timeline && name_of(no) == *name {
                let only_damaged = present.entry(no).or_insert(is_damaged);
                *only_damaged &= is_damaged;
            }
        }
    }
    let mut next = first;
    for (no, is_damaged) in present {
        if no > next {
            status.missing.push((name_of(next), name_of(no - 1)));
        }
        if is_damaged {
            status.invalid.push(name_of(no));
        }
        next = no + 1;
    }
    if next <= last {
        status.missing.push((name_of(next), name_of(last)));
    }
    status
}

/// Runs of segments missing between the first and the last stored segment of each timeline.
/// Nothing is reported without a known segment size: stepping would guess names.
pub fn gaps(stored: &BTreeSet<String>, segment_size: Option<u32>) -> Vec<(String, String)> {
    let Some(size) = segment_size else {
        return Vec::new();
    };
    let mut timelines: BTreeMap<u32, (WalSegment, WalSegment)> = BTreeMap::new();
    for segment in stored
        .iter()
        .filter_map(|name| WalSegment::parse(name).ok())
    {
        let bounds = timelines
            .entry(segment.timeline)
            .or_insert((segment, segment));
        bounds.0 = bounds.0.min(segment);
        bounds.1 = bounds.1.max(segment);
    }
    timelines
        .into_values()
        .flat_map(|(first, last)| {
            range_status(first, last, Some(size), stored, &BTreeSet::new()).missing
        })
        .collect()
}

/// A run of segments for messages: `A` or `A..B`.
pub fn describe_run((first, last): &(String, String)) -> String {
    if first == last {
        first.clone()
    } else {
        format!("{first}..{last}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(name: &str) -> WalSegment {
        WalSegment::parse(name).unwrap()
    }

    fn names(list: &[&str]) -> BTreeSet<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn stored_names_are_parsed_or_refused() {
        let sum = "ab".repeat(32);
        let wal =
            parse_stored_name(&format!("000000010000000000000003-{sum}.zst"), "p", 0).unwrap();
        assert_eq!(wal.kind, WalFileKind::Segment);
        assert_eq!(wal.compress, CompressType::Zst);
        assert_eq!(wal.segment(), "000000010000000000000003");
        let backup = format!("000000010000000000000003.00000028.backup-{sum}");
        let wal = parse_stored_name(&backup, "p", 0).unwrap();
        assert_eq!(wal.kind, WalFileKind::Backup);
        assert_eq!(wal.compress, CompressType::None);
        assert!(parse_stored_name("000000010000000000000003-abc.zst", "p", 0).is_none());
        assert!(parse_stored_name(&format!("00000002.history-{sum}"), "p", 0).is_none());
        assert!(parse_stored_name(&format!("000000010000000000000003-{sum}.xz"), "p", 0).is_none());
    }

    #[test]
    fn the_segment_size_is_the_common_size_when_valid() {
        let mib16 = u64::from(DEFAULT_SEGMENT_SIZE);
        assert_eq!(segment_size(&[mib16, mib16, 5]), Some(DEFAULT_SEGMENT_SIZE));
        assert_eq!(segment_size(&[5, 5, mib16]), None);
        assert_eq!(segment_size(&[]), None);
    }

    #[test]
    fn missing_segments_come_in_runs_and_damaged_ones_apart() {
        let valid = names(&["000000010000000000000001", "000000010000000000000004"]);
        let damaged = names(&["000000010000000000000005"]);
        let status = range_status(
            seg("000000010000000000000001"),
            seg("000000010000000000000007"),
            None,
            &valid,
            &damaged,
        );
        assert_eq!(
            status.missing,
            vec![
                (
                    "000000010000000000000002".to_string(),
                    "000000010000000000000003".to_string()
                ),
                (
                    "000000010000000000000006".to_string(),
                    "000000010000000000000007".to_string()
                ),
            ]
        );
        assert_eq!(status.invalid, vec!["000000010000000000000005".to_string()]);
        assert_eq!(
            describe_run(&status.missing[0]),
            "000000010000000000000002..000000010000000000000003"
        );
    }

    #[test]
    fn gaps_are_found_within_each_timeline_only() {
        let stored = names(&[
            "000000010000000000000001",
            "000000010000000000000004",
            "000000020000000000000009",
            "00000002000000000000000A",
        ]);
        assert_eq!(
            gaps(&stored, Some(DEFAULT_SEGMENT_SIZE)),
            vec![(
                "000000010000000000000002".to_string(),
                "000000010000000000000003".to_string()
            )]
        );
        assert!(gaps(&stored, None).is_empty());
    }

    /// Ends a manifest can claim: stepping through 2^40 segments one by one never finished.
    #[test]
    fn a_huge_range_is_checked_by_what_is_in_it() {
        let valid = names(&[
            "000000010000000000000002",
            "000000010000000500000010",
            // Not segments of the range: another timeline, a part beyond its log's last.
            "000000020000000000000004",
            "000000010000000000000100",
        ]);
        let damaged = names(&["000000010000000500000010", "0000000100000006000000FF"]);
        let status = range_status(
            seg("000000010000000000000001"),
            seg("00000001FFFFFFFF000000FF"),
            Some(DEFAULT_SEGMENT_SIZE),
            &valid,
            &damaged,
        );
        let run = |a: &str, b: &str| (a.to_string(), b.to_string());
        assert_eq!(
            status.missing,
            vec![
                run("000000010000000000000001", "000000010000000000000001"),
                run("000000010000000000000003", "00000001000000050000000F"),
                run("000000010000000500000011", "0000000100000006000000FE"),
                run("000000010000000700000000", "00000001FFFFFFFF000000FF"),
            ]
        );
        assert_eq!(status.invalid, vec!["0000000100000006000000FF".to_string()]);
    }

    #[test]
    fn a_range_crosses_log_ids_with_the_segment_size() {
        let valid = names(&["0000000100000000000000FF", "000000010000000100000000"]);
        let status = range_status(
            seg("0000000100000000000000FF"),
            seg("000000010000000100000000"),
            Some(DEFAULT_SEGMENT_SIZE),
            &valid,
            &BTreeSet::new(),
        );
        assert_eq!(status, RangeStatus::default());
        let range = NameRange {
            first: "0000000100000000000000FF",
            last: "000000010000000100000000",
        };
        assert!(range.holds_dir("0000000100000001"));
        assert!(!range.holds_dir("0000000100000002"));
        assert!(range.holds("000000010000000100000000"));
        assert!(!range.holds("000000010000000100000001"));
    }
}
