//! backup: a consistent physical copy of the cluster, full, differential or incremental.
//!
//! Order of work: stop files and lock → stanza and cluster checks → `pg_backup_start` → list
//! and copy files in parallel (largest first) → `pg_backup_stop` (backup_label and
//! tablespace_map go into the backup) → wait until the WAL from start to stop is archived →
//! sync → manifest → backup.info → `latest`. A backup is listed in backup.info only at the
//! very end, so a failed or killed run never leaves a listed backup with missing files; its
//! directory is removed by the next backup.

mod copy;
mod plan;
mod wait;

use std::collections::BTreeSet;
use std::path::Path;
use std::time::Duration;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::lock::{self, Lock, LockKind};
use crate::pg::control::ControlData;
use crate::pg::session::DbSession;
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::repo::{BackupInfo, BackupLabel, BackupRecord, BackupType, Manifest, layout};
use crate::storage::{PosixStorage, Storage};
use crate::{log_detail, log_info, log_warn};

use super::{format_size, open, stanza_create};
use copy::{Copied, CopySettings};
use plan::{Action, Owners};

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    let lock_path = open::lock_path(cfg);
    lock::check_stop(&lock_path, Some(stanza))?;
    let _lock = Lock::acquire(&lock_path, stanza, LockKind::Backup, Duration::ZERO)?;

    let repo = open::repo(cfg)?;
    let pg_path = open::pg_path(cfg)?;
    let control = open::control(&pg_path)?;
    // The cluster first: a wrong pg1-path is reported as such, not as a stanza mismatch.
    let mut session = open::db_session(cfg)?;
    check_cluster(
        &mut session,
        &pg_path,
        &control,
        cfg.bool(Opt::ArchiveCheck),
    )?;
    if stanza_create::ensure(&repo, stanza, &control)? == stanza_create::Ensured::Created {
        log_info!("stanza '{stanza}' created by its first backup");
    }
    let mut info = BackupInfo::load_required(&repo, stanza)?;
    let db_id = info.current()?.id;

    remove_unfinished(&repo, stanza, &info)?;
    let requested =
        BackupType::parse(cfg.str(Opt::Type).unwrap_or("incr")).unwrap_or(BackupType::Incr);
    let (compress, level) = open::compression(cfg)?;
    let (backup_type, prior) = choose_prior(&repo, stanza, &info, requested, compress)?;

    let label = new_label(&info, backup_type, prior.as_ref())?;
    let start_fast = cfg.bool(Opt::StartFast);
    if start_fast {
        log_info!(
            "execute non-exclusive backup start: backup begins after the requested immediate checkpoint completes"
        );
    } else {
        log_info!(
            "execute non-exclusive backup start: backup begins after the next regular checkpoint completes"
        );
    }
    let start = session.backup_start(&label, start_fast)?;
    log_info!(
        "backup start archive = {}, lsn = {}",
        start.wal_segment.name(),
        start.lsn
    );

    let pg = PosixStorage::new(pg_path.clone());
    let mut owners = Owners::default();
    let listing = plan::list_data_dir(&pg, control.version, &mut owners)?;
    let set_dir = layout::backup_set_dir(stanza, &label);
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    dirs.insert(set_dir.clone());
    for path in &listing.paths {
        dirs.insert(format!("{set_dir}/{}", path.name));
    }
    for dir in &dirs {
        repo.create_dir(dir, 0o750)?;
    }

    let settings = CopySettings {
        pg: &pg,
        repo: &repo,
        stanza,
        label: &label,
        compress,
        level,
        buffer_size: open::buffer_size(cfg),
    };
    let now = jiff::Timestamp::now().as_second();
    let mut jobs: Vec<(plan::SourceFile, Action, copy::Owner)> = listing
        .files
        .iter()
        .map(|file| {
            let owner = (owners.user(file.info.uid), owners.group(file.info.gid));
            (file.clone(), plan::decide(file, prior.as_ref(), now), owner)
        })
        .collect();
    // Largest first, so the last files to finish are small ones and workers stay busy.
    jobs.sort_by(|a, b| {
        b.0.info
            .size
            .cmp(&a.0.info.size)
            .then_with(|| a.0.rel.cmp(&b.0.rel))
    });
    let total: u64 = jobs.iter().map(|j| j.0.info.size).sum();
    let results =
        exec::run_parallel(
            jobs,
            open::process_max(cfg),
            |_, (file, action, owner)| match action {
                Action::Copy => copy::copy_file(&settings, &file, owner),
                Action::Reference(entry) => Ok(Copied::Unchanged(entry)),
                Action::Check(entry) => copy::check_file(&settings, &file, entry, owner),
            },
        )?;

    let mut files: Vec<FileEntry> = Vec::with_capacity(results.len());
    let mut copied = 0u64;
    for result in results {
        match result {
            Copied::Stored(entry) => {
                copied += entry.size;
                log_detail!(
                    "backup file {} ({}, {}%) checksum {}",
                    pg.describe(entry.name.trim_start_matches("pg_data/")),
                    format_size(entry.size),
                    copied * 100 / total.max(1),
                    entry.checksum
                );
                files.push(entry);
            }
            Copied::Unchanged(entry) => {
                log_detail!(
                    "match file from prior backup {} ({})",
                    entry.name,
                    format_size(entry.size)
                );
                files.push(entry);
            }
            Copied::Removed(rel) => {
                log_detail!("skip file removed by database {}", pg.describe(&rel))
            }
        }
    }

    let stop = session.backup_stop()?;
    log_info!(
        "backup stop archive = {}, lsn = {}",
        stop.wal_segment.name(),
        stop.lsn
    );
    files.push(store_text(
        &settings,
        "backup_label",
        &stop.backup_label,
        &mut owners,
        &pg,
    )?);
    if let Some(map) = &stop.tablespace_map {
        files.push(store_text(
            &settings,
            "tablespace_map",
            map,
            &mut owners,
            &pg,
        )?);
    }
    drop(session);

    if cfg.bool(Opt::ArchiveCheck) {
        let timeout = Duration::from_millis(cfg.time_ms(Opt::ArchiveTimeout).unwrap_or(60_000));
        wait::archived(
            &repo,
            stanza,
            &info,
            &start.wal_segment,
            &stop.wal_segment,
            control.wal_segment_size,
            timeout,
        )?;
    }

    for dir in dirs.iter().rev() {
        repo.sync_dir(dir)?;
    }
    files.sort_by(|a, b| a.name.cmp(&b.name));
    let mut references: Vec<String> = files
        .iter()
        .filter_map(|f| f.reference.clone())
        .collect::<BTreeSet<_>>()
        .into_iter()
        .collect();
    references.sort();
    let manifest = Manifest {
        label: label.clone(),
        backup_type,
        prior: prior.as_ref().map(|p| p.label.clone()),
        references,
        db_id,
        pg_version: control.version.to_string(),
        system_id: control.system_id,
        pg_path: pg_path.display().to_string(),
        compress_type: compress,
        timestamp_start: start.time,
        timestamp_stop: jiff::Timestamp::now().as_second(),
        lsn_start: start.lsn.to_string(),
        lsn_stop: stop.lsn.to_string(),
        archive_start: start.wal_segment.name(),
        archive_stop: stop.wal_segment.name(),
        timeline: start.wal_segment.timeline,
        data_checksums: control.data_checksum_version > 0,
        paths: listing.paths,
        files,
        links: listing.links,
    };
    manifest.save(&repo, stanza)?;
    info.add(record_of(&manifest));
    info.save(&repo, stanza)?;
    repo.symlink(&label, &layout::latest_link(stanza))?;

    log_info!("new backup label = {label}");
    log_info!(
        "{backup_type} backup size = {}, file total = {}",
        format_size(manifest.delta()),
        manifest.files.len()
    );
    super::expire::after_backup(cfg, &repo, stanza)?;
    Ok(0)
}

