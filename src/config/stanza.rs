//! The rule for stanza names.
//!
//! A stanza name becomes part of file names and paths: lock and log files (`<stanza>.lock`,
//! `<stanza>-backup.log`), the spool (`<spool-path>/archive/<stanza>`) and the repository
//! (`backup/<stanza>`, `archive/<stanza>`). A name with `/` or `..` would put those files
//! outside their roots, one with a newline would forge log lines. So a name is 1 to
//! [`MAX_LEN`] ASCII letters, digits, `_`, `-` and `.`, not starting with `.` (no hidden file,
//! no `..`). The rule holds wherever the name comes from: `--stanza`, `PGKEEP_STANZA`, or a
//! `[<stanza>]` / `[<stanza>:<command>]` section of a configuration file. pgBackRest does not
//! check stanza names; every name its own documentation uses satisfies this rule.

use crate::error::{Error, ErrorKind, Result};

/// The longest stanza name: long enough for any host or cluster name, short enough that the
/// file names built from it stay far below the 255-byte limit of a file name.
pub const MAX_LEN: usize = 64;

/// The rule, as stated in errors and docs.
pub const RULE: &str = "a stanza name is 1 to 64 ASCII letters, digits, '_', '-' and '.', \
                        and does not begin with '.'";

/// True when `name` satisfies the rule.
pub fn is_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_LEN
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'))
}

/// Refuses a name that breaks the rule with an OptionInvalidValueError naming the rule;
/// `origin` says where the name came from (e.g. " in section ..."), or is empty.
pub fn check(name: &str, origin: &str) -> Result<()> {
    if is_valid(name) {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::OptionInvalidValue,
        format!(
            "'{}' is not valid for 'stanza' option{origin}: {RULE}",
            shown(name)
        ),
    ))
}

/// A hostile name as it may appear in a message: control characters escaped, at most 80
/// characters.
fn shown(name: &str) -> String {
    let escaped: String = name.escape_debug().collect();
    match escaped.char_indices().nth(80) {
        Some((end, _)) => format!("{}...", &escaped[..end]),
        None => escaped,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_names_of_letters_digits_and_separators() {
        for name in [
            "demo",
            "main",
            "db1",
            "pg_15-main",
            "a.b",
            "A",
            &"x".repeat(64),
        ] {
            assert!(check(name, "").is_ok(), "{name}");
        }
    }

    #[test]
    fn refuses_paths_control_characters_and_long_names() {
        for name in [
            "",
            "../../x",
            "..",
            ".hidden",
            "a/b",
            "/abs",
            "a\nb",
            "a b",
            "a:b",
            "naïve",
            "a\0b",
            &"x".repeat(65),
        ] {
            let err = check(name, "").err();
            assert_eq!(
                err.as_ref().map(|e| e.kind()),
                Some(ErrorKind::OptionInvalidValue),
                "{name:?}"
            );
            let message = err.map(|e| e.message().to_string()).unwrap_or_default();
            assert!(message.ends_with(RULE), "{message}");
            assert!(!message.contains('\n'), "{message}");
        }
    }

    #[test]
    fn a_long_hostile_name_is_shown_shortened() {
        let err = check(&format!("../{}", "y".repeat(5000)), "").err();
        let message = err.map(|e| e.message().to_string()).unwrap_or_default();
        assert!(message.len() < 300, "{}", message.len());
        assert!(message.starts_with("'../yyy"), "{message}");
    }
}
