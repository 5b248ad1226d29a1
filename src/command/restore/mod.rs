//! restore: rebuild a data directory from a backup set and set up recovery.
//!
//! Order of work: stop files → choose the backup set → refuse a running cluster and a non-empty
//! directory → directories and links → files in parallel (largest first), each verified against
//! its manifest checksum → recovery settings → `global/pg_control` last, so that a restore that
//! stops half-way leaves a directory PostgreSQL refuses to start → sync.

mod recovery;

use std::io::Read;
use std::path::{Path, PathBuf};

use crate::config::{Command, Config, Opt, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::exec;
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::lock;
use crate::pg::PgVersion;
use crate::repo::manifest::{FileEntry, PG_DATA};
use crate::repo::{BackupInfo, Manifest, layout};
use crate::storage::{FileType, PosixStorage, Storage, WriteOptions};
use crate::{log_detail, log_info, log_warn};

use super::{format_size, open};
use recovery::{RecoveryRequest, RecoveryType};

const PG_CONTROL: &str = "global/pg_control";

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    lock::check_stop(&open::lock_path(cfg), Some(stanza))?;
    let repo = open::repo(cfg)?;
    let info = BackupInfo::load_required(&repo, stanza)?;
    let label = match cfg.str(Opt::Set) {
        Some(set) if set != "latest" => {
            info.find(set).map(|b| b.label.clone()).ok_or_else(|| {
                Error::new(
                    ErrorKind::BackupSetInvalid,
                    format!("backup set '{set}' is not valid"),
                )
                .with_hint("'pgkeep info' lists the backup sets of the stanza")
            })?
        }
        _ => info.latest().map(|b| b.label.clone()).ok_or_else(|| {
            Error::new(
                ErrorKind::BackupSetInvalid,
                format!("no backup set found to restore for stanza '{stanza}'"),
            )
        })?,
    };
    let manifest = Manifest::load(&repo, stanza, &label)?.ok_or_else(|| {
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
    let request = recovery_request(cfg)?;

    let pg_path = open::pg_path(cfg)?;
    prepare_target(
        &pg_path,
        &manifest,
        cfg.bool(Opt::Delta) || cfg.bool(Opt::Force),
    )?;
    log_info!(
        "restore backup set {label}, recovery will start at {}",
        manifest.lsn_start
    );

    let pg = PosixStorage::new(pg_path.clone());
    let am_root = nix::unistd::Uid::effective().is_root();
    create_paths_and_links(&pg, &manifest, am_root)?;

    let mut jobs: Vec<&FileEntry> = manifest
        .files
        .iter()
        .filter(|f| f.name != format!("{PG_DATA}/{PG_CONTROL}"))
        .collect();
    jobs.sort_by(|a, b| b.size.cmp(&a.size).then_with(|| a.name.cmp(&b.name)));
    let buffer_size = open::buffer_size(cfg);
    let restore_one = |file: &FileEntry| -> Result<()> {
        restore_file(&repo, &pg, stanza, &manifest, file, buffer_size, am_root)?;
        log_detail!(
            "restore file {} ({}) checksum {}",
            pg.describe(rel_of(&file.name)),
            format_size(file.size),
            file.checksum
        );
        Ok(())
    };
    exec::run_parallel(jobs, open::process_max(cfg), |_, file| restore_one(file))?;

    write_recovery(&pg_path, version, &request)?;

    // pg_control last: until it is in place PostgreSQL will not start a half-restored cluster.
    if let Some(control) = manifest.file(&format!("{PG_DATA}/{PG_CONTROL}")) {
        log_info!(
            "restore {PG_CONTROL} (performed last to ensure aborted restores cannot be started)"
        );
        restore_one(control)?;
    }
    sync_tree(&pg, &manifest)?;
    log_info!(
        "restore size = {}, file total = {}",
        format_size(manifest.size()),
        manifest.files.len()
    );
    Ok(0)
}

fn rel_of(name: &str) -> &str {
    name.strip_prefix("pg_data/").unwrap_or(name)
}

/// Refuses a running cluster; refuses a non-empty directory unless told to overwrite it, then
/// empties it so the result is exactly the backup.
fn prepare_target(pg_path: &Path, manifest: &Manifest, overwrite: bool) -> Result<()> {
    let pid_file = pg_path.join("postmaster.pid");
    if let Ok(text) = std::fs::read_to_string(&pid_file) {
        let pid = text
            .lines()
            .next()
            .and_then(|l| l.trim().parse::<i32>().ok());
        let alive = pid.is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        });
        if alive {
            return Err(Error::new(
                ErrorKind::PgRunning,
                format!(
                    "unable to restore while PostgreSQL is running: '{}' names a live process",
                    pid_file.display()
                ),
            )
            .with_hint("stop the cluster before restoring"));
        }
    }
    let mut targets = vec![pg_path.to_path_buf()];
    for link in &manifest.links {
        if link.name.starts_with(&format!("{PG_DATA}/pg_tblspc/")) {
            targets.push(PathBuf::from(&link.target));
        }
    }
    for target in &targets {
        match std::fs::read_dir(target) {
            Ok(mut entries) => {
                if entries.next().is_some() {
                    if !overwrite {
                        return Err(Error::new(
                            ErrorKind::PathNotEmpty,
                            format!(
                                "unable to restore to path '{}' because it contains files",
                                target.display()
                            ),
                        )
                        .with_hint(
                            "empty the directory, or use --delta (or --force) to overwrite it",
                        ));
                    }
                    log_warn!(
                        "remove existing contents of '{}' before restoring",
                        target.display()
                    );
                    empty_dir(target)?;
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(target).map_err(|e| {
                    Error::io(ErrorKind::PathCreate, "create", target.display(), &e)
                })?;
                set_mode(target, 0o700)?;
            }
            Err(e) => return Err(Error::io(ErrorKind::PathOpen, "open", target.display(), &e)),
        }
    }
    Ok(())
}

fn empty_dir(dir: &Path) -> Result<()> {
    let entries = std::fs::read_dir(dir)
        .map_err(|e| Error::io(ErrorKind::PathOpen, "open", dir.display(), &e))?;
    for entry in entries.flatten() {
        let path = entry.path();
        let is_dir = entry.file_type().map(|t| t.is_dir()).unwrap_or(false);
        let result = if is_dir {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        result.map_err(|e| Error::io(ErrorKind::FileRemove, "remove", path.display(), &e))?;
    }
    Ok(())
}

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set mode of", path.display(), &e))
}

fn chown(path: &Path, user: Option<&str>, group: Option<&str>) -> Result<()> {
    let uid = user
        .and_then(|u| nix::unistd::User::from_name(u).ok().flatten())
        .map(|u| u.uid);
    let gid = group
        .and_then(|g| nix::unistd::Group::from_name(g).ok().flatten())
        .map(|g| g.gid);
    nix::unistd::fchownat(
        nix::fcntl::AT_FDCWD,
        path,
        uid,
        gid,
        nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
    )
    .map_err(|e| {
        Error::new(
            ErrorKind::FileWrite,
            format!("unable to set owner of '{}': {e}", path.display()),
        )
    })
}

fn create_paths_and_links(pg: &PosixStorage, manifest: &Manifest, am_root: bool) -> Result<()> {
    let root = PathBuf::from(pg.describe(""));
    // Links first: tablespace directories are reached through them.
    for link in &manifest.links {
        let rel = rel_of(&link.name);
        if let Some(parent) = Path::new(rel)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            pg.create_dir(&parent.to_string_lossy(), 0o700)?;
        }
        std::fs::create_dir_all(&link.target).map_err(|e| {
            Error::io(
                ErrorKind::PathCreate,
                "create link target",
                &link.target,
                &e,
            )
        })?;
        pg.symlink(&link.target, rel)?;
    }
    for path in &manifest.paths {
        let rel = if path.name == PG_DATA {
            ""
        } else {
            rel_of(&path.name)
        };
        let full = if rel.is_empty() {
            root.clone()
        } else {
            root.join(rel)
        };
        let is_link = pg.info(rel)?.is_some_and(|i| i.file_type == FileType::Link);
        if !is_link {
            pg.create_dir(rel, path.mode)?;
        }
        set_mode(&full, path.mode)?;
        if am_root {
            chown(&full, path.user.as_deref(), path.group.as_deref())?;
        }
    }
    // pg_wal's contents are never backed up, but PostgreSQL needs its archive_status directory.
    let wal_dir = manifest_wal_dir(manifest);
    pg.create_dir(&format!("{wal_dir}/archive_status"), 0o700)?;
    Ok(())
}

