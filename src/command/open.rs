//! The one place where configuration becomes drivers, sessions and settings.
//!
//! Commands ask this module for the repository storage, the data directory, a database session,
//! the lock path; nothing below the command layer reads `Config`. The host options decide what
//! a command gets: with `repo1-host` the repository is a [`RemoteStorage`] on the backup host,
//! with `pg1-host` the data directory and the database session are on the database host
//! (`remote.rs` in this folder's parent builds the far side's command line); commands see
//! `Storage` and `Db` either way.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{Command, Config, Opt, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::io::CompressType;
use crate::lock::{self, Lock, LockKind};
use crate::log_warn;
use crate::pg::control::ControlData;
use crate::pg::remote::{Db, RemoteDb};
use crate::pg::session::{ConnectOptions, DbSession};
use crate::protocol::{Channel, Pool, SshSettings};
use crate::repo::BackupType;
use crate::repo::expire::ExpireSettings;
use crate::repo::retention::{FullRetention, RetentionPolicy};
use crate::storage::{Driver, PosixStorage, RemoteStorage, Storage};

/// The stanza; the option table makes it required where a command needs it.
pub fn stanza(cfg: &Config) -> Result<&str> {
    cfg.stanza().ok_or_else(|| {
        Error::new(
            ErrorKind::OptionRequired,
            format!("{} command requires option: stanza", cfg.command().name()),
        )
    })
}

/// How a command holds its stanza while it works on the repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Reads the repository: refused by a stop file, takes no lock (restore).
    Read,
    /// Reads the repository whatever stop files say, takes no lock (verify).
    Inspect,
    /// Writes backups or the stanza's info files: refused by a stop file, holds the stanza's
    /// backup lock, taken at once or not at all.
    Backup,
    /// Writes to the WAL archive: refused by a stop file, holds the stanza's archive lock,
    /// waiting up to `wait` for another archive-push to finish.
    Archive { wait: Duration },
    /// Deletes the stanza: needs its stop file (nothing else may start), holds both locks.
    Delete,
}

/// What a command works on: its stanza and repository, with the locks its [`Access`] takes,
/// held until this is dropped.
pub struct Opened<'c> {
    pub stanza: &'c str,
    pub repo: Driver,
    _locks: Vec<Lock>,
}

/// The one opening of a stanza's repository: the stanza, its stop file, its locks, then the
/// repository, in that order, so that a stopped stanza or a running backup is reported before
/// the repository is reached.
pub fn stanza_repo(cfg: &Config, access: Access) -> Result<Opened<'_>> {
    let stanza = stanza(cfg)?;
    let lock_path = lock_path(cfg);
    let locks = match access {
        Access::Read => {
            lock::check_stop(&lock_path, Some(stanza))?;
            Vec::new()
        }
        Access::Inspect => Vec::new(),
        Access::Backup => {
            lock::check_stop(&lock_path, Some(stanza))?;
            vec![Lock::acquire(
                &lock_path,
                stanza,
                LockKind::Backup,
                Duration::ZERO,
            )?]
        }
        Access::Archive { wait } => {
            lock::check_stop(&lock_path, Some(stanza))?;
            vec![Lock::acquire(&lock_path, stanza, LockKind::Archive, wait)?]
        }
        Access::Delete => {
            if !lock::stop_file(&lock_path, Some(stanza)).exists() {
                return Err(Error::new(
                    ErrorKind::FileMissing,
                    format!("stop file does not exist for stanza '{stanza}'"),
                )
                .with_hint(format!(
                    "run '{}' first, so that nothing writes to the stanza while it is deleted",
                    crate::error::command_hint(&format!("--stanza={stanza} stop"))
                )));
            }
            vec![
                Lock::acquire(&lock_path, stanza, LockKind::Backup, Duration::ZERO)?,
                Lock::acquire(&lock_path, stanza, LockKind::Archive, Duration::ZERO)?,
            ]
        }
    };
    Ok(Opened {
        stanza,
        repo: repo(cfg)?,
        _locks: locks,
    })
}

/// The repository (repo1): on `repo1-host` when set, else the local directory `repo1-path`.
pub fn repo(cfg: &Config) -> Result<Driver> {
    match remote_settings(cfg, RemoteKind::Repo)? {
        Some(settings) => Ok(Driver::Remote(remote_storage(cfg, settings)?)),
        None => Ok(Driver::Posix(local_repo(cfg)?)),
    }
}

