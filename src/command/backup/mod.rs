//! backup: a consistent physical copy of the cluster, full, differential or incremental.
//!
//! Order of work: stop files and lock → cluster and stanza checks → resume or clean up an
//! unfinished set → `pg_backup_start` → list and copy files in parallel (largest first; small
//! files in batches, one bundle each, see `bundle`) → `pg_backup_stop` (backup_label and
//! tablespace_map go into the backup) → wait until the WAL from start to stop is archived (and
//! copy it into the backup with `archive-copy`) → sync → manifest → backup.info → `latest` →
//! expire. A backup is listed in backup.info only at the
//! very end, so a failed or killed run never leaves a listed backup with missing files; its
//! directory is resumed or removed by the next backup.

mod block;
mod bundle;
mod copy;
mod first;
mod plan;
mod resume;
mod source;
mod wait;
mod work;

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{Command, Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::io::CompressType;
use crate::pg::control::ControlData;
use crate::pg::{Lsn, WalSegment};
use crate::repo::manifest::{DatabaseEntry, FileEntry, PG_DATA};
use crate::repo::{
    BackupInfo, BackupLabel, BackupRecord, BackupType, Manifest, expire, layout, stanza,
};
use crate::storage::{Driver, Storage};
use crate::{log_detail, log_info, log_warn};

use super::format_size;
use super::open::{self, Access};
use plan::{Action, Listing, Owners};
use resume::{Progress, Resumable, ResumeHeader};
use source::{Source, Start};
use work::{BlockSettings, Copied, CopySettings, Item, Owner};

/// What the options ask of this backup.
struct BackupOptions {
    requested: BackupType,
    online: bool,
    force: bool,
    start_fast: bool,
    archive_check: bool,
    archive_copy: bool,
    archive_timeout: Duration,
    compress: CompressType,
    level: i32,
    resume: bool,
    /// `repo1-block`: store relation files block-incrementally.
    block: bool,
    /// `checksum-page` when given; otherwise decided from pg_control.
    checksum_page: Option<bool>,
    exclude: Vec<String>,
    annotation: BTreeMap<String, String>,
}

impl BackupOptions {
    fn from(cfg: &Config) -> Result<BackupOptions> {
        let (compress, level) = open::compression(cfg)?;
        let options = BackupOptions {
            requested: BackupType::parse(cfg.str(Opt::Type).unwrap_or("incr"))
                .unwrap_or(BackupType::Incr),
            online: cfg.bool(Opt::Online),
            force: cfg.bool(Opt::Force),
            start_fast: cfg.bool(Opt::StartFast),
            archive_check: cfg.bool(Opt::ArchiveCheck),
            archive_copy: cfg.bool(Opt::ArchiveCopy),
            archive_timeout: Duration::from_millis(
                cfg.time_ms(Opt::ArchiveTimeout).unwrap_or(60_000),
            ),
            compress,
            level,
            resume: cfg.bool(Opt::Resume),
            block: cfg.bool(Opt::RepoBlock),
            checksum_page: (cfg.source(Opt::ChecksumPage) != crate::config::Source::Default)
                .then(|| cfg.bool(Opt::ChecksumPage)),
            exclude: cfg.list(Opt::Exclude).to_vec(),
            annotation: cfg.hash(Opt::Annotation).iter().cloned().collect(),
        };
        if options.archive_copy && !options.archive_check {
            return Err(Error::new(
                ErrorKind::OptionInvalid,
                "option 'archive-copy' requires option 'archive-check'",
            )
            .with_hint(
                "archive-copy stores WAL from the archive, so the archive must be checked",
            ));
        }
        if options.force && options.online {
            return Err(Error::new(
                ErrorKind::OptionInvalid,
                "option 'force' is only valid for backup with --no-online",
            ));
        }
        Ok(options)
    }
}

/// The cluster at pg1-path must be the one the stanza records (pgBackRest's BackupMismatchError
/// and message).
fn check_stanza_matches(
    repo: &dyn Storage,
    stanza: &str,
    control: &crate::pg::control::ControlData,
) -> Result<()> {
    let info = BackupInfo::load_required(repo, stanza)?;
    let recorded = info.current()?;
    let version = control.version.to_string();
    if recorded.system_id != control.system_id || recorded.version != version {
        return Err(Error::new(
            ErrorKind::BackupMismatch,
            format!(
                "PostgreSQL version {version}, system-id {} do not match stanza version {}, system-id {}",
                control.system_id, recorded.version, recorded.system_id
            ),
        )
        .with_hint(format!(
            "is this the correct stanza? after a major version upgrade run '{}'",
            crate::error::command_hint(&format!("--stanza={stanza} stanza-upgrade"))
        )));
    }
    Ok(())
}

pub fn run(cfg: &Config) -> Result<i32> {
    let options = BackupOptions::from(cfg)?;
    let opened = open::stanza_repo(cfg, Access::Backup)?;
    let (prepared, items) = prepare(cfg, opened.stanza, &opened.repo, &options)?;
    let files = copy(cfg, &prepared, items, &options)?;
    finish(cfg, prepared, files, options)?;
    Ok(0)
}

/// What `prepare` leaves for the copy and the finish: a started backup, its label and the
/// files to copy.
struct Prepared<'a> {
    stanza: &'a str,
    repo: &'a dyn Storage,
    pg_path: PathBuf,
    pg: Driver,
    control: ControlData,
    source: Source,
    info: BackupInfo,
    backup_type: BackupType,
    prior: Option<Manifest>,
    resumable: Option<Resumable>,
    label: String,
    start: Start,
    databases: Vec<DatabaseEntry>,
    checksum_page: bool,
    listing: Listing,
    /// The set's directories in the repository, synced at the end.
    dirs: BTreeSet<String>,
    progress: Progress<'a>,
}

