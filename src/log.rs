//! Log output to the console (stdout), stderr and a log file.
//!
//! One process-wide logger, set up once by `main` from the resolved configuration. Library code
//! logs through the `log_*!` macros and never writes to stdout itself. A message goes to stderr
//! when its level is at or above `log-level-stderr`, otherwise to stdout when at or above
//! `log-level-console`; independently it goes to the log file when at or above
//! `log-level-file`. File lines carry a timestamp and the process id.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::{Error, ErrorKind, Result};

/// Log levels, from quietest to noisiest.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    Off,
    Error,
    Warn,
    Info,
    Detail,
    Debug,
    Trace,
}

impl Level {
    /// Every level, in order.
    pub const ALL: [Level; 7] = [
        Level::Off,
        Level::Error,
        Level::Warn,
        Level::Info,
        Level::Detail,
        Level::Debug,
        Level::Trace,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Level::Off => "off",
            Level::Error => "error",
            Level::Warn => "warn",
            Level::Info => "info",
            Level::Detail => "detail",
            Level::Debug => "debug",
            Level::Trace => "trace",
        }
    }

    pub fn parse(text: &str) -> Option<Level> {
        Level::ALL.into_iter().find(|level| level.name() == text)
    }

    /// The level as shown in a log line, right-aligned to six characters.
    fn label(self) -> &'static str {
        match self {
            Level::Off => "   OFF",
            Level::Error => " ERROR",
            Level::Warn => "  WARN",
            Level::Info => "  INFO",
            Level::Detail => "DETAIL",
            Level::Debug => " DEBUG",
            Level::Trace => " TRACE",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where log output goes.
#[derive(Debug, Clone)]
pub struct LogSettings {
    pub console: Level,
    pub stderr: Level,
    pub file: Level,
    /// The log file; `None` disables file logging whatever `file` says.
    pub file_path: Option<PathBuf>,
    /// Prefix console and stderr lines with a timestamp.
    pub timestamp: bool,
}

impl Default for LogSettings {
    fn default() -> Self {
        LogSettings {
            console: Level::Warn,
            stderr: Level::Warn,
            file: Level::Off,
            file_path: None,
            timestamp: false,
        }
    }
}

struct Logger {
    settings: LogSettings,
    file: Option<File>,
}

static LOGGER: Mutex<Option<Logger>> = Mutex::new(None);

/// Installs the process-wide logger. A log file that cannot be opened is reported as a warning
/// on the console and file logging is turned off: losing the log must not stop a backup.
pub fn init(settings: LogSettings) {
    let mut warning = None;
    let file = match (&settings.file_path, settings.file) {
        (Some(path), level) if level > Level::Off => match open_log_file(path) {
            Ok(file) => Some(file),
            Err(err) => {
                warning = Some(err.to_string());
                None
            }
        },
        _ => None,
    };
    if let Ok(mut guard) = LOGGER.lock() {
        *guard = Some(Logger { settings, file });
    }
    if let Some(text) = warning {
        log(Level::Warn, 0, &format!("{text}, file logging disabled"));
    }
}

fn open_log_file(path: &Path) -> Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|e| {
            Error::io(
                ErrorKind::PathCreate,
                "create log path",
                parent.display(),
                &e,
            )
        })?;
    }
    let file = OpenOptions::new()
        .create(true)
        .append(true)
        .mode(crate::lock::FILE_MODE)
        .open(path)
        .map_err(|e| Error::io(ErrorKind::FileOpen, "open log file", path.display(), &e))?;
    // A new run is separated from the previous one by a blank line, as pgBackRest does.
    let mut handle = &file;
    let _ = handle.write_all(b"\n");
    Ok(file)
}

/// True when a message at `level` would be written anywhere.
pub fn enabled(level: Level) -> bool {
    match LOGGER.lock() {
        Ok(guard) => match guard.as_ref() {
            Some(logger) => {
                let s = &logger.settings;
                level <= s.console
                    || level <= s.stderr
                    || (logger.file.is_some() && level <= s.file)
            }
            None => level <= Level::Warn,
        },
        Err(_) => false,
    }
}

