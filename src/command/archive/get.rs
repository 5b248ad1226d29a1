//! archive-get: fetch one WAL file from the archive for PostgreSQL's `restore_command`.
//!
//! Exit 0 when the file was written to the requested path, exit 1 when the archive does not
//! have it (the normal end of recovery, or a standby waiting for the next segment),
//! [`STOP_RECOVERY`](fetch::STOP_RECOVERY) (255) when the archive holds it but it cannot be delivered, any other code
//! on another error.
//! The file appears under its final name only when complete and verified against the checksum
//! it was archived with, so PostgreSQL never replays a partial segment.
//!
//! Why 255: PostgreSQL's startup process takes every exit code up to 125 for "file not found"
//! (xlogarchive.c, `RestoreArchivedFile`: only a signal or an exit status above 125 is FATAL,
//! `wait_result_is_any_signal`), ends recovery there and promotes. For a segment that is in the
//! archive but damaged that is silent data loss: everything after it is never replayed. An exit
//! status above 125 makes the startup process stop with a FATAL error instead, and the operator
//! can repair the archive and start PostgreSQL again. 126 and 127 are left alone: PostgreSQL
//! reports them as "command not executable" and "command not found", which would mislead.

use std::path::PathBuf;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::WalFileKind;

use super::{fetch, get_async, open};

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let (name, destination) = match cfg.params() {
        // PostgreSQL runs restore_command in the data directory: `%p` is relative to it.
        [name, destination] => (name.as_str(), PathBuf::from(destination)),
        _ => {
            return Err(Error::new(
                ErrorKind::OptionRequired,
                "WAL segment and destination required",
            )
            .with_hint("restore_command = 'pgkeep --stanza=<stanza> archive-get %f \"%p\"'"));
        }
    };
    let kind = WalFileKind::of(name).ok_or_else(|| {
        Error::new(
            ErrorKind::FileInvalid,
            format!("'{name}' is not a WAL file name"),
        )
    })?;
    if cfg.bool(Opt::ArchiveAsync) && kind == WalFileKind::Segment {
        return get_async::run(cfg, stanza, name, &destination);
    }
    fetch::get_sync(cfg, stanza, name, kind, &destination)
}
