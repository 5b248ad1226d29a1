//! Configuration: from argv, `PGKEEP_*` variables and configuration files to a typed [`Config`].
//!
//! Every option is declared once, in the table of options.rs (its shape in def.rs; commands
//! in command.rs). parse.rs splits the command line and reads the environment, files.rs
//! reads the configuration files (ini.rs is their grammar), resolve.rs picks and checks the
//! winning value of each option (value.rs converts text), and help.rs renders help and
//! docs/options.md from the same table. [`parse`] runs them in that order. Nothing here logs
//! or prints: warnings are collected for `main` to log once logging is set up.

pub mod command;
pub mod def;
mod files;
pub mod help;
mod ini;
pub mod options;
mod parse;
mod resolve;
pub mod stanza;
pub mod value;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use command::Command;
pub use options::Opt;
pub use resolve::Source;

use crate::error::{Error, ErrorKind, Result};
use crate::log::{Level, LogSettings};
use parse::{Key, Setting};
use resolve::{Resolved, Sources};
use value::Value;

/// The resolved configuration of one pgkeep invocation.
#[derive(Debug, Clone)]
pub struct Config {
    command: Command,
    /// Run as `<command>:remote`, serving another pgkeep over ssh.
    remote: bool,
    /// Run as `<command>:async`, the background process of archive-async.
    background: bool,
    params: Vec<String>,
    help_topic: Option<String>,
    values: BTreeMap<Key, Resolved>,
    /// What the command line said, in order, to hand it on to another pgkeep.
    cli: Vec<(Key, Setting)>,
    config_file: Option<PathBuf>,
    warnings: Vec<String>,
}

/// The command line that `--help`, `-h` or `--version` mean, as most programs take them:
/// `pgkeep backup --help` is `pgkeep help backup`, `pgkeep --version` is `pgkeep version`.
/// pgBackRest refuses these flags; a DBA typing them wants the usage or the version.
fn conventional_flags(args: &[String]) -> Option<Vec<String>> {
    // After `--` everything is a parameter (a WAL path may be named anything).
    let options = || args.iter().take_while(|arg| *arg != "--");
    if options().any(|arg| arg == "--version") {
        return Some(vec!["version".to_string()]);
    }
    if !options().any(|arg| arg == "--help" || arg == "-h") {
        return None;
    }
    let command =
        options().find(|arg| Command::parse(arg).is_some_and(|command| command != Command::Help));
    Some(
        std::iter::once("help".to_string())
            .chain(command.cloned())
            .collect(),
    )
}

/// Parses the command line `args` (without the program name) and environment `env` (all of it
/// or just the `PGKEEP_*` pairs), reading the configuration files they point to.
pub fn parse(args: &[String], env: &[(String, String)]) -> Result<Config> {
    let conventional = conventional_flags(args);
    let raw = parse::args(conventional.as_deref().unwrap_or(args))?;
    let Some(command) = raw.command else {
        if !raw.options.is_empty() {
            return Err(Error::new(ErrorKind::CommandRequired, "no command found")
                .with_hint("use 'pgkeep help' to list the commands"));
        }
        return Ok(Config::help(Vec::new(), None));
    };
    if command == Command::Help {
        // Options given to help are known ones (parse::args checked) and otherwise ignored.
        help::topic(&raw.params)?;
        let topic = (!raw.params.is_empty()).then(|| raw.params.join(" "));
        return Ok(Config::help(raw.params, topic));
    }
    if !raw.params.is_empty() && !command.takes_params() {
        return Err(
            Error::new(ErrorKind::ParamInvalid, "command does not allow parameters")
                .with_hint(format!("'{command}' takes options only")),
        );
    }
    parse::check_valid(&raw, command)?;
    check_remote(&raw, command)?;

    let mut warnings = Vec::new();
    let empty = BTreeMap::new();
    // version reads neither environment nor files: it must work whatever state they are in.
    let env = match command {
        Command::Version => BTreeMap::new(),
        _ => parse::env(env, command, &mut warnings)?,
    };
    let pre = Sources {
        args: &raw,
        env: &env,
        file: &empty,
    };
    let (location, stanza) = resolve::locate(command, &pre)?;
    let loaded = match command {
        Command::Version => files::Loaded::default(),
        _ => files::load(&location, command, stanza.as_deref(), &mut warnings)?,
    };
    let sources = Sources {
        args: &raw,
        env: &env,
        file: &loaded.values,
    };
    let values = resolve::resolve(command, &sources)?;

    let mut seen = std::collections::BTreeSet::new();
    warnings.retain(|warning| seen.insert(warning.clone()));
    let cli = raw
        .order
        .iter()
        .filter_map(|key| raw.options.get(key).map(|setting| (*key, setting.clone())))
        .collect();
    Ok(Config {
        command,
        remote: raw.remote,
        background: raw.background,
        params: raw.params,
        help_topic: None,
        values,
        cli,
        config_file: loaded.main_file,
        warnings,
    })
}