fn manifest_wal_dir(manifest: &Manifest) -> &'static str {
    match PgVersion::parse(&manifest.pg_version) {
        Some(version) => version.wal_dir(),
        None => "pg_wal",
    }
}

fn restore_file(
    repo: &dyn Storage,
    pg: &PosixStorage,
    stanza: &str,
    manifest: &Manifest,
    file: &FileEntry,
    buffer_size: usize,
    am_root: bool,
) -> Result<()> {
    let source = layout::backup_file(
        stanza,
        manifest.holder(file),
        &file.name,
        manifest.compress_type.extension(),
    );
    let mut reader = repo.open_read(&source)?.ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!("backup file '{}' is missing", repo.describe(&source)),
        )
        .with_hint("the repository is damaged; run verify or restore another set with --set")
    })?;
    let rel = rel_of(&file.name);
    let options = WriteOptions {
        mode: file.mode,
        mtime: Some(file.mtime),
        create_path: false,
        atomic: false,
        sync_file: true,
        sync_path: false,
    };
    let mut writer = pg.open_write(rel, &options)?;
    let mut specs = Vec::new();
    if manifest.compress_type != CompressType::None {
        specs.push(FilterSpec::Decompress {
            kind: manifest.compress_type,
        });
    }
    specs.push(FilterSpec::Size);
    specs.push(FilterSpec::Hash);
    let results = stream::copy_through(
        &mut reader as &mut dyn Read,
        &mut FilterChain::from_specs(&specs)?,
        &mut writer,
        buffer_size,
    )
    .map_err(|e| e.context(format!("unable to restore '{}'", pg.describe(rel))))?;
    match results.as_slice() {
        [.., FilterResult::Size(size), FilterResult::Hash(hash)]
            if *size == file.size && *hash == file.checksum => {}
        other => {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "restored file '{}' does not match the backup: expected size {} checksum {}, got {other:?}",
                    pg.describe(rel),
                    file.size,
                    file.checksum
                ),
            )
            .with_hint("the repository is damaged; run verify"));
        }
    }
    writer.commit()?;
    if am_root {
        chown(
            &PathBuf::from(pg.describe(rel)),
            file.user.as_deref(),
            file.group.as_deref(),
        )?;
    }
    Ok(())
}

