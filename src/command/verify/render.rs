//! The text report of `verify --output=text`, in pgBackRest's format, so that scripts and
//! habits built on pgBackRest's report keep working:
//!
//! ```text
//! stanza: demo
//! status: error
//!   archiveId: 15-1, total WAL checked: 10, total valid WAL: 10
//!     missing: 0, checksum invalid: 0, size invalid: 0, other: 0
//!   backup: 20261124-224626F, status: invalid, total files checked: 966, total valid files: 965
//!     other: 1
//! ```
//!
//! Without `--verbose` only what has problems is listed (and only the counts that are not
//! zero), and a run without problems has no report at all. With it every archive id and
//! backup is listed with every count. pgkeep adds, under a backup, the problems beyond its
//! files that make it invalid (the WAL it needs, an unusable manifest): pgBackRest 2.45 does
//! not check them. The counts of an archive id include the `.partial` and `.backup` files
//! pgkeep checks too; pgBackRest counts WAL segments only.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::report::{ArchiveResult, BackupResult, BackupStatus, Counts};

/// What a verify run found, as the report needs it.
pub struct Report<'a> {
    pub stanza: &'a str,
    /// Every problem logged at error level: `status: error` when there was one.
    pub errors: usize,
    /// Problems of archive.info and backup.info, one line each.
    pub info_problems: &'a [String],
    pub archives: &'a BTreeMap<String, ArchiveResult>,
    pub backups: &'a [BackupResult],
}

/// The report, lines separated by `\n` without a final one; empty when there is nothing to
/// say (no problem, not `verbose`).
pub fn render(report: &Report, verbose: bool) -> String {
    if !verbose && report.errors == 0 {
        return String::new();
    }
    let status = if report.errors > 0 { "error" } else { "ok" };
    let mut out = format!("stanza: {}\nstatus: {status}", report.stanza);
    for problem in report.info_problems {
        let _ = write!(out, "\n  {problem}");
    }
    // An archive id with nothing archived yet has nothing to report, as in pgBackRest, which
    // lists the archive ids it finds in the repository.
    let archives: Vec<(&String, &ArchiveResult)> = report
        .archives
        .iter()
        .filter(|(_, archive)| archive.checked > 0)
        .collect();
    if archives.is_empty() && report.backups.is_empty() {
        out.push_str("\n    no archives or backups exist in the repo");
        return out;
    }
    if verbose && archives.is_empty() {
        out.push_str("\n  archiveId: none found");
    }
    for (archive_id, archive) in archives {
        if verbose || archive.valid_files() != archive.checked {
            let _ = write!(
                out,
                "\n  archiveId: {archive_id}, total WAL checked: {}, total valid WAL: {}",
                archive.checked,
                archive.valid_files()
            );
        }
        out.push_str(&counts(&archive.damage, verbose));
    }
    if verbose && report.backups.is_empty() {
        out.push_str("\n  backup: none found");
    }
    for backup in report.backups {
        let listed = verbose || backup.status != BackupStatus::Valid;
        if listed {
            let _ = write!(
                out,
                "\n  backup: {}, status: {}, total files checked: {}, total valid files: {}",
                backup.label,
                backup.status.name(),
                backup.checked,
                backup.valid
            );
        }
        if backup.checked > 0 {
            out.push_str(&counts(&backup.damage, verbose));
        }
        if listed {
            for problem in &backup.other_problems {
                let _ = write!(out, "\n    {problem}");
            }
        }
    }
    out
}

/// The line of damaged-file counts: every count when `verbose`, else only those above zero,
/// and no line when there are none.
fn counts(counts: &Counts, verbose: bool) -> String {
    let all = [
        ("missing", counts.missing),
        ("checksum invalid", counts.checksum),
        ("size invalid", counts.size),
        ("other", counts.other),
    ];
    let shown: Vec<String> = all
        .iter()
        .filter(|(_, count)| verbose || *count > 0)
        .map(|(name, count)| format!("{name}: {count}"))
        .collect();
    if shown.is_empty() {
        return String::new();
    }
    format!("\n    {}", shown.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn backup(label: &str, checked: usize, damage: Counts, problems: &[&str]) -> BackupResult {
        let invalid = damage.total() > 0 || !problems.is_empty();
        BackupResult {
            label: label.to_string(),
            status: if invalid {
                BackupStatus::Invalid
            } else {
                BackupStatus::Valid
            },
            checked,
            valid: checked - damage.total(),
            damage,
            other_problems: problems.iter().map(|p| p.to_string()).collect(),
        }
    }

    fn archives(checked: usize, damage: Counts) -> BTreeMap<String, ArchiveResult> {
        let archive = ArchiveResult::for_report(checked, damage);
        BTreeMap::from([("15-1".to_string(), archive)])
    }

    #[test]
    fn a_healthy_repository_has_no_report_unless_verbose() {
        let backups = [backup("20261124-224626F", 966, Counts::default(), &[])];
        let archives = archives(10, Counts::default());
        let report = Report {
            stanza: "demo",
            errors: 0,
            info_problems: &[],
            archives: &archives,
            backups: &backups,
        };
        assert_eq!(render(&report, false), "");
        assert_eq!(
            render(&report, true),
            "stanza: demo\nstatus: ok\n\
             \x20 archiveId: 15-1, total WAL checked: 10, total valid WAL: 10\n\
             \x20   missing: 0, checksum invalid: 0, size invalid: 0, other: 0\n\
             \x20 backup: 20261124-224626F, status: valid, total files checked: 966, total valid files: 966\n\
             \x20   missing: 0, checksum invalid: 0, size invalid: 0, other: 0"
        );
    }

    #[test]
    fn without_verbose_only_problems_and_their_nonzero_counts_are_listed() {
        let damaged = Counts {
            other: 1,
            ..Counts::default()
        };
        let backups = [
            backup("20261124-224626F", 966, damaged, &[]),
            backup(
                "20261124-224626F_20261124-224629I",
                967,
                Counts::default(),
                &[],
            ),
            backup(
                "20261124-224626F_20261124-224631I",
                967,
                Counts::default(),
                &["WAL missing: 000000010000000000000009"],
            ),
        ];
        let archives = archives(10, Counts::default());
        let report = Report {
            stanza: "demo",
            errors: 2,
            info_problems: &[],
            archives: &archives,
            backups: &backups,
        };
        assert_eq!(
            render(&report, false),
            "stanza: demo\nstatus: error\n\
             \x20 backup: 20261124-224626F, status: invalid, total files checked: 966, total valid files: 965\n\
             \x20   other: 1\n\
             \x20 backup: 20261124-224626F_20261124-224631I, status: invalid, total files checked: 967, total valid files: 967\n\
             \x20   WAL missing: 000000010000000000000009"
        );
    }

    #[test]
    fn an_empty_repository_says_so_when_there_is_a_report() {
        let archives = archives(0, Counts::default());
        let report = Report {
            stanza: "demo",
            errors: 1,
            info_problems: &["No usable backup.info file".to_string()],
            archives: &archives,
            backups: &[],
        };
        assert_eq!(
            render(&report, true),
            "stanza: demo\nstatus: error\n  No usable backup.info file\n    no archives or backups exist in the repo"
        );
    }
}
