//! Carrying out a retention plan: what expire does, on its own or at the end of a backup.
//!
//! The decisions are [`retention`](super::retention)'s; this logs and removes, in the order
//! docs/repository-format.md (invariant 4) requires: backup.info without the expired entries
//! first, then the backup directories, then WAL. A crash in between leaves at worst backup
//! directories that backup.info does not list, which the next expire removes with the expired
//! ones. A dry run logs the same lines, prefixed `[DRY-RUN] `, and changes nothing.

use crate::error::Result;
use crate::repo::archive::{self, TEMP_SUFFIX};
use crate::repo::retention::{
    self, ArchiveDecision, PathDecision, RetentionPlan, RetentionPolicy, WalRetention,
};
use crate::repo::{BackupInfo, BackupLabel, DbHistory, layout};
use crate::storage::{FileType, Storage};
use crate::{log_detail, log_info, log_warn};

/// What one expire run does.
pub struct ExpireSettings<'a> {
    pub policy: RetentionPolicy,
    /// `--set`: expire this backup and its dependents, whatever the retention.
    pub set: Option<&'a str>,
    /// Log what would be removed, remove nothing.
    pub dry_run: bool,
}

/// Carries out retention: backup.info without the expired entries first, then the backup
/// directories, then WAL (invariant 4 of docs/repository-format.md). `now` is the time
/// time-based retention counts from, in seconds since the epoch.
pub fn expire(repo: &dyn Storage, stanza: &str, settings: &ExpireSettings, now: i64) -> Result<()> {
    let mut info = BackupInfo::load_required(repo, stanza)?;
    let plan = match settings.set {
        Some(label) => retention::plan_set(&info, label, &settings.policy)?,
        None => retention::plan(&info, &settings.policy, now),
    };
    let dry = if settings.dry_run { "[DRY-RUN] " } else { "" };
    for set in &plan.expired {
        // As pgBackRest: "set" only when dependents expire with the backup.
        let several = if set.labels().count() > 1 { "set " } else { "" };
        log_info!(
            "{dry}repo1: expire {} backup {several}{}",
            set.reason.name(),
            set.describe()
        );
    }
    if !plan.expired.is_empty() && !settings.dry_run {
        // Invariant 4: the entries go first, so a listed backup never has missing files.
        info.backups.retain(|b| !plan.expires(&b.label));
        info.save(repo, stanza)?;
        repoint_latest(repo, stanza, &plan)?;
        fail::fail_point!("expire-info-saved");
    }
    remove_backup_sets(repo, stanza, &plan, dry)?;
    for decision in &plan.archive {
        remove_archive(repo, stanza, &info.db_history, decision, dry)?;
    }
    remove_stale_temps(
        repo,
        stanza,
        &info.db_history,
        now - STALE_TEMP_SECONDS,
        dry,
    )
}

/// Temporary files in the archive older than this were left by killed pushes (a push takes
/// seconds; archive-push itself removes those of the segment it pushes after ten minutes).
const STALE_TEMP_SECONDS: i64 = 60 * 60;

/// Removes the temporary files killed archive-pushes left in the archive, whatever retention
/// keeps: each may hold up to a segment's worth of space until its directory expires.
fn remove_stale_temps(
    repo: &dyn Storage,
    stanza: &str,
    db_history: &[DbHistory],
    before: i64,
    dry: &str,
) -> Result<()> {
    for db in db_history {
        let archive_id = db.archive_id();
        let dir = layout::archive_id_dir(stanza, &archive_id);
        let Some(entries) = repo.list(&dir)? else {
            continue;
        };
        let mut dirs = vec![dir.clone()];
        dirs.extend(
            entries
                .into_iter()
                .filter(|e| e.file_type == FileType::Path)
                .map(|e| format!("{dir}/{}", e.name)),
        );
        for path in dirs {
            for temp in archive::stale_temps(repo, &path, None, before)? {
                log_info!(
                    "{dry}remove stale temporary file '{}'",
                    repo.describe(&temp)
                );
                if dry.is_empty() {
                    repo.remove(&temp)?;
                }
            }
        }
    }
    Ok(())
}

/// Points `latest` at the newest remaining backup if it named an expired one. The newest backup
/// never expires (expire --set refuses it), so this only repairs a link damaged otherwise.
fn repoint_latest(repo: &dyn Storage, stanza: &str, plan: &RetentionPlan) -> Result<()> {
    let link = layout::latest_link(stanza);
    let target = repo.info(&link)?.and_then(|i| i.link_target);
    let Some(newest) = plan.retained.last() else {
        return Ok(());
    };
    if target.is_some_and(|t| !plan.retained.iter().any(|b| b.label == t)) {
        log_warn!(
            "'latest' pointed at an expired backup, it now points at '{}'",
            newest.label
        );
        repo.symlink(&newest.label, &link)?;
    }
    Ok(())
}