fn recovery_request(cfg: &Config) -> Result<RecoveryRequest> {
    let type_name = cfg.str(Opt::Type).unwrap_or("default");
    let recovery_type = RecoveryType::parse(type_name).ok_or_else(|| {
        Error::new(
            ErrorKind::OptionInvalidValue,
            format!("'{type_name}' is not valid for 'type' option"),
        )
    })?;
    let target = cfg.str(Opt::Target).map(str::to_string);
    if recovery_type.needs_target() && target.is_none() {
        return Err(Error::new(
            ErrorKind::OptionRequired,
            format!("restore --type={type_name} requires option: target"),
        )
        .with_hint("for example --target=\"2026-11-24 21:00:00+00\""));
    }
    Ok(RecoveryRequest {
        recovery_type,
        restore_command: restore_command(cfg)?,
        target,
        target_action: cfg.str(Opt::TargetAction).map(str::to_string),
        target_exclusive: cfg.bool(Opt::TargetExclusive),
        target_timeline: cfg.str(Opt::TargetTimeline).map(str::to_string),
        options: cfg
            .hash(Opt::RecoveryOption)
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), v.clone()))
            .collect(),
        archive_mode_off: cfg.str(Opt::ArchiveMode) == Some("off"),
    })
}

/// The command PostgreSQL runs to fetch WAL: this binary with the options of this restore
/// that archive-get accepts (given on the command line, or locating the config and repository
/// through the environment, which PostgreSQL will not have).
fn restore_command(cfg: &Config) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io(ErrorKind::FileOpen, "find", "the pgkeep executable", &e))?;
    // Console levels are left out: archive-get's output lands in the PostgreSQL log.
    let mut args: Vec<String> = cfg
        .command_line_args(Command::ArchiveGet)
        .into_iter()
        .filter(|a| !a.starts_with("--log-level-console") && !a.starts_with("--log-level-stderr"))
        .collect();
    for (opt, name) in [
        (Opt::Config, "config"),
        (Opt::ConfigPath, "config-path"),
        (Opt::ConfigIncludePath, "config-include-path"),
        (Opt::RepoPath, "repo1-path"),
    ] {
        if cfg.source(opt) == Source::Env
            && let Some(value) = cfg.str(opt)
        {
            args.push(format!("--{name}={value}"));
        }
    }
    if !args.iter().any(|a| a.starts_with("--stanza=")) {
        args.push(format!("--stanza={}", open::stanza(cfg)?));
    }
    let mut parts = vec![shell_quote(&exe.display().to_string())];
    parts.extend(args.iter().map(|a| shell_quote(a)));
    parts.push("archive-get %f \"%p\"".to_string());
    Ok(parts.join(" "))
}

