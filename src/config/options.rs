//! The option table: every option pgkeep accepts, declared once, as data.
//!
//! The parser, the resolver, `pgkeep help`, docs/options.md and the `PGKEEP_*` environment
//! names all derive from the rows below, so a new option is one new `Opt` variant and one row
//! (kept in the same alphabetical order: the table is indexed by `Opt`). Lists of commands
//! shared by several options are named constants at the top; a new command is added to the
//! lists and rows of the options it accepts. The types are explained in def.rs. This file is
//! longer than most because it is the whole table; splitting it would hide the one place where
//! an option is declared.

use crate::config::command::Command::{self, *};
use crate::config::def::{CommandRule, Group, Kind, OptionDef, Scope, on, required};

/// One variant per option, in the table's (alphabetical) order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Opt {
    Annotation,
    ArchiveAsync,
    ArchiveCheck,
    ArchiveCopy,
    ArchiveGetQueueMax,
    ArchiveMode,
    ArchivePushQueueDrop,
    ArchivePushQueueMax,
    ArchiveTimeout,
    BufferSize,
    ChecksumPage,
    CmdSsh,
    CompressLevel,
    CompressLevelNetwork,
    CompressType,
    Config,
    ConfigIncludePath,
    ConfigPath,
    DbExclude,
    DbInclude,
    DbTimeout,
    Delta,
    DryRun,
    Exclude,
    Force,
    IoTimeout,
    LinkAll,
    LinkMap,
    LockPath,
    LogLevelConsole,
    LogLevelFile,
    LogLevelStderr,
    LogPath,
    LogTimestamp,
    Online,
    Output,
    PgDatabase,
    PgHost,
    PgHostCmd,
    PgHostConfig,
    PgHostPort,
    PgHostUser,
    PgPath,
    PgPort,
    PgSocketPath,
    PgUser,
    ProcessMax,
    ProtocolTimeout,
    RecoveryOption,
    RemoteType,
    RepoBlock,
    RepoBundle,
    RepoBundleLimit,
    RepoBundleSize,
    RepoHost,
    RepoHostCmd,
    RepoHostConfig,
    RepoHostPort,
    RepoHostUser,
    RepoPath,
    RepoRetentionArchive,
    RepoRetentionArchiveType,
    RepoRetentionDiff,
    RepoRetentionFull,
    RepoRetentionFullType,
    Resume,
    Set,
    SpoolPath,
    Stanza,
    StartFast,
    StopAuto,
    TablespaceMap,
    TablespaceMapAll,
    Target,
    TargetAction,
    TargetExclusive,
    TargetTimeline,
    Type,
    Verbose,
}

const fn rules<const N: usize>(commands: [Command; N]) -> [CommandRule; N] {
    let mut out = [on(Help); N];
    let mut i = 0;
    while i < N {
        out[i] = on(commands[i]);
        i += 1;
    }
    out
}

/// Every command.
const ALL: &[CommandRule] = &rules([
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Help,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Start,
    Stop,
    Verify,
    Version,
]);
/// Commands that log (all but help and version).
const LOGGING: &[CommandRule] = &rules([
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Start,
    Stop,
    Verify,
]);
/// Commands that take a lock, look at one (info reports a held backup lock), or read or write
/// stop files.
const LOCKING: &[CommandRule] = &rules([
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Start,
    Stop,
]);
/// Commands that use the repository.
const REPOSITORY: &[CommandRule] = &rules([
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Verify,
]);
/// Commands that may reach another host over ssh (and run as `<command>:remote` there).
const REMOTE: &[CommandRule] = &rules([
    ArchiveGet,
    ArchivePush,
    Backup,
    Check,
    Expire,
    Info,
    Restore,
    StanzaCreate,
    StanzaDelete,
    StanzaUpgrade,
    Verify,
]);
/// Commands that move file content through the filter chain.
const COPYING: &[CommandRule] = &rules([ArchiveGet, ArchivePush, Backup, Restore, Verify]);
/// Commands that compress.
const COMPRESSING: &[CommandRule] = &rules([ArchivePush, Backup]);
/// The archive commands PostgreSQL runs.
const ARCHIVING: &[CommandRule] = &rules([ArchiveGet, ArchivePush]);
/// Commands that connect to PostgreSQL.
const CONNECTING: &[CommandRule] = &rules([Backup, Check, StanzaCreate, StanzaUpgrade]);
const BACKUP: &[CommandRule] = &rules([Backup]);
const RESTORE: &[CommandRule] = &rules([Restore]);
/// Commands that apply retention (backup expires when it is done).
const RETENTION: &[CommandRule] = &rules([Backup, Expire]);

const LOG_LEVELS: &[&str] = &["off", "error", "warn", "info", "detail", "debug", "trace"];
const BACKUP_TYPES: &[&str] = &["full", "diff", "incr"];
const RECOVERY_TYPES: &[&str] = &[
    "default",
    "immediate",
    "time",
    "xid",
    "name",
    "lsn",
    "preserve",
    "standby",
    "none",
];