/// Removes every backup directory backup.info does not list (the sets just expired, and any left
/// by a crash after an earlier expire saved backup.info), newest first.
fn remove_backup_sets(
    repo: &dyn Storage,
    stanza: &str,
    plan: &RetentionPlan,
    dry: &str,
) -> Result<()> {
    let Some(entries) = repo.list(&layout::backup_dir(stanza))? else {
        return Ok(());
    };
    let mut unlisted: Vec<String> = entries
        .into_iter()
        .filter(|e| e.file_type == FileType::Path && BackupLabel::parse(&e.name).is_some())
        .map(|e| e.name)
        .filter(|name| !plan.retained.iter().any(|b| b.label == *name))
        .collect();
    unlisted.sort_by(|a, b| b.cmp(a));
    for label in unlisted {
        log_info!("{dry}repo1: remove expired backup {label}");
        if dry.is_empty() {
            repo.remove_dir(&layout::backup_set_dir(stanza, &label))?;
        }
    }
    Ok(())
}

/// Removes the archived WAL of one cluster that archive retention no longer keeps.
fn remove_archive(
    repo: &dyn Storage,
    stanza: &str,
    db_history: &[DbHistory],
    decision: &ArchiveDecision,
    dry: &str,
) -> Result<()> {
    let db_id = match decision {
        ArchiveDecision::Retain(retention) => retention.db_id,
        ArchiveDecision::RemoveAll { db_id } => *db_id,
    };
    let Some(db) = db_history.iter().find(|db| db.id == db_id) else {
        return Ok(());
    };
    let archive_id = db.archive_id();
    let dir = layout::archive_id_dir(stanza, &archive_id);
    match decision {
        ArchiveDecision::RemoveAll { .. } => {
            if repo.exists(&dir)? {
                log_info!("{dry}repo1: remove archive path {}", repo.describe(&dir));
                if dry.is_empty() {
                    repo.remove_dir(&dir)?;
                }
            }
            Ok(())
        }
        ArchiveDecision::Retain(retention) => {
            log_info!(
                "{dry}repo1: {archive_id} archive retention on backup {}, start = {}",
                retention.anchor,
                retention.start
            );
            let removed = remove_wal(repo, &dir, &archive_id, retention, dry)?;
            if removed == 0 {
                log_info!("{dry}repo1: {archive_id} no archive to remove");
            }
            Ok(())
        }
    }
}

/// Removes expired WAL under one archive id; returns how many directories and files went.
fn remove_wal(
    repo: &dyn Storage,
    dir: &str,
    archive_id: &str,
    retention: &WalRetention,
    dry: &str,
) -> Result<usize> {
    let Some(entries) = repo.list(dir)? else {
        return Ok(0);
    };
    let mut wal_dirs: Vec<String> = entries
        .into_iter()
        .filter(|e| e.file_type == FileType::Path)
        .map(|e| e.name)
        .collect();
    wal_dirs.sort();
    let mut removed = 0;
    for name in wal_dirs {
        let path = format!("{dir}/{name}");
        match retention.path_decision(&name) {
            PathDecision::Keep => {}
            PathDecision::Remove => {
                log_detail!("{dry}repo1: {archive_id} remove archive path {name}");
                if dry.is_empty() {
                    repo.remove_dir(&path)?;
                }
                removed += 1;
            }
            PathDecision::Check => {
                let files: Vec<String> = repo
                    .list(&path)?
                    .unwrap_or_default()
                    .into_iter()
                    // Temporary files go by age alone (remove_stale_temps): a young one may be
                    // a push in progress.
                    .filter(|e| e.file_type == FileType::File && !e.name.ends_with(TEMP_SUFFIX))
                    .map(|e| e.name)
                    .collect();
                for run in retention::removal_runs(&files, retention) {
                    log_info!(
                        "{dry}repo1: {archive_id} remove archive, start = {}, stop = {}",
                        run.first,
                        run.last
                    );
                    for file in &run.files {
                        log_detail!("{dry}remove archive file {archive_id}/{name}/{file}");
                        if dry.is_empty() {
                            repo.remove(&format!("{path}/{file}"))?;
                        }
                    }
                    removed += run.files.len();
                }
            }
        }
    }
    Ok(removed)
}
