//! restore: rebuild a data directory (and its tablespaces) from a backup set and set up
//! recovery.
//!
//! Order of work: stop files → options → choose the backup set (`select`) → check everything
//! that can be checked before writing: manifest names, remapping and link destinations
//! (`plan`), the databases to leave out (`selective`), the target timeline against the archived
//! history (`timeline`), the WAL the backup needs in the archive (`wal`), a running cluster and
//! a non-empty directory, which delta or force may only clean where it is shown to be the
//! cluster's (`clean`) → the data directory and destinations created, `backup.manifest` in the
//! data directory (so that a restore interrupted from here on can be finished with delta) →
//! with delta or force, remove `global/pg_control` first and then whatever the backup does not
//! hold → directories and links → files in parallel, largest first, each kept, zeroed or
//! restored and verified (`files`) → tablespace_map when tablespaces moved → recovery settings → syncfs of
//! the file systems written (small files are not fsynced one by one) → `pg_control` last, so
//! that a restore that stops half-way, delta or not, leaves a directory PostgreSQL refuses to
//! start (rerun the restore, with --delta, to finish it) → sync.

mod block;
mod catalog;
mod clean;
mod files;
mod plan;
mod recovery;
mod request;
mod safety;
mod select;
mod selective;
mod target;
mod timeline;
mod wal;
mod write;

#[cfg(test)]
mod fixture;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::pg::PgVersion;
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::repo::{BackupInfo, Manifest};
use crate::storage::{PosixStorage, Storage};
use crate::{log_debug, log_detail, log_info, log_warn};

use super::format_size;
use super::open::{self, Access};
use files::Outcome;
use recovery::RecoveryType;

const PG_CONTROL: &str = "global/pg_control";

pub fn run(cfg: &Config) -> Result<i32> {
    let opened = open::stanza_repo(cfg, Access::Read)?;
    let planned = plan_restore(cfg, opened.stanza, &opened.repo)?;
    let storages: Vec<PosixStorage> = planned
        .plan
        .roots
        .iter()
        .map(|root| PosixStorage::new(root.path.clone()))
        .collect();
    let process_max = open::process_max(cfg);
    // Into empty directories, with several workers, the files are created ahead of the
    // workers by a thread of their own (`write::create_files_ahead`); process-max=1 keeps a
    // restore on one core.
    let create_ahead = planned.occupied.is_empty() && process_max > 1;
    let settings = files::Settings {
        repo: &opened.repo,
        stanza: opened.stanza,
        manifest: &planned.manifest,
        delta: planned.delta,
        force: planned.force,
        buffer_size: planned.buffer_size,
        parallel: process_max > 1,
        created_ahead: create_ahead,
        set_owner: nix::unistd::Uid::effective().is_root(),
        total: planned.manifest.size(),
        done: AtomicU64::new(0),
    };
    let written = write_files(&planned, &settings, &storages, process_max)?;
    recover(&planned, &settings, &storages, written)?;
    Ok(0)
}

/// What `plan_restore` decided: the set, where each of its files goes, and how the destinations
/// may be treated.
struct Planned {
    request: request::Request,
    pg_path: PathBuf,
    manifest: Manifest,
    version: PgVersion,
    buffer_size: usize,
    excluded: selective::Excluded,
    plan: plan::Plan,
    delta: bool,
    force: bool,
    /// The destinations that hold files already, with one of them each.
    occupied: Vec<(usize, PathBuf)>,
}

