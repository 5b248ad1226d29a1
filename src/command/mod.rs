//! Commands: one file (or folder) per command, and the dispatch between them.
//!
//! This is the only layer that reads `Config` (through `open`), prints to stdout, or reads the
//! clock and environment; the layers below get explicit settings.

pub mod archive;
pub mod backup;
pub mod check;
pub mod cluster;
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

use std::sync::Mutex;
use std::time::Instant;

use crate::config::{Command, Config};
use crate::error::{Error, Result};
use crate::log::Level;

/// The command whose begin line was logged last and when it began: the end line names it
/// and its duration. A backup hands over to the expire it runs ([`chain`]), as pgBackRest does.
static CURRENT: Mutex<Option<(Command, Instant)>> = Mutex::new(None);

/// Runs the command and logs its begin and end lines, and its error; returns the exit code
/// (archive-get's 1 when the archive does not have the file, an error's code).
pub fn main(cfg: &Config) -> i32 {
    match run(cfg) {
        Ok(code) => {
            end(cfg, "completed successfully");
            code
        }
        Err(err) => {
            let code = err.kind().exit_code();
            crate::log::log_error_value(&render_hint(cfg, &err));
            end(cfg, &format!("aborted with exception [{code:03}]"));
            code
        }
    }
}

/// Runs the command, after logging its begin line; the caller logs the end line ([`main`]).
pub fn run(cfg: &Config) -> Result<i32> {
    if cfg.is_remote() {
        return remote::run(cfg);
    }
    begin(cfg, cfg.command());
    open::check_hosts(cfg)?;
    match cfg.command() {
        Command::ArchiveGet if cfg.is_background() => archive::get_async::run_background(cfg),
        Command::ArchivePush if cfg.is_background() => archive::push_async::run_background(cfg),
        Command::ArchiveGet => archive::get::run(cfg),
        Command::ArchivePush => archive::push::run(cfg),
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
    }
}

/// Ends the current command as completed and runs `next` as its own command, with its own
/// begin line: how a backup runs its expire (`backup command end` ... `expire command begin`
/// ... `expire command end`), as pgBackRest logs it. The begin line lists the options valid
/// for `next` only.
pub fn chain<T>(cfg: &Config, next: Command, run: impl FnOnce() -> Result<T>) -> Result<T> {
    end(cfg, "completed successfully");
    begin(cfg, next);
    run()
}

/// Whether a command logs begin and end lines, and at which level: help and version do not
/// (they print what was asked), and a command that only reports (info) logs them at debug, as
/// pgBackRest does, so that its output is all stdout carries.
fn log_level(command: Command) -> Option<Level> {
    match command {
        Command::Help | Command::Version => None,
        Command::Info => Some(Level::Debug),
        _ => Some(Level::Info),
    }
}

/// Logs `<command> command begin <version>: [params] <options>` and makes `command` current.
fn begin(cfg: &Config, command: Command) {
    if let Ok(mut current) = CURRENT.lock() {
        *current = Some((command, Instant::now()));
    }
    let Some(level) = log_level(command) else {
        return;
    };
    if !crate::log::enabled(level) {
        return;
    }
    let mut line = format!(
        "{} command begin {}:",
        command_name(cfg, command),
        crate::VERSION
    );
    if !cfg.params().is_empty() {
        let params: Vec<String> = cfg.params().iter().map(|p| quote(p)).collect();
        line.push_str(&format!(" [{}]", params.join(", ")));
    }
    let mut options = cfg.logged_options(command);
    options.push(format!("--exec-id={}", exec_id()));
    // The exec id sorts among the options as pgBackRest lists it.
    options.sort_by_key(|option| option_name(option));
    for option in options {
        line.push(' ');
        line.push_str(&option);
    }
    crate::log::log(level, 0, &line);
}

