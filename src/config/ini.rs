//! The INI grammar of configuration files, and nothing about options.
//!
//! A file is a sequence of lines: blank, a `#` comment, a `[section]` header or a `key=value`
//! pair (spaces around the key and value are trimmed; the value may itself contain `=`).
//! Every pair belongs to the section above it. The parser keeps every pair in order with its
//! line number, repeated keys included: whether a repeat is a list or a mistake is the
//! option table's call (files.rs). Errors are `ConfigError`s naming the file and line, and
//! quote at most [`QUOTE_MAX`] characters of it: a file can hold a line of any length.

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};

/// The most characters of a line a message quotes.
pub const QUOTE_MAX: usize = 200;

/// `text` for a message: its first [`QUOTE_MAX`] characters, then `...` when there is more.
pub fn excerpt(text: &str) -> String {
    match text.char_indices().nth(QUOTE_MAX) {
        Some((end, _)) => format!("{}...", &text[..end]),
        None => text.to_string(),
    }
}

/// One `key=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub section: String,
    pub key: String,
    pub value: String,
    /// 1-based line number in its file.
    pub line: usize,
}

/// Parses the text of `file` (the path is used in messages only).
pub fn parse(text: &str, file: &Path) -> Result<Vec<Entry>> {
    let mut entries = Vec::new();
    let mut section: Option<String> = None;
    for (number, raw) in text.lines().enumerate() {
        let line = number + 1;
        let trimmed = raw.trim();
        let fail = |what: String| {
            Error::new(
                ErrorKind::Config,
                format!("{what} at line {line} of '{}'", file.display()),
            )
        };
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        if let Some(header) = trimmed.strip_prefix('[') {
            let Some(name) = header.strip_suffix(']') else {
                return Err(fail(format!(
                    "section '{}' does not end with ']'",
                    excerpt(trimmed)
                )));
            };
            let name = name.trim();
            if name.is_empty() {
                return Err(fail("section name is empty".to_string()));
            }
            section = Some(name.to_string());
            continue;
        }
        let Some((key, value)) = trimmed.split_once('=') else {
            return Err(
                fail(format!("missing '=' in key/value '{}'", excerpt(trimmed)))
                    .with_hint("write options as key=value, one per line"),
            );
        };
        let key = key.trim();
        if key.is_empty() {
            return Err(fail(format!(
                "key is missing in key/value '{}'",
                excerpt(trimmed)
            )));
        }
        let Some(section) = &section else {
            return Err(fail(format!(
                "key/value '{}' found outside of a section",
                excerpt(trimmed)
            ))
            .with_hint("put options under a section such as [global] or [<stanza>]"));
        };
        entries.push(Entry {
            section: section.clone(),
            key: key.to_string(),
            value: value.trim().to_string(),
            line,
        });
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(section: &str, key: &str, value: &str, line: usize) -> Entry {
        Entry {
            section: section.into(),
            key: key.into(),
            value: value.into(),
            line,
        }
    }

    #[test]
    fn keeps_every_pair_in_order_with_its_line() {
        let text = "# comment\n\n[global]\nrepo1-path = /repo\n  process-max=2  \n\
                    [main:backup]\nrecovery-option=a=b\nrecovery-option = c = d\nlog-path=\n";
        let entries = parse(text, Path::new("/etc/pgkeep/pgkeep.conf")).ok();
        assert_eq!(
            entries,
            Some(vec![
                entry("global", "repo1-path", "/repo", 4),
                entry("global", "process-max", "2", 5),
                entry("main:backup", "recovery-option", "a=b", 7),
                entry("main:backup", "recovery-option", "c = d", 8),
                entry("main:backup", "log-path", "", 9),
            ])
        );
    }

    #[test]
    fn malformed_lines_are_config_errors_with_file_and_line() {
        let cases = [
            (
                "process-max=2\n",
                "key/value 'process-max=2' found outside of a section at line 1 of '/x.conf'",
            ),
            (
                "[global]\n\nstart-fast\n",
                "missing '=' in key/value 'start-fast' at line 3 of '/x.conf'",
            ),
            (
                "[global\n",
                "section '[global' does not end with ']' at line 1 of '/x.conf'",
            ),
            ("[ ]\n", "section name is empty at line 1 of '/x.conf'"),
            (
                "[global]\n=y\n",
                "key is missing in key/value '=y' at line 2 of '/x.conf'",
            ),
        ];
        for (text, message) in cases {
            let err = parse(text, Path::new("/x.conf")).err();
            assert_eq!(err.as_ref().map(|e| e.kind()), Some(ErrorKind::Config));
            assert_eq!(err.as_ref().map(|e| e.message()), Some(message), "{text}");
        }
    }

    #[test]
    fn a_huge_malformed_line_is_quoted_shortened() {
        let line = "x".repeat(50 << 20);
        for text in [
            format!("[global]\n{line}\n"),
            format!("{line}=y\n"),
            format!("[{line}\n"),
            format!("[global]\n={line}\n"),
        ] {
            let err = parse(&text, Path::new("/x.conf")).err();
            assert_eq!(err.as_ref().map(|e| e.kind()), Some(ErrorKind::Config));
            let message = err.map(|e| e.message().to_string()).unwrap_or_default();
            assert!(message.len() < 400, "{} bytes", message.len());
            assert!(message.contains(&format!("{}...'", "x".repeat(QUOTE_MAX - 1))));
            assert!(message.ends_with("of '/x.conf'"), "{}", excerpt(&message));
        }
        assert_eq!(excerpt("short"), "short");
        assert_eq!(excerpt(&"é".repeat(201)), format!("{}...", "é".repeat(200)));
    }

    #[test]
    fn empty_file_has_no_entries() {
        assert_eq!(parse("", Path::new("/x.conf")).ok(), Some(vec![]));
        assert_eq!(
            parse("[global]\n# nothing\n", Path::new("/x.conf")).ok(),
            Some(vec![])
        );
    }
}
