//! verify: read the whole repository of a stanza and report what could not be restored.
//!
//! Checks, in order: archive.info and backup.info with their copies (a damaged twin is a
//! warning, a pair with no valid file an error), then each backup's manifest and its copy, then
//! in parallel (`process-max`) every backup file against its manifest entry (size, stored size,
//! SHA-256 after decompression) and every archived WAL file against the checksum in its name,
//! and last whether each backup's WAL from `archive_start` to `archive_stop` is in the archive.
//! A file that several backups reference is read once, in the backup that holds it, and
//! counts against every backup that needs it. With `--set`, only that backup, the files it
//! needs and the WAL of its range are read.
//!
//! Every problem is logged as an error line when found (so a log file keeps them all) and the
//! command fails with `VerifyError` (104) when there was at least one; each backup gets one
//! line at info level, `backup <label>: valid` or `backup <label>: invalid (...)`, and each
//! archive id a count of the WAL checked. verify takes no lock and writes nothing: backups and
//! archive-push run alongside it. A backup expired by a concurrent expire is skipped rather
//! than reported as missing files.

mod file;
mod info;
mod wal;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::pg::wal::{WalFileKind, WalSegment};
use crate::repo::archive_info::stanza_missing;
use crate::repo::{
    ArchiveInfo, BackupInfo, BackupLabel, BackupRecord, DbHistory, Manifest, layout,
};
use crate::storage::{FileType, Storage};
use crate::{log_detail, log_error, log_info, log_warn};

use super::open;
use file::{FileCheck, Outcome};
use info::Pair;

/// What one verify run checks and with how many workers.
pub struct VerifySettings<'a> {
    /// `--set`: only this backup.
    pub set: Option<&'a str>,
    pub buffer_size: usize,
    pub process_max: usize,
}

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let repo = open::repo(cfg)?;
    let settings = VerifySettings {
        set: cfg.str(Opt::Set),
        buffer_size: open::buffer_size(cfg),
        process_max: open::process_max(cfg),
    };
    let errors = verify(&repo, stanza, &settings)?;
    if errors > 0 {
        return Err(Error::new(
            ErrorKind::Verify,
            format!("verify command encountered {errors} error(s), see the log for details"),
        )
        .with_hint("an invalid backup cannot be restored as it is: restore another set (--set) or take a new full backup"));
    }
    Ok(0)
}

/// Counts the problems as they are logged.
#[derive(Default)]
struct Errors(usize);

impl Errors {
    fn report(&mut self, message: &str) {
        log_error!("{message}");
        self.0 += 1;
    }
}

/// One backup being verified.
struct BackupCheck {
    record: BackupRecord,
    manifest_problem: Option<String>,
    /// Indexes of the jobs holding its files.
    files: Vec<usize>,
    /// The archive id and range of the WAL it needs, when it needs WAL from the archive.
    wal: Option<(String, WalSegment, WalSegment)>,
}

/// One file to read, and whom it concerns.
struct Job {
    check: FileCheck,
    /// For WAL: the archive id and the stored file.
    wal: Option<(String, wal::StoredWal)>,
}

