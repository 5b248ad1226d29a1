//! stanza-create: record the cluster a stanza backs up, and create its repository directories.
//!
//! The cluster's facts (system identifier, major version, catalog and control versions) come
//! from its `global/pg_control`, so the command works whether the cluster is running or not.
//! Creating a stanza that exists and matches is a no-op; one that exists for another cluster is
//! refused. The bookkeeping itself is `repo::stanza`.

use crate::config::Config;
use crate::error::Result;
use crate::log_info;
use crate::repo::stanza::{self, Ensured};

use super::open::{self, Access};

pub fn run(cfg: &Config) -> Result<i32> {
    let opened = open::stanza_repo(cfg, Access::Backup)?;
    let stanza = opened.stanza;
    let control = open::pg_control(&open::pg_storage(cfg)?)?;
    match stanza::ensure(&opened.repo, stanza, &control)? {
        Ensured::Created => log_info!("stanza-create for stanza '{stanza}' on repo1"),
        Ensured::Existed => log_info!("stanza '{stanza}' already exists and is valid"),
    }
    Ok(0)
}
