//! info: what each stanza's repository holds — status, WAL range, backups.
//!
//! Text for people, `--output=json` for scripts (the same facts), both as pgBackRest 2.45 shows
//! them (see docs/compatibility.md for what pgkeep adds). With `--stanza` one stanza, otherwise
//! every stanza found in the repository; with `--set` one backup in detail. `gather.rs` reads the
//! repository, `text.rs` and `json.rs` present what it found.

mod gather;
mod json;
mod text;

use crate::config::{Config, Opt};
use crate::error::Result;
use crate::repo::Manifest;
use crate::repo::manifest::{DatabaseEntry, LinkEntry};

use super::open;

pub fn run(cfg: &Config) -> Result<i32> {
    let repo = open::repo(cfg)?;
    let lock_path = open::lock_path(cfg);
    let stanzas = match cfg.stanza() {
        Some(stanza) => vec![stanza.to_string()],
        None => gather::list_stanzas(&repo)?,
    };
    let reports: Vec<gather::StanzaReport> = stanzas
        .iter()
        .map(|name| gather::report(&repo, &lock_path, name, cfg.str(Opt::Set)))
        .collect();
    let output = if cfg.str(Opt::Output) == Some("json") {
        json::render(&reports)
    } else {
        text::render(&reports)
    };
    print!("{output}");
    // As pgBackRest: a stanza that is missing or unreadable is a status, not a failure.
    Ok(0)
}

/// The databases of a backup that pgBackRest lists: all but the templates.
fn user_databases(m: &Manifest) -> impl Iterator<Item = &DatabaseEntry> {
    m.databases
        .iter()
        .filter(|d| d.name != "template0" && d.name != "template1")
}

/// The tablespace oid of a link under `pg_tblspc/`; `None` for other links.
fn tablespace_oid(link: &LinkEntry) -> Option<u32> {
    link.name
        .strip_prefix("pg_data/pg_tblspc/")
        .and_then(|oid| oid.parse().ok())
}

/// How a tablespace is named in `info`: its link in the data directory. The manifest does not
/// record the tablespace's SQL name (pgBackRest's `name`); see docs/compatibility.md.
fn tablespace_name(link: &LinkEntry) -> String {
    link.name.trim_start_matches("pg_data/").to_string()
}