/// The repository directory on this host. It must exist: pgkeep does not guess where a DBA
/// meant to keep backups.
pub fn local_repo(cfg: &Config) -> Result<PosixStorage> {
    let path = PathBuf::from(cfg.str(Opt::RepoPath).unwrap_or("/var/lib/pgkeep"));
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_dir() => Ok(PosixStorage::repository(path)),
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

/// The data directory: on `pg1-host` when set, else the local `pg1-path`.
pub fn pg_storage(cfg: &Config) -> Result<Driver> {
    match remote_settings(cfg, RemoteKind::Pg)? {
        Some(settings) => Ok(Driver::Remote(remote_storage(cfg, settings)?)),
        None => Ok(Driver::Posix(PosixStorage::data_dir(pg_path(cfg)?))),
    }
}

/// Reads pg_control from a local data directory.
pub fn control(pg_path: &Path) -> Result<ControlData> {
    pg_control(&PosixStorage::new(pg_path.to_path_buf()))
}

/// Reads pg_control from the data directory `pg` (local or remote).
pub fn pg_control(pg: &dyn Storage) -> Result<ControlData> {
    let is_dir = pg
        .info("")?
        .is_some_and(|info| info.file_type == crate::storage::FileType::Path);
    if !is_dir {
        // DbConnectError, as pgBackRest: without a data directory there is no cluster to back
        // up, whatever the server on the socket is.
        return Err(Error::new(
            ErrorKind::DbConnect,
            format!(
                "pg1-path '{}' does not exist or is not a directory",
                pg.describe("")
            ),
        )
        .with_hint("check pg1-path: it must be the cluster's data directory"));
    }
    let path = "global/pg_control";
    let bytes = pg.read_all(path)?.ok_or_else(|| {
        Error::new(
            ErrorKind::FileMissing,
            format!(
                "unable to open missing file '{}' for read",
                pg.describe(path)
            ),
        )
        .with_hint("is pg1-path the data directory of a cluster?")
    })?;
    ControlData::parse(&bytes)
}

/// A session with the cluster: on `pg1-host` when set (the far side connects with its own
/// `pg1-*` options), else through the local Unix socket.
pub fn db_session(cfg: &Config) -> Result<Box<dyn Db>> {
    match remote_settings(cfg, RemoteKind::Pg)? {
        Some(settings) => {
            // A channel of its own: the session must outlive any storage stream.
            let channel = Channel::connect(&settings)?;
            Ok(Box::new(RemoteDb::connect(channel)?))
        }
        None => Ok(Box::new(local_db_session(cfg)?)),
    }
}

/// A session with the local cluster through its Unix socket (or host, when configured).
pub fn local_db_session(cfg: &Config) -> Result<DbSession> {
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
        pgpass_file: pgpass_path(),
        statement_timeout_ms: cfg.time_ms(Opt::DbTimeout),
    };
    DbSession::connect(&options)
}

/// `<spool-path>/archive/<stanza>`: the stanza's spool (asynchronous archiving's queues and
/// archive-push's status file).
pub fn spool_path(cfg: &Config, stanza: &str) -> PathBuf {
    Path::new(cfg.str(Opt::SpoolPath).unwrap_or("/var/spool/pgkeep"))
        .join("archive")
        .join(stanza)
}

/// The password file libpq would read, so that pgkeep finds the passwords psql finds:
/// `PGPASSFILE`, else `.pgpass` in the home directory.
fn pgpass_path() -> Option<PathBuf> {
    if let Some(file) = std::env::var_os("PGPASSFILE").filter(|v| !v.is_empty()) {
        return Some(PathBuf::from(file));
    }
    let home = std::env::var_os("HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::Uid::effective())
                .ok()
                .flatten()
                .map(|user| user.dir)
        })?;
    Some(home.join(".pgpass"))
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
                    ErrorKind::OptionInvalidValue,
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

/// Which side of a deployment a remote serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RemoteKind {
    /// The database host: data directory and SQL (`pg1-host`).
    Pg,
    /// The backup host: the repository (`repo1-host`).
    Repo,
}

impl RemoteKind {
    pub fn name(self) -> &'static str {
        match self {
            RemoteKind::Pg => "pg",
            RemoteKind::Repo => "repo",
        }
    }
}

/// How to reach the `kind` host, `None` when that side is local (its host option unset, or
/// this process is itself a remote: a far side never reaches further).
pub fn remote_settings(cfg: &Config, kind: RemoteKind) -> Result<Option<SshSettings>> {
    if cfg.is_remote() {
        return Ok(None);
    }
    let (host, user, port, program, config) = match kind {
        RemoteKind::Pg => (
            Opt::PgHost,
            Opt::PgHostUser,
            Opt::PgHostPort,
            Opt::PgHostCmd,
            Opt::PgHostConfig,
        ),
        RemoteKind::Repo => (
            Opt::RepoHost,
            Opt::RepoHostUser,
            Opt::RepoHostPort,
            Opt::RepoHostCmd,
            Opt::RepoHostConfig,
        ),
    };
    let Some(host) = cfg.str(host) else {
        return Ok(None);
    };
    let program = match cfg.str(program) {
        Some(program) => program.to_string(),
        None => std::env::current_exe()
            .map_err(|err| Error::io(ErrorKind::FileOpen, "find", "the pgkeep binary", &err))?
            .display()
            .to_string(),
    };
    let mut command = vec![program];
    if let Some(config) = cfg.str(config) {
        command.push(format!("--config={config}"));
    }
    if let Some(stanza) = cfg.stanza() {
        command.push(format!("--stanza={stanza}"));
    }
    // The far side's stdout is the protocol: nothing else may be written there.
    command.push("--log-level-console=off".to_string());
    command.push("--log-level-stderr=error".to_string());
    command.push(format!("--remote-type={}", kind.name()));
    if kind == RemoteKind::Pg {
        // Options that describe the cluster travel when set here; the far side's own
        // configuration gives the rest.
        for opt in [
            Opt::PgPath,
            Opt::PgPort,
            Opt::PgSocketPath,
            Opt::PgUser,
            Opt::PgDatabase,
        ] {
            if cfg.source(opt) != Source::Default
                && let Some(value) = cfg.str(opt)
            {
                command.push(format!("--{}={value}", opt.def().key(1)));
            }
        }
    }
    command.push(format!("{}:remote", cfg.command().name()));
    Ok(Some(SshSettings {
        ssh: cfg.str(Opt::CmdSsh).unwrap_or("ssh").to_string(),
        host: host.to_string(),
        user: cfg.str(user).unwrap_or("postgres").to_string(),
        port: cfg.int(port).and_then(|p| u16::try_from(p).ok()),
        command,
        timeout: Duration::from_millis(cfg.time_ms(Opt::ProtocolTimeout).unwrap_or(1_830_000)),
        connect_timeout: Duration::from_millis(cfg.time_ms(Opt::IoTimeout).unwrap_or(60_000)),
    }))
}