/// Chooses the backup set and checks everything that can be checked before the first write:
/// the running cluster, the manifest's names, remapping and link destinations, the databases
/// left out, the target timeline, the WAL the set needs, and destinations that hold files.
fn plan_restore(cfg: &Config, stanza: &str, repo: &dyn Storage) -> Result<Planned> {
    let request = request::from_config(cfg)?;
    // A running cluster is refused before anything in the repository is looked at, as
    // pgBackRest does (so that both exit 38 whatever the repository holds).
    let pg_path = open::pg_path(cfg)?;
    clean::check_not_running(&pg_path)?;
    let info = BackupInfo::load_required(repo, stanza)?;

    let target = request.target.as_ref().map(|(t, text)| (t, text.as_str()));
    let choice = select::choose(&info.backups, request.set.as_deref(), target)?;
    let label = choice.record.label.clone();
    match (&choice.reason, request.recovery.recovery_type) {
        (Some(reason), _) => log_info!("{reason}"),
        (None, RecoveryType::Xid | RecoveryType::Name) if request.set.is_none() => log_info!(
            "backup set {label} is the latest: an xid or name target cannot be placed against \
             backups, use --set to restore an older one"
        ),
        _ => {}
    }
    let manifest = Manifest::load(repo, stanza, &label)?.ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!("manifest of backup set '{label}' is missing"),
        )
        .with_hint("the repository is damaged; run verify or restore another set with --set")
    })?;
    let version = PgVersion::parse(&manifest.pg_version).ok_or_else(|| {
        Error::new(
            ErrorKind::VersionNotSupported,
            format!(
                "backup set '{label}' has unknown version '{}'",
                manifest.pg_version
            ),
        )
    })?;
    let buffer_size = open::buffer_size(cfg);

    // As pgBackRest, before the remapping lines: the repository, and for an online backup the
    // time recovery starts from (the backup's start, local time); the start LSN is at detail
    // level.
    let recovery = if manifest.online {
        let start = jiff::Timestamp::from_second(manifest.timestamp_start)
            .map(|t| {
                t.to_zoned_datetime(jiff::tz::TimeZone::system())
                    .strftime("%Y-%m-%d %H:%M:%S")
                    .to_string()
            })
            .unwrap_or_else(|_| manifest.timestamp_start.to_string());
        format!(", recovery will start at {start}")
    } else {
        String::new()
    };
    log_info!("repo1: restore backup set {label}{recovery}");
    log_detail!("backup start lsn = {}", manifest.lsn_start);
    if Path::new(&manifest.pg_path) != pg_path {
        log_info!("remap data directory to '{}'", pg_path.display());
    }
    // Everything that can be refused is refused here, before the first write.
    let excluded = selective::excluded(&manifest, &request.db_include, &request.db_exclude)?;
    let names = tablespace_names(repo, stanza, &manifest, buffer_size);
    let plan = plan::plan(
        &manifest,
        &pg_path,
        &request.remap,
        &names,
        &excluded,
        version.wal_dir(),
    )?;
    if !matches!(
        request.recovery.recovery_type,
        RecoveryType::None | RecoveryType::Preserve
    ) {
        check_timeline(repo, stanza, &info, &manifest, version, request.timeline)?;
    }
    check_wal(repo, stanza, &manifest, &request, buffer_size)?;
    let (delta, force) = destructive_options(&request, &pg_path);
    let occupied = clean::occupied(&plan)?;
    let owned = clean::owned_roots(&plan, delta || force);
    if let Some((root, path)) = occupied.iter().find(|(root, _)| !owned[*root]) {
        return Err(not_empty(&plan, *root, path, delta || force));
    }

    Ok(Planned {
        request,
        pg_path,
        manifest,
        version,
        buffer_size,
        excluded,
        plan,
        delta,
        force,
        occupied,
    })
}

/// What `write_files` leaves for `recover`.
struct Written {
    /// `backup.manifest` in the data directory, removed before `pg_control` is written.
    marker: PathBuf,
    outcomes: Vec<Outcome>,
}

/// Creates the destinations with the marker first, cleans what delta or force may remove,
/// creates paths and links, then restores every file but `pg_control` in parallel, largest
/// first.
fn write_files(
    planned: &Planned,
    settings: &files::Settings,
    storages: &[PosixStorage],
    process_max: usize,
) -> Result<Written> {
    let Planned {
        request,
        pg_path,
        manifest,
        version,
        plan,
        occupied,
        ..
    } = planned;
    let am_root = settings.set_owner;
    // The marker goes in before anything else changes, so that a restore killed at any later
    // point leaves a directory a `--delta` rerun recognises as a data directory.
    write::create_roots(plan, manifest, am_root)?;
    let marker = write_marker(pg_path, manifest)?;
    if !occupied.is_empty() {
        // Until the restore is complete the cluster must not start, delta or not.
        storages[0].remove(PG_CONTROL)?;
        let keep = preserved(request.recovery.recovery_type, pg_path);
        let expected = clean::expected(plan, version.wal_dir(), &keep);
        clean::clean(plan, &expected)?;
    }
    write::create_paths_and_links(plan, manifest, storages, version.wal_dir(), am_root)?;
    fail::fail_point!("restore-paths-created");

    let control_name = format!("{PG_DATA}/{PG_CONTROL}");
    let keep = preserved(request.recovery.recovery_type, pg_path);
    let mut jobs: Vec<(usize, &FileEntry)> = manifest
        .files
        .iter()
        .enumerate()
        .filter(|(_, f)| f.name != control_name)
        .filter(|(index, _)| {
            let (place, _) = &plan.files[*index];
            !(place.root == 0 && keep.contains(&place.rel.as_str()))
        })
        .collect();
    jobs.sort_by(|a, b| {
        b.1.size
            .cmp(&a.1.size)
            .then_with(|| a.1.name.cmp(&b.1.name))
    });
    let restore_one = |index: usize| restore_file(planned, settings, storages, index);
    let ahead: Vec<PathBuf> = if settings.created_ahead {
        jobs.iter()
            .map(|(index, _)| {
                let (place, _) = &plan.files[*index];
                storages[place.root].root().join(&place.rel)
            })
            .collect()
    } else {
        Vec::new()
    };
    let stop_ahead = AtomicBool::new(false);
    let outcomes = std::thread::scope(|scope| {
        if !ahead.is_empty() {
            scope.spawn(|| write::create_files_ahead(&ahead, &stop_ahead));
        }
        let outcomes = exec::run_parallel(jobs, process_max, |_, (index, _)| restore_one(index));
        stop_ahead.store(true, Ordering::Relaxed);
        outcomes
    })?;

    Ok(Written { marker, outcomes })
}

