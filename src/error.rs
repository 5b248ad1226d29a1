//! Typed errors with stable exit codes.
//!
//! Every failure pgkeep reports is an [`Error`]: a [`ErrorKind`] that fixes the process exit
//! code, a one-line lowercase message that names what is wrong (paths and names in single
//! quotes), and an optional hint saying what to do. Library code returns these; only `main`
//! turns them into an exit code. A kind that pgBackRest also has carries pgBackRest's name and
//! code (its `build/error.yaml`), so that scripts written for pgBackRest read the same exit codes;
//! a kind pgBackRest lacks uses a code pgBackRest does not. The codes are documented in
//! docs/errors.md, next to pgBackRest's for each condition.

use std::fmt;

/// Declares [`ErrorKind`] from one table: each kind once, with its exit code and the name log
/// lines show. The enum, [`ErrorKind::ALL`] and [`ErrorKind::name`] are generated from it, so a
/// kind cannot be added to one and forgotten in another (docs/errors.md is checked against
/// [`ErrorKind::ALL`] by a test below). A duplicated code does not compile: the codes are the
/// enum's discriminants.
macro_rules! error_kinds {
    ($($(#[$doc:meta])* $kind:ident = $code:literal, $name:literal;)*) => {
        /// The class of a failure. The discriminant is the process exit code.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub enum ErrorKind {
            $($(#[$doc])* $kind = $code,)*
        }

        impl ErrorKind {
            /// Every kind, so a code that crossed the remote protocol can be turned back into a
            /// kind.
            pub const ALL: &[ErrorKind] = &[$(ErrorKind::$kind,)*];

            /// The name shown in log lines, e.g. `FileOpenError`.
            pub fn name(self) -> &'static str {
                match self {
                    $(ErrorKind::$kind => $name,)*
                }
            }
        }
    };
}

// Ordered by code, as docs/errors.md lists them. A kind that pgBackRest also has uses
// pgBackRest's name and code.
error_kinds! {
    /// A condition the code believed impossible.
    Assert = 25, "AssertError";
    /// Content does not match its recorded checksum.
    Checksum = 26, "ChecksumError";
    /// The configuration file cannot be read or parsed.
    Config = 27, "ConfigError";
    /// A file exists but its content is not what it must be.
    FileInvalid = 28, "FileInvalidError";
    /// A value is not in the expected format.
    Format = 29, "FormatError";
    /// No command was given.
    CommandRequired = 30, "CommandRequiredError";
    /// An option is unknown or not valid for the command.
    OptionInvalid = 31, "OptionInvalidError";
    /// An option's value is not valid.
    OptionInvalidValue = 32, "OptionInvalidValueError";
    /// A required option is missing.
    OptionRequired = 37, "OptionRequiredError";
    /// PostgreSQL is running where it must not be.
    PgRunning = 38, "PgRunningError";
    /// The remote protocol failed: a malformed or unexpected message, a version mismatch, a
    /// timeout, or a remote process that ended mid-conversation.
    Protocol = 39, "ProtocolError";
    /// A directory that must be empty is not.
    PathNotEmpty = 40, "PathNotEmptyError";
    /// A file cannot be opened.
    FileOpen = 41, "FileOpenError";
    /// A file cannot be read.
    FileRead = 42, "FileReadError";
    /// A WAL file or cluster does not belong to the stanza.
    ArchiveMismatch = 44, "ArchiveMismatchError";
    /// A different WAL file of the same name is already archived.
    ArchiveDuplicate = 45, "ArchiveDuplicateError";
    /// The PostgreSQL version is not supported.
    VersionNotSupported = 46, "VersionNotSupportedError";
    /// A directory cannot be created.
    PathCreate = 47, "PathCreateError";
    /// The command is unknown.
    CommandInvalid = 48, "CommandInvalidError";
    /// A remote host cannot be reached or refuses the connection (ssh failed).
    HostConnect = 49, "HostConnectError";
    /// Another pgkeep process holds the lock.
    LockAcquire = 50, "LockAcquireError";
    /// A backup does not match the cluster or the repository.
    BackupMismatch = 51, "BackupMismatchError";
    /// A file or directory cannot be synced to disk.
    FileSync = 52, "FileSyncError";
    /// A directory cannot be opened or listed.
    PathOpen = 53, "PathOpenError";
    /// A required file is missing.
    FileMissing = 55, "FileMissingError";
    /// The database connection failed.
    DbConnect = 56, "DbConnectError";
    /// A database query failed.
    DbQuery = 57, "DbQueryError";
    /// The cluster does not match the stanza.
    DbMismatch = 58, "DbMismatchError";
    /// A file cannot be removed.
    FileRemove = 60, "FileRemoveError";
    /// A stop file forbids the command.
    Stop = 62, "StopError";
    /// A file cannot be written.
    FileWrite = 64, "FileWriteError";
    /// archive_command is not set (or cannot archive for this stanza).
    ArchiveCommandInvalid = 68, "ArchiveCommandInvalidError";
    /// A required directory is missing.
    PathMissing = 73, "PathMissingError";
    /// A requested backup set does not exist or cannot be used.
    BackupSetInvalid = 75, "BackupSetInvalidError";
    /// `tablespace-map` names a tablespace the backup does not have.
    TablespaceMap = 76, "TablespaceMapError";
    /// `link-map` names a link the backup does not have.
    LinkMap = 78, "LinkMapError";
    /// A database named by `db-include` is not in the backup.
    DbMissing = 80, "DbMissingError";
    /// WAL did not reach the archive in time.
    ArchiveTimeout = 82, "ArchiveTimeoutError";
    /// archive_mode is off, so WAL cannot be archived.
    ArchiveDisabled = 87, "ArchiveDisabledError";
    /// Positional parameters are wrong for the command.
    ParamInvalid = 96, "ParamInvalidError";
    /// A child process or thread failed unexpectedly.
    Execute = 102, "ExecuteError";
    /// The command encountered one or more errors, each logged before: pgBackRest's
    /// CommandError. pgkeep's verify ends with it when it found the repository damaged.
    Verify = 104, "CommandError";
    /// WAL waiting to be archived exceeds archive-push-queue-max.
    ArchiveQueueFull = 110, "ArchiveQueueFullError";
}

impl ErrorKind {
    /// The kind whose exit code is `code`.
    pub fn from_code(code: i32) -> Option<ErrorKind> {
        ErrorKind::ALL
            .iter()
            .copied()
            .find(|kind| kind.exit_code() == code)
    }

    /// The process exit code for this kind of failure.
    pub fn exit_code(self) -> i32 {
        self as i32
    }
}

/// A failure with its kind, message and optional hint.
#[derive(Debug, Clone)]
pub struct Error {
    kind: ErrorKind,
    message: String,
    hint: Option<String>,
}

/// The result type used throughout pgkeep.
pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    /// A new error; `message` is lowercase, without a final period.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Error {
        Error {
            kind,
            message: message.into(),
            hint: None,
        }
    }

    /// An error caused by an I/O failure on `path`: "unable to <action> '<path>': <cause>".
    pub fn io(
        kind: ErrorKind,
        action: &str,
        path: impl fmt::Display,
        cause: &std::io::Error,
    ) -> Error {
        Error::new(
            kind,
            format!("unable to {action} '{path}': {}", io_cause(cause)),
        )
    }

    /// Adds a hint: what the user should do about it.
    pub fn with_hint(mut self, hint: impl Into<String>) -> Error {
        self.hint = Some(hint.into());
        self
    }

    /// Prefixes the message with context, e.g. the file being processed.
    pub fn context(mut self, context: impl fmt::Display) -> Error {
        self.message = format!("{context}: {}", self.message);
        self
    }

    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    pub fn message(&self) -> &str {
        &self.message
    }

    /// The hint as stored: a pgkeep command it names is still marked (see [`command_hint`]),
    /// so that it can cross the remote protocol and be rendered where it is shown.
    pub fn hint(&self) -> Option<&str> {
        self.hint.as_deref()
    }

    /// The error with each command its hint names rendered by `render`, which gets the
    /// command line as the hint gave it (`--stanza=demo start`) and returns the whole command
    /// to show. The error boundary (main, through the command layer) calls this with the
    /// invocation's own options, so that a hint runs as written.
    pub fn render_hint(&self, render: &dyn Fn(&str) -> String) -> Error {
        Error {
            hint: self
                .hint
                .as_deref()
                .map(|hint| render_commands(hint, render)),
            ..self.clone()
        }
    }
}