/// Logs `<command> command end: <outcome>`, with the duration when log lines carry times.
fn end(cfg: &Config, outcome: &str) {
    let current = CURRENT.lock().ok().and_then(|mut c| c.take());
    let Some((command, began)) = current else {
        return;
    };
    let Some(level) = log_level(command) else {
        return;
    };
    let mut line = format!("{} command end: {outcome}", command_name(cfg, command));
    if outcome == "completed successfully" && cfg.bool(crate::config::Opt::LogTimestamp) {
        line.push_str(&format!(" ({}ms)", began.elapsed().as_millis()));
    }
    crate::log::log(level, 0, &line);
}

/// The name an option of the begin line sorts by: `repo1-path` of `--repo1-path=/x` sorts as
/// `repo-path`, index 1, as pgBackRest orders its options by their unindexed names.
fn option_name(option: &str) -> (String, u32) {
    let name = option.trim_start_matches("--");
    let name = name.split('=').next().unwrap_or(name);
    let name = name
        .strip_prefix("no-")
        .or_else(|| name.strip_prefix("reset-"))
        .unwrap_or(name);
    for prefix in ["pg", "repo"] {
        if let Some(rest) = name.strip_prefix(prefix) {
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            if let Ok(index) = digits.parse::<u32>() {
                return (format!("{prefix}{}", &rest[digits.len()..]), index);
            }
        }
    }
    (name.to_string(), 0)
}

/// A parameter as the begin line shows it: in double quotes when it has a space.
fn quote(text: &str) -> String {
    if text.contains(' ') {
        format!("\"{text}\"")
    } else {
        text.to_string()
    }
}

/// This process's exec id, as pgBackRest forms it: `<pid>-<8 random hex digits>`. It tells
/// apart the lines of concurrent runs in a shared log file.
fn exec_id() -> &'static str {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        use std::hash::{BuildHasher, Hasher};
        // RandomState is seeded from the operating system's random source.
        let random = std::collections::hash_map::RandomState::new()
            .build_hasher()
            .finish();
        format!("{}-{:08x}", std::process::id(), random as u32)
    })
}

/// The command as the log names it: `archive-push:async` for the archive-async process.
fn command_name(cfg: &Config, command: Command) -> String {
    if cfg.is_background() {
        format!("{}:async", command.name())
    } else {
        command.name().to_string()
    }
}

/// The error with each pgkeep command its hint names completed with the options this
/// invocation was given to find its configuration, stanza and repository (see
/// [`crate::error::command_hint`]), so that the hint runs as written.
pub fn render_hint(cfg: &Config, err: &Error) -> Error {
    err.render_hint(&|line: &str| invocation(cfg, line))
}

/// `pgkeep <repeated options> <line>`: the options of [`Config::hint_options`] for the command
/// `line` names, less those `line` gives itself.
fn invocation(cfg: &Config, line: &str) -> String {
    let words: Vec<&str> = line.split(' ').collect();
    let command = words
        .iter()
        .find(|word| !word.starts_with('-'))
        .and_then(|word| Command::parse(word));
    let Some(command) = command else {
        return crate::error::plain_command(line);
    };
    let given: Vec<&str> = words
        .iter()
        .filter(|word| word.starts_with("--"))
        .map(|word| word.split('=').next().unwrap_or(word))
        .collect();
    let mut out = vec!["pgkeep".to_string()];
    out.extend(
        cfg.hint_options(command)
            .into_iter()
            .filter(|option| !given.contains(&option.split('=').next().unwrap_or(option))),
    );
    out.push(line.to_string());
    out.join(" ")
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
    use super::{format_size, option_name};

    #[test]
    fn begin_line_options_sort_by_unindexed_name_then_index() {
        let mut options = vec![
            "--stanza=demo",
            "--repo1-path=/r",
            "--pg2-path=/b",
            "--pg1-port=5432",
            "--exec-id=1-abcdef01",
            "--pg1-path=/a",
            "--no-online",
        ];
        options.sort_by_key(|option| option_name(option));
        assert_eq!(
            options,
            [
                "--exec-id=1-abcdef01",
                "--no-online",
                "--pg1-path=/a",
                "--pg2-path=/b",
                "--pg1-port=5432",
                "--repo1-path=/r",
                "--stanza=demo",
            ]
        );
    }

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
