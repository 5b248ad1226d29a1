//! Reporting what a verify run found: each damaged file once, a count per archive id, and one
//! line per backup, `backup <label>: valid` or `backup <label>: invalid (...)`.
//!
//! Problems are logged at error level and counted (the count decides the exit code); what
//! does not stop a restore, a hole in the archive that no backup needs, is a warning.

use std::collections::{BTreeMap, BTreeSet};

use crate::pg::wal::WalFileKind;
use crate::storage::Storage;
use crate::{log_detail, log_info, log_warn};

use super::file::Outcome;
use super::{BackupCheck, Errors, Job, wal};

/// What the archive of one archive id holds, after checking.
#[derive(Default)]
pub struct ArchiveResult {
    checked: usize,
    invalid: usize,
    /// Segments with a valid stored file.
    valid: BTreeSet<String>,
    /// Segments stored only as damaged files.
    damaged: BTreeSet<String>,
    sizes: Vec<u64>,
}

/// Reports damaged WAL files, each archive id's counts and, with `gaps`, the holes in its
/// archive; returns what each archive id holds.
pub fn report_wal(
    repo: &dyn Storage,
    archive_ids: &[String],
    jobs: &[Job],
    outcomes: &[Outcome],
    gaps: bool,
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
        if !gaps {
            continue;
        }
        // A hole does not make a backup invalid unless the backup needs it (reported with the
        // backup), but point-in-time recovery cannot cross it: worth a warning.
        let stored: BTreeSet<String> = result.valid.union(&result.damaged).cloned().collect();
        for run in wal::gaps(&stored, wal::segment_size(&result.sizes)) {
            log_warn!(
                "archive id {archive_id}: WAL {} is missing: point-in-time recovery cannot cross it",
                wal::describe_run(&run)
            );
        }
    }
    results
}

/// Reports one backup's problems (each stored file once, whichever backup needs it first) and
/// its summary line.
pub fn report_backup(
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
        let shown = jobs[index].check.describe(repo);
        let first_time = reported.insert(index);
        match &outcomes[index] {
            Outcome::Valid { .. } => {}
            Outcome::Missing => {
                missing += 1;
                if first_time {
                    errors.report(&format!("backup file {shown} is missing"));
                }
            }
            Outcome::Invalid(reason) => {
                corrupt += 1;
                if first_time {
                    errors.report(&format!("backup file {shown} is invalid: {reason}"));
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
