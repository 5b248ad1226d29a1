//! Reporting what a verify run found: each damaged file once, a count per archive id, and one
//! line per backup, `backup <label>: valid` or `backup <label>: invalid (...)`.
//!
//! Problems are logged at error level and counted (the count decides the exit code); what
//! does not stop a restore, a hole in the archive that no backup needs, is a warning. The
//! counts are also kept, per archive id and per backup, for the text report (render.rs).

use std::collections::{BTreeMap, BTreeSet};

use crate::pg::wal::WalFileKind;
use crate::storage::Storage;
use crate::{log_detail, log_info, log_warn};

use super::file::{Damage, Outcome};
use super::{BackupCheck, Errors, Job, wal};

/// Damaged files by kind, in the classes of pgBackRest's report.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Counts {
    pub missing: usize,
    pub checksum: usize,
    pub size: usize,
    pub other: usize,
}

impl Counts {
    /// Counts one file's outcome (a valid file counts nowhere).
    fn add(&mut self, outcome: &Outcome) {
        match outcome {
            Outcome::Valid { .. } => {}
            Outcome::Missing => self.missing += 1,
            Outcome::Invalid(Damage::Checksum, _) => self.checksum += 1,
            Outcome::Invalid(Damage::Size, _) => self.size += 1,
            Outcome::Invalid(Damage::Other, _) => self.other += 1,
        }
    }

    pub fn total(&self) -> usize {
        self.missing + self.checksum + self.size + self.other
    }
}

/// What the archive of one archive id holds, after checking.
#[derive(Default)]
pub struct ArchiveResult {
    /// Every archived file read: segments, `.partial` and `.backup` files.
    pub checked: usize,
    invalid: usize,
    pub damage: Counts,
    /// Segments with a valid stored file.
    valid: BTreeSet<String>,
    /// Segments stored only as damaged files.
    damaged: BTreeSet<String>,
    sizes: Vec<u64>,
}

impl ArchiveResult {
    /// The files read and found valid.
    pub fn valid_files(&self) -> usize {
        self.checked - self.invalid
    }

    /// A result with these counts, for tests of the report.
    #[cfg(test)]
    pub fn for_report(checked: usize, damage: Counts) -> ArchiveResult {
        ArchiveResult {
            checked,
            invalid: damage.total(),
            damage,
            ..ArchiveResult::default()
        }
    }
}

/// The state of one backup as the report shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackupStatus {
    Valid,
    Invalid,
    /// Neither the manifest nor its copy exists.
    ManifestMissing,
}

impl BackupStatus {
    /// pgBackRest's word for it.
    pub fn name(self) -> &'static str {
        match self {
            BackupStatus::Valid => "valid",
            BackupStatus::Invalid => "invalid",
            BackupStatus::ManifestMissing => "manifest missing",
        }
    }
}

/// What verify found for one backup.
pub struct BackupResult {
    pub label: String,
    pub status: BackupStatus,
    /// Files in the manifest, zero-length ones (stored nowhere) included.
    pub checked: usize,
    pub valid: usize,
    pub damage: Counts,
    /// What makes the backup invalid beyond its files (its WAL, its manifest), as listed in
    /// its `invalid (...)` line.
    pub other_problems: Vec<String>,
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
            Outcome::Invalid(_, reason) => {
                result.checked += 1;
                result.invalid += 1;
                result.damage.add(outcome);
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
/// its summary line; returns its counts for the text report.
pub fn report_backup(
    repo: &dyn Storage,
    backup: &BackupCheck,
    jobs: &[Job],
    outcomes: &[Outcome],
    archives: &BTreeMap<String, ArchiveResult>,
    reported: &mut BTreeSet<usize>,
    errors: &mut Errors,
) -> BackupResult {
    let label = &backup.record.label;
    let mut problems = Vec::new();
    if let Some(problem) = &backup.manifest_problem {
        errors.report(&format!("backup {label}: {problem}"));
        problems.push("manifest unusable".to_string());
    }
    let (mut missing, mut corrupt) = (0, 0);
    let mut damage = Counts::default();
    for &index in &backup.files {
        let shown = jobs[index].check.describe(repo);
        let first_time = reported.insert(index);
        damage.add(&outcomes[index]);
        match &outcomes[index] {
            Outcome::Valid { .. } => {}
            Outcome::Missing => {
                missing += 1;
                if first_time {
                    errors.report(&format!("backup file {shown} is missing"));
                }
            }
            Outcome::Invalid(_, reason) => {
                corrupt += 1;
                if first_time {
                    errors.report(&format!("backup file {shown} is invalid: {reason}"));
                }
            }
        }
    }
    // Beyond the files: an unusable manifest (a missing one is the status itself) and the WAL.
    let mut other_problems: Vec<String> = match backup.manifest_missing {
        true => Vec::new(),
        false => problems.clone(),
    };
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
            other_problems.push(format!("WAL missing: {}", runs.join(", ")));
        }
        if !status.invalid.is_empty() {
            problems.push(format!("WAL invalid: {}", status.invalid.join(", ")));
            other_problems.push(format!("WAL invalid: {}", status.invalid.join(", ")));
        }
    }
    if problems.is_empty() {
        log_info!("backup {label}: valid");
    } else {
        log_info!("backup {label}: invalid ({})", problems.join(", "));
    }
    let status = if backup.manifest_missing {
        BackupStatus::ManifestMissing
    } else if problems.is_empty() {
        BackupStatus::Valid
    } else {
        BackupStatus::Invalid
    };
    // pgBackRest counts every file of the manifest; the zero-length ones pgkeep stores nowhere
    // are valid by construction.
    let checked = backup.manifest_files;
    BackupResult {
        label: label.clone(),
        status,
        checked,
        valid: checked.saturating_sub(damage.total()),
        damage,
        other_problems,
    }
}