/// `<command>:remote` exists for the commands that reach other hosts, and `remote-type` only
/// with it.
fn check_remote(raw: &parse::Args, command: Command) -> Result<()> {
    let remote_type = Opt::RemoteType.def();
    if raw.remote && !remote_type.valid_for(command) {
        return Err(Error::new(
            ErrorKind::CommandInvalid,
            format!("invalid command '{command}:remote'"),
        ));
    }
    if !raw.remote && raw.options.contains_key(&(Opt::RemoteType, 1)) {
        return Err(Error::new(
            ErrorKind::OptionInvalid,
            format!("option 'remote-type' is only valid for '{command}:remote'"),
        ));
    }
    if raw.background && !matches!(command, Command::ArchiveGet | Command::ArchivePush) {
        return Err(Error::new(
            ErrorKind::CommandInvalid,
            format!("invalid command '{command}:async'"),
        ));
    }
    if raw.background && raw.remote {
        return Err(Error::new(
            ErrorKind::CommandInvalid,
            format!("invalid command '{command}:async:remote'"),
        ));
    }
    Ok(())
}

impl Config {
    fn help(params: Vec<String>, help_topic: Option<String>) -> Config {
        Config {
            command: Command::Help,
            remote: false,
            background: false,
            params,
            help_topic,
            values: BTreeMap::new(),
            cli: Vec::new(),
            config_file: None,
            warnings: Vec::new(),
        }
    }

    pub fn command(&self) -> Command {
        self.command
    }

    /// True for `<command>:remote`: this process serves another pgkeep over ssh.
    pub fn is_remote(&self) -> bool {
        self.remote
    }

    /// True for `<command>:async`: the background process of archive-async.
    pub fn is_background(&self) -> bool {
        self.background
    }

    /// Positional parameters after the command, in order.
    pub fn params(&self) -> &[String] {
        &self.params
    }

    /// For `help`: the command and option asked about, e.g. `backup start-fast`; `None` for
    /// general help. Pass it to [`help::render`].
    pub fn help_topic(&self) -> Option<&str> {
        self.help_topic.as_deref()
    }

    pub fn stanza(&self) -> Option<&str> {
        self.str(Opt::Stanza)
    }

    fn get(&self, opt: Opt, index: u32) -> Option<&Value> {
        self.values.get(&(opt, index))?.value.as_ref()
    }

    /// The text of a scalar option (index 1 of a grouped one): strings, paths, enums, and the
    /// numbers as given (`1MiB`). `None` when unset or not valid for the command.
    pub fn str(&self, opt: Opt) -> Option<&str> {
        self.str_at(opt, 1)
    }

    /// As [`Config::str`], at `index` of a grouped option (`pg2-path`).
    pub fn str_at(&self, opt: Opt, index: u32) -> Option<&str> {
        let resolved = self.values.get(&(opt, index))?;
        match resolved.value {
            Some(Value::List(_) | Value::Hash(_)) | None => None,
            Some(_) => resolved.text.as_deref(),
        }
    }

    /// A boolean option; false when unset.
    pub fn bool(&self, opt: Opt) -> bool {
        matches!(self.get(opt, 1), Some(Value::Bool(true)))
    }

    /// An integer option, or a size in bytes.
    pub fn int(&self, opt: Opt) -> Option<i64> {
        self.int_at(opt, 1)
    }

    pub fn int_at(&self, opt: Opt, index: u32) -> Option<i64> {
        match self.get(opt, index) {
            Some(Value::Int(n)) => Some(*n),
            _ => None,
        }
    }

    /// A time option, in milliseconds.
    pub fn time_ms(&self, opt: Opt) -> Option<u64> {
        match self.get(opt, 1) {
            Some(Value::TimeMs(ms)) => Some(*ms),
            _ => None,
        }
    }

    /// A list option's values, in the order given.
    pub fn list(&self, opt: Opt) -> &[String] {
        match self.get(opt, 1) {
            Some(Value::List(values)) => values,
            _ => &[],
        }
    }

    /// A hash option's pairs, in the order given.
    pub fn hash(&self, opt: Opt) -> &[(String, String)] {
        match self.get(opt, 1) {
            Some(Value::Hash(pairs)) => pairs,
            _ => &[],
        }
    }

