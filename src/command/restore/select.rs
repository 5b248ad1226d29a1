//! Choosing the backup set to restore: `--set`, or the one that can reach the target.
//!
//! A backup can reach a time or LSN target only when it became consistent before the target:
//! recovery must replay past the backup's stop point before it may stop. For an LSN target
//! that is `lsn_stop <= target`. For a time target it is `timestamp_stop + 1s <= target`,
//! because backup.info records the stop time in whole seconds, taken after the backup became
//! consistent: the real end lies somewhere in that second. Without `--set` the newest such
//! backup is chosen; a `--set` that cannot reach the target is refused, naming the one that
//! can. xid and name targets cannot be placed against backups, so they restore `--set` or the
//! latest backup. Pure: the caller logs the reason returned.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::Lsn;
use crate::repo::BackupRecord;

use super::target::{Target, format_unix};

/// The chosen backup and, when it was chosen for a target, why (for the log).
#[derive(Debug)]
pub struct Choice<'a> {
    pub record: &'a BackupRecord,
    pub reason: Option<String>,
}

/// Chooses among `backups` (oldest first). `set` is `--set` ('latest' counts as not given);
/// `target` the parsed target with `shown`, the target as the user wrote it.
pub fn choose<'a>(
    backups: &'a [BackupRecord],
    set: Option<&str>,
    target: Option<(&Target, &str)>,
) -> Result<Choice<'a>> {
    let set = set.filter(|s| *s != "latest");
    let newest_usable = |target: &Target| backups.iter().rev().find(|b| reaches(b, target));
    match (set, target) {
        (Some(label), target) => {
            let record = backups.iter().find(|b| b.label == label).ok_or_else(|| {
                Error::new(
                    ErrorKind::BackupSetInvalid,
                    format!("backup set '{label}' is not valid"),
                )
                .with_hint(format!(
                    "'{}' lists the backup sets of the stanza",
                    crate::error::command_hint("info")
                ))
            })?;
            let Some((target, shown)) = target else {
                return Ok(Choice {
                    record,
                    reason: None,
                });
            };
            if reaches(record, target) {
                let reason = format!(
                    "backup set {label} ended at {}, before the {} target '{shown}'",
                    stop_of(record, target),
                    kind_of(target)
                );
                return Ok(Choice {
                    record,
                    reason: Some(reason),
                });
            }
            let hint = match newest_usable(target) {
                Some(usable) => format!(
                    "the newest backup set that ended before the target is '{}' (ended at {}): \
                     use --set={}, or leave out --set to have it chosen",
                    usable.label,
                    stop_of(usable, target),
                    usable.label
                ),
                None => "no backup set ended before the target: choose a later target".into(),
            };
            Err(Error::new(
                ErrorKind::BackupSetInvalid,
                format!(
                    "backup set '{label}' ended at {}, not before the {} target '{shown}': \
                     recovery from it cannot stop at the target",
                    stop_of(record, target),
                    kind_of(target)
                ),
            )
            .with_hint(hint))
        }
        (None, Some((target, shown))) => {
            let Some(oldest) = backups.first() else {
                return Err(no_backup());
            };
            match newest_usable(target) {
                Some(record) => Ok(Choice {
                    record,
                    reason: Some(format!(
                        "backup set {} chosen for {} target '{shown}': the newest backup that \
                         ended before it (at {})",
                        record.label,
                        kind_of(target),
                        stop_of(record, target)
                    )),
                }),
                None => Err(Error::new(
                    ErrorKind::BackupSetInvalid,
                    format!(
                        "no backup set ended before the {} target '{shown}': the oldest, '{}', \
                         ended at {}",
                        kind_of(target),
                        oldest.label,
                        stop_of(oldest, target)
                    ),
                )
                .with_hint("the target is before every backup: choose a later target")),
            }
        }
        (None, None) => backups
            .last()
            .map(|record| Choice {
                record,
                reason: None,
            })
            .ok_or_else(no_backup),
    }
}

fn no_backup() -> Error {
    Error::new(
        ErrorKind::BackupSetInvalid,
        "no backup set found to restore",
    )
    .with_hint("take a backup first: pgkeep --stanza=<stanza> backup")
}

/// Whether recovery from `record` can stop at `target`; see the module comment.
pub fn reaches(record: &BackupRecord, target: &Target) -> bool {
    match target {
        Target::Time { at, .. } => {
            jiff::Timestamp::from_second(record.timestamp_stop.saturating_add(1))
                .is_ok_and(|end| end <= *at)
        }
        Target::Lsn(lsn) => record
            .lsn_stop
            .parse::<Lsn>()
            .is_ok_and(|stop| stop <= *lsn),
    }
}

fn stop_of(record: &BackupRecord, target: &Target) -> String {
    match target {
        Target::Time { .. } => format!("'{}'", format_unix(record.timestamp_stop)),
        Target::Lsn(_) => format!("LSN {}", record.lsn_stop),
    }
}

