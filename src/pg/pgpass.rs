//! Passwords from a `.pgpass` file, matched the way libpq matches them.
//!
//! The `postgres` crate does not read `.pgpass`, but pgBackRest users rely on it, so pgkeep
//! reads it itself: the file named by `PGPASSFILE`, else `~/.pgpass`. Each line is
//! `host:port:database:user:password`; `*` alone matches any value, `\` escapes `:` and `\`,
//! the first matching line wins, and lines starting with `#` are comments. For a Unix socket
//! the host compared is the socket directory, or `localhost` when it is a default socket
//! directory. As libpq does, a file that others can read is ignored with a warning. Where the
//! file is (`PGPASSFILE`, else `~/.pgpass`, as libpq finds it) is the command layer's to say:
//! `command/open.rs` reads the environment.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::log_warn;

/// Socket directories libpq builds may default to; a connection through one of them matches
/// `localhost` lines (upstream libpq uses /tmp, Debian's /var/run/postgresql).
const DEFAULT_SOCKET_DIRS: [&str; 3] = ["/tmp", "/var/run/postgresql", "/run/postgresql"];

/// What a password is looked up for.
#[derive(Debug, Clone, Copy)]
pub struct PgpassKey<'a> {
    /// A host name, or the socket directory for a Unix socket connection.
    pub host: &'a str,
    pub port: u16,
    pub database: &'a str,
    pub user: &'a str,
}

/// Looks `key` up in the file at `path`. A missing or unreadable file gives `None`, as in
/// libpq; so does a file others can read or that is not a regular file, with a warning.
pub fn lookup(path: &Path, key: &PgpassKey<'_>) -> Option<String> {
    let meta = std::fs::metadata(path).ok()?;
    if !meta.is_file() {
        log_warn!("password file '{}' is not a plain file", path.display());
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        log_warn!(
            "password file '{}' has group or world access; permissions should be u=rw (0600) \
             or less",
            path.display()
        );
        return None;
    }
    let content = std::fs::read_to_string(path).ok()?;
    find_password(&content, key)
}

/// One field of a line: its unescaped text and whether it was the wildcard `*`.
struct Field {
    text: String,
    wildcard: bool,
}

impl Field {
    fn matches(&self, value: &str) -> bool {
        self.wildcard || self.text == value
    }
}

/// Splits a line into its four key fields and the password. Returns `None` for a line with
/// fewer than four separators, which can match nothing.
fn split_line(line: &str) -> Option<([Field; 4], String)> {
    let mut fields: Vec<Field> = Vec::with_capacity(4);
    let mut text = String::new();
    let mut escaped_any = false;
    let mut chars = line.chars();
    while fields.len() < 4 {
        match chars.next()? {
            '\\' => {
                escaped_any = true;
                text.push(chars.next()?);
            }
            ':' => {
                let wildcard = text == "*" && !escaped_any;
                fields.push(Field {
                    text: std::mem::take(&mut text),
                    wildcard,
                });
                escaped_any = false;
            }
            other => text.push(other),
        }
    }
    // The password ends at the next unescaped ':' or the end of the line.
    let mut password = String::new();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some(next) => password.push(next),
                None => password.push('\\'),
            },
            ':' => break,
            other => password.push(other),
        }
    }
    let fields: [Field; 4] = fields.try_into().ok()?;
    Some((fields, password))
}

/// The password of the first line of `content` matching `key`.
pub fn find_password(content: &str, key: &PgpassKey<'_>) -> Option<String> {
    let port = key.port.to_string();
    let socket_default =
        key.host.starts_with('/') && DEFAULT_SOCKET_DIRS.contains(&key.host.trim_end_matches('/'));
    let host = if key.host.is_empty() || socket_default {
        "localhost"
    } else {
        key.host
    };
    content.lines().find_map(|line| {
        let line = line.trim_end_matches('\r');
        if line.is_empty() || line.starts_with('#') {
            return None;
        }
        let ([line_host, line_port, line_db, line_user], password) = split_line(line)?;
        (line_host.matches(host)
            && line_port.matches(&port)
            && line_db.matches(key.database)
            && line_user.matches(key.user))
        .then_some(password)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(host: &'a str, port: u16, database: &'a str, user: &'a str) -> PgpassKey<'a> {
        PgpassKey {
            host,
            port,
            database,
            user,
        }
    }

    #[test]
    fn the_first_matching_line_wins() {
        let content = "# comment\n\
                       db.example:5432:app:alice:first\n\
                       *:*:*:alice:second\n\
                       *:*:*:*:third\n";
        let find = |k| find_password(content, &k);
        assert_eq!(
            find(key("db.example", 5432, "app", "alice")).as_deref(),
            Some("first")
        );
        assert_eq!(
            find(key("db.example", 5433, "app", "alice")).as_deref(),
            Some("second")
        );
        assert_eq!(
            find(key("other", 5432, "postgres", "bob")).as_deref(),
            Some("third")
        );
        assert_eq!(find_password("h:1:d:u:p\n", &key("h", 2, "d", "u")), None);
    }

    #[test]
    fn sockets_match_their_directory_or_localhost_for_default_directories() {
        let content = "/srv/sock:5432:*:*:by-path\nlocalhost:5432:*:*:by-localhost\n";
        let find = |host| find_password(content, &key(host, 5432, "postgres", "postgres"));
        assert_eq!(find("/srv/sock").as_deref(), Some("by-path"));
        assert_eq!(find("/var/run/postgresql").as_deref(), Some("by-localhost"));
        assert_eq!(find("/tmp").as_deref(), Some("by-localhost"));
        assert_eq!(find("").as_deref(), Some("by-localhost"));
        assert_eq!(find("/other/dir"), None);
    }

    #[test]
    fn backslashes_escape_colons_and_a_quoted_star_is_literal() {
        let content = "h\\:x:5432:d\\\\b:\\*:pa\\:ss\\\\word:ignored\n*:*:*:*:any\n";
        assert_eq!(
            find_password(content, &key("h:x", 5432, "d\\b", "*")).as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            find_password(content, &key("h:x", 5432, "d\\b", "u")).as_deref(),
            Some("any")
        );
    }

    #[test]
    fn short_lines_and_crlf_endings_are_handled() {
        assert_eq!(find_password("*:*:*\n", &key("h", 1, "d", "u")), None);
        assert_eq!(
            find_password("*:*:*:*:pw\r\n", &key("h", 1, "d", "u")).as_deref(),
            Some("pw")
        );
        assert_eq!(
            find_password("*:*:*:*:\n", &key("h", 1, "d", "u")).as_deref(),
            Some("")
        );
    }

    #[test]
    fn files_others_can_read_are_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pgpass");
        std::fs::write(&path, "*:*:*:*:secret\n").unwrap();
        let k = key("h", 5432, "d", "u");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(lookup(&path, &k), None);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(lookup(&path, &k).as_deref(), Some("secret"));
        assert_eq!(lookup(&dir.path().join("missing"), &k), None);
        assert_eq!(lookup(dir.path(), &k), None);
    }
}