/// Opens and closes a command line inside a hint. Control characters: no message text has them.
const COMMAND_OPEN: char = '\u{2}';
const COMMAND_CLOSE: char = '\u{3}';

/// A pgkeep command for a hint to name, e.g. `command_hint("--stanza=demo start")`: at the
/// error boundary it becomes `pgkeep --config=/etc/x.conf --stanza=demo start` (the options the
/// user gave to find the configuration, stanza and repository are repeated, so that the hint
/// runs as written); anywhere else it reads `pgkeep --stanza=demo start`. Code below the
/// command layer has no configuration to pass down: this defers the rendering to where it is.
pub fn command_hint(command_line: &str) -> String {
    format!("{COMMAND_OPEN}{command_line}{COMMAND_CLOSE}")
}

/// `text` with every marked command replaced by `render(command line)`.
pub fn render_commands(text: &str, render: &dyn Fn(&str) -> String) -> String {
    let mut out = String::with_capacity(text.len() + 32);
    let mut rest = text;
    while let Some(start) = rest.find(COMMAND_OPEN) {
        out.push_str(&rest[..start]);
        let after = &rest[start + COMMAND_OPEN.len_utf8()..];
        let end = after.find(COMMAND_CLOSE).unwrap_or(after.len());
        out.push_str(&render(&after[..end]));
        rest = after.get(end + COMMAND_CLOSE.len_utf8()..).unwrap_or("");
    }
    out.push_str(rest);
    out
}

