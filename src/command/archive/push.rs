//! archive-push: store one WAL file in the archive, durably, before PostgreSQL may recycle it.
//!
//! Success is reported only after the stored file and its directory are fsynced. A segment's
//! header must belong to the stanza's cluster. A file of the same name already archived with the
//! same checksum is accepted (PostgreSQL retries after a crash); with a different checksum it is
//! refused and the archived file is left untouched.

use crate::config::{Config, Opt};
use crate::error::Result;

use super::store::{self, Pusher};
use super::{push_async, queue, wal_param};
use crate::command::open::{self, Access};

/// How long archive-push waits for another archive-push of the same stanza.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(30);

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let wal = wal_param(cfg)?;
    if cfg.bool(Opt::ArchiveAsync) {
        return push_async::run(cfg, stanza, &wal);
    }
    if queue::check(cfg, stanza, &wal)? == queue::Verdict::Dropped {
        return Ok(0);
    }

    let opened = open::stanza_repo(cfg, Access::Archive { wait: LOCK_WAIT })?;
    let info = store::load_or_create(cfg, &opened.repo, stanza)?;
    let pusher = Pusher::new(cfg, &opened.repo, stanza, info.current()?)?;
    pusher.push(&wal.path, &wal.name, wal.kind)?;
    Ok(0)
}
