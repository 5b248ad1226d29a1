//! What `info` knows of one stanza, read from the repository: its status as pgBackRest
//! reports it, its cluster history, archived WAL and backups.
//!
//! Nothing here formats: `text.rs` and `json.rs` present the same [`StanzaReport`]. A stanza
//! whose files cannot be read is reported (status `other` with the error) rather than failing
//! the command, as pgBackRest does, so one broken stanza does not hide the others.

use std::path::Path;

use crate::error::{Error, Result};
use crate::lock::{self, LockKind};
use crate::repo::{ArchiveInfo, BackupInfo, DbHistory, Manifest, layout};
use crate::storage::{FileType, Storage};

/// A stanza's status; the codes and messages are pgBackRest's (src/command/info/info.c).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// No `backup/<stanza>` directory.
    MissingStanzaPath,
    /// backup.info lists no backup.
    NoBackup,
    /// The stanza directory exists but backup.info (or archive.info) does not.
    MissingStanzaData,
    /// `--set` names a backup that the repository does not hold.
    BackupMissing,
    /// The stanza's files could not be read: `[ErrorType] message`.
    Other(String),
}

impl Status {
    pub fn code(&self) -> u32 {
        match self {
            Status::Ok => 0,
            Status::MissingStanzaPath => 1,
            Status::NoBackup => 2,
            Status::MissingStanzaData => 3,
            Status::BackupMissing => 6,
            Status::Other(_) => 99,
        }
    }

    /// The stanza-level message (`status.message`).
    pub fn message(&self) -> &str {
        match self {
            Status::Ok => "ok",
            Status::MissingStanzaPath => "missing stanza path",
            Status::NoBackup => "no valid backups",
            Status::MissingStanzaData => "missing stanza data",
            Status::BackupMissing => "requested backup not found",
            Status::Other(_) => "other",
        }
    }

    /// The repository-level message (`repo[].status.message`): the error itself for `other`.
    pub fn repo_message(&self) -> &str {
        match self {
            Status::Other(error) => error,
            _ => self.message(),
        }
    }
}

/// The archived WAL of one archive id (`<version>-<db id>`).
pub struct WalRange {
    pub archive_id: String,
    /// The backup.info history entry this archive id belongs to.
    pub db_id: u32,
    /// Oldest and newest segment; `None` when none is archived.
    pub range: Option<(String, String)>,
}

/// One stanza's state.
pub struct StanzaReport {
    pub name: String,
    pub status: Status,
    /// Whether a backup or expire holds the stanza's backup lock on this host.
    pub lock_held: bool,
    /// The clusters backed up, oldest first (backup.info's history, as pgBackRest reports it);
    /// empty unless backup.info was read.
    pub db_history: Vec<DbHistory>,
    /// Per history entry that has WAL, and always for the current one.
    pub wal: Vec<WalRange>,
    /// The backups listed, oldest first (only the `--set` one with `--set`).
    pub backup: Option<BackupInfo>,
    /// With `--set`: the manifest of that backup, for its details.
    pub detail: Option<Manifest>,
}

impl StanzaReport {
    fn empty(name: &str, status: Status) -> StanzaReport {
        StanzaReport {
            name: name.to_string(),
            status,
            lock_held: false,
            db_history: Vec::new(),
            wal: Vec::new(),
            backup: None,
            detail: None,
        }
    }

    /// The backups of the report, oldest first.
    pub fn backups(&self) -> &[crate::repo::BackupRecord] {
        self.backup
            .as_ref()
            .map(|b| b.backups.as_slice())
            .unwrap_or_default()
    }
}

/// The stanzas that have a directory under `backup/`, sorted (as pgBackRest finds them: WAL
/// alone does not make a stanza).
pub fn list_stanzas(repo: &dyn Storage) -> Result<Vec<String>> {
    let mut names: Vec<String> = repo
        .list("backup")?
        .unwrap_or_default()
        .into_iter()
        .filter(|entry| entry.file_type == FileType::Path)
        .map(|entry| entry.name)
        .collect();
    names.sort();
    Ok(names)
}

/// Reads one stanza; an unreadable stanza becomes status `other`, never an error.
pub fn report(repo: &dyn Storage, lock_path: &Path, name: &str, set: Option<&str>) -> StanzaReport {
    match read(repo, lock_path, name, set) {
        Ok(report) => report,
        Err(error) => StanzaReport::empty(
            name,
            Status::Other(format!("[{}] {}", error.kind().name(), error_text(&error))),
        ),
    }
}

fn error_text(error: &Error) -> String {
    match error.hint() {
        Some(hint) => format!("{}\nHINT: {hint}", error.message()),
        None => error.message().to_string(),
    }
}

fn read(
    repo: &dyn Storage,
    lock_path: &Path,
    name: &str,
    set: Option<&str>,
) -> Result<StanzaReport> {
    // pgBackRest decides that a stanza exists by its directory under backup/.
    if repo.list(&layout::backup_dir(name))?.is_none() {
        return Ok(StanzaReport::empty(name, Status::MissingStanzaPath));
    }
    let Some(mut backup) = BackupInfo::load(repo, name)? else {
        return Ok(StanzaReport::empty(name, Status::MissingStanzaData));
    };
    let Some(archive) = ArchiveInfo::load(repo, name)? else {
        return Ok(StanzaReport::empty(name, Status::MissingStanzaData));
    };
    let lock_held = lock::held(lock_path, name, LockKind::Backup);
    let mut detail = None;
    if let Some(set) = set {
        backup.backups.retain(|b| b.label == set);
        detail = match backup.backups.is_empty() {
            true => None,
            false => Manifest::load(repo, name, set)?,
        };
        // Like pgBackRest, a backup that is not there hides the rest of the stanza.
        if detail.is_none() {
            let mut report = StanzaReport::empty(name, Status::BackupMissing);
            report.lock_held = lock_held;
            return Ok(report);
        }
    }
    let current = backup.db_history.last().map(|d| d.id);
    let mut wal = Vec::new();
    for db in &backup.db_history {
        // The archive id of the same cluster in archive.info (stanza-upgrade writes both
        // histories with the same ids; match on the cluster too, in case they ever differ).
        let archive_id = archive
            .db_history
            .iter()
            .find(|a| a.id == db.id && a.system_id == db.system_id && a.version == db.version)
            .or_else(|| {
                archive
                    .db_history
                    .iter()
                    .rev()
                    .find(|a| a.system_id == db.system_id && a.version == db.version)
            })
            .unwrap_or(db)
            .archive_id();
        let range = wal_range(repo, name, &archive_id)?;
        if range.is_some() || Some(db.id) == current {
            wal.push(WalRange {
                archive_id,
                db_id: db.id,
                range,
            });
        }
    }
    let status = if backup.backups.is_empty() {
        Status::NoBackup
    } else {
        Status::Ok
    };
    Ok(StanzaReport {
        name: name.to_string(),
        status,
        lock_held,
        db_history: backup.db_history.clone(),
        wal,
        backup: Some(backup),
        detail,
    })
}

/// The oldest and newest WAL segment under an archive id. Only the first and last segment
/// directories holding segments are read, so this stays cheap on a large archive.
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
