//! Commands: one file (or folder) per command, and the dispatch between them.
//!
//! This is the only layer that reads `Config` (through `open`), prints to stdout, or reads the
//! clock and environment; the layers below get explicit settings.

pub mod archive_async;
pub mod archive_get;
pub mod archive_push;
pub mod backup;
pub mod check;
pub mod expire;
pub mod help;
pub mod info;
pub mod open;
pub mod remote;
pub mod restore;
pub mod stanza_create;
pub mod stanza_delete;
pub mod stanza_upgrade;
pub mod start;
pub mod stop;
pub mod verify;
pub mod version;

use crate::config::{Command, Config};
use crate::error::Result;
use crate::log::Level;

/// Runs the command; returns the exit code for a run that did not fail (archive-get returns 1
/// when the archive does not have the file).
pub fn run(cfg: &Config) -> Result<i32> {
    let logged = !matches!(cfg.command(), Command::Help | Command::Version);
    if cfg.is_remote() {
        return remote::run(cfg);
    }
    // A command that only reports (info) logs its begin and end at debug level, as pgBackRest
    // does: its output is what was asked for, not a log of a change.
    let level = if cfg.command() == Command::Info {
        Level::Debug
    } else {
        Level::Info
    };
    if logged {
        let options = describe_options(cfg);
        let separator = if options.is_empty() { "" } else { ": " };
        crate::log::log(
            level,
            0,
            &format!(
                "{} command begin {}{separator}{options}",
                command_name(cfg),
                version::VERSION
            ),
        );
    }
    let result = open::check_hosts(cfg).and_then(|()| match cfg.command() {
        Command::ArchiveGet if cfg.is_background() => archive_async::get::run_background(cfg),
        Command::ArchivePush if cfg.is_background() => archive_async::push::run_background(cfg),
        Command::ArchiveGet => archive_get::run(cfg),
        Command::ArchivePush => archive_push::run(cfg),
        Command::Backup => backup::run(cfg),
        Command::Check => check::run(cfg),
        Command::Expire => expire::run(cfg),
        Command::Help => help::run(cfg),
        Command::Info => info::run(cfg),
        Command::Restore => restore::run(cfg),
        Command::StanzaCreate => stanza_create::run(cfg),
        Command::StanzaDelete => stanza_delete::run(cfg),
        Command::StanzaUpgrade => stanza_upgrade::run(cfg),
        Command::Start => start::run(cfg),
        Command::Stop => stop::run(cfg),
        Command::Verify => verify::run(cfg),
        Command::Version => version::run(),
    });
    if logged && result.is_ok() {
        crate::log::log(
            level,
            0,
            &format!("{} command end: completed successfully", command_name(cfg)),
        );
    }
    result
}

/// The command as the log names it: `archive-push:async` for the archive-async process.
fn command_name(cfg: &Config) -> String {
    if cfg.is_background() {
        format!("{}:async", cfg.command().name())
    } else {
        cfg.command().name().to_string()
    }
}

fn describe_options(cfg: &Config) -> String {
    cfg.command_line_options()
        .iter()
        .map(|(name, value)| {
            if value.is_empty() {
                format!("--{name}")
            } else {
                format!("--{name}={value}")
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A byte count as people read it: `512B`, `8KB`, `22.1MB`, `1.5GB`.
pub fn format_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["KB", "MB", "GB", "TB"];
    if bytes < 1024 {
        return format!("{bytes}B");
    }
    let mut value = bytes as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if value < 10.0 && value.fract() > 0.05 {
        format!("{value:.1}{}", UNITS[unit])
    } else {
        format!("{value:.0}{}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::format_size;

    #[test]
    fn sizes_read_like_pgbackrest() {
        assert_eq!(format_size(0), "0B");
        assert_eq!(format_size(1023), "1023B");
        assert_eq!(format_size(8192), "8KB");
        assert_eq!(format_size(1536), "1.5KB");
        assert_eq!(format_size(23 * 1024 * 1024), "23MB");
        assert_eq!(format_size(3 * 1024 * 1024 * 1024 / 2), "1.5GB");
    }
}