/// Quotes a word for the shell PostgreSQL runs restore_command with, when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@%+".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

fn write_recovery(pg_path: &Path, version: PgVersion, request: &RecoveryRequest) -> Result<()> {
    if matches!(
        request.recovery_type,
        RecoveryType::None | RecoveryType::Preserve
    ) {
        return Ok(());
    }
    let settings = recovery::settings(request, version);
    let header = format!(
        "Recovery settings generated by pgkeep restore on {}",
        jiff::ZonedDateTime::now().strftime("%Y-%m-%d %H:%M:%S")
    );
    let write = |name: &str, text: &str| -> Result<()> {
        let path = pg_path.join(name);
        std::fs::write(&path, text)
            .map_err(|e| Error::io(ErrorKind::FileWrite, "write", path.display(), &e))?;
        set_mode(&path, 0o600)
    };
    if version.uses_signal_files() {
        let existing =
            std::fs::read_to_string(pg_path.join("postgresql.auto.conf")).unwrap_or_default();
        write(
            "postgresql.auto.conf",
            &recovery::auto_conf(&existing, &settings, &header),
        )?;
        log_info!("write updated {}/postgresql.auto.conf", pg_path.display());
        let signal = if recovery::is_standby(request) {
            "standby.signal"
        } else {
            "recovery.signal"
        };
        write(signal, "")?;
    } else {
        write(
            "recovery.conf",
            &recovery::recovery_conf(&settings, &header),
        )?;
        log_info!("write {}/recovery.conf", pg_path.display());
    }
    Ok(())
}

/// Makes every restored directory's entries durable.
fn sync_tree(pg: &PosixStorage, manifest: &Manifest) -> Result<()> {
    for path in manifest.paths.iter().rev() {
        let rel = if path.name == PG_DATA {
            ""
        } else {
            rel_of(&path.name)
        };
        pg.sync_dir(rel)?;
    }
    Ok(())
}
