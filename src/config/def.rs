//! The shape of the option table and the questions asked of it.
//!
//! An [`OptionDef`] declares one option completely: name, index group, historic aliases, type
//! and range, default, where it may be set, the commands it is valid for and its help text. The
//! table itself is in options.rs and holds data only; this file holds the types and the lookups
//! (a name as typed to an option and index, validity and defaults per command) that the
//! parser, the resolver and the help share. Nothing here reads argv, the environment or files.

use crate::config::command::Command;
use crate::config::options::{OPTIONS, Opt};
use crate::error::{Error, ErrorKind, Result};

/// Options that exist once per PostgreSQL host or once per repository. They are spelled with an
/// index: `pg1-path` .. `pg8-path`, `repo1-path` .. `repo256-path`, the names pgBackRest
/// accepts. pgkeep implements index 1 only so far ([`Group::supported_max`]): the other names
/// are recognised so that they are refused as not supported yet, not taken for typos, and never
/// accepted and then ignored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Group {
    Pg,
    Repo,
}

impl Group {
    /// The leading word of every option name in the group.
    pub fn prefix(self) -> &'static str {
        match self {
            Group::Pg => "pg",
            Group::Repo => "repo",
        }
    }

    /// The highest index an option of the group may be spelled with (pgBackRest's).
    pub fn max_index(self) -> u32 {
        match self {
            Group::Pg => 8,
            Group::Repo => 256,
        }
    }

    /// The highest index pgkeep acts on: one PostgreSQL host, one repository.
    pub fn supported_max(self) -> u32 {
        1
    }

    /// Why an index past [`Group::supported_max`] is refused, for the message.
    fn unsupported_reason(self) -> &'static str {
        match self {
            Group::Pg => "pgkeep works with one PostgreSQL host (pg1)",
            Group::Repo => "pgkeep has one repository (repo1)",
        }
    }
}

/// Refuses an option spelled with an index pgkeep does not act on yet (`repo2-path`,
/// `pg2-host`): accepted, it would be ignored, and a DBA would believe a second repository or
/// host is in use. `origin` says where it was given (empty for the command line).
pub fn check_supported(opt: Opt, index: u32, origin: &str) -> Result<()> {
    let def = opt.def();
    match def.group {
        Some(group) if index > group.supported_max() => Err(Error::new(
            ErrorKind::OptionInvalid,
            format!(
                "option '{}'{origin} is not supported yet: {}",
                def.key(index),
                group.unsupported_reason()
            ),
        )),
        _ => Ok(()),
    }
}

/// The type of an option's value, with its allowed range where it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `y`/`n` in files and the environment, `--x`/`--no-x` on the command line.
    Boolean,
    Integer {
        min: i64,
        max: i64,
    },
    /// A size in bytes, written `1048576`, `1MiB`, `1MB`, `16KiB`, `4K`, ... (all units are
    /// powers of 1024, as in pgBackRest).
    Size {
        min: i64,
        max: i64,
    },
    /// A duration written in seconds (decimals allowed), kept in milliseconds.
    Time {
        min_ms: u64,
        max_ms: u64,
    },
    String,
    /// An absolute path; a trailing `/` is removed.
    Path,
    /// One of a fixed set of words. A command rule may narrow the set.
    Enum(&'static [&'static str]),
    /// Repeatable; every value is kept, in order.
    List,
    /// Repeatable `key=value` pairs, kept in order.
    Hash,
}

impl Kind {
    /// The type as named in help and docs.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Boolean => "boolean",
            Kind::Integer { .. } => "integer",
            Kind::Size { .. } => "size",
            Kind::Time { .. } => "time",
            Kind::String => "string",
            Kind::Path => "path",
            Kind::Enum(_) => "enum",
            Kind::List => "list",
            Kind::Hash => "hash",
        }
    }
}

/// Where an option may be set.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only on the command line or in the environment, never in a configuration file.
    CommandLine,
    /// Anywhere: `[global]`, `[global:<command>]` and stanza sections too.
    Global,
    /// On the command line, in the environment or in a stanza section; it describes one
    /// stanza's cluster, so a global section may not set it.
    Stanza,
}

impl Scope {
    pub fn name(self) -> &'static str {
        match self {
            Scope::CommandLine => "command line",
            Scope::Global => "global",
            Scope::Stanza => "stanza",
        }
    }
}

/// How an option behaves for one command that accepts it.
#[derive(Debug, Clone, Copy)]
pub struct CommandRule {
    pub command: Command,
    pub required: bool,
    /// Replaces the option's default for this command.
    pub default: Option<&'static str>,
    /// Replaces the option's allowed values for this command.
    pub allowed: Option<&'static [&'static str]>,
}

/// The option is valid for `command`, with the option's own default and allowed values.
pub const fn on(command: Command) -> CommandRule {
    CommandRule {
        command,
        required: false,
        default: None,
        allowed: None,
    }
}