/// Refuses to back up a cluster that is not the one configured for the stanza.
fn check_cluster(
    session: &mut DbSession,
    pg_path: &Path,
    control: &ControlData,
    archive_check: bool,
) -> Result<()> {
    let data_directory = session.data_directory()?;
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canonical(Path::new(&data_directory)) != canonical(pg_path) {
        return Err(Error::new(
            ErrorKind::DbMismatch,
            format!(
                "pg1-path '{}' does not match the server's data_directory '{data_directory}'",
                pg_path.display()
            ),
        )
        .with_hint("set pg1-path to the data directory of the cluster pgkeep connects to"));
    }
    let system_id = session.system_id()?;
    if system_id != control.system_id {
        return Err(Error::new(
            ErrorKind::DbMismatch,
            format!(
                "server system id {system_id} does not match pg_control system id {}",
                control.system_id
            ),
        ));
    }
    if archive_check {
        let mode = session.setting("archive_mode")?.unwrap_or_default();
        if mode == "off" {
            return Err(Error::new(ErrorKind::DbMismatch, "archive_mode must be enabled")
                .with_hint("set archive_mode = on and restart, or use --no-archive-check for a backup that needs no WAL"));
        }
        let command = session.setting("archive_command")?.unwrap_or_default();
        if command.is_empty() || command == "(disabled)" {
            return Err(
                Error::new(ErrorKind::DbMismatch, "archive_command is not set")
                    .with_hint("set archive_command = 'pgkeep --stanza=<stanza> archive-push %p'"),
            );
        }
    }
    Ok(())
}

