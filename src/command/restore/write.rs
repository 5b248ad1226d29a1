//! The writes around the file copies: directories and links before them; tablespace_map,
//! recovery settings and the final sync after them.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::log_info;
use crate::pg::PgVersion;
use crate::repo::Manifest;
use crate::storage::{PosixStorage, Storage};

use super::files::chown;
use super::plan::Plan;
use super::recovery::{self, RecoveryRequest, RecoveryType};

fn set_mode(path: &Path, mode: u32) -> Result<()> {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .map_err(|e| Error::io(ErrorKind::FileWrite, "set mode of", path.display(), &e))
}

/// Creates the roots, the links (replacing a link that points elsewhere) and every directory
/// with its mode and owner, then the WAL directory's archive_status, which PostgreSQL needs
/// although the backup never holds WAL.
/// Creates the data directory and the tablespace and link destinations that do not exist yet,
/// owned as the data directory (0700), before anything is written into them.
pub fn create_roots(plan: &Plan, manifest: &Manifest, set_owner: bool) -> Result<()> {
    let owner = manifest
        .paths
        .iter()
        .find(|p| p.name == crate::repo::manifest::PG_DATA);
    for root in &plan.roots {
        if fs::symlink_metadata(&root.path).is_err() {
            fs::create_dir_all(&root.path)
                .map_err(|e| Error::io(ErrorKind::PathCreate, "create", root.path.display(), &e))?;
            set_mode(&root.path, 0o700)?;
            if let Some(owner) = owner.filter(|_| set_owner) {
                chown(&root.path, owner.user.as_deref(), owner.group.as_deref())?;
            }
        }
    }
    Ok(())
}

pub fn create_paths_and_links(
    plan: &Plan,
    manifest: &Manifest,
    storages: &[PosixStorage],
    wal_dir: &str,
    set_owner: bool,
) -> Result<()> {
    // Directories the manifest does not list (a link's destination, archive_status) belong to
    // the data directory's owner, so that PostgreSQL can write them when root restores.
    let owner = manifest
        .paths
        .iter()
        .find(|p| p.name == crate::repo::manifest::PG_DATA);
    let give = |path: &Path| match owner {
        Some(owner) if set_owner => chown(path, owner.user.as_deref(), owner.group.as_deref()),
        _ => Ok(()),
    };
    create_roots(plan, manifest, set_owner)?;
    let data = &storages[0];
    for link in &plan.links {
        if let Some(parent) = Path::new(&link.rel)
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
        {
            data.create_dir(&parent.to_string_lossy(), 0o700)?;
        }
        let current = data.info(&link.rel)?.and_then(|i| i.link_target);
        let destination = link.destination.display().to_string();
        if current.as_deref() != Some(destination.as_str()) {
            data.symlink(&destination, &link.rel)?;
        }
    }
    for (entry, place) in manifest.paths.iter().zip(&plan.paths) {
        let storage = &storages[place.root];
        if !place.rel.is_empty() {
            storage.create_dir(&place.rel, entry.mode)?;
        }
        let full = plan.absolute(place);
        set_mode(&full, entry.mode)?;
        if set_owner {
            chown(&full, entry.user.as_deref(), entry.group.as_deref())?;
        }
    }
    let wal_link = plan.links.iter().find(|l| l.rel == wal_dir);
    let (storage, rel) = match wal_link.map(|l| l.root) {
        Some(Some(root)) => (&storages[root], "archive_status".to_string()),
        Some(None) => return Ok(()),
        None => (data, format!("{wal_dir}/archive_status")),
    };
    if storage.info(&rel)?.is_none() {
        storage.create_dir(&rel, 0o700)?;
        give(Path::new(&storage.describe(&rel)))?;
    }
    Ok(())
}

/// Rewrites tablespace_map with the tablespaces' new places: PostgreSQL recreates the
/// pg_tblspc links from it when recovery starts, and the backup's copy names the old ones.
pub fn tablespace_map(
    plan: &Plan,
    manifest: &Manifest,
    pg_path: &Path,
    set_owner: bool,
) -> Result<()> {
    let Some(entry) = manifest
        .files
        .iter()
        .find(|f| f.name == format!("{}/tablespace_map", crate::repo::manifest::PG_DATA))
    else {
        return Ok(());
    };
    let mut text = String::new();
    for link in &plan.links {
        if let Some(oid) = link.tablespace {
            // PostgreSQL reads a backslash as escaping the next character.
            let path = link.destination.display().to_string();
            let escaped = path
                .replace('\\', "\\\\")
                .replace('\n', "\\\n")
                .replace('\r', "\\\r");
            text.push_str(&format!("{oid} {escaped}\n"));
        }
    }
    let path = pg_path.join("tablespace_map");
    fs::write(&path, text)
        .map_err(|e| Error::io(ErrorKind::FileWrite, "write", path.display(), &e))?;
    set_mode(&path, entry.mode)?;
    if set_owner {
        chown(&path, entry.user.as_deref(), entry.group.as_deref())?;
    }
    log_info!(
        "write {} with the remapped tablespace locations",
        path.display()
    );
    Ok(())
}