/// The option is valid for `command` and must have a value.
pub const fn required(command: Command) -> CommandRule {
    CommandRule {
        required: true,
        ..on(command)
    }
}

impl CommandRule {
    pub const fn default(self, value: &'static str) -> CommandRule {
        CommandRule {
            default: Some(value),
            ..self
        }
    }

    pub const fn allow(self, values: &'static [&'static str]) -> CommandRule {
        CommandRule {
            allowed: Some(values),
            ..self
        }
    }
}

/// The options whose values are secrets, by pgBackRest's names (those marked `secure` in its
/// build/config.yaml): the command begin line shows them as `<redacted>`. None is implemented
/// in pgkeep yet; an option added under one of these names is redacted from the start.
pub const SECURE: &[&str] = &[
    "repo-azure-account",
    "repo-azure-key",
    "repo-cipher-pass",
    "repo-gcs-key",
    "repo-s3-key",
    "repo-s3-key-secret",
    "repo-s3-sse-customer-key",
    "repo-s3-token",
    "repo-sftp-private-key-passphrase",
];

/// One option, declared once. Everything else (parsing, validation, help, docs/options.md,
/// the `PGKEEP_*` names) derives from these fields.
#[derive(Debug)]
pub struct OptionDef {
    pub id: Opt,
    /// The current name; for a grouped option the unindexed form, e.g. `pg-path`.
    pub name: &'static str,
    pub group: Option<Group>,
    /// Historic names still accepted. For a grouped option a plain alias means index 1 and a
    /// `?` stands for any index, e.g. `db?-path`.
    pub aliases: &'static [&'static str],
    pub kind: Kind,
    pub default: Option<&'static str>,
    pub scope: Scope,
    /// Accepts `--no-<name>` although not a boolean (`--no-config`: read no file).
    pub negatable: bool,
    pub commands: &'static [CommandRule],
    /// One line, for command help.
    pub summary: &'static str,
    /// A paragraph, for option help and the docs.
    pub help: &'static str,
}

impl OptionDef {
    /// A base for table rows: `OptionDef { id, name, ..., ..OptionDef::BASE }`.
    pub const BASE: OptionDef = OptionDef {
        id: Opt::Config,
        name: "",
        group: None,
        aliases: &[],
        kind: Kind::String,
        default: None,
        scope: Scope::Global,
        negatable: false,
        commands: &[],
        summary: "",
        help: "",
    };

    pub fn rule(&self, command: Command) -> Option<&'static CommandRule> {
        self.commands.iter().find(|rule| rule.command == command)
    }

    pub fn valid_for(&self, command: Command) -> bool {
        self.rule(command).is_some()
    }

    pub fn required_for(&self, command: Command) -> bool {
        self.rule(command).is_some_and(|rule| rule.required)
    }

    /// The default for `command`: the command rule's, else the option's.
    pub fn default_for(&self, command: Command) -> Option<&'static str> {
        self.rule(command)
            .and_then(|rule| rule.default)
            .or(self.default)
    }

    /// The allowed words for `command` when the option is an enum.
    pub fn allowed_for(&self, command: Command) -> Option<&'static [&'static str]> {
        match (self.rule(command).and_then(|rule| rule.allowed), self.kind) {
            (Some(values), _) => Some(values),
            (None, Kind::Enum(values)) => Some(values),
            _ => None,
        }
    }

    /// True for an option whose value is a secret: logs show `<redacted>` in its place.
    pub fn is_secure(&self) -> bool {
        SECURE.contains(&self.name)
    }

    pub fn is_multi(&self) -> bool {
        matches!(self.kind, Kind::List | Kind::Hash)
    }

    pub fn can_negate(&self) -> bool {
        self.kind == Kind::Boolean || self.negatable
    }

    /// The name of the option at `index` (ignored when ungrouped): `pg2-path`, `stanza`.
    pub fn key(&self, index: u32) -> String {
        match self.group {
            Some(group) => {
                let prefix = group.prefix();
                let rest = self.name.strip_prefix(prefix).unwrap_or(self.name);
                format!("{prefix}{index}{rest}")
            }
            None => self.name.to_string(),
        }
    }

    /// The environment variable for the option at `index`: `PGKEEP_PG1_PATH`.
    pub fn env_name(&self, index: u32) -> String {
        env_name(&self.key(index))
    }

    /// Does `name` spell this option? Gives the index it names.
    fn matches(&self, name: &str) -> Option<u32> {
        match self.group {
            Some(group) => {
                let rest = self.name.strip_prefix(group.prefix())?;
                let index = indexed(name, group.prefix(), rest, group.max_index());
                index.or_else(|| self.alias_index(name, group.max_index()))
            }
            None if name == self.name || self.aliases.contains(&name) => Some(1),
            None => None,
        }
    }

    fn alias_index(&self, name: &str, max: u32) -> Option<u32> {
        self.aliases
            .iter()
            .find_map(|alias| match alias.split_once('?') {
                Some((prefix, rest)) => indexed(name, prefix, rest, max),
                None => (*alias == name).then_some(1),
            })
    }
}

