//! archive-push and archive-get, each run by PostgreSQL for one WAL file, synchronously or
//! (`archive-async`) through a spool served by a background process.
//!
//! `push` and `get` are the commands PostgreSQL runs; `push_async` and `get_async` their
//! asynchronous forms and background processes; `store` (pushing a segment) and `fetch`
//! (fetching a segment) the engines both forms use; `spool` the spool's queues and status
//! files; `queue` archive-push-queue-max.

pub mod get;
pub mod get_async;
pub mod push;
pub mod push_async;

mod fetch;
mod queue;
mod spool;
mod store;

use std::path::PathBuf;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::pg::wal::WalFileKind;

use super::open;

/// The WAL file PostgreSQL asked to push (`%p`), checked.
pub struct WalParam {
    pub path: PathBuf,
    pub name: String,
    pub kind: WalFileKind,
}

/// The WAL file parameter: its path (relative to pg1-path when relative), name and kind.
pub fn wal_param(cfg: &Config) -> Result<WalParam> {
    let given = cfg.params().first().ok_or_else(|| {
        Error::new(ErrorKind::OptionRequired, "WAL segment to push required")
            .with_hint("archive_command = 'pgkeep --stanza=<stanza> archive-push %p'")
    })?;
    let path = open::wal_path(cfg, given);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_string())
        .ok_or_else(|| {
            Error::new(
                ErrorKind::OptionInvalidValue,
                format!("'{given}' is not a WAL file path"),
            )
        })?;
    let kind = WalFileKind::of(&name).ok_or_else(|| {
        Error::new(
            ErrorKind::FileInvalid,
            format!("'{name}' is not a WAL segment, history, partial or backup file"),
        )
    })?;
    Ok(WalParam { path, name, kind })
}
