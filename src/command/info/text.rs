//! `info`'s text output, laid out line for line as pgBackRest 2.45 prints it, so people and
//! the scripts that scrape it see the same thing.
//!
//! pgkeep adds lines pgBackRest does not print (each listed in docs/compatibility.md):
//! `lsn start/stop` for every backup (pgBackRest shows it only with `--set`), and with `--set`
//! whether page checksums were checked, the blocks of each page checksum error, and whether the
//! backup was offline or carries its WAL.

use crate::repo::{BackupRecord, Manifest};

use super::gather::{StanzaReport, Status};
use crate::command::format_size;

/// What pgBackRest appends to the status while a backup or expire holds the lock.
const LOCK_HELD: &str = "backup/expire running";

/// The text for every stanza, or pgBackRest's line for an empty repository.
pub fn render(reports: &[StanzaReport]) -> String {
    if reports.is_empty() {
        return "No stanzas exist in the repository.\n".to_string();
    }
    reports.iter().map(stanza).collect::<Vec<_>>().join("\n")
}

fn stanza(report: &StanzaReport) -> String {
    let mut out = format!("stanza: {}\n    status: {}\n", report.name, status(report));
    if report.status != Status::MissingStanzaPath {
        out.push_str("    cipher: none\n");
    }
    out.push_str(&databases(report));
    out
}

/// The status line's value: `ok`, `error (<message>)`, with the lock note; for an unreadable
/// stanza, `error (other)` and the error on the next lines.
fn status(report: &StanzaReport) -> String {
    match (&report.status, report.lock_held) {
        (Status::Ok, false) => "ok".to_string(),
        (Status::Ok, true) => format!("ok ({LOCK_HELD})"),
        (Status::Other(error), held) => {
            let lock = if held {
                format!(" ({LOCK_HELD})")
            } else {
                String::new()
            };
            let spacer = "            ";
            format!(
                "error (other){lock}\n{spacer}{}",
                error.replace('\n', &format!("\n{spacer}"))
            )
        }
        (other, false) => format!("error ({})", other.message()),
        (other, true) => format!("error ({}, {LOCK_HELD})", other.message()),
    }
}

/// The `db (prior)` and `db (current)` sections. As pgBackRest does, history entries of the same
/// cluster (system identifier and version) form one group; a prior group is shown only when it
/// has WAL or backups, and the current group comes last.
fn databases(report: &StanzaReport) -> String {
    struct Group<'a> {
        system_id: u64,
        version: &'a str,
        ids: Vec<u32>,
    }
    let mut groups: Vec<Group> = Vec::new();
    for db in &report.db_history {
        match groups
            .iter_mut()
            .find(|g| g.system_id == db.system_id && g.version == db.version)
        {
            Some(group) => group.ids.push(db.id),
            None => groups.push(Group {
                system_id: db.system_id,
                version: &db.version,
                ids: vec![db.id],
            }),
        }
    }
    let Some(current) = report.db_history.last() else {
        return String::new();
    };
    let detail = report.detail.is_some();
    let mut prior = String::new();
    let mut last = String::new();
    for group in &groups {
        let mut min: Option<&str> = None;
        let mut max: Option<&str> = None;
        for wal in report.wal.iter().filter(|w| group.ids.contains(&w.db_id)) {
            if let Some((lo, hi)) = &wal.range {
                min = Some(min.map_or(lo.as_str(), |m| m.min(lo.as_str())));
                max = Some(max.map_or(hi.as_str(), |m| m.max(hi.as_str())));
            }
        }
        let backups: Vec<&BackupRecord> = report
            .backups()
            .iter()
            .filter(|b| group.ids.contains(&b.db_id))
            .collect();
        let is_current = group.system_id == current.system_id && group.version == current.version;
        // With `--set` only the group holding that backup is shown.
        if detail && backups.is_empty() {
            continue;
        }
        if !is_current && min.is_none() && backups.is_empty() {
            continue;
        }
        let mut section = format!(
            "\n    db ({})\n        wal archive min/max ({}): ",
            if is_current { "current" } else { "prior" },
            group.version
        );
        match min.zip(max) {
            Some((min, max)) => section.push_str(&format!("{min}/{max}\n")),
            None => section.push_str("none present\n"),
        }
        for record in backups {
            section.push_str(&backup(record, report.detail.as_ref()));
        }
        if is_current {
            last = section;
        } else {
            prior.push_str(&section);
        }
    }
    prior + &last
}