/// Makes the directory recoverable: tablespace_map when tablespaces moved, the recovery
/// settings, the marker removed, the file systems synced, then `pg_control` last, so that a
/// restore that stops half-way leaves a directory PostgreSQL refuses to start.
fn recover(
    planned: &Planned,
    settings: &files::Settings,
    storages: &[PosixStorage],
    written: Written,
) -> Result<()> {
    let Planned {
        request,
        pg_path,
        manifest,
        version,
        excluded,
        plan,
        delta,
        ..
    } = planned;
    let Written { marker, outcomes } = written;
    let am_root = settings.set_owner;
    let control_name = format!("{PG_DATA}/{PG_CONTROL}");
    if plan.tablespaces_moved {
        write::tablespace_map(plan, manifest, pg_path, am_root)?;
    }
    write::recovery(pg_path, *version, &request.recovery)?;
    std::fs::remove_file(&marker)
        .map_err(|e| Error::io(ErrorKind::FileRemove, "remove", marker.display(), &e))?;
    write::sync_file_systems(storages)?;
    if let Some(index) = manifest.files.iter().position(|f| f.name == control_name) {
        log_info!(
            "restore {PG_CONTROL} (performed last to ensure aborted restores cannot be started)"
        );
        fail::fail_point!("restore-before-pg-control");
        restore_file(planned, settings, storages, index)?;
        // pg_control is small, so restored from a bundle without an fsync of its own.
        write::sync_file_systems(storages)?;
    }
    write::sync(plan, storages)?;

    let count = |outcome| outcomes.iter().filter(|o| **o == outcome).count();
    if *delta {
        log_info!(
            "delta restore: {} files matched the backup and were kept, {} restored",
            count(Outcome::Matched),
            count(Outcome::Restored)
        );
    }
    log_info!(
        "restore size = {}, file total = {}",
        format_size(manifest.size()),
        manifest.files.len()
    );
    if !excluded.is_empty() {
        log_warn!(
            "{} zeroed files of databases left out of the restore: drop them once the cluster \
             is up: {}",
            count(Outcome::Zeroed),
            excluded.drops.join(" ")
        );
    }
    Ok(())
}

/// Restores the manifest's file `index` to its place.
fn restore_file(
    planned: &Planned,
    settings: &files::Settings,
    storages: &[PosixStorage],
    index: usize,
) -> Result<Outcome> {
    let (place, zero) = &planned.plan.files[index];
    let file = &planned.manifest.files[index];
    files::restore(settings, &storages[place.root], &place.rel, file, *zero)
}

/// The WAL the backup set needs from the archive, unless `--no-archive-check`. With
/// `--type=none` pgkeep writes no recovery settings, so the DBA says where WAL comes from: not
/// checked. A standby with `primary_conninfo` may stream it from the primary: a warning.
fn check_wal(
    repo: &dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    request: &request::Request,
    buffer_size: usize,
) -> Result<()> {
    let recovery = &request.recovery;
    if !request.archive_check || recovery.recovery_type == RecoveryType::None {
        return Ok(());
    }
    let streams = recovery::is_standby(recovery)
        && recovery
            .options
            .iter()
            .any(|(k, _)| k == "primary_conninfo");
    let missing = if streams {
        wal::Missing::Warn
    } else {
        wal::Missing::Refuse
    };
    wal::check(repo, stanza, manifest, buffer_size, missing)
}

/// `--delta` and `--force` as they apply: both are turned off, with a warning, when the data
/// directory holds neither `PG_VERSION` nor `backup.manifest`, so that a mistyped `pg1-path`
/// is refused as "contains files" instead of emptied.
fn destructive_options(request: &request::Request, pg_path: &std::path::Path) -> (bool, bool) {
    if !(request.delta || request.force) || clean::is_data_dir(pg_path) {
        return (request.delta, request.force);
    }
    log_warn!(
        "--delta or --force given but '{}' holds neither 'PG_VERSION' nor '{}' to show that it \
         is a PostgreSQL data directory: --delta and --force are disabled, and the restore is \
         refused if any destination holds files",
        pg_path.display(),
        clean::RESTORE_MARKER
    );
    (false, false)
}