impl Prepared<'_> {
    /// Where and how this backup writes files.
    fn copy_settings<'s>(&'s self, cfg: &Config, options: &BackupOptions) -> CopySettings<'s> {
        CopySettings {
            pg: &self.pg,
            repo: self.repo,
            stanza: self.stanza,
            label: &self.label,
            compress: options.compress,
            level: options.level,
            buffer_size: open::buffer_size(cfg),
            checksum_page: self.checksum_page.then_some(self.start.lsn),
            block: options.block.then_some(BlockSettings {
                block_size: self.control.page_size,
                prior: self.prior.as_ref(),
            }),
        }
    }
}

/// The checks, in pgBackRest's order (stanza, pg_control against it, then the server), the
/// stanza created on first use, the prior backup chosen, the label (a resumed one or new),
/// `pg_backup_start`, the data directory listed, the set's directories created; the files to
/// copy, each with what the plan decided for it, largest first.
fn prepare<'a>(
    cfg: &Config,
    stanza: &'a str,
    repo: &'a dyn Storage,
    options: &BackupOptions,
) -> Result<(Prepared<'a>, Vec<Item>)> {
    let Cluster {
        pg_path,
        pg,
        control,
        mut source,
    } = check_cluster(cfg, stanza, repo, options)?;
    let info = BackupInfo::load_required(repo, stanza)?;

    let (backup_type, prior) =
        choose_prior(repo, stanza, &info, options.requested, options.compress)?;
    let mut header = ResumeHeader {
        label: String::new(),
        backup_type,
        prior: prior.as_ref().map(|p| p.label.clone()),
        compress_type: options.compress,
        system_id: control.system_id,
        pg_version: control.version.to_string(),
    };
    let resumable = resume::prepare(repo, stanza, &info, options.resume.then_some(&header))?;
    let label = match &resumable {
        Some(resumable) => resumable.label.clone(),
        None => new_label(&info, backup_type, prior.as_ref())?,
    };
    header.label = label.clone();

    let start = source.start(&label, options.start_fast, &control)?;
    let databases = source.databases()?;
    let checksum_page = match options.checksum_page {
        Some(true) if control.data_checksum_version == 0 => {
            log_warn!(
                "checksum-page requested but the cluster does not have data checksums enabled: pages are not checked"
            );
            false
        }
        Some(asked) => asked,
        None => control.data_checksum_version > 0,
    };

    let mut owners = Owners::default();
    let listing = plan::list_data_dir(&pg, control.version, &options.exclude, &mut owners)?;
    let dirs = create_set_dirs(cfg, repo, stanza, &label, &listing, resumable.is_some())?;
    let progress = Progress::start(repo, stanza, header)?;
    let now = jiff::Timestamp::now().as_second();
    let mut items: Vec<Item> = listing
        .files
        .iter()
        .map(|file| Item {
            file: file.clone(),
            action: plan::decide(file, prior.as_ref(), now),
            owner: Owner {
                user: owners.user(file.info.uid),
                group: owners.group(file.info.gid),
            },
        })
        .collect();
    // Largest first, so the last files to finish are small ones and workers stay busy.
    items.sort_by(|a, b| {
        b.file
            .info
            .size
            .cmp(&a.file.info.size)
            .then_with(|| a.file.rel.cmp(&b.file.rel))
    });
    let prepared = Prepared {
        stanza,
        repo,
        pg_path,
        pg,
        control,
        source,
        info,
        backup_type,
        prior,
        resumable,
        label,
        start,
        databases,
        checksum_page,
        listing,
        dirs,
        progress,
    };
    Ok((prepared, items))
}