/// Verifies the stanza; returns the number of errors logged.
pub fn verify(repo: &dyn Storage, stanza: &str, settings: &VerifySettings) -> Result<usize> {
    let mut errors = Errors::default();
    let archive_path = layout::archive_info(stanza);
    let backup_path = layout::backup_info(stanza);
    let archive_pair = info::check_pair::<ArchiveInfo>(repo, &archive_path)?;
    let backup_pair = info::check_pair::<BackupInfo>(repo, &backup_path)?;
    if matches!(
        (&archive_pair, &backup_pair),
        (Pair::Missing, Pair::Missing)
    ) {
        return Err(stanza_missing(repo, stanza, &backup_path));
    }
    let archive_info = usable(repo, archive_pair, &archive_path, &mut errors);
    let backup_info = usable(repo, backup_pair, &backup_path, &mut errors);
    if let (Some(archive), Some(backup)) = (&archive_info, &backup_info)
        && let Some(problem) = info::histories_match(archive, backup)
    {
        errors.report(&problem);
    }
    let db_history: Vec<DbHistory> = archive_info
        .map(|a| a.db_history)
        .or_else(|| backup_info.as_ref().map(|b| b.db_history.clone()))
        .unwrap_or_default();

    let records = select_backups(repo, stanza, backup_info.as_ref(), settings.set)?;
    let mut jobs: Vec<Job> = Vec::new();
    let mut backups = Vec::new();
    let mut held: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in records {
        backups.push(plan_backup(
            repo,
            stanza,
            record,
            &db_history,
            &mut jobs,
            &mut held,
        )?);
    }
    let archive_ids: Vec<String> = db_history.iter().map(DbHistory::archive_id).collect();
    if settings.set.is_none() {
        warn_unknown_archive_ids(repo, stanza, &archive_ids)?;
    }
    for archive_id in &archive_ids {
        let ranges: Vec<(String, String)> = backups
            .iter()
            .filter_map(|b| b.wal.as_ref())
            .filter(|(id, _, _)| id == archive_id)
            .map(|(_, start, stop)| (start.name(), stop.name()))
            .collect();
        // With --set, only the WAL of the set's range; a set that needs none reads none.
        let stored = match (settings.set, ranges.first()) {
            (None, _) => wal::list(repo, stanza, archive_id, None)?,
            (Some(_), Some((first, last))) => {
                let range = wal::NameRange { first, last };
                wal::list(repo, stanza, archive_id, Some(range))?
            }
            (Some(_), None) => Vec::new(),
        };
        for stored in stored {
            jobs.push(Job {
                check: FileCheck {
                    path: stored.path.clone(),
                    compress: stored.compress,
                    checksum: stored.checksum.clone(),
                    size: None,
                    repo_size: None,
                },
                wal: Some((archive_id.clone(), stored)),
            });
        }
    }

    let outcomes = check_all(repo, &jobs, settings)?;
    let archives = report_wal(repo, &archive_ids, &jobs, &outcomes, &mut errors);
    let listed_now = info::listed_labels(repo, &backup_path);
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    for backup in &backups {
        let label = &backup.record.label;
        if listed_now.as_ref().is_some_and(|l| !l.contains(label)) {
            log_info!("backup {label}: expired while verify ran, skipped");
            continue;
        }
        report_backup(
            repo,
            backup,
            &jobs,
            &outcomes,
            &archives,
            &mut reported,
            &mut errors,
        );
    }
    if backups.is_empty() && settings.set.is_none() && errors.0 == 0 {
        log_warn!("no backups exist in the repository of stanza '{stanza}'");
    }
    Ok(errors.0)
}

/// The content of a usable pair; reports a pair with no valid file.
fn usable<T>(repo: &dyn Storage, pair: Pair<T>, path: &str, errors: &mut Errors) -> Option<T> {
    match pair {
        Pair::Usable(content) => Some(content),
        Pair::Missing => {
            errors.report(&format!(
                "'{}' and its copy are missing",
                repo.describe(path)
            ));
            None
        }
        Pair::Unusable(reason) => {
            errors.report(&format!(
                "no usable copy of '{}': {reason}",
                repo.describe(path)
            ));
            None
        }
    }
}

/// The backups to check: all of backup.info, or the one `--set` names. Backup directories that
/// backup.info does not list are unfinished or half-expired: not backups, so not checked.
fn select_backups(
    repo: &dyn Storage,
    stanza: &str,
    info: Option<&BackupInfo>,
    set: Option<&str>,
) -> Result<Vec<BackupRecord>> {
    let Some(info) = info else {
        return Ok(Vec::new());
    };
    if let Some(set) = set {
        let record = info.find(set).cloned().ok_or_else(|| {
            Error::new(
                ErrorKind::BackupSetInvalid,
                format!("backup set '{set}' does not exist in stanza '{stanza}'"),
            )
            .with_hint("'pgkeep info' lists the backup sets")
        })?;
        return Ok(vec![record]);
    }
    for entry in repo.list(&layout::backup_dir(stanza))?.unwrap_or_default() {
        if entry.file_type == FileType::Path
            && BackupLabel::parse(&entry.name).is_some()
            && info.find(&entry.name).is_none()
        {
            log_info!(
                "backup {}: not listed in backup.info (unfinished or expired), skipped",
                entry.name
            );
        }
    }
    Ok(info.backups.clone())
}