/// Removes backup directories that no backup.info entry lists: left by a failed or killed run.
fn remove_unfinished(repo: &dyn Storage, stanza: &str, info: &BackupInfo) -> Result<()> {
    let Some(entries) = repo.list(&layout::backup_dir(stanza))? else {
        return Ok(());
    };
    for entry in entries {
        if BackupLabel::parse(&entry.name).is_some() && info.find(&entry.name).is_none() {
            log_warn!(
                "remove unfinished backup set '{}' left by an earlier run",
                entry.name
            );
            repo.remove_dir(&layout::backup_set_dir(stanza, &entry.name))?;
        }
    }
    Ok(())
}

/// The backup type actually run and the manifest it is based on.
fn choose_prior(
    repo: &dyn Storage,
    stanza: &str,
    info: &BackupInfo,
    requested: BackupType,
    compress: crate::io::CompressType,
) -> Result<(BackupType, Option<Manifest>)> {
    let current_db = info.current()?.id;
    let prior_record = match requested {
        BackupType::Full => None,
        BackupType::Diff => info.latest_full(),
        BackupType::Incr => info.latest(),
    }
    .filter(|record| record.db_id == current_db);
    let Some(record) = prior_record else {
        if requested != BackupType::Full {
            log_warn!("no prior backup exists, {requested} backup has been changed to full");
        }
        return Ok((BackupType::Full, None));
    };
    let manifest = Manifest::load(repo, stanza, &record.label)?.ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!("manifest of prior backup '{}' is missing", record.label),
        )
        .with_hint("run verify; a full backup (--type=full) does not need it")
    })?;
    if manifest.compress_type != compress {
        log_warn!(
            "compress-type '{}' differs from prior backup '{}' ('{}'), {requested} backup has been changed to full",
            compress.name(),
            record.label,
            manifest.compress_type.name()
        );
        return Ok((BackupType::Full, None));
    }
    log_info!(
        "last backup label = {}, version = {}",
        record.label,
        manifest.pg_version
    );
    Ok((requested, Some(manifest)))
}

/// A label after every existing one: waits for the next second if needed.
fn new_label(
    info: &BackupInfo,
    backup_type: BackupType,
    prior: Option<&Manifest>,
) -> Result<String> {
    let full = prior.map(|p| {
        BackupLabel::parse(&p.label)
            .map(|l| l.full)
            .unwrap_or_else(|| p.label.clone())
    });
    loop {
        let now = jiff::ZonedDateTime::now();
        let label = BackupLabel::format(backup_type, &now, full.as_deref())?;
        let after_latest = info
            .latest()
            .is_none_or(|latest| stamp_of(&label) > stamp_of(&latest.label));
        if after_latest {
            return Ok(label);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn stamp_of(label: &str) -> String {
    BackupLabel::parse(label)
        .map(|l| l.stamp)
        .unwrap_or_default()
}

/// Stores a file produced by `pg_backup_stop` (backup_label, tablespace_map), owned like the
/// data directory.
fn store_text(
    settings: &CopySettings,
    rel: &str,
    text: &str,
    owners: &mut Owners,
    pg: &PosixStorage,
) -> Result<FileEntry> {
    let name = format!("{PG_DATA}/{rel}");
    let (size, checksum, repo_size) = copy::store(settings, &name, &mut text.as_bytes())?;
    let root = pg.info("")?;
    let (user, group) = root
        .map(|r| (owners.user(r.uid), owners.group(r.gid)))
        .unwrap_or((None, None));
    Ok(FileEntry {
        name,
        size,
        mtime: jiff::Timestamp::now().as_second(),
        mode: 0o600,
        user,
        group,
        checksum,
        repo_size,
        reference: None,
    })
}

fn record_of(manifest: &Manifest) -> BackupRecord {
    BackupRecord {
        label: manifest.label.clone(),
        backup_type: manifest.backup_type,
        prior: manifest.prior.clone(),
        references: manifest.references.clone(),
        db_id: manifest.db_id,
        timestamp_start: manifest.timestamp_start,
        timestamp_stop: manifest.timestamp_stop,
        lsn_start: manifest.lsn_start.clone(),
        lsn_stop: manifest.lsn_stop.clone(),
        archive_start: manifest.archive_start.clone(),
        archive_stop: manifest.archive_stop.clone(),
        size: manifest.size(),
        delta: manifest.delta(),
        repo_size: manifest.repo_size(),
        repo_delta: manifest.repo_delta(),
    }
}