    /// The indexes a grouped option was resolved at (always including 1 when valid).
    pub fn indexes(&self, opt: Opt) -> Vec<u32> {
        let range = (opt, 0)..=(opt, u32::MAX);
        self.values
            .range(range)
            .map(|((_, index), _)| *index)
            .collect()
    }

    /// Where the option's value came from (`Default` when unset).
    pub fn source(&self, opt: Opt) -> Source {
        self.values
            .get(&(opt, 1))
            .map_or(Source::Default, |resolved| resolved.source)
    }

    /// The main configuration file, when one was read.
    pub fn config_file(&self) -> Option<&Path> {
        self.config_file.as_deref()
    }

    /// Warnings about the configuration, for `main` to log once logging is up.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Log destinations and levels; the file is `<log-path>/<stanza or all>-<command>.log`.
    pub fn log_settings(&self) -> LogSettings {
        if !Opt::LogPath.def().valid_for(self.command) {
            return LogSettings::default();
        }
        let level = |opt: Opt, fallback| self.str(opt).and_then(Level::parse).unwrap_or(fallback);
        let file = level(Opt::LogLevelFile, Level::Off);
        let file_path = match (self.str(Opt::LogPath), file) {
            (Some(dir), level) if level > Level::Off => {
                let remote = if self.remote {
                    "-remote"
                } else if self.background {
                    "-async"
                } else {
                    ""
                };
                let name = format!(
                    "{}-{}{remote}.log",
                    self.stanza().unwrap_or("all"),
                    self.command
                );
                Some(Path::new(dir).join(name))
            }
            _ => None,
        };
        let mut console = level(Opt::LogLevelConsole, Level::Warn);
        let mut stderr = level(Opt::LogLevelStderr, Level::Warn);
        // stdout of `--output=json` carries the JSON and nothing else, whatever the log
        // levels: what would go to the console goes to stderr instead, so scripts that parse
        // stdout keep working with `log-level-console=info` in the configuration file.
        if self.str(Opt::Output) == Some("json") {
            stderr = stderr.max(console);
            console = Level::Off;
        }
        LogSettings {
            console,
            stderr,
            file,
            file_path,
            timestamp: self.bool(Opt::LogTimestamp),
        }
    }

    /// The texts of a command-line option's value: one per list or hash element, booleans
    /// as `y`/`n`, paths normalised. Empty for `--no-config` and `--reset-*`.
    fn given_texts(&self, key: &Key) -> Vec<String> {
        let Some(resolved) = self.values.get(key) else {
            return Vec::new();
        };
        if resolved.source != Source::CommandLine {
            return Vec::new();
        }
        match (&resolved.value, &resolved.text) {
            (Some(Value::List(values)), _) => values.clone(),
            (Some(Value::Hash(pairs)), _) => {
                pairs.iter().map(|(k, v)| format!("{k}={v}")).collect()
            }
            (Some(_), Some(text)) => vec![text.clone()],
            _ => Vec::new(),
        }
    }

    /// The options of this invocation that are valid for `command` and not at their default,
    /// from every source (command line, environment, configuration file), as the command
    /// begin line shows them: sorted by option name and then index, as pgBackRest sorts them;
    /// `--name` for a true boolean and `--no-name` for a false or negated one, `--reset-name`,
    /// one `--name=value` per list or hash element, values with a space in double quotes, and
    /// secrets as `<redacted>`.
    pub fn logged_options(&self, command: Command) -> Vec<String> {
        let mut keys: Vec<&Key> = self.values.keys().collect();
        keys.sort_by_key(|(opt, index)| (opt.def().name, *index));
        let reset: Vec<&Key> = self
            .cli
            .iter()
            .filter(|(_, setting)| matches!(setting, Setting::Reset))
            .map(|(key, _)| key)
            .collect();
        let quote = |text: &str| {
            if text.contains(' ') {
                format!("\"{text}\"")
            } else {
                text.to_string()
            }
        };
        let mut out = Vec::new();
        for key in keys {
            let def = key.0.def();
            let Some(resolved) = self.values.get(key) else {
                continue;
            };
            if !def.valid_for(command) {
                continue;
            }
            let name = def.key(key.1);
            if reset.contains(&key) {
                out.push(format!("--reset-{name}"));
                continue;
            }
            if resolved.source == Source::Default {
                continue;
            }
            match (&resolved.value, &resolved.text) {
                (None, _) => out.push(format!("--no-{name}")),
                (Some(_), _) if def.is_secure() => out.push(format!("--{name}=<redacted>")),
                (Some(Value::Bool(true)), _) => out.push(format!("--{name}")),
                (Some(Value::Bool(false)), _) => out.push(format!("--no-{name}")),
                (Some(Value::List(values)), _) => out.extend(
                    values
                        .iter()
                        .map(|value| format!("--{name}={}", quote(value))),
                ),
                (Some(Value::Hash(pairs)), _) => out.extend(
                    pairs
                        .iter()
                        .map(|(k, v)| format!("--{name}={}", quote(&format!("{k}={v}")))),
                ),
                (Some(_), Some(text)) => out.push(format!("--{name}={}", quote(text))),
                (Some(_), None) => {}
            }
        }
        out
    }

