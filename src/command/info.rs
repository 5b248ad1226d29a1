//! info: what each stanza's repository holds — status, WAL range, backups.
//!
//! Text for people, `--output=json` for scripts (the same facts). With `--stanza` one stanza,
//! otherwise every stanza found in the repository.

use serde_json::{Value, json};

use crate::config::{Config, Opt};
use crate::error::Result;
use crate::repo::{ArchiveInfo, BackupInfo, BackupRecord, layout};
use crate::storage::{FileType, Storage};

use super::{format_size, open};

/// One stanza's state.
struct StanzaReport {
    name: String,
    status_code: u32,
    status: String,
    archive: Option<ArchiveInfo>,
    backup: Option<BackupInfo>,
    /// (archive id, min, max) per archive id holding WAL.
    wal_ranges: Vec<(String, String, String)>,
}

pub fn run(cfg: &Config) -> Result<i32> {
    let repo = open::repo(cfg)?;
    let stanzas = match cfg.stanza() {
        Some(stanza) => vec![stanza.to_string()],
        None => list_stanzas(&repo)?,
    };
    let mut reports = Vec::new();
    for name in stanzas {
        reports.push(report(&repo, &name, cfg.str(Opt::Set))?);
    }
    let output = if cfg.str(Opt::Output) == Some("json") {
        let mut text =
            serde_json::to_string_pretty(&Value::Array(reports.iter().map(to_json).collect()))
                .unwrap_or_else(|_| "[]".to_string());
        text.push('\n');
        text
    } else if reports.is_empty() {
        "No stanzas exist in the repository.\n".to_string()
    } else {
        reports.iter().map(to_text).collect::<Vec<_>>().join("\n")
    };
    print!("{output}");
    Ok(0)
}

fn list_stanzas(repo: &dyn Storage) -> Result<Vec<String>> {
    let mut names = Vec::new();
    for dir in ["backup", "archive"] {
        for entry in repo.list(dir)?.unwrap_or_default() {
            if entry.file_type == FileType::Path && !names.contains(&entry.name) {
                names.push(entry.name);
            }
        }
    }
    names.sort();
    Ok(names)
}

fn report(repo: &dyn Storage, name: &str, set: Option<&str>) -> Result<StanzaReport> {
    let archive = ArchiveInfo::load(repo, name)?;
    let mut backup = BackupInfo::load(repo, name)?;
    if let (Some(set), Some(info)) = (set, backup.as_mut()) {
        info.backups.retain(|b| b.label == set);
    }
    let (status_code, status) = match (&archive, &backup) {
        (None, None) => (1, "error (missing stanza path)".to_string()),
        (None, _) | (_, None) => (3, "error (missing stanza data)".to_string()),
        (_, Some(b)) if b.backups.is_empty() => (2, "error (no valid backups)".to_string()),
        _ => (0, "ok".to_string()),
    };
    let mut wal_ranges = Vec::new();
    if let Some(archive) = &archive {
        for db in &archive.db_history {
            let id = db.archive_id();
            if let Some((min, max)) = wal_range(repo, name, &id)? {
                wal_ranges.push((id, min, max));
            }
        }
    }
    Ok(StanzaReport {
        name: name.to_string(),
        status_code,
        status,
        archive,
        backup,
        wal_ranges,
    })
}

/// The oldest and newest WAL segment under an archive id. Only the first and last segment
/// directories are read, so this stays cheap on a large archive.
fn wal_range(
    repo: &dyn Storage,
    stanza: &str,
    archive_id: &str,
) -> Result<Option<(String, String)>> {
    let dir = layout::archive_id_dir(stanza, archive_id);
    let mut subdirs: Vec<String> = repo
        .list(&dir)?
        .unwrap_or_default()
        .into_iter()
        .filter(|e| e.file_type == FileType::Path && e.name.len() == 16)
        .map(|e| e.name)
        .collect();
    subdirs.sort();
    let segments_in = |sub: &str| -> Result<Vec<String>> {
        let mut names: Vec<String> = repo
            .list(&format!("{dir}/{sub}"))?
            .unwrap_or_default()
            .into_iter()
            .filter_map(|e| {
                let seg = e.name.get(..24)?;
                (e.name.as_bytes().get(24) == Some(&b'-')
                    && seg.bytes().all(|b| b.is_ascii_hexdigit()))
                .then(|| seg.to_string())
            })
            .collect();
        names.sort();
        Ok(names)
    };
    let mut min = None;
    for sub in &subdirs {
        if let Some(first) = segments_in(sub)?.into_iter().next() {
            min = Some(first);
            break;
        }
    }
    let mut max = None;
    for sub in subdirs.iter().rev() {
        if let Some(last) = segments_in(sub)?.into_iter().last() {
            max = Some(last);
            break;
        }
    }
    Ok(min.zip(max))
}