/// Reads a backup's manifest and adds the files it needs to `jobs`, once per stored file.
fn plan_backup(
    repo: &dyn Storage,
    stanza: &str,
    record: BackupRecord,
    db_history: &[DbHistory],
    jobs: &mut Vec<Job>,
    held: &mut BTreeMap<(String, String), usize>,
) -> Result<BackupCheck> {
    let label = record.label.clone();
    let path = layout::manifest(stanza, &label);
    let (manifest, manifest_problem) = match info::check_pair::<Manifest>(repo, &path)? {
        Pair::Usable(m) if m.label == label => (Some(m), None),
        Pair::Usable(m) => (
            None,
            Some(format!(
                "manifest '{}' describes backup {}, not {label}",
                repo.describe(&path),
                m.label
            )),
        ),
        Pair::Missing => (
            None,
            Some(format!(
                "manifest '{}' and its copy are missing",
                repo.describe(&path)
            )),
        ),
        Pair::Unusable(reason) => (None, Some(format!("no usable copy of manifest: {reason}"))),
    };
    let mut files = Vec::new();
    if let Some(manifest) = &manifest {
        for entry in &manifest.files {
            let holder = manifest.holder(entry).to_string();
            let key = (holder.clone(), entry.name.clone());
            let index = *held.entry(key).or_insert_with(|| {
                let ext = manifest.compress_type.extension();
                jobs.push(Job {
                    check: FileCheck {
                        path: layout::backup_file(stanza, &holder, &entry.name, ext),
                        compress: manifest.compress_type,
                        checksum: entry.checksum.clone(),
                        size: Some(entry.size),
                        repo_size: Some(entry.repo_size),
                    },
                    wal: None,
                });
                jobs.len() - 1
            });
            files.push(index);
        }
    }
    // Offline backups are consistent as they are; archive-copy stores the WAL in the backup,
    // where it is checked as backup files.
    let needs_wal = manifest
        .as_ref()
        .is_none_or(|m| m.online && !m.archive_copy);
    let archive_id = db_history
        .iter()
        .find(|db| db.id == record.db_id)
        .map(DbHistory::archive_id);
    let wal = match (needs_wal, archive_id) {
        (true, Some(archive_id)) => Some((
            archive_id,
            WalSegment::parse(&record.archive_start)?,
            WalSegment::parse(&record.archive_stop)?,
        )),
        _ => None,
    };
    Ok(BackupCheck {
        record,
        manifest_problem,
        files,
        wal,
    })
}

/// Archive ids on disk that archive.info does not know are not verified; say so.
fn warn_unknown_archive_ids(repo: &dyn Storage, stanza: &str, known: &[String]) -> Result<()> {
    for entry in repo.list(&layout::archive_dir(stanza))?.unwrap_or_default() {
        if entry.file_type == FileType::Path && !known.contains(&entry.name) {
            log_warn!(
                "'{}' is not an archive id of archive.info, not verified",
                repo.describe(&layout::archive_id_dir(stanza, &entry.name))
            );
        }
    }
    Ok(())
}

/// Checks every job on `process-max` workers, largest backup files first; outcomes in job order.
fn check_all(repo: &dyn Storage, jobs: &[Job], settings: &VerifySettings) -> Result<Vec<Outcome>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| Reverse(jobs[i].check.size.unwrap_or(0)));
    let results = exec::run_parallel(order.clone(), settings.process_max, |_, index| {
        let job = &jobs[index];
        log_detail!("verify '{}'", repo.describe(&job.check.path));
        file::check(repo, &job.check, settings.buffer_size)
    })?;
    let mut outcomes = vec![Outcome::Missing; jobs.len()];
    for (index, outcome) in order.into_iter().zip(results) {
        outcomes[index] = outcome;
    }
    Ok(outcomes)
}

/// What the archive of one archive id holds, after checking.
#[derive(Default)]
struct ArchiveResult {
    checked: usize,
    invalid: usize,
    /// Segments with a valid stored file.
    valid: BTreeSet<String>,
    /// Segments stored only as damaged files.
    damaged: BTreeSet<String>,
    sizes: Vec<u64>,
}