/// A marked command as it reads without the invocation: `pgkeep <command line>`.
pub fn plain_command(command_line: &str) -> String {
    format!("pgkeep {command_line}")
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(hint) = &self.hint {
            write!(f, "\nHINT: {}", render_commands(hint, &plain_command))?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {}

/// The cause of an I/O error in the message grammar: lowercase, no "(os error N)" noise.
pub fn io_cause(err: &std::io::Error) -> String {
    match err.kind() {
        std::io::ErrorKind::NotFound => "[2] No such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "[13] Permission denied".to_string(),
        _ => match err.raw_os_error() {
            Some(code) => {
                let full = err.to_string();
                let plain = full.split(" (os error").next().unwrap_or(&full).to_string();
                format!("[{code}] {plain}")
            }
            None => err.to_string(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marked_commands_render_plain_or_with_the_invocation() {
        let err =
            Error::new(ErrorKind::Stop, "stop file exists for stanza demo").with_hint(format!(
                "use '{}' to allow pgkeep to run again",
                command_hint("--stanza=demo start")
            ));
        assert!(
            err.to_string()
                .ends_with("HINT: use 'pgkeep --stanza=demo start' to allow pgkeep to run again")
        );
        let rendered = err.render_hint(&|line| format!("pgkeep --config=/x.conf {line}"));
        assert_eq!(
            rendered.hint(),
            Some("use 'pgkeep --config=/x.conf --stanza=demo start' to allow pgkeep to run again")
        );
        assert_eq!(render_commands("no command", &plain_command), "no command");
    }

    #[test]
    fn display_includes_hint_on_its_own_line() {
        let err = Error::new(ErrorKind::Stop, "stop file exists for all stanzas")
            .with_hint("use the 'start' command to allow pgkeep to run");
        assert_eq!(
            err.to_string(),
            "stop file exists for all stanzas\nHINT: use the 'start' command to allow pgkeep to run"
        );
        assert_eq!(err.kind().exit_code(), 62);
    }

    #[test]
    fn io_errors_name_path_and_cause() {
        let cause = std::io::Error::from_raw_os_error(13);
        let err = Error::io(ErrorKind::FileOpen, "open", "/x/y", &cause);
        assert_eq!(
            err.message(),
            "unable to open '/x/y': [13] Permission denied"
        );
    }

    /// pgBackRest 2.45's error names and codes (its build/error.yaml), for the check below.
    const PGBACKREST: &[(&str, i32)] = &[
        ("AssertError", 25),
        ("ChecksumError", 26),
        ("ConfigError", 27),
        ("FileInvalidError", 28),
        ("FormatError", 29),
        ("CommandRequiredError", 30),
        ("OptionInvalidError", 31),
        ("OptionInvalidValueError", 32),
        ("OptionRequiredError", 37),
        ("PgRunningError", 38),
        ("ProtocolError", 39),
        ("PathNotEmptyError", 40),
        ("FileOpenError", 41),
        ("FileReadError", 42),
        ("ParamRequiredError", 43),
        ("ArchiveMismatchError", 44),
        ("ArchiveDuplicateError", 45),
        ("VersionNotSupportedError", 46),
        ("PathCreateError", 47),
        ("CommandInvalidError", 48),
        ("HostConnectError", 49),
        ("LockAcquireError", 50),
        ("BackupMismatchError", 51),
        ("FileSyncError", 52),
        ("PathOpenError", 53),
        ("PathSyncError", 54),
        ("FileMissingError", 55),
        ("DbConnectError", 56),
        ("DbQueryError", 57),
        ("DbMismatchError", 58),
        ("FileRemoveError", 60),
        ("PathRemoveError", 61),
        ("StopError", 62),
        ("TermError", 63),
        ("FileWriteError", 64),
        ("FeatureNotSupportedError", 67),
        ("ArchiveCommandInvalidError", 68),
        ("LinkExpectedError", 69),
        ("LinkDestinationError", 70),
        ("HostInvalidError", 72),
        ("PathMissingError", 73),
        ("FileMoveError", 74),
        ("BackupSetInvalidError", 75),
        ("TablespaceMapError", 76),
        ("LinkMapError", 78),
        ("FileCloseError", 79),
        ("DbMissingError", 80),
        ("DbInvalidError", 81),
        ("ArchiveTimeoutError", 82),
        ("FileModeError", 83),
        ("ArchiveDisabledError", 87),
        ("FileOwnerError", 88),
        ("UserMissingError", 89),
        ("FileExistsError", 93),
        ("MemoryError", 94),
        ("CryptoError", 95),
        ("ParamInvalidError", 96),
        ("PathCloseError", 97),
        ("FileInfoError", 98),
        ("JsonFormatError", 99),
        ("KernelError", 100),
        ("ServiceError", 101),
        ("ExecuteError", 102),
        ("RepoInvalidError", 103),
        ("CommandError", 104),
        ("AccessError", 105),
        ("ClockError", 106),
        ("RuntimeError", 122),
        ("UnhandledError", 124),
        ("UnknownError", 125),
    ];

    /// A script written for pgBackRest reads pgkeep's exit codes the same way: a kind pgBackRest
    /// has uses its name and code; a pgkeep-only kind uses a code pgBackRest does not.
    #[test]
    fn names_and_codes_agree_with_pgbackrest() {
        for kind in ErrorKind::ALL {
            let by_name = PGBACKREST.iter().find(|(name, _)| *name == kind.name());
            let by_code = PGBACKREST
                .iter()
                .find(|(_, code)| *code == kind.exit_code());
            match (by_name, by_code) {
                (Some((_, code)), _) => assert_eq!(
                    *code,
                    kind.exit_code(),
                    "{} is {code} in pgBackRest",
                    kind.name()
                ),
                (None, Some((name, code))) => {
                    panic!("{} uses {code}, pgBackRest's {name}", kind.name())
                }
                (None, None) => {}
            }
        }
    }

    /// Distinct codes are the compiler's business (they are the enum's discriminants); this
    /// checks that they fit an exit status and that `from_code` finds each kind again.
    #[test]
    fn exit_codes_fit_in_a_byte_and_turn_back_into_their_kind() {
        for kind in ErrorKind::ALL.iter().copied() {
            let code = kind.exit_code();
            assert!(code > 1 && code < 256, "{} exits {code}", kind.name());
            assert_eq!(ErrorKind::from_code(code), Some(kind));
        }
    }

    /// The rows of docs/errors.md's table: (code, name), the name `—` for a row that is no
    /// error kind (success, archive-get's 1 and 255).
    fn documented_codes() -> Vec<(i32, String)> {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/errors.md");
        let text = std::fs::read_to_string(&path).unwrap_or_default();
        text.lines()
            .filter_map(|line| {
                let mut cells = line.strip_prefix('|')?.split('|').map(str::trim);
                let code = cells.next()?.parse::<i32>().ok()?;
                let name = cells.next()?.to_string();
                Some((code, name))
            })
            .collect()
    }

    /// docs/errors.md documents every kind with its code and name, and names no kind that
    /// does not exist, as docs/options.md is kept equal to the option table.
    #[test]
    fn docs_errors_md_lists_every_kind_with_its_code() {
        let documented = documented_codes();
        assert!(!documented.is_empty(), "docs/errors.md has no table rows");
        for kind in ErrorKind::ALL {
            assert!(
                documented
                    .iter()
                    .any(|(code, name)| *code == kind.exit_code() && name == kind.name()),
                "docs/errors.md has no row '| {} | {} |'",
                kind.exit_code(),
                kind.name()
            );
        }
        for (code, name) in &documented {
            if name == "—" {
                assert!(
                    ErrorKind::from_code(*code).is_none(),
                    "docs/errors.md row {code} names no kind, but {code} is one"
                );
                continue;
            }
            assert_eq!(
                ErrorKind::from_code(*code).map(ErrorKind::name),
                Some(name.as_str()),
                "docs/errors.md row {code} {name} is not an error kind"
            );
        }
    }
}