/// The cluster a backup reads, checked against the stanza and the server.
struct Cluster {
    pg_path: PathBuf,
    pg: Driver,
    control: ControlData,
    source: Source,
}

/// The checks in pgBackRest's order: the stanza, pg_control against it, then the server; the
/// stanza created on first use.
fn check_cluster(
    cfg: &Config,
    stanza: &str,
    repo: &dyn Storage,
    options: &BackupOptions,
) -> Result<Cluster> {
    // A stanza that does not exist yet is checked before the cluster, as pgBackRest does, so
    // that a mistyped --stanza fails at once whatever else is wrong.
    let creating = !first::stanza_exists(repo, stanza)?;
    if creating {
        first::require_section(cfg, repo, stanza)?;
    }
    let pg_path = open::pg_path(cfg)?;
    let pg = open::pg_storage(cfg)?;
    let control = open::pg_control(&pg)?;
    // pg_control against the stanza before the server, as pgBackRest does: a pg1-path of
    // another cluster is a backup mismatch (51) whichever server the connection reaches.
    if !creating {
        check_stanza_matches(repo, stanza, &control)?;
    }
    // Then the server: a pg1-path that is not its data directory is reported as such.
    let mut source = if options.online {
        Source::online(
            open::db_session(cfg)?,
            &pg_path,
            &control,
            options.archive_check.then_some(stanza),
        )?
    } else {
        Source::offline(&pg, options.force)?
    };
    if creating && let Source::Online(session) = &mut source {
        first::require_archiving_to(session.as_mut(), repo, stanza)?;
    }
    if stanza::ensure(repo, stanza, &control)? == stanza::Ensured::Created {
        log_info!("stanza '{stanza}' created by its first backup");
    }
    Ok(Cluster {
        pg_path,
        pg,
        control,
        source,
    })
}

/// Creates the set's directory, one per data directory path, and the bundle directory; the
/// directories, to be synced once the set is written.
fn create_set_dirs(
    cfg: &Config,
    repo: &dyn Storage,
    stanza: &str,
    label: &str,
    listing: &Listing,
    resumed: bool,
) -> Result<BTreeSet<String>> {
    let set_dir = layout::backup_set_dir(stanza, label);
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    dirs.insert(set_dir.clone());
    for path in &listing.paths {
        dirs.insert(format!("{set_dir}/{}", path.name));
    }
    // Bundles an interrupted run left (complete or temp) are not reused: their files are copied
    // again, into bundles numbered from 1.
    if resumed {
        repo.remove_dir(&crate::repo::bundle::bundle_dir(stanza, label))?;
    }
    if bundle_options(cfg).enabled {
        dirs.insert(crate::repo::bundle::bundle_dir(stanza, label));
    }
    for dir in &dirs {
        repo.create_dir(dir, 0o750)?;
    }
    Ok(dirs)
}

