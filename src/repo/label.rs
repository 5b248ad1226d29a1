//! Backup labels and types.
//!
//! A full backup is labelled `YYYYMMDD-HHMMSSF`; a differential or incremental carries the label
//! of its full backup: `<full>_YYYYMMDD-HHMMSSD` or `..I`. Times are local, as the DBA reads them.
//! Labels sort in the order backups were taken, which expire and `latest` rely on.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};

/// The type of a backup.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackupType {
    Full,
    Diff,
    Incr,
}

impl BackupType {
    pub fn name(self) -> &'static str {
        match self {
            BackupType::Full => "full",
            BackupType::Diff => "diff",
            BackupType::Incr => "incr",
        }
    }

    pub fn parse(text: &str) -> Option<BackupType> {
        match text {
            "full" => Some(BackupType::Full),
            "diff" => Some(BackupType::Diff),
            "incr" => Some(BackupType::Incr),
            _ => None,
        }
    }

    fn suffix(self) -> char {
        match self {
            BackupType::Full => 'F',
            BackupType::Diff => 'D',
            BackupType::Incr => 'I',
        }
    }
}

impl fmt::Display for BackupType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A parsed backup label.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupLabel {
    pub backup_type: BackupType,
    /// The label of the full backup this one belongs to (itself for a full).
    pub full: String,
    /// `YYYYMMDD-HHMMSS` of this backup.
    pub stamp: String,
}

impl BackupLabel {
    /// A new label for a backup started at `now` (local time). `full` is the label of the full
    /// backup a diff or incr depends on.
    pub fn format(
        backup_type: BackupType,
        now: &jiff::ZonedDateTime,
        full: Option<&str>,
    ) -> Result<String> {
        let stamp = now.strftime("%Y%m%d-%H%M%S").to_string();
        match (backup_type, full) {
            (BackupType::Full, _) => Ok(format!("{stamp}F")),
            (_, Some(full)) => Ok(format!("{full}_{stamp}{}", backup_type.suffix())),
            (_, None) => Err(Error::new(
                ErrorKind::Assert,
                format!("a {backup_type} backup label needs the label of its full backup"),
            )),
        }
    }

    /// Parses a label, `None` when it is not one.
    pub fn parse(label: &str) -> Option<BackupLabel> {
        // Labels are ASCII; the byte arithmetic below relies on it (no split inside a char).
        if !label.is_ascii() {
            return None;
        }
        let is_stamp = |s: &str| {
            s.len() == 15
                && s.as_bytes()[8] == b'-'
                && s.bytes()
                    .enumerate()
                    .all(|(i, b)| i == 8 || b.is_ascii_digit())
        };
        let (body, last) = label.split_at(label.len().checked_sub(1)?);
        let backup_type = match last {
            "F" => BackupType::Full,
            "D" => BackupType::Diff,
            "I" => BackupType::Incr,
            _ => return None,
        };
        match backup_type {
            BackupType::Full if is_stamp(body) => Some(BackupLabel {
                backup_type,
                full: label.to_string(),
                stamp: body.to_string(),
            }),
            BackupType::Full => None,
            _ => {
                let (full, stamp) = body.split_once('_')?;
                let full_label = BackupLabel::parse(full)?;
                (full_label.backup_type == BackupType::Full && is_stamp(stamp)).then(|| {
                    BackupLabel {
                        backup_type,
                        full: full.to_string(),
                        stamp: stamp.to_string(),
                    }
                })
            }
        }
    }
}

/// The label grammar, as stated in errors and docs.
pub const GRAMMAR: &str = "a backup label is YYYYMMDD-HHMMSSF, or <full label>_YYYYMMDD-HHMMSSD \
                           or ..I";

/// serde helpers for labels read from the repository (manifests, backup.info). A label becomes
/// part of repository paths (`backup/<stanza>/<label>/...`), and expire removes directories by
/// it: one that is not a label (`../../x`) is refused while the file is read, so it can never
/// name a path outside the stanza's backups.
pub mod checked {
    use serde::{Deserialize, Deserializer};

    use super::{BackupLabel, GRAMMAR};

    fn check<E: serde::de::Error>(label: String) -> Result<String, E> {
        if BackupLabel::parse(&label).is_some() {
            return Ok(label);
        }
        let mut shown: String = label.escape_debug().collect();
        if let Some((end, _)) = shown.char_indices().nth(80) {
            shown.truncate(end);
            shown.push_str("...");
        }
        Err(E::custom(format!(
            "'{shown}' is not a backup label: {GRAMMAR}"
        )))
    }

    pub fn label<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        check(String::deserialize(d)?)
    }

    pub fn optional<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
        Option::<String>::deserialize(d)?.map(check).transpose()
    }

    pub fn list<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
        Vec::<String>::deserialize(d)?
            .into_iter()
            .map(check)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> jiff::ZonedDateTime {
        format!("{text}[UTC]").parse().unwrap()
    }

    #[test]
    fn labels_follow_the_pgbackrest_pattern() {
        let now = at("2026-11-24T21:23:45");
        assert_eq!(
            BackupLabel::format(BackupType::Full, &now, None).unwrap(),
            "20261124-212345F"
        );
        assert_eq!(
            BackupLabel::format(BackupType::Diff, &now, Some("20261124-200000F")).unwrap(),
            "20261124-200000F_20261124-212345D"
        );
        assert_eq!(
            BackupLabel::format(BackupType::Incr, &now, Some("20261124-200000F")).unwrap(),
            "20261124-200000F_20261124-212345I"
        );
        assert!(BackupLabel::format(BackupType::Incr, &now, None).is_err());
    }

    #[test]
    fn labels_parse_back() {
        let full = BackupLabel::parse("20261124-212345F").unwrap();
        assert_eq!(full.backup_type, BackupType::Full);
        assert_eq!(full.full, "20261124-212345F");
        let incr = BackupLabel::parse("20261124-212345F_20261125-010203I").unwrap();
        assert_eq!(incr.backup_type, BackupType::Incr);
        assert_eq!(incr.full, "20261124-212345F");
        assert_eq!(incr.stamp, "20261125-010203");
        for bad in [
            "",
            "F",
            "latest",
            "20261124-212345X",
            "2026112-212345F",
            "20261124-212345F_bad",
            "20261124-212345D",
            "é",
            "20261124-21234éF",
            "../../x",
        ] {
            assert_eq!(BackupLabel::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn labels_sort_in_time_order() {
        let mut labels = [
            "20261125-000000F",
            "20261124-212345F_20261124-230000I",
            "20261124-212345F",
            "20261124-212345F_20261124-220000D",
        ];
        labels.sort();
        assert_eq!(labels[0], "20261124-212345F");
        assert_eq!(labels[3], "20261125-000000F");
    }
}
