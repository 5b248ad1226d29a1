//! `info --output=json`: every key path pgBackRest 2.45 emits, with the same JSON type and
//! meaning, plus pgkeep's own keys (LSNs, page checksums, offline and archive-copy backups).
//!
//! pgkeep has one repository, `repo1`, unencrypted: `repo-key` is 1 and `cipher` is `none`.
//! `backrest` describes the tool and format that wrote a backup: pgkeep's version and pgkeep's
//! repository format number (docs/compatibility.md says why these are not pgBackRest's).

use serde_json::{Value, json};

use crate::repo::{BackupRecord, Manifest, info_file};

use super::gather::StanzaReport;

/// The only repository pgkeep has.
const REPO_KEY: u32 = 1;

/// The JSON document: one object per stanza, on one line as pgBackRest prints it.
pub fn render(reports: &[StanzaReport]) -> String {
    let value = Value::Array(reports.iter().map(stanza).collect());
    let mut text = value.to_string();
    text.push('\n');
    text
}

fn stanza(report: &StanzaReport) -> Value {
    let db: Vec<Value> = report
        .db_history
        .iter()
        .map(|d| {
            json!({
                "id": d.id,
                "system-id": d.system_id,
                "version": d.version,
                "repo-key": REPO_KEY,
            })
        })
        .collect();
    let archive: Vec<Value> = report
        .wal
        .iter()
        .map(|wal| {
            let (min, max) = match &wal.range {
                Some((min, max)) => (json!(min), json!(max)),
                None => (Value::Null, Value::Null),
            };
            json!({
                "database": {"id": wal.db_id, "repo-key": REPO_KEY},
                "id": wal.archive_id,
                "min": min,
                "max": max,
            })
        })
        .collect();
    let backups: Vec<Value> = report
        .backups()
        .iter()
        .map(|record| backup(record, report.detail.as_ref()))
        .collect();
    let status = &report.status;
    json!({
        "name": report.name,
        "status": {
            "code": status.code(),
            "message": status.message(),
            "lock": {"backup": {"held": report.lock_held}},
        },
        "cipher": "none",
        "db": db,
        "archive": archive,
        "backup": backups,
        "repo": [{
            "key": REPO_KEY,
            "cipher": "none",
            "status": {"code": status.code(), "message": status.repo_message()},
        }],
    })
}

fn backup(b: &BackupRecord, detail: Option<&Manifest>) -> Value {
    let mut value = json!({
        "label": b.label,
        "type": b.backup_type.name(),
        "prior": b.prior,
        "reference": if b.references.is_empty() { Value::Null } else { json!(b.references) },
        "timestamp": {"start": b.timestamp_start, "stop": b.timestamp_stop},
        "archive": {"start": b.archive_start, "stop": b.archive_stop},
        "backrest": {"format": info_file::FORMAT, "version": b.version},
        "lsn": {"start": b.lsn_start, "stop": b.lsn_stop},
        "info": {
            "size": b.size,
            "delta": b.delta,
            "repository": {"size": b.repo_size, "delta": b.repo_delta},
        },
        "database": {"id": b.db_id, "repo-key": REPO_KEY},
        "annotation": if b.annotation.is_empty() { Value::Null } else { json!(b.annotation) },
    });
    // Unknown for backups made before pgkeep recorded it: then absent, as in pgBackRest.
    if let Some(error) = b.error {
        value["error"] = json!(error);
    }
    if let Some(m) = detail.filter(|m| m.label == b.label) {
        set_detail(&mut value, m);
    }
    value
}

/// The keys `--set` adds: pgBackRest's `database-ref`, `link`, `tablespace` and `error-list`,
/// then pgkeep's own.
fn set_detail(value: &mut Value, m: &Manifest) {
    value["database-ref"] = json!(
        super::user_databases(m)
            .map(|d| json!({"name": d.name, "oid": d.oid}))
            .collect::<Vec<_>>()
    );
    let (tablespaces, links): (Vec<_>, Vec<_>) = m
        .links
        .iter()
        .partition(|l| super::tablespace_oid(l).is_some());
    value["link"] = if links.is_empty() {
        Value::Null
    } else {
        json!(links
            .iter()
            .map(|l| json!({"name": l.name.trim_start_matches("pg_data/"), "destination": l.target}))
            .collect::<Vec<_>>())
    };
    value["tablespace"] = if tablespaces.is_empty() {
        Value::Null
    } else {
        json!(
            tablespaces
                .iter()
                .map(|l| json!({
                    "name": super::tablespace_name(l),
                    "oid": super::tablespace_oid(l),
                    "destination": l.target,
                }))
                .collect::<Vec<_>>()
        )
    };
    let error_files: Vec<&str> = m
        .files
        .iter()
        .filter(|f| f.page_errors.is_some())
        .map(|f| f.name.trim_start_matches("pg_data/"))
        .collect();
    if !error_files.is_empty() {
        value["error-list"] = json!(error_files);
        value["error"] = json!(true);
    }
    // pgkeep's additions.
    value["database-list"] = json!(
        m.databases
            .iter()
            .map(|d| json!({"name": d.name, "oid": d.oid}))
            .collect::<Vec<_>>()
    );
    value["checksum-page"] = json!(m.checksum_page);
    value["checksum-page-error"] = json!(
        m.files
            .iter()
            .filter_map(|f| f.page_errors.as_ref().map(|blocks| {
                json!({"file": f.name.trim_start_matches("pg_data/"), "blocks": blocks})
            }))
            .collect::<Vec<_>>()
    );
    value["online"] = json!(m.online);
    value["archive-copy"] = json!(m.archive_copy);
}