/// Copies the listed files in parallel, largest first (small files in bundles), reusing what
/// a resumed run stored and verified; the manifest entries of the files the backup holds.
fn copy(
    cfg: &Config,
    prepared: &Prepared,
    items: Vec<Item>,
    options: &BackupOptions,
) -> Result<Vec<FileEntry>> {
    let Prepared {
        stanza,
        repo,
        pg,
        label,
        resumable,
        progress,
        ..
    } = prepared;
    let settings = prepared.copy_settings(cfg, options);
    let total: u64 = items.iter().map(|item| item.file.info.size).sum();
    let copy_one = |item: Item, target: copy::Target| {
        let Item {
            file,
            action,
            owner,
        } = item;
        if let Action::Reference(entry) = action {
            return Ok((Copied::Unchanged(entry), false));
        }
        if let Some(entry) = resumable.as_ref().and_then(|r| r.candidate(&file))
            && resume::verify_stored(
                *repo,
                stanza,
                label,
                entry,
                options.compress,
                settings.buffer_size,
            )?
        {
            progress.record(entry);
            return Ok((Copied::Stored(entry.clone()), true));
        }
        let copied = match action {
            Action::Check(entry) => copy::check_file(&settings, &file, entry, owner, target)?,
            _ => copy::copy_file_to(&settings, &file, owner, target)?,
        };
        // A bundled file is durable only once its whole bundle is: a resumed backup copies
        // bundled files again instead of trusting a bundle the interrupted run left.
        if let Copied::Stored(entry) = &copied
            && entry.bundle_id.is_none()
        {
            progress.record(entry);
        }
        Ok::<_, Error>((copied, false))
    };
    let jobs = bundle::jobs(&bundle_options(cfg), items);
    let results = exec::run_parallel(jobs, open::process_max(cfg), |_, job| match job {
        bundle::Job::One(item) => Ok(vec![copy_one(*item, copy::Target::Object)?]),
        bundle::Job::Bundle(id, items) => {
            let mut open = bundle::OpenBundle::new(*repo, stanza, label, id);
            let mut copied = Vec::with_capacity(items.len());
            for item in items {
                copied.push(copy_one(item, copy::Target::Bundle(&mut open))?);
            }
            open.commit()?;
            Ok(copied)
        }
    })?;

    let (files, reused) = collect(results.into_iter().flatten(), total, pg);
    if resumable.is_some() {
        log_info!(
            "resumed backup {label}: {reused} file(s) reused, {} copied",
            files.len().saturating_sub(reused)
        );
    }
    Ok(files)
}

