//! stanza-upgrade: record a cluster's new major version and system identifier after pg_upgrade.
//!
//! The stanza keeps a history of the clusters it has backed up. After an upgrade the cluster at
//! pg1-path has another version and system identifier, which backup and archive-push refuse
//! until this command appends it to that history: a new entry (id + 1) in archive.info, then in
//! backup.info (the same order as stanza-create, so a crash in between is repaired by running it
//! again). New WAL then goes to the new archive id (`<version>-<id>`), the next backup is a full
//! one, and the old backups and their WAL stay where they are, restorable with the old binaries.

use crate::config::Config;
use crate::error::Result;
use crate::log_info;
use crate::repo::stanza;

use super::open::{self, Access};

pub fn run(cfg: &Config) -> Result<i32> {
    let opened = open::stanza_repo(cfg, Access::Backup)?;
    let stanza = opened.stanza;
    let control = open::pg_control(&open::pg_storage(cfg)?)?;
    if stanza::upgrade(&opened.repo, stanza, &control)? {
        log_info!(
            "stanza '{stanza}' upgraded to version {} system id {}",
            control.version,
            control.system_id
        );
    } else {
        log_info!("stanza '{stanza}' is already up to date");
    }
    Ok(0)
}
