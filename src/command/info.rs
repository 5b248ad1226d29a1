//! info: what each stanza's repository holds — status, WAL range, backups.
//!
//! Text for people, `--output=json` for scripts (the same facts). With `--stanza` one stanza,
//! otherwise every stanza found in the repository.

use serde_json::{Value, json};

use crate::config::{Config, Opt};
use crate::error::Result;
use crate::repo::{ArchiveInfo, BackupInfo, BackupRecord, Manifest, layout};
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
    /// With `--set`: the manifest of that backup, for its details.
    detail: Option<Manifest>,
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
    let mut detail = None;
    if let (Some(set), Some(info)) = (set, backup.as_mut()) {
        info.backups.retain(|b| b.label == set);
        if info.backups.is_empty() {
            return Err(crate::error::Error::new(
                crate::error::ErrorKind::BackupSetInvalid,
                format!("backup set '{set}' does not exist in stanza '{name}'"),
            )
            .with_hint(format!(
                "'{}' without --set lists the backup sets",
                crate::error::command_hint("info")
            )));
        }
        detail = Manifest::load(repo, name, set)?;
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
        detail,
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
            if let Some(manifest) = report.detail.as_ref().filter(|m| m.label == backup.label) {
                out.push_str(&detail_text(manifest));
            }
        }
    }
    out
}

/// The details `--set` adds: databases, links and tablespaces, page checksum errors.
fn detail_text(m: &Manifest) -> String {
    let mut out = String::new();
    if !m.databases.is_empty() {
        let list: Vec<String> = m
            .databases
            .iter()
            .map(|d| format!("{} ({})", d.name, d.oid))
            .collect();
        out.push_str(&format!("            database list: {}\n", list.join(", ")));
    }
    for link in &m.links {
        let kind = if link.name.starts_with("pg_data/pg_tblspc/") {
            "tablespace"
        } else {
            "link"
        };
        out.push_str(&format!(
            "            {kind}: {} => {}\n",
            link.name.trim_start_matches("pg_data/"),
            link.target
        ));
    }
    out.push_str(&format!(
        "            page checksums: {}\n",
        if m.checksum_page {
            "checked"
        } else {
            "not checked"
        }
    ));
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
    if !b.annotation.is_empty() {
        let pairs: Vec<String> = b
            .annotation
            .iter()
            .map(|(k, v)| format!("{k}: {v}"))
            .collect();
        out.push_str(&format!(
            "            annotation(s): {}\n",
            pairs.join(", ")
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
        .map(|b| {
            b.backups
                .iter()
                .map(|record| backup_json(record, report.detail.as_ref()))
                .collect()
        })
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

fn backup_json(b: &BackupRecord, detail: Option<&Manifest>) -> Value {
    let mut value = json!({
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
        "annotation": if b.annotation.is_empty() { Value::Null } else { json!(b.annotation) },
    });
    if let Some(m) = detail.filter(|m| m.label == b.label) {
        value["database-list"] = json!(
            m.databases
                .iter()
                .map(|d| json!({"name": d.name, "oid": d.oid}))
                .collect::<Vec<_>>()
        );
        value["link"] = json!(m.links.iter().map(|l| json!({"name": l.name.trim_start_matches("pg_data/"), "destination": l.target})).collect::<Vec<_>>());
        value["checksum-page"] = json!(m.checksum_page);
        value["checksum-page-error"] = json!(m
            .files
            .iter()
            .filter_map(|f| f.page_errors.as_ref().map(|blocks| json!({"file": f.name.trim_start_matches("pg_data/"), "blocks": blocks})))
            .collect::<Vec<_>>());
        value["online"] = json!(m.online);
        value["archive-copy"] = json!(m.archive_copy);
    }
    value
}
