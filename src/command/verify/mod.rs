//! verify: read the whole repository of a stanza and report what could not be restored.
//!
//! Checks, in order: archive.info and backup.info with their copies (a damaged twin is a
//! warning, a pair with no valid file an error), then each backup's manifest and its copy, then
//! in parallel (`process-max`) every backup file against its manifest entry (size, stored size,
//! SHA-256 after decompression) and every archived WAL file against the checksum in its name,
//! and last whether each backup's WAL from `archive_start` to `archive_stop` is in the archive.
//! A hole in the archive that no backup needs is only a warning: restores still work, but
//! point-in-time recovery cannot cross it.
//! A file that several backups reference is read once, in the backup that holds it, and
//! counts against every backup that needs it. With `--set`, only that backup, the files it
//! needs and the WAL of its range are read.
//!
//! Every problem is logged as an error line when found (so a log file keeps them all) and the
//! command fails with `CommandError` (104) when there was at least one; each backup gets one
//! line at info level, `backup <label>: valid` or `backup <label>: invalid (...)`, and each
//! archive id a count of the WAL checked. verify takes no lock and writes nothing: backups and
//! archive-push run alongside it. A backup expired by a concurrent expire is skipped rather
//! than reported as missing files.
//!
//! At the end comes pgBackRest's report (render.rs): logged at info level when it is not empty,
//! and printed to stdout with `--output=text`. Unlike pgBackRest, which exits 0 whatever it
//! found, a damaged repository still ends in `CommandError` (104), so that a script or a monitoring
//! check sees it.

mod file;
mod info;
mod plan;
mod render;
mod report;
use crate::repo::archived_wal as wal;

use std::cmp::Reverse;
use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::pg::wal::WalSegment;
use crate::repo::archive_info::stanza_missing;
use crate::repo::{ArchiveInfo, BackupInfo, BackupRecord, DbHistory, layout};
use crate::storage::Storage;
use crate::{log_detail, log_error, log_info, log_warn};

use super::open::{self, Access};
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
    let opened = open::stanza_repo(cfg, Access::Inspect)?;
    let (stanza, repo) = (opened.stanza, &opened.repo);
    let settings = VerifySettings {
        set: cfg.str(Opt::Set),
        buffer_size: open::buffer_size(cfg),
        process_max: open::process_max(cfg),
    };
    let findings = verify(repo, stanza, &settings)?;
    let report = render::render(
        &render::Report {
            stanza,
            errors: findings.errors,
            info_problems: &findings.info_problems,
            archives: &findings.archives,
            backups: &findings.backups,
        },
        cfg.bool(Opt::Verbose),
    );
    if !report.is_empty() {
        log_info!("{report}");
        if cfg.str(Opt::Output) == Some("text") {
            writeln!(std::io::stdout().lock(), "{report}")
                .map_err(|err| Error::io(ErrorKind::FileWrite, "write", "stdout", &err))?;
        }
    }
    let errors = findings.errors;
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

/// What a verify run found: the number of problems and what the report shows.
pub struct Findings {
    /// Problems logged at error level; any makes the command fail.
    pub errors: usize,
    /// Problems of archive.info and backup.info, in pgBackRest's words.
    info_problems: Vec<String>,
    archives: BTreeMap<String, report::ArchiveResult>,
    backups: Vec<report::BackupResult>,
}

/// One backup being verified.
struct BackupCheck {
    record: BackupRecord,
    manifest_problem: Option<String>,
    /// Neither the manifest nor its copy exists.
    manifest_missing: bool,
    /// Files the manifest lists, including zero-length ones stored nowhere.
    manifest_files: usize,
    /// Indexes of the jobs holding its files.
    files: Vec<usize>,
    /// The archive id and range of the WAL it needs, when it needs WAL from the archive.
    wal: Option<(String, WalSegment, WalSegment)>,
}

/// One file to read, and whom it concerns.
struct Job {
    check: FileCheck,
    /// For ordering: larger files start first.
    size_hint: u64,
    /// For WAL: the archive id and the stored file.
    wal: Option<(String, wal::StoredWal)>,
}

/// Verifies the stanza; returns what it found (every problem is logged as it is found).
pub fn verify(repo: &dyn Storage, stanza: &str, settings: &VerifySettings) -> Result<Findings> {
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
    let mut info_problems = Vec::new();
    for (missing, name) in [
        (backup_info.is_none(), "backup.info"),
        (archive_info.is_none(), "archive.info"),
    ] {
        if missing {
            info_problems.push(format!("No usable {name} file"));
        }
    }
    if let (Some(archive), Some(backup)) = (&archive_info, &backup_info)
        && let Some(problem) = info::histories_match(archive, backup)
    {
        errors.report(&problem);
        info_problems.push(problem);
    }
    let db_history: Vec<DbHistory> = archive_info
        .map(|a| a.db_history)
        .or_else(|| backup_info.as_ref().map(|b| b.db_history.clone()))
        .unwrap_or_default();

    let records = plan::select_backups(repo, stanza, backup_info.as_ref(), settings.set)?;
    let mut jobs: Vec<Job> = Vec::new();
    let mut backups = Vec::new();
    let mut held: BTreeMap<(String, String), usize> = BTreeMap::new();
    for record in records {
        backups.push(plan::plan_backup(
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
        plan::warn_unknown_archive_ids(repo, stanza, &archive_ids)?;
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
                    block: None,
                    bundled: None,
                },
                size_hint: stored.stored_size,
                wal: Some((archive_id.clone(), stored)),
            });
        }
    }

    let outcomes = check_all(repo, &jobs, settings)?;
    let gaps = settings.set.is_none();
    let archives = report::report_wal(repo, &archive_ids, &jobs, &outcomes, gaps, &mut errors);
    let listed_now = info::listed_labels(repo, &backup_path);
    let mut reported: BTreeSet<usize> = BTreeSet::new();
    let mut results = Vec::new();
    for backup in &backups {
        let label = &backup.record.label;
        if listed_now.as_ref().is_some_and(|l| !l.contains(label)) {
            log_info!("backup {label}: expired while verify ran, skipped");
            continue;
        }
        results.push(report::report_backup(
            repo,
            backup,
            &jobs,
            &outcomes,
            &archives,
            &mut reported,
            &mut errors,
        ));
    }
    if backups.is_empty() && settings.set.is_none() && errors.0 == 0 {
        log_warn!("no backups exist in the repository of stanza '{stanza}'");
    }
    Ok(Findings {
        errors: errors.0,
        info_problems,
        archives,
        backups: results,
    })
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

/// Checks every job on `process-max` workers, largest files first; outcomes in job order.
fn check_all(repo: &dyn Storage, jobs: &[Job], settings: &VerifySettings) -> Result<Vec<Outcome>> {
    let mut order: Vec<usize> = (0..jobs.len()).collect();
    order.sort_by_key(|&i| Reverse(jobs[i].size_hint));
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
