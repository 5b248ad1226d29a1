//! The one place where configuration becomes drivers, sessions and settings.
//!
//! Commands ask this module for the repository storage, the data directory, a database session,
//! the lock path; nothing below the command layer reads `Config`.

use std::path::{Path, PathBuf};

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::io::CompressType;
use crate::pg::control::ControlData;
use crate::pg::session::{ConnectOptions, DbSession};
use crate::storage::{PosixStorage, Storage};

/// The stanza; the option table makes it required where a command needs it.
pub fn stanza(cfg: &Config) -> Result<&str> {
    cfg.stanza().ok_or_else(|| {
        Error::new(
            ErrorKind::OptionRequired,
            format!("{} command requires option: stanza", cfg.command().name()),
        )
    })
}

/// The repository (repo1) as posix storage. The repository directory must exist: pgkeep does
/// not guess where a DBA meant to keep backups.
pub fn repo(cfg: &Config) -> Result<PosixStorage> {
    let path = PathBuf::from(cfg.str(Opt::RepoPath).unwrap_or("/var/lib/pgkeep"));
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(PosixStorage::new(path)),
        Ok(_) => Err(Error::new(
            ErrorKind::PathMissing,
            format!("repository path '{}' is not a directory", path.display()),
        )),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::PathMissing,
            format!("repository path '{}' does not exist", path.display()),
        )
        .with_hint("create it (mode 0750, owned by the user running pgkeep) or set repo1-path")),
        Err(e) => Err(Error::io(
            ErrorKind::PathOpen,
            "open repository path",
            path.display(),
            &e,
        )),
    }
}

/// The data directory (`pg1-path`), when configured.
pub fn pg_path_opt(cfg: &Config) -> Option<PathBuf> {
    cfg.str(Opt::PgPath).map(PathBuf::from)
}

/// The data directory (`pg1-path`), required.
pub fn pg_path(cfg: &Config) -> Result<PathBuf> {
    pg_path_opt(cfg).ok_or_else(|| {
        let stanza = cfg.stanza().unwrap_or("<stanza>");
        Error::new(
            ErrorKind::OptionRequired,
            format!("{} command requires option: pg1-path", cfg.command().name()),
        )
        .with_hint(format!("does the stanza '{stanza}' exist in the configuration file? set pg1-path in its section"))
    })
}

/// Reads pg_control from the data directory.
pub fn control(pg_path: &Path) -> Result<ControlData> {
    let path = pg_path.join("global/pg_control");
    if !pg_path.is_dir() {
        return Err(Error::new(
            ErrorKind::PathMissing,
            format!(
                "pg1-path '{}' does not exist or is not a directory",
                pg_path.display()
            ),
        )
        .with_hint("check pg1-path: it must be the cluster's data directory"));
    }
    ControlData::read(&path)
}

/// A session with the cluster through its Unix socket (or host, when configured).
pub fn db_session(cfg: &Config) -> Result<DbSession> {
    let options = ConnectOptions {
        socket_path: cfg.str(Opt::PgSocketPath).map(PathBuf::from),
        host: None,
        port: cfg
            .int(Opt::PgPort)
            .and_then(|p| u16::try_from(p).ok())
            .unwrap_or(5432),
        user: cfg.str(Opt::PgUser).map(str::to_string),
        database: cfg.str(Opt::PgDatabase).unwrap_or("postgres").to_string(),
        application_name: format!("pgkeep [{}]", cfg.command().name()),
        pgpass_file: crate::pg::pgpass::default_path(),
    };
    DbSession::connect(&options)
}

pub fn lock_path(cfg: &Config) -> PathBuf {
    PathBuf::from(cfg.str(Opt::LockPath).unwrap_or("/tmp/pgkeep"))
}

/// Compression type and level for new repository files.
pub fn compression(cfg: &Config) -> Result<(CompressType, i32)> {
    let name = cfg.str(Opt::CompressType).unwrap_or("zst");
    let kind = CompressType::parse(name).ok_or_else(|| {
        Error::new(
            ErrorKind::OptionInvalidValue,
            format!("'{name}' is not valid for 'compress-type' option"),
        )
    })?;
    let level = match cfg.int(Opt::CompressLevel) {
        Some(level) => {
            let level = i32::try_from(level).unwrap_or(i32::MAX);
            let range = kind.level_range();
            let (min, max) = (*range.start(), *range.end());
            if level < min || level > max {
                return Err(Error::new(
                    ErrorKind::OptionInvalidRange,
                    format!("'{level}' is out of range for 'compress-level' option with compress-type '{name}'"),
                )
                .with_hint(format!("use a level from {min} to {max}")));
            }
            level
        }
        None => kind.default_level(),
    };
    Ok((kind, level))
}

pub fn buffer_size(cfg: &Config) -> usize {
    cfg.int(Opt::BufferSize)
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(1 << 20)
}

pub fn process_max(cfg: &Config) -> usize {
    cfg.int(Opt::ProcessMax)
        .and_then(|v| usize::try_from(v).ok())
        .unwrap_or(1)
        .max(1)
}

/// Resolves a path given to archive-push/archive-get (`%p`): PostgreSQL runs them in the data
/// directory, so a relative path is relative to pg1-path when set, else to the current directory.
pub fn wal_path(cfg: &Config, given: &str) -> PathBuf {
    let path = Path::new(given);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    match pg_path_opt(cfg) {
        Some(base) => base.join(path),
        None => path.to_path_buf(),
    }
}

/// A storage driver's description of its root, for messages.
pub fn describe_root(storage: &dyn Storage) -> String {
    storage.describe("")
}
