//! Retention: which backups and which archived WAL a stanza no longer keeps.
//!
//! Pure functions of (the backups listed in backup.info, a [`RetentionPolicy`], `now`): no I/O,
//! no clock, no options. `command/open.rs` reads the options; `repo::expire` calls [`plan`] (or
//! [`plan_set`] for `expire --set`), saves backup.info without the expired entries and then
//! removes files.
//! The rules are pgBackRest's, which DBAs know (docs/retention.md):
//!
//! - full retention, type count: the newest N full backups stay; an older full expires with every
//!   backup depending on it. Type time: N is days; a full whose backup ended more than N days ago
//!   expires, except the newest of those, which is needed to reach the point N days back.
//! - diff retention: the newest N differential backups stay, full backups counting as
//!   differentials; an expired diff takes the incrementals depending on it. Fulls never expire
//!   by diff retention, incrementals never expire alone.
//! - archive retention (in [`archive`]): WAL older than the start of the Nth newest retained
//!   backup of `repo1-retention-archive-type` expires, except what a retained backup needs.

mod archive;
#[cfg(test)]
mod tests;

pub use archive::{
    ArchiveDecision, PathDecision, WalRange, WalRetention, WalRun, archive_plan, removal_runs,
};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::{BackupInfo, BackupRecord, BackupType};

/// Seconds in a day, for time-based full retention.
const DAY: i64 = 86_400;

/// How full backups are retained (`repo1-retention-full` with `repo1-retention-full-type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FullRetention {
    /// Keep the newest N full backups.
    Count(u32),
    /// Keep the full backups needed to reach any point in the last N days.
    Days(u32),
}

/// The retention options, resolved by the command layer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPolicy {
    /// `None`: full backups never expire (the command warns about it).
    pub full: Option<FullRetention>,
    /// Differential backups to keep, fulls counting as differentials.
    pub diff: Option<u32>,
    /// `repo1-retention-archive` as set; see [`RetentionPolicy::archive_count`] for defaults.
    pub archive: Option<u32>,
    /// Which backups `archive` counts: full (fulls), diff (fulls and diffs) or incr (all).
    pub archive_type: BackupType,
}

impl RetentionPolicy {
    /// How many backups of `archive_type` keep their WAL, once defaults apply: unset, it is
    /// `repo1-retention-full` (count) for type full, `repo1-retention-diff` for type diff, and
    /// nothing for type incr. With time-based full retention the count is the number of full
    /// backups retained (`retained_fulls`), so WAL stays from the oldest retained full onward.
    /// `None`: no WAL expires.
    pub fn archive_count(&self, retained_fulls: usize) -> Option<u32> {
        if self.archive.is_some() {
            return self.archive;
        }
        match (self.archive_type, self.full) {
            (BackupType::Full, Some(FullRetention::Count(n))) => Some(n),
            (BackupType::Full, Some(FullRetention::Days(_))) => {
                u32::try_from(retained_fulls).ok().filter(|n| *n > 0)
            }
            (BackupType::Full, None) => None,
            (BackupType::Diff, _) => self.diff,
            (BackupType::Incr, _) => None,
        }
    }
}

/// Why a backup set expires; named in the log line `expire <reason> backup set: ...`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExpireReason {
    /// Full retention (count or time).
    Full,
    /// Differential retention.
    Diff,
    /// `expire --set`.
    Adhoc,
}

impl ExpireReason {
    pub fn name(self) -> &'static str {
        match self {
            ExpireReason::Full => "full",
            ExpireReason::Diff => "diff",
            ExpireReason::Adhoc => "adhoc",
        }
    }
}

/// One backup that expires, with every backup depending on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExpiredSet {
    pub reason: ExpireReason,
    pub label: String,
    /// Backups depending on `label`, oldest first; they expire with it.
    pub dependents: Vec<String>,
}

impl ExpiredSet {
    /// The set's label and its dependents, oldest first.
    pub fn labels(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.label.as_str()).chain(self.dependents.iter().map(String::as_str))
    }

    /// `label, dependent, ...` as the log line shows it.
    pub fn describe(&self) -> String {
        self.labels().collect::<Vec<_>>().join(", ")
    }
}

/// What retention decided for a stanza.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionPlan {
    /// Sets that expire, in the order they were decided (full retention first, then diff).
    pub expired: Vec<ExpiredSet>,
    /// The backups that remain, oldest first.
    pub retained: Vec<BackupRecord>,
    /// What happens to the archive of each cluster; empty when no WAL expires.
    pub archive: Vec<ArchiveDecision>,
}

impl RetentionPlan {
    /// True when `label` expires.
    pub fn expires(&self, label: &str) -> bool {
        self.expired
            .iter()
            .any(|set| set.labels().any(|l| l == label))
    }
}