/// The manifest entries of what the workers copied, each logged as pgBackRest logs it, and how
/// many were reused from an interrupted run.
fn collect(
    results: impl Iterator<Item = (Copied, bool)>,
    total: u64,
    pg: &dyn Storage,
) -> (Vec<FileEntry>, usize) {
    let mut files: Vec<FileEntry> = Vec::new();
    let mut copied = 0u64;
    let mut reused = 0usize;
    for (result, was_reused) in results {
        match result {
            Copied::Stored(entry) => {
                copied += entry.size;
                reused += usize::from(was_reused);
                log_detail!(
                    "{} file {} ({}, {}%) checksum {}",
                    if was_reused { "resume" } else { "backup" },
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
    (files, reused)
}

/// The end of a backup: [`stop`], then [`save`], then retention, run as its own command as
/// pgBackRest logs it (`backup command end`, then `expire command begin` with expire's options,
/// expire's lines, `expire command end`).
fn finish(
    cfg: &Config,
    mut prepared: Prepared,
    files: Vec<FileEntry>,
    options: BackupOptions,
) -> Result<()> {
    let stopped = stop(cfg, &mut prepared, files, &options)?;
    let (stanza, repo) = (prepared.stanza, prepared.repo);
    save(prepared, stopped, options)?;
    super::chain(cfg, Command::Expire, || {
        expire::expire(
            repo,
            stanza,
            &open::expire_settings(cfg),
            jiff::Timestamp::now().as_second(),
        )
    })
}

/// What the end of the backup found: the files the set holds and the WAL range it needs.
struct Stopped {
    files: Vec<FileEntry>,
    lsn_stop: Lsn,
    archive_start: WalSegment,
    archive_stop: WalSegment,
}

/// `pg_backup_stop` (backup_label and tablespace_map into the set), then the WAL from start to
/// stop waited for in the archive (and copied into the set with archive-copy).
fn stop(
    cfg: &Config,
    prepared: &mut Prepared,
    mut files: Vec<FileEntry>,
    options: &BackupOptions,
) -> Result<Stopped> {
    let root_owner = prepared
        .listing
        .paths
        .first()
        .map(|p| Owner {
            user: p.user.clone(),
            group: p.group.clone(),
        })
        .unwrap_or_default();
    // The session ends before the wait for WAL: the server needs nothing more from it.
    let mut source = std::mem::replace(&mut prepared.source, Source::Offline);
    let stop = source.stop(&prepared.control)?;
    drop(source);
    let (stanza, repo) = (prepared.stanza, prepared.repo);
    let control = &prepared.control;
    let settings = prepared.copy_settings(cfg, options);
    if let Some(stop) = &stop {
        for (rel, text) in [
            ("backup_label", Some(&stop.backup_label)),
            ("tablespace_map", stop.tablespace_map.as_ref()),
        ] {
            if let Some(text) = text {
                files.push(store_text(&settings, rel, text, &root_owner)?);
            }
        }
    }

    let start = &prepared.start;
    let (archive_start, archive_stop) = match &stop {
        Some(stop) => (start.wal_segment, stop.wal_segment),
        None => (start.wal_segment, start.wal_segment),
    };
    if options.online && options.archive_check {
        wait::archived(
            repo,
            stanza,
            &prepared.info,
            &archive_start,
            &archive_stop,
            control.wal_segment_size,
            options.archive_timeout,
        )?;
        if options.archive_copy {
            let mut wal = wait::copy_into_backup(
                &settings,
                &prepared.info,
                control.version.wal_dir(),
                &archive_start,
                &archive_stop,
                control.wal_segment_size,
                jiff::Timestamp::now().as_second(),
            )?;
            for entry in &mut wal {
                entry.user = root_owner.user.clone();
                entry.group = root_owner.group.clone();
            }
            files.extend(wal);
        }
    } else if options.online {
        log_warn!(
            "archive-check is disabled: the backup is only consistent with WAL from {} to {}, which pgkeep did not check",
            archive_start.name(),
            archive_stop.name()
        );
    }

    Ok(Stopped {
        files,
        lsn_stop: stop.as_ref().map(|s| s.lsn).unwrap_or(start.lsn),
        archive_start,
        archive_stop,
    })
}

/// The set synced, then the manifest, backup.info and `latest`, in that order (docs/
/// repository-format.md): a set is listed only once everything it holds is durable.
fn save(prepared: Prepared, stopped: Stopped, options: BackupOptions) -> Result<()> {
    let Prepared {
        stanza,
        repo,
        pg_path,
        control,
        mut info,
        backup_type,
        prior,
        resumable,
        label,
        start,
        databases,
        checksum_page,
        listing,
        dirs,
        progress,
        ..
    } = prepared;
    let Stopped {
        mut files,
        lsn_stop,
        archive_start,
        archive_stop,
    } = stopped;
    files.sort_by(|a, b| a.name.cmp(&b.name));
    if resumable.is_some() {
        remove_strays(repo, stanza, &label, &files, options.compress)?;
    }
    for dir in dirs.iter().rev() {
        repo.sync_dir(dir)?;
    }
    let manifest = Manifest {
        label: label.clone(),
        backup_type,
        prior: prior.map(|p| p.label),
        references: Manifest::needed_sets(&files, &label),
        db_id: info.current()?.id,
        pg_version: control.version.to_string(),
        system_id: control.system_id,
        pg_path: pg_path.display().to_string(),
        compress_type: options.compress,
        timestamp_start: start.time,
        timestamp_stop: jiff::Timestamp::now().as_second(),
        lsn_start: start.lsn.to_string(),
        lsn_stop: lsn_stop.to_string(),
        archive_start: archive_start.name(),
        archive_stop: archive_stop.name(),
        timeline: start.wal_segment.timeline,
        data_checksums: control.data_checksum_version > 0,
        checksum_page,
        online: options.online,
        archive_copy: options.archive_copy,
        databases,
        annotation: options.annotation,
        paths: listing.paths,
        files,
        links: listing.links,
    };
    manifest.save(repo, stanza)?;
    fail::fail_point!("backup-manifest-saved");
    progress.finish(&label)?;
    info.add(record_of(&manifest));
    info.save(repo, stanza)?;
    fail::fail_point!("backup-info-saved");
    repo.symlink(&label, &layout::latest_link(stanza))?;

    log_info!("new backup label = {label}");
    log_info!(
        "{} backup size = {}, file total = {}",
        backup_type,
        format_size(manifest.delta()),
        manifest.files.len()
    );
    Ok(())
}

/// The `repo1-bundle*` options.
fn bundle_options(cfg: &Config) -> bundle::BundleOptions {
    let size = |opt, default: u64| {
        cfg.int(opt)
            .and_then(|v| u64::try_from(v).ok())
            .unwrap_or(default)
    };
    bundle::BundleOptions {
        enabled: cfg.bool(Opt::RepoBundle),
        size: size(Opt::RepoBundleSize, 20 << 20),
        limit: size(Opt::RepoBundleLimit, 2 << 20),
        block: cfg.bool(Opt::RepoBlock),
    }
}

/// The backup type actually run and the manifest it is based on.
fn choose_prior(
    repo: &dyn Storage,
    stanza: &str,
    info: &BackupInfo,
    requested: BackupType,
    compress: CompressType,
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
    // pgBackRest names the version of the tool that made the prior backup; the manifest does
    // not record pgkeep's, and a prior backup was made by a pgkeep that reads this format.
    log_info!(
        "last backup label = {}, version = {}",
        record.label,
        crate::VERSION
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
    let stamp = |label: &str| {
        BackupLabel::parse(label)
            .map(|l| l.stamp)
            .unwrap_or_default()
    };
    loop {
        let now = jiff::ZonedDateTime::now();
        let label = BackupLabel::format(backup_type, &now, full.as_deref())?;
        if info
            .latest()
            .is_none_or(|latest| stamp(&label) > stamp(&latest.label))
        {
            return Ok(label);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Stores a file produced by `pg_backup_stop` (backup_label, tablespace_map), owned like the
/// data directory.
fn store_text(settings: &CopySettings, rel: &str, text: &str, owner: &Owner) -> Result<FileEntry> {
    let name = format!("{PG_DATA}/{rel}");
    let stored = copy::store(settings, &name, &mut text.as_bytes(), None, None)?;
    Ok(FileEntry {
        name,
        size: stored.size,
        mtime: jiff::Timestamp::now().as_second(),
        mode: 0o600,
        user: owner.user.clone(),
        group: owner.group.clone(),
        checksum: stored.checksum,
        repo_size: stored.repo_size,
        reference: None,
        page_errors: None,
        block: None,
        bundle_id: None,
        bundle_offset: None,
    })
}

/// After a resume, removes files the interrupted run stored that this backup does not list
/// (e.g. a table dropped in between).
fn remove_strays(
    repo: &dyn Storage,
    stanza: &str,
    label: &str,
    files: &[FileEntry],
    compress: CompressType,
) -> Result<()> {
    let set_dir = layout::backup_set_dir(stanza, label);
    let wanted: BTreeSet<String> = files
        .iter()
        // A bundled file has no object of its own: one left by the interrupted run is a stray.
        .filter(|f| f.reference.is_none() && f.bundle_id.is_none())
        .flat_map(|f| {
            let data = layout::backup_file(stanza, label, &f.name, compress.extension());
            let map = f
                .block
                .as_ref()
                .map(|_| block::map_path(stanza, label, &f.name));
            std::iter::once(data).chain(map)
        })
        .collect();
    let mut pending = vec![format!("{set_dir}/{PG_DATA}")];
    while let Some(dir) = pending.pop() {
        for entry in repo.list(&dir)?.unwrap_or_default() {
            let path = format!("{dir}/{}", entry.name);
            match entry.file_type {
                crate::storage::FileType::Path => pending.push(path),
                _ if !wanted.contains(&path) => {
                    log_detail!(
                        "remove '{path}': stored by the interrupted run but not part of this backup"
                    );
                    repo.remove(&path)?;
                }
                _ => {}
            }
        }
    }
    Ok(())
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
        annotation: manifest.annotation.clone(),
        // The writer's version, for `info`.
        version: Some(crate::VERSION.to_string()),
        error: Some(manifest.files.iter().any(|f| f.page_errors.is_some())),
    }
}