/// Reports damaged WAL files and each archive id's counts; returns what each archive id holds.
fn report_wal(
    repo: &dyn Storage,
    archive_ids: &[String],
    jobs: &[Job],
    outcomes: &[Outcome],
    errors: &mut Errors,
) -> BTreeMap<String, ArchiveResult> {
    let mut results: BTreeMap<String, ArchiveResult> = archive_ids
        .iter()
        .map(|id| (id.clone(), ArchiveResult::default()))
        .collect();
    for (job, outcome) in jobs.iter().zip(outcomes) {
        let Some((archive_id, stored)) = &job.wal else {
            continue;
        };
        let Some(result) = results.get_mut(archive_id) else {
            continue;
        };
        let segment = (stored.kind == WalFileKind::Segment).then(|| stored.segment().to_string());
        let shown = repo.describe(&stored.path);
        match outcome {
            Outcome::Valid { size } => {
                result.checked += 1;
                if let Some(segment) = segment {
                    result.sizes.push(*size);
                    result.valid.insert(segment);
                }
            }
            // Listed a moment ago and gone now: expire removed it while verify ran.
            Outcome::Missing => log_detail!("'{shown}' was removed while verify ran, skipped"),
            Outcome::Invalid(reason) => {
                result.checked += 1;
                result.invalid += 1;
                errors.report(&format!("archived WAL file '{shown}' is invalid: {reason}"));
                if let Some(segment) = segment {
                    result.damaged.insert(segment);
                }
            }
        }
    }
    for (archive_id, result) in &mut results {
        result
            .damaged
            .retain(|segment| !result.valid.contains(segment));
        log_info!(
            "archive id {archive_id}: {} WAL file(s) checked, {} invalid",
            result.checked,
            result.invalid
        );
    }
    results
}

/// Reports one backup's problems (each stored file once, whichever backup needs it first) and
/// its summary line.
fn report_backup(
    repo: &dyn Storage,
    backup: &BackupCheck,
    jobs: &[Job],
    outcomes: &[Outcome],
    archives: &BTreeMap<String, ArchiveResult>,
    reported: &mut BTreeSet<usize>,
    errors: &mut Errors,
) {
    let label = &backup.record.label;
    let mut problems = Vec::new();
    if let Some(problem) = &backup.manifest_problem {
        errors.report(&format!("backup {label}: {problem}"));
        problems.push("manifest unusable".to_string());
    }
    let (mut missing, mut corrupt) = (0, 0);
    for &index in &backup.files {
        let shown = repo.describe(&jobs[index].check.path);
        let first_time = reported.insert(index);
        match &outcomes[index] {
            Outcome::Valid { .. } => {}
            Outcome::Missing => {
                missing += 1;
                if first_time {
                    errors.report(&format!("backup file '{shown}' is missing"));
                }
            }
            Outcome::Invalid(reason) => {
                corrupt += 1;
                if first_time {
                    errors.report(&format!("backup file '{shown}' is invalid: {reason}"));
                }
            }
        }
    }
    if missing > 0 {
        problems.push(format!("{missing} file(s) missing"));
    }
    if corrupt > 0 {
        problems.push(format!("{corrupt} corrupt"));
    }
    if let Some((archive_id, start, stop)) = &backup.wal
        && let Some(archive) = archives.get(archive_id)
    {
        let size = wal::segment_size(&archive.sizes);
        let status = wal::range_status(*start, *stop, size, &archive.valid, &archive.damaged);
        if !status.missing.is_empty() {
            let runs: Vec<String> = status.missing.iter().map(wal::describe_run).collect();
            errors.report(&format!(
                "backup {label} needs WAL {}..{} from archive id {archive_id}: missing {}",
                start.name(),
                stop.name(),
                runs.join(", ")
            ));
            problems.push(format!("WAL missing: {}", runs.join(", ")));
        }
        if !status.invalid.is_empty() {
            problems.push(format!("WAL invalid: {}", status.invalid.join(", ")));
        }
    }
    if problems.is_empty() {
        log_info!("backup {label}: valid");
    } else {
        log_info!("backup {label}: invalid ({})", problems.join(", "));
    }
}