/// Writes the manifest to the data directory as `backup.manifest`, the marker that shows a later
/// `--delta` this is a data directory even before `PG_VERSION` is restored (pgBackRest does
/// the same). It is removed before `pg_control` is written.
fn write_marker(pg_path: &std::path::Path, manifest: &Manifest) -> Result<std::path::PathBuf> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let marker = pg_path.join(clean::RESTORE_MARKER);
    let bytes = crate::repo::info_file::encode(manifest)?;
    std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o640)
        .open(&marker)
        .and_then(|mut file| file.write_all(&bytes))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "write", marker.display(), &e))?;
    Ok(marker)
}

/// The refusal of a destination that holds files restore may not remove.
fn not_empty(plan: &plan::Plan, root: usize, path: &std::path::Path, destructive: bool) -> Error {
    let error = Error::new(
        ErrorKind::PathNotEmpty,
        format!(
            "unable to restore to path '{}' because it contains files",
            path.display()
        ),
    );
    let link = plan.links.iter().find(|l| l.root == Some(root));
    match link {
        Some(link) if destructive => error.with_hint(format!(
            "the data directory's link '{}' does not point to '{}', so it is not known to be \
             this cluster's: empty it, or give another destination (tablespace-map, link-map)",
            link.rel,
            link.destination.display()
        )),
        _ => error.with_hint("empty the directory, or use --delta (or --force) to overwrite it"),
    }
}

/// Data-directory files a `--type=preserve` restore leaves as they are.
fn preserved(recovery_type: RecoveryType, pg_path: &std::path::Path) -> Vec<&'static str> {
    if recovery_type != RecoveryType::Preserve {
        return Vec::new();
    }
    let names = [
        "recovery.conf",
        "recovery.signal",
        "standby.signal",
        "postgresql.auto.conf",
    ];
    names
        .into_iter()
        .filter(|name| pg_path.join(name).exists())
        .collect()
}

/// Tablespace names from the backup's `pg_tablespace`; empty when there are no tablespaces or
/// the catalog cannot be read (then tablespaces are known by oid only).
fn tablespace_names(
    repo: &dyn Storage,
    stanza: &str,
    manifest: &Manifest,
    buffer_size: usize,
) -> BTreeMap<u32, String> {
    if !manifest
        .links
        .iter()
        .any(|l| l.name.starts_with(&format!("{PG_DATA}/pg_tblspc/")))
    {
        return BTreeMap::new();
    }
    let read = |name: &str| files::read_backup_file(repo, stanza, manifest, name, buffer_size);
    let names = read(&format!("{PG_DATA}/global/pg_filenode.map"))
        .and_then(|map| {
            let node = catalog::tablespace_filenode(&map).ok_or_else(|| {
                Error::new(
                    ErrorKind::FileInvalid,
                    "pg_filenode.map has no pg_tablespace",
                )
            })?;
            read(&format!("{PG_DATA}/global/{node}"))
        })
        .map(|heap| catalog::tablespace_names(&heap));
    match names {
        Ok(names) => names,
        Err(err) => {
            log_debug!("tablespace names not read from the backup: {err}");
            BTreeMap::new()
        }
    }
}

/// Checks `target-timeline` (or PostgreSQL's default) against the archived history files.
fn check_timeline(
    repo: &dyn Storage,
    stanza: &str,
    info: &BackupInfo,
    manifest: &Manifest,
    version: PgVersion,
    given: Option<timeline::TimelineTarget>,
) -> Result<()> {
    // PostgreSQL's default: the latest timeline from 12 on, the backup's own before.
    let target = given.unwrap_or(if version.uses_signal_files() {
        timeline::TimelineTarget::Latest
    } else {
        timeline::TimelineTarget::Current
    });
    if target == timeline::TimelineTarget::Current {
        return Ok(());
    }
    let Some(db) = info.db_history.iter().find(|db| db.id == manifest.db_id) else {
        return Ok(());
    };
    let dir = crate::repo::layout::archive_id_dir(stanza, &db.archive_id());
    let mut histories = Vec::new();
    for entry in repo.list(&dir)?.unwrap_or_default() {
        let Some(id) = crate::pg::wal::WalSegment::history_timeline(&entry.name) else {
            continue;
        };
        let path = format!("{dir}/{}", entry.name);
        if let Some(bytes) = repo.read_all(&path)? {
            histories.push((id, String::from_utf8_lossy(&bytes).into_owned()));
        }
    }
    let stop = manifest
        .lsn_stop
        .parse()
        .map_err(|e: Error| e.context(format!("backup set '{}' stop LSN", manifest.label)))?;
    let followed = timeline::check(target, manifest.timeline, stop, &manifest.label, &histories)?;
    if followed != manifest.timeline {
        log_info!(
            "recovery will follow timeline {followed} from backup set {} on timeline {}",
            manifest.label,
            manifest.timeline
        );
    }
    Ok(())
}