/// Writes one message. `process` is the worker number shown as `P00`, `P01`, ...
pub fn log(level: Level, process: usize, message: &str) {
    if level == Level::Off {
        return;
    }
    let Ok(mut guard) = LOGGER.lock() else {
        return;
    };
    let default = Logger {
        settings: LogSettings::default(),
        file: None,
    };
    let logger = guard.get_or_insert(default);
    let s = &logger.settings;
    let now = timestamp();
    // As pgBackRest prints them: stderr lines are `ERROR: message` with no time or process
    // (what a terminal or a cron mail shows), stdout and file lines carry the full prefix. The
    // lines after the first of a message (a HINT, a detail) are indented to the message.
    if level <= s.stderr {
        let head = format!("{}: ", level.name().to_uppercase());
        let line = indent(&head, message);
        let _ = std::io::stderr().lock().write_all(line.as_bytes());
    } else if level <= s.console {
        let head = if s.timestamp {
            format!("{now} P{process:02} {}: ", level.label())
        } else {
            format!("P{process:02} {}: ", level.label())
        };
        let line = indent(&head, message);
        let _ = std::io::stdout().lock().write_all(line.as_bytes());
    }
    if level <= s.file
        && let Some(file) = logger.file.as_mut()
    {
        let head = format!(
            "{now} P{process:02} [{}] {}: ",
            std::process::id(),
            level.label()
        );
        let _ = file.write_all(indent(&head, message).as_bytes());
    }
}

/// `head` then `message`, each line of the message after the first indented by the width of
/// `head`, ending with a newline.
fn indent(head: &str, message: &str) -> String {
    let pad = " ".repeat(head.chars().count());
    let mut out = String::with_capacity(head.len() + message.len() + 1);
    for (n, line) in message.split('\n').enumerate() {
        out.push_str(if n == 0 { head } else { &pad });
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Local time with milliseconds, as in `2026-11-24 21:23:45.123`.
fn timestamp() -> String {
    let now = jiff::Timestamp::now().to_zoned_datetime(local_zone().clone());
    now.strftime("%Y-%m-%d %H:%M:%S%.3f").to_string()
}

/// The local time zone, read once. Without `TZ` it is parsed straight from /etc/localtime:
/// looking it up by name scans the whole zoneinfo tree, milliseconds that every archive-push
/// (one process per WAL segment) would pay.
fn local_zone() -> &'static jiff::tz::TimeZone {
    static ZONE: std::sync::OnceLock<jiff::tz::TimeZone> = std::sync::OnceLock::new();
    ZONE.get_or_init(|| {
        std::env::var_os("TZ")
            .is_none()
            .then(|| std::fs::read("/etc/localtime").ok())
            .flatten()
            .and_then(|bytes| jiff::tz::TimeZone::tzif("Local", &bytes).ok())
            .unwrap_or_else(jiff::tz::TimeZone::system)
    })
}

/// Logs an error with its code, as `ERROR: [055]: message`.
pub fn log_error_value(err: &Error) {
    let code = err.kind().exit_code();
    let mut text = format!("[{code:03}]: {}", err.message());
    if let Some(hint) = err.hint() {
        text.push_str("\nHINT: ");
        text.push_str(hint);
    }
    log(Level::Error, 0, &text);
}

#[macro_export]
macro_rules! log_error {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Error, 0, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! log_warn {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Warn, 0, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! log_info {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Info, 0, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! log_detail {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Detail, 0, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! log_debug {
    ($($arg:tt)*) => { $crate::log::log($crate::log::Level::Debug, 0, &format!($($arg)*)) };
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_parse_and_order() {
        assert_eq!(Level::parse("detail"), Some(Level::Detail));
        assert_eq!(Level::parse("verbose"), None);
        assert!(Level::Error < Level::Warn && Level::Debug < Level::Trace);
    }
}