/// Storage on the far side of `settings`.
fn remote_storage(cfg: &Config, settings: SshSettings) -> Result<RemoteStorage> {
    let level = cfg.int(Opt::CompressLevelNetwork).unwrap_or(3);
    let network = (level > 0).then(|| (CompressType::Gz, i32::try_from(level).unwrap_or(3)));
    RemoteStorage::new(Pool::ssh(settings)?, network)
}

/// Refuses a command on the wrong host: what runs where follows from which side is remote.
pub fn check_hosts(cfg: &Config) -> Result<()> {
    if cfg.is_remote() {
        return Ok(());
    }
    let pg_remote = cfg.str(Opt::PgHost).is_some();
    let repo_remote = cfg.str(Opt::RepoHost).is_some();
    let command = cfg.command();
    if pg_remote && repo_remote {
        return Err(Error::new(
            ErrorKind::OptionInvalid,
            "pg and repo hosts cannot both be configured as remote",
        )
        .with_hint("set pg1-host on the backup host and repo1-host on the database host"));
    }
    let must_run_on = match command {
        Command::Restore | Command::ArchivePush | Command::ArchiveGet if pg_remote => {
            "the PostgreSQL host"
        }
        Command::Backup
        | Command::Expire
        | Command::StanzaCreate
        | Command::StanzaDelete
        | Command::StanzaUpgrade
        | Command::Verify
            if repo_remote =>
        {
            "the repository host"
        }
        _ => return Ok(()),
    };
    Err(Error::new(
        ErrorKind::OptionInvalid,
        format!("{command} command must be run on {must_run_on}"),
    )
    .with_hint(if pg_remote {
        "pg1-host is set: this host is the backup host"
    } else {
        "repo1-host is set: this host is a database host"
    }))
}

/// Reads the retention options and warns about the ones whose absence keeps everything.
pub fn expire_settings(cfg: &Config) -> ExpireSettings<'_> {
    let count = |opt| cfg.int(opt).and_then(|n| u32::try_from(n).ok());
    let full_type = cfg.str(Opt::RepoRetentionFullType).unwrap_or("count");
    let full = count(Opt::RepoRetentionFull).map(|n| match full_type {
        "time" => FullRetention::Days(n),
        _ => FullRetention::Count(n),
    });
    let policy = RetentionPolicy {
        full,
        diff: count(Opt::RepoRetentionDiff),
        archive: count(Opt::RepoRetentionArchive),
        archive_type: cfg
            .str(Opt::RepoRetentionArchiveType)
            .and_then(BackupType::parse)
            .unwrap_or(BackupType::Full),
    };
    if policy.full.is_none() {
        warn_with_hint(
            &format!(
                "option 'repo1-retention-full' is not set for 'repo1-retention-full-type={full_type}', the repository may run out of space"
            ),
            "to retain full backups indefinitely (without warning), set option 'repo1-retention-full' to the maximum.",
        );
    }
    if policy.archive.is_none() {
        match policy.archive_type {
            BackupType::Diff if policy.diff.is_none() => warn_with_hint(
                "option 'repo1-retention-diff' is not set for 'repo1-retention-archive-type=diff', archived WAL will not be expired",
                "to retain differential backups indefinitely (without warning), set option 'repo1-retention-diff' to the maximum.",
            ),
            BackupType::Incr => warn_with_hint(
                "option 'repo1-retention-archive' is not set for 'repo1-retention-archive-type=incr', archived WAL will not be expired",
                "set option 'repo1-retention-archive' to the number of backups whose WAL must be kept.",
            ),
            _ => {}
        }
    }
    ExpireSettings {
        policy,
        set: cfg.str(Opt::Set),
        dry_run: cfg.bool(Opt::DryRun),
    }
}

fn warn_with_hint(message: &str, hint: &str) {
    log_warn!("{message}\nHINT: {hint}");
}