fn backup(b: &BackupRecord, detail: Option<&Manifest>) -> String {
    let mut out = format!(
        "\n        {} backup: {}\n            timestamp start/stop: {} / {}\n",
        b.backup_type,
        b.label,
        local_time(b.timestamp_start),
        local_time(b.timestamp_stop),
    );
    if b.archive_start.is_empty() || b.archive_stop.is_empty() {
        out.push_str("            wal start/stop: n/a\n");
    } else {
        out.push_str(&format!(
            "            wal start/stop: {} / {}\n",
            b.archive_start, b.archive_stop
        ));
    }
    // pgkeep's addition: pgBackRest prints this line only with --set.
    out.push_str(&format!(
        "            lsn start/stop: {} / {}\n",
        b.lsn_start, b.lsn_stop
    ));
    out.push_str(&format!(
        "            database size: {}, database backup size: {}\n            repo1: backup set size: {}, backup size: {}\n",
        format_size(b.size),
        format_size(b.delta),
        format_size(b.repo_size),
        format_size(b.repo_delta),
    ));
    if !b.references.is_empty() {
        out.push_str(&format!(
            "            backup reference list: {}\n",
            b.references.join(", ")
        ));
    }
    let manifest = detail.filter(|m| m.label == b.label);
    if let Some(m) = manifest {
        out.push_str(&set_detail(m));
    }
    let error_files: Vec<&str> = manifest
        .map(|m| {
            m.files
                .iter()
                .filter(|f| f.page_errors.is_some())
                .map(|f| f.name.trim_start_matches("pg_data/"))
                .collect()
        })
        .unwrap_or_default();
    if !error_files.is_empty() {
        out.push_str(&format!(
            "            error list: {}\n",
            error_files.join(", ")
        ));
    } else if b.error == Some(true) {
        out.push_str("            error(s) detected during backup\n");
    }
    // Annotations only with --set, as pgBackRest shows them.
    if manifest.is_some() && !b.annotation.is_empty() {
        out.push_str("            annotation(s)\n");
        for (key, value) in &b.annotation {
            out.push_str(&format!("                {key}: {value}\n"));
        }
    }
    if let Some(m) = manifest {
        out.push_str(&pgkeep_detail(m));
    }
    out
}

/// What `--set` adds, as pgBackRest prints it: databases (without templates), symlinks and
/// tablespaces.
fn set_detail(m: &Manifest) -> String {
    let mut out = String::from("            database list:");
    let databases: Vec<String> = super::user_databases(m)
        .map(|d| format!("{} ({})", d.name, d.oid))
        .collect();
    if databases.is_empty() {
        out.push_str(" none\n");
    } else {
        out.push_str(&format!(" {}\n", databases.join(", ")));
    }
    let (tablespaces, links): (Vec<_>, Vec<_>) = m
        .links
        .iter()
        .partition(|l| super::tablespace_oid(l).is_some());
    if !links.is_empty() {
        out.push_str("            symlinks:\n");
        for link in links {
            out.push_str(&format!(
                "                {} => {}\n",
                link.name.trim_start_matches("pg_data/"),
                link.target
            ));
        }
    }
    if !tablespaces.is_empty() {
        out.push_str("            tablespaces:\n");
        for link in tablespaces {
            let oid = super::tablespace_oid(link).unwrap_or_default();
            out.push_str(&format!(
                "                {} ({oid}) => {}\n",
                super::tablespace_name(link),
                link.target
            ));
        }
    }
    out
}

/// pgkeep's own `--set` lines: page checksum verification and its errors by block, offline
/// backups and archive-copy.
fn pgkeep_detail(m: &Manifest) -> String {
    let mut out = format!(
        "            page checksums: {}\n",
        if m.checksum_page {
            "checked"
        } else {
            "not checked"
        }
    );
    for file in &m.files {
        if let Some(blocks) = &file.page_errors {
            out.push_str(&format!(
                "            page checksum error: {} (blocks {})\n",
                file.name.trim_start_matches("pg_data/"),
                condense(blocks)
            ));
        }
    }
    if !m.online {
        out.push_str("            offline backup (cluster was stopped)\n");
    }
    if m.archive_copy {
        out.push_str(
            "            WAL needed for consistency is stored in the backup (archive-copy)\n",
        );
    }
    out
}

/// Block numbers as ranges: `1-3, 7`.
fn condense(blocks: &[u32]) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut i = 0;
    while i < blocks.len() {
        let mut j = i;
        while j + 1 < blocks.len() && blocks[j + 1] == blocks[j] + 1 {
            j += 1;
        }
        parts.push(if i == j {
            blocks[i].to_string()
        } else {
            format!("{}-{}", blocks[i], blocks[j])
        });
        i = j + 1;
    }
    parts.join(", ")
}

/// Local time as pgBackRest prints it (no zone).
fn local_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S")
                .to_string()
        })
        .unwrap_or_else(|_| seconds.to_string())
}
