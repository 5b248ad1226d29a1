//! expire: remove backups and archived WAL that retention no longer keeps.
//!
//! Runs on its own (`pgkeep expire`, under the stanza's backup lock); a backup runs the same
//! retention at its end under its own lock. The options become settings in `open`; the
//! decisions are `repo::retention`'s and the removal `repo::expire`'s, in the order
//! docs/repository-format.md (invariant 4) requires. `--dry-run` logs the same lines, prefixed
//! `[DRY-RUN] `, and changes nothing.

use crate::config::Config;
use crate::error::Result;
use crate::repo::expire;

use super::open::{self, Access};

pub fn run(cfg: &Config) -> Result<i32> {
    // The backup lock: no backup is running, so an unlisted backup directory is not one being
    // written, and expire may remove it.
    let opened = open::stanza_repo(cfg, Access::Backup)?;
    expire::expire(
        &opened.repo,
        opened.stanza,
        &open::expire_settings(cfg),
        jiff::Timestamp::now().as_second(),
    )?;
    Ok(0)
}
