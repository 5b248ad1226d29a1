//! Whether a backup may create its stanza (the first-backup flow).
//!
//! pgkeep historically let the first backup create a stanza that stanza-create had not. That is
//! kept only where the stanza is plainly meant: it has its own section in the configuration file
//! (its pg1-path comes from there) and the cluster archives WAL to it. Anything else, above all a
//! mistyped `--stanza` with `--pg1-path` on the command line, fails at once as pgBackRest fails:
//! FileMissingError (55) naming the missing backup.info, with nothing written to the repository.
//! Without this a typo created a second stanza, copied the whole cluster and then waited
//! archive-timeout for WAL that went to the real stanza.

use crate::config::{Config, Opt, Source as OptionSource};
use crate::error::Result;
use crate::pg::remote::Db;
use crate::repo::archive_info::stanza_missing;
use crate::repo::{ArchiveInfo, BackupInfo, layout};
use crate::storage::Storage;

/// Whether the stanza has either info file: a partly created stanza is repaired as before.
pub fn stanza_exists(repo: &dyn Storage, stanza: &str) -> Result<bool> {
    Ok(BackupInfo::load(repo, stanza)?.is_some() || ArchiveInfo::load(repo, stanza)?.is_some())
}

/// Fails unless the stanza has its own section in the configuration file: the check that needs
/// no cluster, made before anything else so that a typo costs nothing.
pub fn require_section(cfg: &Config, repo: &dyn Storage, stanza: &str) -> Result<()> {
    // pg1-path is a stanza option: from a file, it can only come from the stanza's section.
    if cfg.source(Opt::PgPath) == OptionSource::ConfigFile {
        Ok(())
    } else {
        Err(stanza_missing(repo, stanza, &layout::backup_info(stanza)))
    }
}

/// Fails unless the running cluster's archive_command names the stanza (`--stanza=<name>` or
/// `--stanza <name>`): a cluster archiving to another stanza would leave this backup waiting for
/// WAL that never arrives.
pub fn require_archiving_to(session: &mut dyn Db, repo: &dyn Storage, stanza: &str) -> Result<()> {
    let command = session.setting("archive_command")?.unwrap_or_default();
    if names_stanza(&command, stanza) {
        Ok(())
    } else {
        Err(stanza_missing(repo, stanza, &layout::backup_info(stanza)))
    }
}

/// Whether a shell command line passes `--stanza=<stanza>` or `--stanza <stanza>`.
fn names_stanza(command: &str, stanza: &str) -> bool {
    let words: Vec<&str> = command
        .split(|c: char| c.is_whitespace() || c == '\'' || c == '"' || c == ';' || c == '&')
        .filter(|w| !w.is_empty())
        .collect();
    words.iter().enumerate().any(|(i, word)| {
        word.strip_prefix("--stanza=") == Some(stanza)
            || (*word == "--stanza" && words.get(i + 1) == Some(&stanza))
    })
}

#[cfg(test)]
mod tests {
    use super::names_stanza;

    #[test]
    fn archive_command_names_the_stanza_in_either_form() {
        let both = "/usr/bin/pgbackrest --config=/a --stanza=demo archive-push %p && pgkeep --stanza demo archive-push %p";
        assert!(names_stanza(both, "demo"));
        assert!(!names_stanza(both, "demo2"));
        assert!(!names_stanza(both, "dem"));
        assert!(!names_stanza("/usr/local/bin/archive.sh %p", "demo"));
        assert!(!names_stanza("", "demo"));
    }
}