fn kind_of(target: &Target) -> &'static str {
    match target {
        Target::Time { .. } => "time",
        Target::Lsn(_) => "lsn",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::restore::target::{parse_lsn, parse_time};
    use crate::repo::BackupType;

    fn record(label: &str, stop: i64, lsn_stop: &str) -> BackupRecord {
        BackupRecord {
            label: label.into(),
            backup_type: BackupType::Full,
            prior: None,
            references: vec![],
            db_id: 1,
            timestamp_start: stop - 10,
            timestamp_stop: stop,
            lsn_start: "0/1000028".into(),
            lsn_stop: lsn_stop.into(),
            archive_start: String::new(),
            archive_stop: String::new(),
            size: 0,
            delta: 0,
            repo_size: 0,
            repo_delta: 0,
            annotation: Default::default(),
            version: None,
            error: None,
        }
    }

    // 2026-11-24 21:00:00+00 is 1795554000.
    const T21: i64 = 1_795_554_000;

    fn backups() -> Vec<BackupRecord> {
        vec![
            record("A", T21 - 3600, "0/2000100"),
            record("B", T21 - 60, "0/4000100"),
            record("C", T21 + 3600, "0/6000100"),
        ]
    }

    #[test]
    fn a_time_target_chooses_the_newest_backup_that_ended_before_it() {
        let backups = backups();
        let target = parse_time("2026-11-24 21:00:00+00").unwrap();
        let choice = choose(&backups, None, Some((&target, "t"))).unwrap();
        assert_eq!(choice.record.label, "B");
        assert_eq!(
            choice.reason.unwrap(),
            "backup set B chosen for time target 't': the newest backup that ended before it \
             (at '2026-11-24 20:59:00+00')"
        );
        let choice = choose(&backups, Some("latest"), Some((&target, "t"))).unwrap();
        assert_eq!(choice.record.label, "B");
    }

    #[test]
    fn a_backup_ending_in_the_target_second_is_not_trusted() {
        let backups = vec![record("A", T21 - 3600, "0/1"), record("B", T21, "0/2")];
        let half = parse_time("2026-11-24 21:00:00.5+00").unwrap();
        assert_eq!(
            choose(&backups, None, Some((&half, "t")))
                .unwrap()
                .record
                .label,
            "A"
        );
        let next = parse_time("2026-11-24 21:00:01+00").unwrap();
        assert_eq!(
            choose(&backups, None, Some((&next, "t")))
                .unwrap()
                .record
                .label,
            "B"
        );
    }

    #[test]
    fn a_set_that_ended_after_the_target_is_refused_naming_the_usable_one() {
        let backups = backups();
        let target = parse_time("2026-11-24 21:00:00+00").unwrap();
        let err = choose(
            &backups,
            Some("C"),
            Some((&target, "2026-11-24 21:00:00+00")),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BackupSetInvalid);
        assert_eq!(
            err.message(),
            "backup set 'C' ended at '2026-11-24 22:00:00+00', not before the time target \
             '2026-11-24 21:00:00+00': recovery from it cannot stop at the target"
        );
        assert_eq!(
            err.hint().unwrap(),
            "the newest backup set that ended before the target is 'B' (ended at \
             '2026-11-24 20:59:00+00'): use --set=B, or leave out --set to have it chosen"
        );
        let ok = choose(&backups, Some("A"), Some((&target, "t"))).unwrap();
        assert_eq!(ok.record.label, "A");
        assert!(ok.reason.unwrap().contains("before the time target 't'"));
    }

    #[test]
    fn a_target_before_every_backup_is_refused() {
        let backups = backups();
        let target = parse_time("2026-11-24 19:00:00+00").unwrap();
        let err = choose(&backups, None, Some((&target, "early"))).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BackupSetInvalid);
        assert_eq!(
            err.message(),
            "no backup set ended before the time target 'early': the oldest, 'A', ended at \
             '2026-11-24 20:00:00+00'"
        );
        let err = choose(&backups, Some("B"), Some((&target, "early"))).unwrap_err();
        assert_eq!(
            err.hint().unwrap(),
            "no backup set ended before the target: choose a later target"
        );
    }

    #[test]
    fn lsn_targets_compare_with_the_stop_lsn() {
        let backups = backups();
        let target = parse_lsn("0/5000000").unwrap();
        assert_eq!(
            choose(&backups, None, Some((&target, "0/5000000")))
                .unwrap()
                .record
                .label,
            "B"
        );
        let exact = parse_lsn("0/4000100").unwrap();
        assert_eq!(
            choose(&backups, None, Some((&exact, "x")))
                .unwrap()
                .record
                .label,
            "B"
        );
        let err = choose(&backups, Some("C"), Some((&target, "0/5000000"))).unwrap_err();
        assert!(
            err.message()
                .starts_with("backup set 'C' ended at LSN 0/6000100, not before the lsn target"),
            "{err}"
        );
    }

    #[test]
    fn without_a_target_set_or_latest_is_restored() {
        let backups = backups();
        assert_eq!(choose(&backups, None, None).unwrap().record.label, "C");
        assert_eq!(choose(&backups, Some("A"), None).unwrap().record.label, "A");
        let err = choose(&backups, Some("Z"), None).unwrap_err();
        assert_eq!(err.message(), "backup set 'Z' is not valid");
        assert_eq!(
            choose(&[], None, None).unwrap_err().kind(),
            ErrorKind::BackupSetInvalid
        );
    }
}