/// `name` is `<prefix><index><rest>` with an index in 1..=max: the index.
fn indexed(name: &str, prefix: &str, rest: &str, max: u32) -> Option<u32> {
    let digits = name.strip_prefix(prefix)?.strip_suffix(rest)?;
    // A leading zero (`pg01-path`) is a different spelling, not the same option.
    if digits.is_empty() || digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let index: u32 = digits.parse().ok()?;
    (1..=max).contains(&index).then_some(index)
}

/// `PGKEEP_` and the name in upper case with `-` as `_`.
pub fn env_name(name: &str) -> String {
    format!("PGKEEP_{}", name.to_uppercase().replace('-', "_"))
}

impl Opt {
    /// The option's row in the table.
    pub fn def(self) -> &'static OptionDef {
        // The table is in `Opt` order: `table_is_in_opt_order` checks it.
        &OPTIONS[self as usize]
    }

    /// The current name (unindexed for grouped options).
    pub fn name(self) -> &'static str {
        self.def().name
    }
}

/// How a name typed by the user was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found {
    pub opt: Opt,
    pub index: u32,
    /// Spelled `no-<name>`.
    pub negate: bool,
    /// Spelled `reset-<name>`.
    pub reset: bool,
}

/// The option a name (without `--`) refers to, through current names, indexes, aliases and the
/// `no-`/`reset-` prefixes.
pub fn find(name: &str) -> Option<Found> {
    let plain = |name: &str| {
        OPTIONS
            .iter()
            .find_map(|def| def.matches(name).map(|index| (def.id, index)))
    };
    let found = |(opt, index), negate, reset| Found {
        opt,
        index,
        negate,
        reset,
    };
    if let Some(hit) = plain(name) {
        return Some(found(hit, false, false));
    }
    if let Some(hit) = name.strip_prefix("no-").and_then(plain) {
        return Some(found(hit, true, false));
    }
    name.strip_prefix("reset-")
        .and_then(plain)
        .map(|hit| found(hit, false, true))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::value::convert;

    #[test]
    fn table_is_in_opt_order_and_sorted_by_name() {
        for (position, def) in OPTIONS.iter().enumerate() {
            assert_eq!(def.id as usize, position, "{}", def.name);
            assert!(std::ptr::eq(def.id.def(), def));
        }
        let names: Vec<&str> = OPTIONS.iter().map(|def| def.name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
    }

    #[test]
    fn every_spelling_finds_its_own_option() {
        for def in OPTIONS {
            let max = def.group.map_or(1, Group::max_index);
            for index in 1..=max {
                let hit = find(&def.key(index)).map(|f| (f.opt, f.index));
                assert_eq!(hit, Some((def.id, index)), "{}", def.key(index));
                for alias in def.aliases {
                    let spelled = alias.replace('?', &index.to_string());
                    let expected = if alias.contains('?') { index } else { 1 };
                    let hit = find(&spelled).map(|f| (f.opt, f.index));
                    assert_eq!(hit, Some((def.id, expected)), "{spelled}");
                }
            }
            if let Some(group) = def.group {
                assert!(def.name.starts_with(&format!("{}-", group.prefix())));
            }
        }
    }

    #[test]
    fn prefixes_and_bad_indexes_are_understood() {
        let found = |name| find(name).map(|f| (f.opt, f.index, f.negate, f.reset));
        assert_eq!(
            found("no-start-fast"),
            Some((Opt::StartFast, 1, true, false))
        );
        assert_eq!(found("reset-db2-path"), Some((Opt::PgPath, 2, false, true)));
        assert_eq!(found("repo-path"), Some((Opt::RepoPath, 1, false, false)));
        for bad in [
            "pg01-path",
            "pg9-path",
            "pg0-path",
            "repo257-path",
            "pg-path",
            "no-",
        ] {
            assert_eq!(found(bad), None, "{bad}");
        }
    }

    #[test]
    fn every_default_is_a_valid_value_for_its_commands() {
        for def in OPTIONS {
            for rule in def.commands {
                if let Some(default) = def.default_for(rule.command) {
                    let converted = convert(def, rule.command, def.name, &[default.into()], "");
                    assert!(converted.is_ok(), "{} for {}", def.name, rule.command);
                }
                assert!(
                    !(rule.required && def.default_for(rule.command).is_some()),
                    "{} is required and has a default",
                    def.name
                );
            }
            assert!(!def.commands.is_empty(), "{} is valid nowhere", def.name);
        }
    }

    #[test]
    fn every_option_is_documented() {
        for def in OPTIONS {
            assert!(def.summary.ends_with('.'), "{}", def.name);
            assert!(
                def.help.ends_with('.') || def.help.ends_with(')'),
                "{}",
                def.name
            );
        }
        assert_eq!(Opt::RepoPath.def().env_name(2), "PGKEEP_REPO2_PATH");
        assert_eq!(env_name("start-fast"), "PGKEEP_START_FAST");
    }
}