fn local_time(seconds: i64) -> String {
    jiff::Timestamp::from_second(seconds)
        .map(|t| {
            t.to_zoned_datetime(jiff::tz::TimeZone::system())
                .strftime("%Y-%m-%d %H:%M:%S%:z")
                .to_string()
        })
        .unwrap_or_else(|_| seconds.to_string())
}

fn to_text(report: &StanzaReport) -> String {
    let mut out = format!(
        "stanza: {}\n    status: {}\n    cipher: none\n",
        report.name, report.status
    );
    let Some(archive) = &report.archive else {
        return out;
    };
    let current = archive.db_history.last().map(|d| d.id);
    for db in &archive.db_history {
        let marker = if Some(db.id) == current {
            " (current)"
        } else {
            " (prior)"
        };
        out.push_str(&format!("\n    db{marker}\n"));
        let id = db.archive_id();
        match report.wal_ranges.iter().find(|(aid, _, _)| *aid == id) {
            Some((_, min, max)) => out.push_str(&format!(
                "        wal archive min/max ({}): {min}/{max}\n",
                db.version
            )),
            None => out.push_str(&format!(
                "        wal archive min/max ({}): none present\n",
                db.version
            )),
        }
        let backups = report
            .backup
            .as_ref()
            .map(|b| b.backups.as_slice())
            .unwrap_or_default();
        for backup in backups.iter().filter(|b| b.db_id == db.id) {
            out.push_str(&backup_text(backup));
        }
    }
    out
}

fn backup_text(b: &BackupRecord) -> String {
    let mut out = format!(
        "\n        {} backup: {}\n            timestamp start/stop: {} / {}\n            wal start/stop: {} / {}\n            lsn start/stop: {} / {}\n            database size: {}, database backup size: {}\n            repo1: backup set size: {}, backup size: {}\n",
        b.backup_type,
        b.label,
        local_time(b.timestamp_start),
        local_time(b.timestamp_stop),
        b.archive_start,
        b.archive_stop,
        b.lsn_start,
        b.lsn_stop,
        format_size(b.size),
        format_size(b.delta),
        format_size(b.repo_size),
        format_size(b.repo_delta),
    );
    if !b.references.is_empty() {
        out.push_str(&format!(
            "            backup reference list: {}\n",
            b.references.join(", ")
        ));
    }
    out
}

fn to_json(report: &StanzaReport) -> Value {
    let db: Vec<Value> = report
        .archive
        .as_ref()
        .map(|a| {
            a.db_history
                .iter()
                .map(|d| json!({"id": d.id, "system-id": d.system_id, "version": d.version}))
                .collect()
        })
        .unwrap_or_default();
    let archive: Vec<Value> = report
        .wal_ranges
        .iter()
        .map(|(id, min, max)| json!({"id": id, "min": min, "max": max}))
        .collect();
    let backups: Vec<Value> = report
        .backup
        .as_ref()
        .map(|b| b.backups.iter().map(backup_json).collect())
        .unwrap_or_default();
    json!({
        "name": report.name,
        "status": {"code": report.status_code, "message": report.status},
        "cipher": "none",
        "db": db,
        "archive": archive,
        "backup": backups,
    })
}

fn backup_json(b: &BackupRecord) -> Value {
    json!({
        "label": b.label,
        "type": b.backup_type.name(),
        "prior": b.prior,
        "reference": if b.references.is_empty() { Value::Null } else { json!(b.references) },
        "timestamp": {"start": b.timestamp_start, "stop": b.timestamp_stop},
        "archive": {"start": b.archive_start, "stop": b.archive_stop},
        "lsn": {"start": b.lsn_start, "stop": b.lsn_stop},
        "info": {
            "size": b.size,
            "delta": b.delta,
            "repository": {"size": b.repo_size, "delta": b.repo_delta},
        },
        "database": {"id": b.db_id},
    })
}