/// Writes the recovery settings where the major version reads them.
pub fn recovery(pg_path: &Path, version: PgVersion, request: &RecoveryRequest) -> Result<()> {
    match request.recovery_type {
        RecoveryType::None => return Ok(()),
        RecoveryType::Preserve => {
            let names: &[&str] = if version.uses_signal_files() {
                &["recovery.signal", "standby.signal"]
            } else {
                &["recovery.conf"]
            };
            if !names.iter().any(|n| pg_path.join(n).exists()) {
                crate::log_warn!(
                    "--type=preserve but no {} found in '{}': the cluster will start without \
                     recovery",
                    names.join(" or "),
                    pg_path.display()
                );
            }
            return Ok(());
        }
        _ => {}
    }
    let settings = recovery::settings(request, version);
    let header = format!(
        "Recovery settings generated by pgkeep restore on {}",
        jiff::ZonedDateTime::now().strftime("%Y-%m-%d %H:%M:%S")
    );
    let write = |name: &str, text: &str| -> Result<()> {
        let path = pg_path.join(name);
        fs::write(&path, text)
            .map_err(|e| Error::io(ErrorKind::FileWrite, "write", path.display(), &e))?;
        set_mode(&path, 0o600)
    };
    if version.uses_signal_files() {
        let existing = fs::read_to_string(pg_path.join("postgresql.auto.conf")).unwrap_or_default();
        write(
            "postgresql.auto.conf",
            &recovery::auto_conf(&existing, &settings, &header),
        )?;
        log_info!("write updated {}/postgresql.auto.conf", pg_path.display());
        let (signal, other) = if recovery::is_standby(request) {
            ("standby.signal", "recovery.signal")
        } else {
            ("recovery.signal", "standby.signal")
        };
        write(signal, "")?;
        // A signal file of the other kind, left by an earlier restore, would win.
        let stale = pg_path.join(other);
        if stale.exists() {
            fs::remove_file(&stale)
                .map_err(|e| Error::io(ErrorKind::FileRemove, "remove", stale.display(), &e))?;
        }
    } else {
        write(
            "recovery.conf",
            &recovery::recovery_conf(&settings, &header),
        )?;
        log_info!("write {}/recovery.conf", pg_path.display());
    }
    Ok(())
}

/// Makes every restored directory's entries durable, deepest first.
pub fn sync(plan: &Plan, storages: &[PosixStorage]) -> Result<()> {
    for place in plan.paths.iter().rev() {
        storages[place.root].sync_dir(&place.rel)?;
    }
    for storage in storages {
        storage.sync_dir("")?;
    }
    Ok(())
}

/// Flushes every file system the restore wrote to (syncfs of each root), so that the restored
/// files, none of which is fsynced on its own, are durable before pg_control is written: one
/// call per root instead of one fsync per file.
pub fn sync_file_systems(storages: &[PosixStorage]) -> Result<()> {
    for storage in storages {
        let root = storage.describe("");
        let dir =
            fs::File::open(&root).map_err(|e| Error::io(ErrorKind::FileOpen, "open", &root, &e))?;
        nix::unistd::syncfs(&dir).map_err(|e| {
            Error::new(
                ErrorKind::FileSync,
                format!("unable to sync the file system of '{root}': {e}"),
            )
        })?;
    }
    Ok(())
}

/// Creates the (empty) files of a restore into empty directories, in the order the workers
/// will restore them, until all exist or `stop` is set. Creating a file is a directory update
/// under the directory's lock; workers that create their own files while others write into
/// the same directory queue on that lock (on ext4 without a journal, where new inodes skip the
/// ones freed in the last minute, a create costs up to a millisecond, and waiting workers spin).
/// One thread running ahead takes the creates off the workers. A file is opened without
/// truncation, so a worker that got there first loses nothing; errors are left to the worker,
/// which reports them with the file's name.
pub fn create_files_ahead(paths: &[std::path::PathBuf], stop: &std::sync::atomic::AtomicBool) {
    use std::os::unix::fs::OpenOptionsExt;
    for path in paths {
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return;
        }
        let _ = fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path);
    }
}