/// Applies the retention policy to the backups of `info` at time `now` (Unix seconds).
pub fn plan(info: &BackupInfo, policy: &RetentionPolicy, now: i64) -> RetentionPlan {
    let mut remaining = sorted(&info.backups);
    let mut expired = Vec::new();
    let fulls =
        |backups: &[BackupRecord]| -> Vec<String> { of_types(backups, &[BackupType::Full]) };
    let expire_fulls: Vec<String> = match policy.full {
        None => Vec::new(),
        Some(FullRetention::Count(keep)) => {
            let all = fulls(&remaining);
            let excess = all.len().saturating_sub(keep.max(1) as usize);
            all.into_iter().take(excess).collect()
        }
        Some(FullRetention::Days(days)) => {
            let cutoff = now.saturating_sub(i64::from(days).saturating_mul(DAY));
            let all = fulls(&remaining);
            // The newest full that ended before the cutoff reaches the point N days back:
            // it stays, and every older full expires.
            let keep_from = remaining
                .iter()
                .rev()
                .find(|b| b.backup_type == BackupType::Full && b.timestamp_stop < cutoff)
                .map(|b| b.label.clone());
            match keep_from {
                Some(keep) => all.into_iter().take_while(|l| *l != keep).collect(),
                None => Vec::new(),
            }
        }
    };
    for label in expire_fulls {
        expired.push(take_set(&mut remaining, &label, ExpireReason::Full));
    }
    if let Some(keep) = policy.diff {
        // Full backups count as differentials here (pgBackRest's rule), so a diff older than
        // the newest N of fulls and diffs together expires.
        let counted = of_types(&remaining, &[BackupType::Full, BackupType::Diff]);
        let excess = counted.len().saturating_sub(keep.max(1) as usize);
        for label in counted.into_iter().take(excess) {
            if remaining
                .iter()
                .any(|b| b.label == label && b.backup_type == BackupType::Diff)
            {
                expired.push(take_set(&mut remaining, &label, ExpireReason::Diff));
            }
        }
    }
    finish(info, policy, expired, remaining)
}

/// `expire --set=<label>`: that backup and everything depending on it, whatever the retention.
/// Refused for an unknown label, for the only full backup of the current cluster, and for a set
/// that holds the latest backup (restore and the `latest` link always need a target).
pub fn plan_set(info: &BackupInfo, label: &str, policy: &RetentionPolicy) -> Result<RetentionPlan> {
    let mut remaining = sorted(&info.backups);
    let Some(record) = remaining.iter().find(|b| b.label == label) else {
        return Err(Error::new(
            ErrorKind::BackupSetInvalid,
            format!("backup set '{label}' does not exist"),
        )
        .with_hint(format!(
            "run '{}' to list the backup sets of the stanza",
            crate::error::command_hint("info")
        )));
    };
    if record.backup_type == BackupType::Full
        && !remaining.iter().any(|b| {
            b.backup_type == BackupType::Full && b.label != label && b.db_id == record.db_id
        })
    {
        return Err(Error::new(
            ErrorKind::BackupSetInvalid,
            format!("full backup '{label}' cannot be expired: it is the only full backup"),
        )
        .with_hint("take another full backup first"));
    }
    let set = take_set(&mut remaining, label, ExpireReason::Adhoc);
    if let Some(latest) = info.latest()
        && set.labels().any(|l| l == latest.label)
    {
        let which = if latest.label == label {
            "it is the latest backup".to_string()
        } else {
            format!("the latest backup '{}' depends on it", latest.label)
        };
        return Err(Error::new(
            ErrorKind::BackupSetInvalid,
            format!("backup set '{label}' cannot be expired: {which}"),
        )
        .with_hint("take a new backup first"));
    }
    Ok(finish(info, policy, vec![set], remaining))
}

/// The backups depending on `label` (whose prior chain leads to it; for a full, every backup
/// labelled `<full>_...`), oldest first.
pub fn dependents(backups: &[BackupRecord], label: &str) -> Vec<String> {
    let full_prefix = format!("{label}_");
    let mut chain: Vec<String> = vec![label.to_string()];
    // Sorted by label, a backup comes after its prior, so one pass finds the whole chain.
    for backup in sorted(backups) {
        if backup.label == label {
            continue;
        }
        let depends = backup.label.starts_with(&full_prefix)
            || backup
                .prior
                .as_ref()
                .is_some_and(|prior| chain.contains(prior));
        if depends {
            chain.push(backup.label);
        }
    }
    chain.split_off(1)
}

/// Removes `label` and its dependents from `remaining`, returning them as an expired set.
fn take_set(remaining: &mut Vec<BackupRecord>, label: &str, reason: ExpireReason) -> ExpiredSet {
    let dependents = dependents(remaining, label);
    remaining.retain(|b| b.label != label && !dependents.contains(&b.label));
    ExpiredSet {
        reason,
        label: label.to_string(),
        dependents,
    }
}

fn finish(
    info: &BackupInfo,
    policy: &RetentionPolicy,
    expired: Vec<ExpiredSet>,
    retained: Vec<BackupRecord>,
) -> RetentionPlan {
    let db_ids: Vec<u32> = info.db_history.iter().map(|db| db.id).collect();
    let archive = archive_plan(&retained, &db_ids, policy);
    RetentionPlan {
        expired,
        retained,
        archive,
    }
}

fn sorted(backups: &[BackupRecord]) -> Vec<BackupRecord> {
    let mut out = backups.to_vec();
    out.sort_by(|a, b| a.label.cmp(&b.label));
    out
}

/// Labels of the backups of the given types, oldest first.
fn of_types(backups: &[BackupRecord], types: &[BackupType]) -> Vec<String> {
    backups
        .iter()
        .filter(|b| types.contains(&b.backup_type))
        .map(|b| b.label.clone())
        .collect()
}