    /// The options to repeat in a pgkeep command that a hint names (`command`), so that it
    /// runs as written: the configuration file options when not at their default (from the
    /// command line or the environment: an `archive_command` does not see this shell's
    /// variables), and the options that locate the cluster, the repository and the lock and
    /// spool directories when given on the command line (those from the configuration file
    /// come back with `--config`). Only options `command` accepts; the stanza is the hint's to
    /// name. In the order of the begin line.
    pub fn hint_options(&self, command: Command) -> Vec<String> {
        const FILES: [Opt; 3] = [Opt::Config, Opt::ConfigIncludePath, Opt::ConfigPath];
        const LOCATIONS: [Opt; 18] = [
            Opt::LockPath,
            Opt::PgDatabase,
            Opt::PgHost,
            Opt::PgHostCmd,
            Opt::PgHostConfig,
            Opt::PgHostPort,
            Opt::PgHostUser,
            Opt::PgPath,
            Opt::PgPort,
            Opt::PgSocketPath,
            Opt::PgUser,
            Opt::RepoHost,
            Opt::RepoHostCmd,
            Opt::RepoHostConfig,
            Opt::RepoHostPort,
            Opt::RepoHostUser,
            Opt::RepoPath,
            Opt::SpoolPath,
        ];
        let mut keys: Vec<&Key> = self
            .values
            .iter()
            .filter(|((opt, _), resolved)| {
                let wanted = match resolved.source {
                    Source::CommandLine => FILES.contains(opt) || LOCATIONS.contains(opt),
                    Source::Env => FILES.contains(opt),
                    _ => false,
                };
                wanted && opt.def().valid_for(command)
            })
            .map(|(key, _)| key)
            .collect();
        keys.sort_by_key(|(opt, index)| (opt.def().name, *index));
        keys.into_iter()
            .filter_map(|key| {
                let name = key.0.def().key(key.1);
                let resolved = self.values.get(key)?;
                Some(match &resolved.text {
                    None => format!("--no-{name}"),
                    Some(text) if text.contains(' ') => format!("--{name}=\"{text}\""),
                    Some(text) => format!("--{name}={text}"),
                })
            })
            .collect()
    }

    /// Where the option's value came from, at `index` of a grouped option.
    pub fn source_at(&self, opt: Opt, index: u32) -> Source {
        self.values
            .get(&(opt, index))
            .map_or(Source::Default, |resolved| resolved.source)
    }

    /// The options given on the command line with a value, by current name, in the order
    /// given: one pair per list or hash element (`recovery-option`, `a=b`), booleans as
    /// `y`/`n`. `--no-config` and `--reset-*` have no value and are left out; see
    /// [`Config::command_line_args`] to hand everything on.
    pub fn command_line_options(&self) -> Vec<(String, String)> {
        let mut out = Vec::new();
        for (key, _) in &self.cli {
            let name = key.0.def().key(key.1);
            out.extend(
                self.given_texts(key)
                    .into_iter()
                    .map(|text| (name.clone(), text)),
            );
        }
        out
    }

    /// The command-line options to pass to another pgkeep running `command` (archive-get in
    /// restore_command): `--name=value`, `--no-name` and `--reset-name` for each option given
    /// on this command line that `command` accepts, in the order given.
    pub fn command_line_args(&self, command: Command) -> Vec<String> {
        let mut out = Vec::new();
        for (key, setting) in &self.cli {
            let option = key.0.def();
            if !option.valid_for(command) {
                continue;
            }
            let name = option.key(key.1);
            match setting {
                Setting::Negate if option.kind != def::Kind::Boolean => {
                    out.push(format!("--no-{name}"));
                }
                Setting::Reset => out.push(format!("--reset-{name}")),
                _ => {
                    let texts = self.given_texts(key);
                    out.extend(texts.iter().map(|text| format!("--{name}={text}")));
                }
            }
        }
        out
    }
}
