//! Archive retention: which archived WAL files expire.
//!
//! WAL is counted in backups of `repo1-retention-archive-type`: among the retained backups, the
//! Nth newest of that type is the anchor, and WAL of its cluster whose segment name sorts before
//! the anchor's first segment (`archive_start`) expires, except the segments from
//! `archive_start` to `archive_stop` of every retained backup, which make that backup
//! consistent. A stored file is judged by the segment its name starts with (`.backup` and
//! `.partial` files follow their segment); `.history` files never expire. With fewer than N such
//! backups the oldest of them is the anchor: WAL older than every backup serves no restore, so
//! it goes as soon as the first backup exists (SCENARIO §3.1), while everything from the first
//! backup onward stays until N backups exist. Nothing here lists or removes files: the caller asks
//! [`WalRetention::path_decision`] about each `<timeline><log id>` directory and
//! [`removal_runs`] about the files of a directory it has to look into.

use crate::repo::BackupRecord;
use crate::repo::BackupType;

use super::RetentionPolicy;

/// The segments a backup needs to be consistent: `start..=stop` by name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRange {
    pub start: String,
    pub stop: String,
}

impl WalRange {
    fn contains(&self, segment: &str) -> bool {
        self.start.as_str() <= segment && segment <= self.stop.as_str()
    }
}

/// WAL retention for the archive of one cluster (one `db_history` id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRetention {
    pub db_id: u32,
    /// The label of the backup archive retention counts back to.
    pub anchor: String,
    /// The anchor's first segment: WAL before it expires.
    pub start: String,
    /// Ranges of the other retained backups of this cluster, kept even below `start`.
    pub keep: Vec<WalRange>,
}

/// What happens to the archive of one cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ArchiveDecision {
    /// WAL older than the anchor expires, except the kept ranges.
    Retain(WalRetention),
    /// No retained backup belongs to this cluster, and it is not the current one (the stanza
    /// was upgraded since): its whole archive expires.
    RemoveAll { db_id: u32 },
}

/// What to do with one `<timeline><log id>` directory of the archive.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathDecision {
    /// Every segment it can hold expires: remove it in one go.
    Remove,
    /// Some of its files may expire: list it and ask [`removal_runs`].
    Check,
    /// Nothing in it expires.
    Keep,
}

/// Consecutive files of one directory that expire, for one log line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WalRun {
    /// The segment names of the first and last file.
    pub first: String,
    pub last: String,
    /// The stored file names, in order.
    pub files: Vec<String>,
}

impl WalRetention {
    /// True when the stored file `name` (e.g. `000000010000000000000003-<sha>.zst`) stays.
    /// Names that do not start with a segment name (history files, anything unknown) stay.
    pub fn keeps_file(&self, name: &str) -> bool {
        let Some(segment) = segment_of(name) else {
            return true;
        };
        segment >= self.start.as_str() || self.keep.iter().any(|r| r.contains(segment))
    }

    /// The decision for the archive directory `dir` (16 hex digits: timeline and log id).
    pub fn path_decision(&self, dir: &str) -> PathDecision {
        if dir.len() != 16 || !is_upper_hex(dir) {
            return PathDecision::Keep;
        }
        let start_dir = self.start.get(..16).unwrap_or_default();
        if dir > start_dir {
            return PathDecision::Keep;
        }
        let touched = |r: &WalRange| {
            r.start.get(..16).is_some_and(|s| s <= dir)
                && r.stop.get(..16).is_some_and(|s| dir <= s)
        };
        // A directory wholly below the anchor's gets no new segment from archive-push (new WAL
        // sorts after the anchor), so removing it whole cannot lose a file being written.
        if dir == start_dir || self.keep.iter().any(touched) {
            PathDecision::Check
        } else {
            PathDecision::Remove
        }
    }
}