const KIB: i64 = 1024;
const MIB: i64 = 1024 * KIB;

/// The table, in `Opt` order.
pub static OPTIONS: &[OptionDef] = &[
    OptionDef {
        id: Opt::Annotation,
        name: "annotation",
        kind: Kind::Hash,
        commands: BACKUP,
        summary: "Annotate the backup with user-defined key/value pairs.",
        help: "A key=value pair stored with the backup and shown by info, e.g. \
            --annotation=source=\"nightly job\". Repeat the option for several pairs.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveAsync,
        name: "archive-async",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: ARCHIVING,
        summary: "Push/get WAL segments asynchronously.",
        help: "archive-push hands the WAL segments PostgreSQL has ready to a background process \
            that pushes them in parallel (process-max) and acknowledges each in spool-path once \
            it is durable in the repository; PostgreSQL's call for a segment already pushed \
            returns at once. archive-get prefetches the following segments into spool-path \
            (up to archive-get-queue-max) while recovery replays. See docs/archive.md.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveCheck,
        name: "archive-check",
        kind: Kind::Boolean,
        default: Some("y"),
        commands: &rules([Backup, Restore]),
        summary: "Check that WAL segments are in the archive before backup completes.",
        help: "Makes the backup wait until every WAL segment needed to make it consistent has \
            reached the archive (see archive-timeout). Without it a backup may be unusable when \
            archiving is broken. For restore (a pgkeep addition): refuse before writing anything \
            when the archive lacks a WAL segment the backup set needs to become consistent; \
            --no-archive-check is for WAL supplied another way.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveCopy,
        name: "archive-copy",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: BACKUP,
        summary: "Copy the WAL needed for consistency into the backup.",
        help: "Stores the WAL segments from the backup's start to its stop inside the backup \
            (pg_wal), so the backup can be restored and made consistent without the archive. \
            Requires archive-check.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveGetQueueMax,
        name: "archive-get-queue-max",
        kind: Kind::Size {
            min: 0,
            max: 4 * 1024 * 1024 * MIB,
        },
        default: Some("128MiB"),
        commands: &rules([ArchiveGet]),
        summary: "Maximum size of the archive-get queue.",
        help: "With archive-async, how many bytes of WAL archive-get prefetches into \
            spool-path ahead of recovery (at least one segment).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveMode,
        name: "archive-mode",
        kind: Kind::Enum(&["off", "preserve"]),
        default: Some("preserve"),
        commands: RESTORE,
        summary: "Preserve or disable archiving on the restored cluster.",
        help: "With 'off', the restored cluster gets archive_mode=off so that it does not push \
            WAL into the archive of the cluster it was restored from. With 'preserve', the \
            setting in the backup is kept.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchivePushQueueDrop,
        name: "archive-push-queue-drop",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: &rules([ArchivePush]),
        summary: "Drop WAL when the archive queue is full (dangerous).",
        help: "When WAL waiting to be archived exceeds archive-push-queue-max, archive-push \
            reports success without archiving the segment, so PostgreSQL can recycle it and \
            pg_wal stops growing. DANGEROUS: every dropped segment is a gap in the archive that \
            breaks point-in-time recovery and the recovery of backups across it. Each dropped \
            segment is logged at warn level by name and counted in the spool's status file. \
            Without this option a full queue is an error and nothing is dropped.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchivePushQueueMax,
        name: "archive-push-queue-max",
        kind: Kind::Size {
            min: 0,
            max: 4 * 1024 * 1024 * 1024 * MIB,
        },
        commands: &rules([ArchivePush]),
        summary: "Maximum size of the PostgreSQL archive queue.",
        help: "When the WAL segments PostgreSQL has ready to archive (pg_wal/archive_status/\
            *.ready) add up to more than this, archive-push fails with an error naming the \
            queue size and the limit, so PostgreSQL keeps the WAL and retries, and the event is \
            counted in the spool's status file. Unlike pgBackRest, WAL is dropped only with \
            archive-push-queue-drop. Unset: no limit.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ArchiveTimeout,
        name: "archive-timeout",
        kind: Kind::Time {
            min_ms: 100,
            max_ms: 86_400_000,
        },
        default: Some("60"),
        commands: &rules([ArchiveGet, ArchivePush, Backup, Check]),
        summary: "Archive timeout.",
        help: "How long, in seconds (decimals allowed), the backup waits for each WAL segment it \
            needs to reach the archive, and check waits for the segment it switched. With \
            archive-async, how long archive-push and archive-get wait for the background \
            process to push or fetch the segment PostgreSQL asked for.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::BufferSize,
        name: "buffer-size",
        kind: Kind::Size {
            min: 16 * KIB,
            max: 64 * MIB,
        },
        default: Some("1MiB"),
        commands: COPYING,
        summary: "Buffer size for I/O operations.",
        help: "The size of the buffers that file content flows through. Memory use grows with \
            buffer-size times process-max. Written in bytes or with a unit: 16KiB, 4MB, 1MiB \
            (every unit is a power of 1024).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ChecksumPage,
        name: "checksum-page",
        kind: Kind::Boolean,
        commands: BACKUP,
        summary: "Validate data page checksums.",
        help: "Verifies the checksum of every data page read by the backup. Defaults to on when \
            the cluster has data checksums (from pg_control) and off otherwise. Pages that fail \
            are reported with their file and block numbers, recorded in the manifest and shown \
            by info --set; the backup still completes, with a warning.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::CmdSsh,
        name: "cmd-ssh",
        kind: Kind::String,
        default: Some("ssh"),
        commands: REMOTE,
        summary: "SSH client command.",
        help: "The ssh client used to reach pg1-host and repo1-host, e.g. a full path, or a \
            wrapper script that adds -i <key>. pgkeep adds -o BatchMode=yes, so ssh never asks \
            for a password: key authentication must be set up, and the remote host key must be \
            known.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::CompressLevel,
        name: "compress-level",
        kind: Kind::Integer { min: -5, max: 22 },
        commands: COMPRESSING,
        summary: "File compression level.",
        help: "The compression level for compress-type. When unset, the type's own default is \
            used. Which levels are valid depends on the type.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::CompressLevelNetwork,
        name: "compress-level-network",
        kind: Kind::Integer { min: 0, max: 9 },
        default: Some("3"),
        commands: REMOTE,
        summary: "Network compression level.",
        help: "The gz level of compression for data that crosses the network uncompressed \
            otherwise (a backup with compress-type=none from pg1-host). 0 sends it as it is. \
            Data stored compressed already travels compressed.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::CompressType,
        name: "compress-type",
        kind: Kind::Enum(&["none", "gz", "lz4", "zst"]),
        default: Some("zst"),
        commands: COMPRESSING,
        summary: "File compression type.",
        help: "How files are compressed in the repository. Files already in the repository keep \
            the compression they were stored with.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Config,
        name: "config",
        kind: Kind::Path,
        default: Some("/etc/pgkeep/pgkeep.conf"),
        scope: Scope::CommandLine,
        negatable: true,
        commands: ALL,
        summary: "pgkeep configuration file.",
        help: "The main configuration file. When given explicitly it must exist; the default \
            file may be missing. Defaults to pgkeep.conf in config-path. --no-config reads no \
            main file (files in an explicitly given config-include-path are still read).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ConfigIncludePath,
        name: "config-include-path",
        kind: Kind::Path,
        default: Some("/etc/pgkeep/conf.d"),
        scope: Scope::CommandLine,
        commands: ALL,
        summary: "Path to additional pgkeep configuration files.",
        help: "Every file ending in .conf in this directory is read after the main file, in \
            name order, as if appended to it. Defaults to conf.d in config-path.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ConfigPath,
        name: "config-path",
        kind: Kind::Path,
        default: Some("/etc/pgkeep"),
        scope: Scope::CommandLine,
        commands: ALL,
        summary: "Base path of pgkeep configuration files.",
        help: "The directory the defaults of config (pgkeep.conf) and config-include-path \
            (conf.d) are relative to. An explicitly given config or config-include-path is \
            used as given.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::DbExclude,
        name: "db-exclude",
        kind: Kind::List,
        commands: RESTORE,
        summary: "Restore excluding the specified databases.",
        help: "A database name or oid. The database's files are restored as zero-filled sparse \
            files of the same size, so recovery completes; drop the database once the cluster \
            is up (restore logs the DROP DATABASE statements). Repeat the option for several \
            databases. template0, template1, postgres and other system databases are always \
            restored.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::DbInclude,
        name: "db-include",
        kind: Kind::List,
        commands: RESTORE,
        summary: "Restore only specified databases.",
        help: "A database name or oid. Only the listed databases (and the system databases \
            template0, template1 and postgres) are restored; every other database is restored \
            as zero-filled sparse files to be dropped once the cluster is up, as with \
            db-exclude. Repeat the option for several databases.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::DbTimeout,
        name: "db-timeout",
        kind: Kind::Time {
            min_ms: 100,
            max_ms: 604_800_000,
        },
        default: Some("1800"),
        commands: REMOTE,
        summary: "Database query timeout.",
        help: "How long, in seconds, a database query may take (the start of a backup waits for \
            a checkpoint, which can be long without start-fast). protocol-timeout must be \
            larger, so a slow query is reported as such rather than as a remote timeout.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Delta,
        name: "delta",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: RESTORE,
        summary: "Restore or backup using checksums.",
        help: "Restore into a data directory that is not empty: files whose size and checksum \
            match the backup are kept, others are restored, and files, directories and links \
            that are not in the backup are removed (only inside the data directory and the \
            tablespace directories). With --force, size and modification time are compared \
            instead of checksums: faster, but a file changed without changing its size or time \
            is kept.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::DryRun,
        name: "dry-run",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: &rules([Expire]),
        summary: "Show what would be expired without removing anything.",
        help: "Logs the backups and archived WAL that expire would remove, and removes nothing.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Exclude,
        name: "exclude",
        kind: Kind::List,
        commands: BACKUP,
        summary: "Exclude paths from the backup.",
        help: "A path relative to the data directory, e.g. pg_log/ for a directory (its \
            contents are skipped, the directory is kept) or pg_log/old.log for one file. Repeat \
            the option for several paths. Excluded files are not restored: use it only for files \
            PostgreSQL does not need.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Force,
        name: "force",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: &rules([Backup, Restore, StanzaDelete, Stop]),
        summary: "Force an action.",
        help: "For restore: overwrite a data directory that is not empty, restoring every \
            file and removing what is not in the backup (with --delta, keep files whose size \
            and modification time match the backup). For stop: also terminate pgkeep processes \
            that are running. For stanza-delete: delete even though the cluster is running.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::IoTimeout,
        name: "io-timeout",
        kind: Kind::Time {
            min_ms: 100,
            max_ms: 3_600_000,
        },
        default: Some("60"),
        commands: REMOTE,
        summary: "I/O timeout.",
        help: "How long, in seconds, connecting to a remote host may take (ssh's \
            ConnectTimeout). Waits for answers once connected are bounded by protocol-timeout.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LinkAll,
        name: "link-all",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: RESTORE,
        summary: "Restore all symlinks.",
        help: "Symbolic links of the data directory other than tablespaces (a relocated pg_wal, \
            say) are restored as plain directories inside the data directory by default, \
            because their original destinations may not be safe to write on another host. With \
            link-all every link is restored pointing to its original destination.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LinkMap,
        name: "link-map",
        kind: Kind::Hash,
        commands: RESTORE,
        summary: "Modify the destination of a symlink.",
        help: "<link>=<destination>, e.g. --link-map=pg_wal=/var/lib/pgwal: the link, named \
            relative to the data directory, is restored pointing to the new absolute \
            destination (which implies restoring that link). Repeat the option for several \
            links. Tablespaces are remapped with tablespace-map.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LockPath,
        name: "lock-path",
        kind: Kind::Path,
        default: Some("/tmp/pgkeep"),
        commands: LOCKING,
        summary: "Path where lock files are stored.",
        help: "Lock files keep two commands of the same kind from running at once for a stanza; \
            stop files live here too. The path must be local and shared by every pgkeep \
            process on the host.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LogLevelConsole,
        name: "log-level-console",
        kind: Kind::Enum(LOG_LEVELS),
        default: Some("warn"),
        commands: LOGGING,
        summary: "Level for console logging.",
        help: "Messages at this level and above go to stdout (unless they go to stderr, see \
            log-level-stderr). Levels: off, error, warn, info, detail, debug, trace.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LogLevelFile,
        name: "log-level-file",
        kind: Kind::Enum(LOG_LEVELS),
        default: Some("info"),
        commands: LOGGING,
        summary: "Level for file logging.",
        help: "Messages at this level and above go to the log file \
            <log-path>/<stanza>-<command>.log (all-<command>.log without a stanza). 'off' \
            writes no log file.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LogLevelStderr,
        name: "log-level-stderr",
        kind: Kind::Enum(LOG_LEVELS),
        default: Some("warn"),
        commands: LOGGING,
        summary: "Level for stderr logging.",
        help: "Messages at this level and above go to stderr instead of stdout.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LogPath,
        name: "log-path",
        kind: Kind::Path,
        default: Some("/var/log/pgkeep"),
        commands: LOGGING,
        summary: "Path where log files are stored.",
        help: "The directory of the log files; created when missing.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::LogTimestamp,
        name: "log-timestamp",
        kind: Kind::Boolean,
        default: Some("y"),
        commands: LOGGING,
        summary: "Enable timestamp in logging.",
        help: "Prefix console and stderr lines with the date and time. Log file lines always \
            carry them.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Online,
        name: "online",
        kind: Kind::Boolean,
        default: Some("y"),
        commands: BACKUP,
        summary: "Back up a running cluster.",
        help: "With --no-online the cluster must be stopped: no connection is made, and the \
            backup is consistent as it is (no WAL needed). A postmaster.pid in the data \
            directory makes pgkeep refuse, unless --force is given.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Output,
        name: "output",
        kind: Kind::Enum(&["none", "text", "json"]),
        default: Some("text"),
        commands: &[
            on(Info).allow(&["text", "json"]),
            on(Verify).default("none").allow(&["none", "text"]),
        ],
        summary: "Output format.",
        help: "For info: 'text' is meant for people; 'json' for programs, and stays compatible \
            across versions. For verify: 'none' (the default) prints no report, 'text' prints \
            the report to stdout, in pgBackRest's format: the stanza, its status (ok or error), \
            and for each archive id and each backup with problems the number of files checked \
            and valid and of files missing, with an invalid checksum, an invalid size or another \
            problem (see verbose). The report is also logged at info level when it is not \
            empty.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgDatabase,
        name: "pg-database",
        group: Some(Group::Pg),
        kind: Kind::String,
        default: Some("postgres"),
        scope: Scope::Stanza,
        commands: CONNECTING,
        summary: "PostgreSQL database.",
        help: "The database pgkeep connects to. Any database will do: pgkeep only runs \
            cluster-wide functions.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgHost,
        name: "pg-host",
        group: Some(Group::Pg),
        aliases: &["db-host", "db?-host"],
        kind: Kind::String,
        scope: Scope::Stanza,
        commands: REMOTE,
        summary: "PostgreSQL host for operations that run on the database host.",
        help: "Set on a dedicated backup host: the host where the cluster runs. pgkeep reaches \
            it with ssh (cmd-ssh) as pg1-host-user and runs pgkeep there, which reads the data \
            directory, checksums and compresses files next to the data, and runs the backup's \
            SQL. Unset, the cluster is local.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgHostCmd,
        name: "pg-host-cmd",
        group: Some(Group::Pg),
        aliases: &["db-cmd", "db?-cmd"],
        kind: Kind::Path,
        scope: Scope::Stanza,
        commands: REMOTE,
        summary: "pgkeep exe path on the PostgreSQL host.",
        help: "The path of pgkeep on pg1-host. Defaults to the path of the running pgkeep, so \
            install it at the same place on every host.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgHostConfig,
        name: "pg-host-config",
        group: Some(Group::Pg),
        aliases: &["db-config", "db?-config"],
        kind: Kind::Path,
        scope: Scope::Stanza,
        commands: REMOTE,
        summary: "pgkeep configuration file on the PostgreSQL host.",
        help: "The configuration file pgkeep reads on pg1-host. Unset, it reads its default \
            file there.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgHostPort,
        name: "pg-host-port",
        group: Some(Group::Pg),
        aliases: &["db-ssh-port", "db?-ssh-port"],
        kind: Kind::Integer { min: 1, max: 65535 },
        scope: Scope::Stanza,
        commands: REMOTE,
        summary: "SSH port of the PostgreSQL host.",
        help: "The port ssh connects to on pg1-host. Unset, ssh's own default (its configuration, \
            else 22).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgHostUser,
        name: "pg-host-user",
        group: Some(Group::Pg),
        aliases: &["db-user", "db?-user"],
        kind: Kind::String,
        default: Some("postgres"),
        scope: Scope::Stanza,
        commands: REMOTE,
        summary: "PostgreSQL host logon user.",
        help: "The user ssh logs on as on pg1-host: the owner of the data directory, usually \
            postgres.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgPath,
        name: "pg-path",
        group: Some(Group::Pg),
        aliases: &["db-path", "db?-path"],
        kind: Kind::Path,
        scope: Scope::Stanza,
        commands: &[
            on(ArchiveGet),
            on(ArchivePush),
            required(Backup),
            required(Check),
            on(Info),
            required(Restore),
            required(StanzaCreate),
            required(StanzaDelete),
            required(StanzaUpgrade),
        ],
        summary: "PostgreSQL data directory.",
        help: "The data directory of the cluster. For backup it must equal the cluster's \
            data_directory setting; for restore it is where files are written.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgPort,
        name: "pg-port",
        group: Some(Group::Pg),
        aliases: &["db-port", "db?-port"],
        kind: Kind::Integer { min: 1, max: 65535 },
        default: Some("5432"),
        scope: Scope::Stanza,
        commands: CONNECTING,
        summary: "PostgreSQL port.",
        help: "The port the cluster listens on; with a socket path, it names the socket file.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgSocketPath,
        name: "pg-socket-path",
        group: Some(Group::Pg),
        aliases: &["db-socket-path", "db?-socket-path"],
        kind: Kind::Path,
        scope: Scope::Stanza,
        commands: CONNECTING,
        summary: "PostgreSQL unix socket path.",
        help: "The directory of the cluster's unix socket (unix_socket_directories). When \
            unset, libpq's default is used.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::PgUser,
        name: "pg-user",
        group: Some(Group::Pg),
        aliases: &[],
        kind: Kind::String,
        scope: Scope::Stanza,
        commands: CONNECTING,
        summary: "PostgreSQL database user.",
        help: "The user pgkeep connects as. When unset, libpq's default is used: the name of \
            the operating system user.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ProcessMax,
        name: "process-max",
        aliases: &["thread-max"],
        kind: Kind::Integer { min: 1, max: 999 },
        default: Some("1"),
        commands: COPYING,
        summary: "Max processes to use for compress/transfer.",
        help: "The number of worker threads that copy, compress and checksum files in \
            parallel. Each holds its own buffers (see buffer-size).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::ProtocolTimeout,
        name: "protocol-timeout",
        kind: Kind::Time {
            min_ms: 100,
            max_ms: 604_800_000,
        },
        default: Some("1830"),
        commands: REMOTE,
        summary: "Protocol timeout.",
        help: "How long, in seconds, pgkeep waits for any answer from a remote host before it \
            gives up with an error instead of hanging. Keep it larger than db-timeout.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RecoveryOption,
        name: "recovery-option",
        kind: Kind::Hash,
        commands: RESTORE,
        summary: "Set an option in the recovery settings.",
        help: "A key=value pair written to the recovery settings of the restored cluster, e.g. \
            --recovery-option=primary_conninfo=host=db1. Repeat the option for several \
            settings. restore_command is written by pgkeep unless given here.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RemoteType,
        name: "remote-type",
        kind: Kind::Enum(&["pg", "repo"]),
        scope: Scope::CommandLine,
        commands: REMOTE,
        summary: "Type of remote (internal).",
        help: "Set by pgkeep itself on the command line of <command>:remote, the far side of an \
            ssh connection: 'pg' serves the data directory and the database, 'repo' the \
            repository. Not meant to be set by hand.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoBlock,
        name: "repo-block",
        group: Some(Group::Repo),
        aliases: &["repo-block"],
        kind: Kind::Boolean,
        default: Some("y"),
        commands: BACKUP,
        summary: "Enable block incremental backup.",
        help: "Relation files (tables and indexes, under base/, global/ and pg_tblspc/) of 2MiB \
            or more are stored block by block: the backup hashes each page and stores only the \
            pages that changed since the prior backup, with a block map that says which backup \
            holds every page. Restore reassembles the file from the map. With 'n' a changed \
            file is stored whole.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoBundle,
        name: "repo-bundle",
        group: Some(Group::Repo),
        aliases: &["repo-bundle"],
        kind: Kind::Boolean,
        default: Some("y"),
        commands: BACKUP,
        summary: "Bundle files.",
        help: "Stores the files smaller than repo1-bundle-limit together in bundles of about \
            repo1-bundle-size under bundle/ in the backup set, each file compressed on its own, \
            instead of one repository file each: a cluster of many small tables then costs a \
            few large writes instead of one file creation and fsync per file, at backup and \
            restore. Zero-length files are stored nowhere, only listed in the manifest. \
            pgBackRest defaults to n; pgkeep defaults to y.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoBundleLimit,
        name: "repo-bundle-limit",
        group: Some(Group::Repo),
        aliases: &["repo-bundle-limit"],
        kind: Kind::Size {
            min: 8 * KIB,
            max: 1024 * MIB,
        },
        default: Some("2MiB"),
        commands: BACKUP,
        summary: "Limit for file bundles.",
        help: "With repo1-bundle, files smaller than this are bundled; larger files are stored \
            one repository file each. Written like buffer-size: 512KiB, 2MiB.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoBundleSize,
        name: "repo-bundle-size",
        group: Some(Group::Repo),
        aliases: &["repo-bundle-size"],
        kind: Kind::Size {
            min: MIB,
            max: 4096 * MIB,
        },
        default: Some("20MiB"),
        commands: BACKUP,
        summary: "Target size for file bundles.",
        help: "With repo1-bundle, a bundle is closed once the files put into it add up to this \
            size (before compression), as in pgBackRest; a bundle can be larger by up to one \
            file. Written like buffer-size: 20MiB, 1GiB.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoHost,
        name: "repo-host",
        group: Some(Group::Repo),
        aliases: &["backup-host"],
        kind: Kind::String,
        commands: REMOTE,
        summary: "Repository host when operating remotely.",
        help: "Set on the database host when the repository lives on a dedicated backup host: \
            archive-push, archive-get, restore and info reach it with ssh (cmd-ssh) as \
            repo1-host-user and run pgkeep there, which reads and writes the repository. \
            Unset, the repository is local (repo1-path).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoHostCmd,
        name: "repo-host-cmd",
        group: Some(Group::Repo),
        aliases: &["backup-cmd"],
        kind: Kind::Path,
        commands: REMOTE,
        summary: "pgkeep exe path on the repository host.",
        help: "The path of pgkeep on repo1-host. Defaults to the path of the running pgkeep, so \
            install it at the same place on every host.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoHostConfig,
        name: "repo-host-config",
        group: Some(Group::Repo),
        aliases: &["backup-config"],
        kind: Kind::Path,
        commands: REMOTE,
        summary: "pgkeep configuration file on the repository host.",
        help: "The configuration file pgkeep reads on repo1-host; its repo1-path is the \
            repository. Unset, it reads its default file there.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoHostPort,
        name: "repo-host-port",
        group: Some(Group::Repo),
        aliases: &["backup-ssh-port"],
        kind: Kind::Integer { min: 1, max: 65535 },
        commands: REMOTE,
        summary: "SSH port of the repository host.",
        help: "The port ssh connects to on repo1-host. Unset, ssh's own default (its \
            configuration, else 22).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoHostUser,
        name: "repo-host-user",
        group: Some(Group::Repo),
        aliases: &["backup-user"],
        kind: Kind::String,
        default: Some("postgres"),
        commands: REMOTE,
        summary: "Repository host user.",
        help: "The user ssh logs on as on repo1-host: the owner of the repository.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoPath,
        name: "repo-path",
        group: Some(Group::Repo),
        aliases: &["repo-path"],
        kind: Kind::Path,
        default: Some("/var/lib/pgkeep"),
        commands: REPOSITORY,
        summary: "Path where backups and archive are stored.",
        help: "The root of the repository. It holds the archive and the backups of every \
            stanza.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoRetentionArchive,
        name: "repo-retention-archive",
        group: Some(Group::Repo),
        aliases: &["retention-archive"],
        kind: Kind::Integer {
            min: 1,
            max: 9_999_999,
        },
        commands: RETENTION,
        summary: "Number of backups worth of continuous WAL to retain.",
        help: "Counted in backups of repo1-retention-archive-type: WAL older than the oldest of \
            the newest N such backups is removed, except the WAL each retained backup needs to \
            be consistent. Unset, it follows repo1-retention-full (or repo1-retention-diff for \
            type diff), so all WAL after the oldest retained backup stays for point-in-time \
            recovery.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoRetentionArchiveType,
        name: "repo-retention-archive-type",
        group: Some(Group::Repo),
        aliases: &["retention-archive-type"],
        kind: Kind::Enum(&["full", "diff", "incr"]),
        default: Some("full"),
        commands: RETENTION,
        summary: "Backup type for WAL retention.",
        help: "Which backups repo1-retention-archive counts: full, diff (full and differential) \
            or incr (all backups).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoRetentionDiff,
        name: "repo-retention-diff",
        group: Some(Group::Repo),
        aliases: &["retention-diff"],
        kind: Kind::Integer {
            min: 1,
            max: 9_999_999,
        },
        commands: RETENTION,
        summary: "Number of differential backups to retain.",
        help: "When a differential backup expires, the incremental backups that depend on it \
            expire with it. Full backups count as differentials here, as in pgBackRest.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoRetentionFull,
        name: "repo-retention-full",
        group: Some(Group::Repo),
        aliases: &["retention-full"],
        kind: Kind::Integer {
            min: 1,
            max: 9_999_999,
        },
        commands: RETENTION,
        summary: "Full backup retention count or time (days).",
        help: "With repo1-retention-full-type=count, the number of full backups to keep; with \
            time, the number of days: full backups are kept while they are needed to reach any \
            point within that many days. Older full backups expire with every backup that \
            depends on them. At least one full backup always remains. Unset, nothing expires \
            and each backup warns that the repository may run out of space.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::RepoRetentionFullType,
        name: "repo-retention-full-type",
        group: Some(Group::Repo),
        aliases: &["retention-full-type"],
        kind: Kind::Enum(&["count", "time"]),
        default: Some("count"),
        commands: RETENTION,
        summary: "Retention type for full backups.",
        help: "count: repo1-retention-full is a number of full backups; time: a number of days.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Resume,
        name: "resume",
        kind: Kind::Boolean,
        default: Some("y"),
        commands: BACKUP,
        summary: "Allow resume of a failed backup.",
        help: "An interrupted backup of the same type and prior is resumed: files it already \
            copied whose checksum still verifies and whose source has not changed are kept; \
            the rest are copied. The log says how many files were reused.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Set,
        name: "set",
        kind: Kind::String,
        commands: &rules([Expire, Info, Restore, Verify]),
        summary: "Backup set to restore, show, expire or verify.",
        help: "The label of a backup, e.g. 20260102-030405F. For restore, 'latest' (the \
            default) means the newest backup, or, for --type=time and --type=lsn, the newest \
            backup that ended before the target; a set that ended after the target is refused. \
            For info, the details of this backup are shown; for verify, only this backup and the \
            WAL it needs are checked.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::SpoolPath,
        name: "spool-path",
        kind: Kind::Path,
        default: Some("/var/spool/pgkeep"),
        commands: &rules([ArchiveGet, ArchivePush, Check]),
        summary: "Path where transient data is stored.",
        help: "With archive-async, the queues of archive-push (archive/<stanza>/out: one \
            <segment>.ok per segment durable in the repository, <segment>.error when it \
            failed) and archive-get (archive/<stanza>/in: prefetched segments), and the \
            archive-push status file. It must be on the database host and writable by \
            PostgreSQL's user.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Stanza,
        name: "stanza",
        kind: Kind::String,
        scope: Scope::CommandLine,
        commands: &[
            required(ArchiveGet),
            required(ArchivePush),
            required(Backup),
            required(Check),
            required(Expire),
            on(Info),
            required(Restore),
            required(StanzaCreate),
            required(StanzaDelete),
            required(StanzaUpgrade),
            on(Start),
            on(Stop),
            required(Verify),
        ],
        summary: "Defines the stanza.",
        help: "A stanza names one PostgreSQL cluster and its backups. It selects the \
            [<stanza>] sections of the configuration file. The name becomes part of lock, log, \
            spool and repository paths, so it is 1 to 64 ASCII letters, digits, '_', '-' and \
            '.', and does not begin with '.'; any other name is refused (exit 32), whether \
            given with --stanza, PGKEEP_STANZA or as a configuration file section.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::StartFast,
        name: "start-fast",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: BACKUP,
        summary: "Force a checkpoint to start backup quickly.",
        help: "Asks PostgreSQL for an immediate checkpoint when the backup starts instead of \
            waiting for a spread one, at the cost of a burst of I/O.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::StopAuto,
        name: "stop-auto",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: BACKUP,
        summary: "Stop prior failed backup on new backup.",
        help: "When a backup started by a process that died is still running in PostgreSQL, \
            stop it before starting a new one.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::TablespaceMap,
        name: "tablespace-map",
        kind: Kind::Hash,
        commands: RESTORE,
        summary: "Restore a tablespace into the specified directory.",
        help: "<tablespace>=<directory>, the tablespace given by name or oid, e.g. \
            --tablespace-map=ts1=/srv/ts1: the tablespace is restored there instead of its \
            original location, and its pg_tblspc link points there. Repeat the option for \
            several tablespaces.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::TablespaceMapAll,
        name: "tablespace-map-all",
        kind: Kind::Path,
        commands: RESTORE,
        summary: "Restore all tablespaces into the specified directory.",
        help: "Each tablespace is restored to <directory>/<tablespace name> (its oid when the \
            name cannot be read from the backup), unless tablespace-map names another place \
            for it.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Target,
        name: "target",
        kind: Kind::String,
        commands: RESTORE,
        summary: "Recovery target.",
        help: "Where recovery stops, for the types time (a timestamp with its time zone, e.g. \
            \"2026-11-24 21:00:00+00\", \"2026-11-24T21:00:00Z\" or \"2026-11-24 22:00:00 \
            Europe/Paris\"; a timestamp without a zone is refused), xid (a transaction id), \
            name (a restore point made with pg_create_restore_point) and lsn (e.g. 0/3000028).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::TargetAction,
        name: "target-action",
        kind: Kind::Enum(&["pause", "promote", "shutdown"]),
        default: Some("pause"),
        commands: RESTORE,
        summary: "Action to take when recovery target is reached.",
        help: "What PostgreSQL does once the recovery target is reached \
            (recovery_target_action).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::TargetExclusive,
        name: "target-exclusive",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: RESTORE,
        summary: "Stop just before the recovery target is reached.",
        help: "Recovery stops just before the target instead of just after it \
            (recovery_target_inclusive=false).",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::TargetTimeline,
        name: "target-timeline",
        kind: Kind::String,
        commands: RESTORE,
        summary: "Recover along a timeline.",
        help: "The timeline recovery follows: a number, 'current' or 'latest' \
            (recovery_target_timeline). A number or 'latest' is checked against the timeline \
            history files in the archive: the backup must lie on the target timeline's history, \
            before the point where the timeline branched off.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Type,
        name: "type",
        kind: Kind::Enum(&[
            "full",
            "diff",
            "incr",
            "default",
            "immediate",
            "time",
            "xid",
            "name",
            "lsn",
            "preserve",
            "standby",
            "none",
        ]),
        commands: &[
            on(Backup).default("incr").allow(BACKUP_TYPES),
            on(Restore).default("default").allow(RECOVERY_TYPES),
        ],
        summary: "Backup type, or recovery type for restore.",
        help: "For backup: full, diff (changes since the last full backup) or incr (changes \
            since the last backup). For restore: how recovery ends. 'default' replays the \
            whole archive; 'immediate' stops at consistency; time, xid, name and lsn stop at \
            --target; 'standby' makes a standby; 'preserve' keeps the recovery settings of the \
            backup; 'none' writes none.",
        ..OptionDef::BASE
    },
    OptionDef {
        id: Opt::Verbose,
        name: "verbose",
        kind: Kind::Boolean,
        default: Some("n"),
        commands: &rules([Verify]),
        summary: "Verbose output.",
        help: "For verify: the report also lists what is valid, with every count (valid \
            archive ids and backups, the files checked, zero counts), and is printed and logged \
            even when nothing is wrong. Without it the report lists only problems, and is empty \
            when there are none.",
        ..OptionDef::BASE
    },
];
