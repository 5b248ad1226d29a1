//! `target-timeline` checked against the timeline history files in the archive.
//!
//! Recovery from a backup taken on timeline T can follow timeline N only when N is T or a
//! descendant of T that branched off T at or after the backup's stop LSN: otherwise
//! PostgreSQL replays into a history the backup is not part of and refuses to start
//! ("requested timeline is not a child of this server's history"). The check runs before
//! anything is written, so the DBA learns it from restore, not from the server log. `current`
//! needs no check; `latest` is the highest timeline with a history file in the archive (and is
//! PostgreSQL's default from 12 on).

use crate::error::{Error, ErrorKind, Result};
use crate::pg::history::{self, HistoryEntry};
use crate::pg::wal::Lsn;

/// What `target-timeline` asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimelineTarget {
    Current,
    Latest,
    Id(u32),
}

/// Parses `current`, `latest`, a decimal or a `0x` hexadecimal timeline id, as PostgreSQL does.
pub fn parse(text: &str) -> Result<TimelineTarget> {
    let id = match text {
        "current" => return Ok(TimelineTarget::Current),
        "latest" => return Ok(TimelineTarget::Latest),
        hex if hex.starts_with("0x") || hex.starts_with("0X") => {
            u32::from_str_radix(&hex[2..], 16).ok()
        }
        decimal => decimal.parse::<u32>().ok(),
    };
    id.filter(|id| *id > 0)
        .map(TimelineTarget::Id)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::OptionInvalidValue,
                format!("'{text}' is not valid for 'target-timeline' option"),
            )
            .with_hint("use current, latest or a timeline id such as 2 or 0x2")
        })
}

/// The archive's history files: timeline id → content.
pub type Histories = Vec<(u32, String)>;

/// Checks that recovery from a backup on `backup_timeline` that ended at `backup_stop` can
/// follow `target`. Returns the timeline followed (for the log).
pub fn check(
    target: TimelineTarget,
    backup_timeline: u32,
    backup_stop: Lsn,
    label: &str,
    histories: &Histories,
) -> Result<u32> {
    let wanted = match target {
        TimelineTarget::Current => return Ok(backup_timeline),
        TimelineTarget::Latest => histories
            .iter()
            .map(|(id, _)| *id)
            .max()
            .unwrap_or(backup_timeline)
            .max(backup_timeline),
        TimelineTarget::Id(id) => id,
    };
    if wanted == backup_timeline {
        return Ok(wanted);
    }
    let hint = "restore a backup set of that timeline, or use --target-timeline=current to stay \
                on the backup's timeline";
    if wanted < backup_timeline {
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!(
                "target timeline {wanted} is not a descendant of backup set '{label}' timeline \
                 {backup_timeline}"
            ),
        )
        .with_hint(hint));
    }
    let name = format!("{wanted:08X}.history");
    let text = histories
        .iter()
        .find(|(id, _)| *id == wanted)
        .map(|(_, text)| text)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::FileMissing,
                format!("target timeline {wanted} has no history file '{name}' in the archive"),
            )
            .with_hint(
                "a timeline's history file is archived when it is created: check the timeline id",
            )
        })?;
    let entries: Vec<HistoryEntry> =
        history::parse(text).map_err(|e| e.context(format!("unable to read '{name}'")))?;
    let Some(branch) = entries.iter().find(|e| e.timeline == backup_timeline) else {
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!(
                "target timeline {wanted} is not a descendant of backup set '{label}' timeline \
                 {backup_timeline}"
            ),
        )
        .with_hint(hint));
    };
    if branch.switch_lsn < backup_stop {
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!(
                "target timeline {wanted} branched off timeline {backup_timeline} at {}, before \
                 backup set '{label}' ended at {backup_stop}",
                branch.switch_lsn
            ),
        )
        .with_hint(hint));
    }
    Ok(wanted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lsn(text: &str) -> Lsn {
        text.parse().unwrap()
    }

    fn histories() -> Histories {
        vec![
            (2, "1\t0/5000000\tno recovery target specified\n".into()),
            (
                3,
                "1\t0/5000000\tno recovery target specified\n2\t0/9000000\tbefore 2026-11-24\n"
                    .into(),
            ),
        ]
    }

    #[test]
    fn timeline_targets_parse_like_postgresql() {
        assert_eq!(parse("current").unwrap(), TimelineTarget::Current);
        assert_eq!(parse("latest").unwrap(), TimelineTarget::Latest);
        assert_eq!(parse("3").unwrap(), TimelineTarget::Id(3));
        assert_eq!(parse("0x1A").unwrap(), TimelineTarget::Id(26));
        for bad in ["0", "-1", "x", "", "0x"] {
            let err = parse(bad).unwrap_err();
            assert_eq!(err.kind(), ErrorKind::OptionInvalidValue, "{bad}");
        }
    }

    #[test]
    fn descendants_branching_after_the_backup_are_accepted() {
        let h = histories();
        assert_eq!(
            check(TimelineTarget::Id(3), 1, lsn("0/4000000"), "L", &h).unwrap(),
            3
        );
        assert_eq!(
            check(TimelineTarget::Id(3), 2, lsn("0/8000000"), "L", &h).unwrap(),
            3
        );
        assert_eq!(
            check(TimelineTarget::Latest, 1, lsn("0/5000000"), "L", &h).unwrap(),
            3
        );
        assert_eq!(
            check(TimelineTarget::Current, 1, lsn("0/F000000"), "L", &h).unwrap(),
            1
        );
        assert_eq!(
            check(TimelineTarget::Latest, 1, lsn("0/1"), "L", &vec![]).unwrap(),
            1
        );
    }

    #[test]
    fn a_timeline_that_branched_before_the_backup_ended_is_refused() {
        let err = check(
            TimelineTarget::Id(2),
            1,
            lsn("0/6000000"),
            "L",
            &histories(),
        )
        .unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OptionInvalidValue);
        assert_eq!(
            err.message(),
            "target timeline 2 branched off timeline 1 at 0/5000000, before backup set 'L' ended \
             at 0/6000000"
        );
        // `latest` is checked the same way.
        assert!(
            check(
                TimelineTarget::Latest,
                2,
                lsn("0/A000000"),
                "L",
                &histories()
            )
            .is_err()
        );
    }

    #[test]
    fn unknown_and_ancestor_timelines_are_refused() {
        let err = check(TimelineTarget::Id(7), 1, lsn("0/1"), "L", &histories()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileMissing);
        assert_eq!(
            err.message(),
            "target timeline 7 has no history file '00000007.history' in the archive"
        );
        let err = check(TimelineTarget::Id(1), 2, lsn("0/1"), "L", &histories()).unwrap_err();
        assert_eq!(
            err.message(),
            "target timeline 1 is not a descendant of backup set 'L' timeline 2"
        );
        let h = vec![(4, "2\t0/5000000\tx\n3\t0/6000000\ty\n".to_string())];
        let err = check(TimelineTarget::Id(4), 1, lsn("0/1"), "L", &h).unwrap_err();
        assert!(err.message().contains("is not a descendant"), "{err}");
    }
}