/// The files of one directory that expire, grouped in runs of consecutive names; a file that
/// stays ends a run. `names` need not be sorted.
pub fn removal_runs(names: &[String], retention: &WalRetention) -> Vec<WalRun> {
    let mut sorted: Vec<&String> = names.iter().collect();
    sorted.sort();
    let mut runs: Vec<WalRun> = Vec::new();
    let mut current: Option<WalRun> = None;
    for name in sorted {
        match segment_of(name) {
            Some(segment) if !retention.keeps_file(name) => {
                let run = current.get_or_insert_with(|| WalRun {
                    first: segment.to_string(),
                    last: segment.to_string(),
                    files: Vec::new(),
                });
                run.last = segment.to_string();
                run.files.push(name.clone());
            }
            _ => runs.extend(current.take()),
        }
    }
    runs.extend(current);
    runs
}

/// Archive retention over the backups that remain, for each cluster id of the stanza's history
/// (`db_ids`, oldest first: the last is the current cluster). Empty when no WAL expires.
pub fn archive_plan(
    retained: &[BackupRecord],
    db_ids: &[u32],
    policy: &RetentionPolicy,
) -> Vec<ArchiveDecision> {
    let fulls = retained
        .iter()
        .filter(|b| b.backup_type == BackupType::Full)
        .count();
    let Some(count) = policy.archive_count(fulls) else {
        return Vec::new();
    };
    let counts = |b: &BackupRecord| match policy.archive_type {
        BackupType::Full => b.backup_type == BackupType::Full,
        BackupType::Diff => b.backup_type != BackupType::Incr,
        BackupType::Incr => true,
    };
    let mut counted: Vec<&BackupRecord> = retained.iter().filter(|b| counts(b)).collect();
    counted.sort_by(|a, b| b.label.cmp(&a.label));
    let count = count as usize;
    // As pgBackRest: until there are as many backups as archive retention counts, it is too
    // soon to expire any WAL (and keeping it loses nothing).
    if counted.is_empty() || counted.len() < count {
        return Vec::new();
    }
    let newest = &counted[..count.min(counted.len())];
    let current = db_ids.last().copied();
    let mut decisions = Vec::new();
    for &db_id in db_ids {
        let Some(newest_local) = counted.iter().find(|b| b.db_id == db_id) else {
            if Some(db_id) != current {
                decisions.push(ArchiveDecision::RemoveAll { db_id });
            }
            continue;
        };
        // The oldest of the newest N of this cluster; when the N all belong to a later
        // cluster, this cluster keeps the WAL of its own newest backup onward.
        let anchor = newest
            .iter()
            .rev()
            .find(|b| b.db_id == db_id)
            .unwrap_or(newest_local);
        if segment_of(&anchor.archive_start).is_none() {
            continue;
        }
        let keep = retained
            .iter()
            .filter(|b| b.db_id == db_id && b.label != anchor.label)
            .filter(|b| segment_of(&b.archive_start).is_some())
            .filter(|b| segment_of(&b.archive_stop).is_some())
            .map(|b| WalRange {
                start: b.archive_start.clone(),
                stop: b.archive_stop.clone(),
            })
            .collect();
        decisions.push(ArchiveDecision::Retain(WalRetention {
            db_id,
            anchor: anchor.label.clone(),
            start: anchor.archive_start.clone(),
            keep,
        }));
    }
    decisions
}

/// The segment name a stored WAL file name starts with, if it does.
fn segment_of(name: &str) -> Option<&str> {
    name.get(..24).filter(|s| is_upper_hex(s))
}

fn is_upper_hex(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn archive_directories_go_whole_only_when_nothing_in_them_stays() {
        let r = WalRetention {
            db_id: 1,
            anchor: "20260105-120000F".into(),
            start: "000000010000000500000010".into(),
            keep: vec![WalRange {
                start: "0000000100000002000000FF".into(),
                stop: "000000010000000300000001".into(),
            }],
        };
        let cases = [
            ("0000000100000001", PathDecision::Remove),
            ("0000000100000002", PathDecision::Check),
            ("0000000100000003", PathDecision::Check),
            ("0000000100000004", PathDecision::Remove),
            ("0000000100000005", PathDecision::Check),
            ("0000000100000006", PathDecision::Keep),
            ("0000000200000000", PathDecision::Keep),
            ("00000001.history", PathDecision::Keep),
            ("000000010000000g", PathDecision::Keep),
        ];
        for (dir, expect) in cases {
            assert_eq!(r.path_decision(dir), expect, "{dir}");
        }
    }
}
