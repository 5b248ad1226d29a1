//! Timeline history files (`00000002.history`).
//!
//! When a cluster leaves archive recovery on a new timeline, PostgreSQL writes the new
//! timeline's history: one line per ancestor, `<parent timeline>\t<switch LSN>\t<reason>`, in
//! increasing timeline order, with `#` comments and blank lines allowed. [`parse`] reads it the
//! way PostgreSQL's `readTimeLineHistory` does, with the same checks, so a restore can follow a
//! timeline back to the segments of its parents. The file's name is `pg::wal::WalFileKind`'s.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::Lsn;

/// One ancestor of a timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryEntry {
    /// The parent timeline.
    pub timeline: u32,
    /// Where the child timeline branched off the parent: WAL before it belongs to the parent.
    pub switch_lsn: Lsn,
    /// Why recovery ended there, as PostgreSQL wrote it (e.g. "no recovery target specified").
    pub reason: String,
}

/// Splits off the first whitespace-delimited token.
fn token(text: &str) -> (&str, &str) {
    let text = text.trim_start();
    match text.find(char::is_whitespace) {
        Some(end) => (&text[..end], &text[end..]),
        None => (text, ""),
    }
}

/// The most characters of a line an error quotes: a history file comes from the archive,
/// and a line of many megabytes must not become a message of many megabytes.
const SHOWN_MAX: usize = 200;

/// `line` as an error quotes it: whole, or its first [`SHOWN_MAX`] characters and `...`.
fn shown(line: &str) -> String {
    match line.char_indices().nth(SHOWN_MAX) {
        Some((end, _)) => format!("{}...", &line[..end]),
        None => line.to_string(),
    }
}

/// Parses a history file's content into its entries, oldest timeline first.
pub fn parse(text: &str) -> Result<Vec<HistoryEntry>> {
    let mut entries: Vec<HistoryEntry> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let line = line.trim_end_matches('\r');
        let content = line.trim_start();
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let error = |what: &str| {
            Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "syntax error in timeline history line {number} '{}': {what}",
                    shown(line)
                ),
            )
        };
        let (timeline, rest) = token(content);
        let timeline: u32 = timeline
            .parse()
            .ok()
            .filter(|_| timeline.bytes().all(|b| b.is_ascii_digit()))
            .ok_or_else(|| error("expected a numeric timeline ID"))?;
        let (switch, rest) = token(rest);
        let switch_lsn: Lsn = switch
            .parse()
            .map_err(|_| error("expected a write-ahead log switchpoint location"))?;
        if let Some(last) = entries.last()
            && timeline <= last.timeline
        {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "invalid timeline history line {number}: timeline {timeline} follows \
                     timeline {}",
                    last.timeline
                ),
            )
            .with_hint("timeline IDs must be in increasing sequence"));
        }
        entries.push(HistoryEntry {
            timeline,
            switch_lsn,
            reason: rest.trim().to_string(),
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn history_written_by_postgresql_parses() {
        let text = "1\t0/3000158\tno recovery target specified\n\
                    \n\
                    2\t0/5000000\tbefore 2024-01-02 03:04:05.123456+00\n";
        let entries = parse(text).unwrap();
        assert_eq!(
            entries,
            [
                HistoryEntry {
                    timeline: 1,
                    switch_lsn: "0/3000158".parse().unwrap(),
                    reason: "no recovery target specified".to_string(),
                },
                HistoryEntry {
                    timeline: 2,
                    switch_lsn: "0/5000000".parse().unwrap(),
                    reason: "before 2024-01-02 03:04:05.123456+00".to_string(),
                },
            ]
        );
    }

    #[test]
    fn comments_blank_lines_and_missing_reasons_are_accepted() {
        let entries = parse("# comment\r\n  \n1\t0/16B3D48\r\n").unwrap();
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].timeline, 1);
        assert_eq!(entries[0].reason, "");
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn lines_without_a_timeline_or_lsn_are_syntax_errors() {
        let err = parse("x\t0/1\treason\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        assert_eq!(
            err.message(),
            "syntax error in timeline history line 1 'x\t0/1\treason': expected a numeric timeline ID"
        );
        let err = parse("1\t0/1\n2\n").unwrap_err();
        assert_eq!(
            err.message(),
            "syntax error in timeline history line 2 '2': expected a write-ahead log switchpoint \
             location"
        );
        assert!(parse("-1\t0/1\n").is_err());
    }

    #[test]
    fn timelines_must_increase() {
        let err = parse("2\t0/1\treason\n2\t0/2\treason\n").unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid);
        assert_eq!(
            err.message(),
            "invalid timeline history line 2: timeline 2 follows timeline 2"
        );
        assert_eq!(
            err.hint(),
            Some("timeline IDs must be in increasing sequence")
        );
    }

    #[test]
    fn a_huge_line_is_quoted_shortened() {
        let line = format!("x{}", "é".repeat(10_000_000));
        let err = parse(&line).unwrap_err();
        let expected = format!("line 1 'x{}...': expected", "é".repeat(199));
        assert!(err.message().contains(&expected));
        assert!(err.message().len() < 600, "{}", err.message().len());
    }
}
