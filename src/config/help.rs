//! `pgkeep help` and docs/options.md, both rendered from the command and option tables.
//!
//! Help text is wrapped to 80 columns; the markdown is the reference for every command and
//! option (names, aliases, type, default, allowed values, environment variable). A test keeps
//! docs/options.md equal to [`options_markdown`]; after changing a table, regenerate the file
//! with `PGKEEP_BLESS=1 cargo test config::help`.

use std::fmt::Write;

use crate::config::command::{COMMANDS, Command};
use crate::config::def::{self, Kind, OptionDef};
use crate::config::options::OPTIONS;
use crate::config::value::{show_size, show_time};
use crate::error::{Error, ErrorKind, Result};

use crate::VERSION;
const WIDTH: usize = 80;

/// What help was asked for.
#[derive(Debug, Clone, Copy)]
pub enum Topic {
    General,
    Command(Command),
    Option(Command, &'static OptionDef),
}

/// Understands the parameters of `pgkeep help [<command> [<option>]]`.
pub fn topic(params: &[String]) -> Result<Topic> {
    let Some(name) = params.first() else {
        return Ok(Topic::General);
    };
    let command = Command::parse(name).ok_or_else(|| {
        Error::new(
            ErrorKind::CommandInvalid,
            format!("invalid command '{name}'"),
        )
        .with_hint("use 'pgkeep help' to list the commands")
    })?;
    let Some(option) = params.get(1) else {
        return Ok(Topic::Command(command));
    };
    if params.len() > 2 {
        return Err(Error::new(
            ErrorKind::ParamInvalid,
            "help takes at most a command and an option",
        ));
    }
    // The unindexed name (pg-path) is accepted here: it is the name help shows in headings.
    let def = OPTIONS
        .iter()
        .find(|def| def.name == option)
        .or_else(|| def::find(option).map(|found| found.opt.def()))
        .ok_or_else(|| {
            Error::new(
                ErrorKind::OptionInvalid,
                format!("invalid option '{option}'"),
            )
        })?;
    if !def.valid_for(command) {
        return Err(Error::new(
            ErrorKind::OptionInvalid,
            format!("option '{option}' not valid for command '{command}'"),
        ));
    }
    Ok(Topic::Option(command, def))
}

/// The help text for `topic`: `None` (general help), `"backup"` or `"backup start-fast"`.
pub fn render(topic_text: Option<&str>) -> Result<String> {
    let params: Vec<String> = topic_text
        .unwrap_or("")
        .split_whitespace()
        .map(str::to_string)
        .collect();
    let mut out = String::new();
    match topic(&params)? {
        Topic::General => {
            let _ = writeln!(out, "pgkeep {VERSION} - General help\n");
            out.push_str("Usage:\n    pgkeep [options] [command]\n\nCommands:\n");
            for def in COMMANDS {
                let _ = writeln!(out, "    {:<16}{}", def.name, def.summary);
            }
            out.push_str("\nUse 'pgkeep help [command]' for more information.\n");
        }
        Topic::Command(command) => {
            let def = command.def();
            let _ = writeln!(out, "pgkeep {VERSION} - '{command}' command help\n");
            let _ = writeln!(out, "{}\n", def.summary);
            out.push_str(&wrap(def.description, "", WIDTH));
            let _ = write!(out, "\nUsage:\n    pgkeep [options] {command}");
            if !def.params.is_empty() {
                let _ = write!(out, " {}", def.params);
            }
            out.push('\n');
            let options: Vec<&OptionDef> =
                OPTIONS.iter().filter(|o| o.valid_for(command)).collect();
            if !options.is_empty() {
                out.push_str("\nOptions:\n\n");
            }
            for option in options {
                out.push_str(&option_line(option, command));
            }
            let _ = writeln!(
                out,
                "\nUse 'pgkeep help {command} [option]' for more information."
            );
        }
        Topic::Option(command, option) => {
            let _ = writeln!(
                out,
                "pgkeep {VERSION} - '{command}' command - '{}' option help\n",
                option.name
            );
            let _ = writeln!(out, "{}\n", option.summary);
            out.push_str(&wrap(option.help, "", WIDTH));
            out.push('\n');
            for (label, value) in facts(option, Some(command)) {
                let _ = writeln!(out, "{label}: {}", value.replace('`', ""));
            }
        }
    }
    Ok(out)
}

/// `  --name  summary [default=x]`, wrapped under the summary column.
fn option_line(option: &OptionDef, command: Command) -> String {
    const COLUMN: usize = 28;
    let name = format!("  --{}", option.key(1));
    let mut text = option.summary.to_string();
    if let Some(default) = option.default_for(command) {
        let _ = write!(text, " [default={default}]");
    }
    if option.required_for(command) {
        text.push_str(" [required]");
    }
    let body = wrap(&text, &" ".repeat(COLUMN), WIDTH);
    let body = body.trim_start();
    if name.len() + 2 <= COLUMN {
        format!("{name:<COLUMN$}{body}")
    } else {
        format!("{name}\n{}{body}", " ".repeat(COLUMN))
    }
}

/// The labelled facts about an option, for one command or (with `None`) all of them.
fn facts(option: &OptionDef, command: Option<Command>) -> Vec<(&'static str, String)> {
    let mut out = vec![("type", option.kind.name().to_string())];
    let default = match command {
        Some(command) => option.default_for(command).map(|d| format!("`{d}`")),
        None => defaults_by_command(option),
    };
    if let Some(default) = default {
        out.push(("default", default));
    }
    let allowed = match command {
        Some(command) => option.allowed_for(command).map(code_list),
        None => allowed_by_command(option),
    };
    if let Some(allowed) = allowed {
        out.push(("allowed", allowed));
    }
    match option.kind {
        Kind::Integer { min, max } => out.push(("range", format!("{min} to {max}"))),
        Kind::Size { min, max } => {
            out.push(("range", format!("{} to {}", show_size(min), show_size(max))));
        }
        Kind::Time { min_ms, max_ms } => out.push((
            "range",
            format!("{} to {} seconds", show_time(min_ms), show_time(max_ms)),
        )),
        _ => {}
    }
    if let Some(group) = option.group {
        // The other indexes are pgBackRest's names for more hosts or repositories: refused
        // until pgkeep has them, and said so here.
        let supported = group.supported_max();
        let max = group.max_index();
        let names = match supported {
            1 => format!("`{}`", option.key(1)),
            _ => format!("`{}` to `{}`", option.key(1), option.key(supported)),
        };
        out.push((
            "names",
            format!(
                "{names} (`{}` to `{}`: not supported yet)",
                option.key(supported + 1),
                option.key(max)
            ),
        ));
    }
    if !option.aliases.is_empty() {
        let aliases: Vec<String> = option.aliases.iter().map(|a| a.replace('?', "N")).collect();
        out.push(("deprecated names", code_list(&aliases)));
    }
    out.push(("scope", option.scope.name().to_string()));
    out.push(("environment", format!("`{}`", option.env_name(1))));
    out
}

fn defaults_by_command(option: &OptionDef) -> Option<String> {
    let per: Vec<String> = option
        .commands
        .iter()
        .filter_map(|rule| rule.default.map(|d| format!("`{d}` ({})", rule.command)))
        .collect();
    match (per.is_empty(), option.default) {
        (true, Some(default)) => Some(format!("`{default}`")),
        (true, None) => None,
        (false, _) => Some(per.join(", ")),
    }
}

fn allowed_by_command(option: &OptionDef) -> Option<String> {
    let per: Vec<String> = option
        .commands
        .iter()
        .filter_map(|rule| {
            rule.allowed
                .map(|values| format!("{} ({})", code_list(values), rule.command))
        })
        .collect();
    match (per.is_empty(), option.kind) {
        (true, Kind::Enum(values)) => Some(code_list(values)),
        (true, _) => None,
        (false, _) => Some(per.join("; ")),
    }
}

fn code_list<S: AsRef<str>>(values: &[S]) -> String {
    let items: Vec<String> = values.iter().map(|v| format!("`{}`", v.as_ref())).collect();
    items.join(", ")
}

/// Greedy word wrap: every line starts with `indent` and stays within `width` where words
/// allow; ends with a newline.
fn wrap(text: &str, indent: &str, width: usize) -> String {
    let mut out = String::new();
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        if line.len() > indent.len() && line.len() + 1 + word.len() > width {
            out.push_str(&line);
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
    out
}

/// The full text of docs/options.md.
pub fn options_markdown() -> String {
    let mut out = String::from(MARKDOWN_HEAD);
    out.push_str("## Commands\n\n| command | summary |\n|---|---|\n");
    for def in COMMANDS {
        let _ = writeln!(
            out,
            "| [`{0}`](#command-{0}) | {1} |",
            def.name, def.summary
        );
    }
    for def in COMMANDS {
        let _ = writeln!(out, "\n### Command `{}`\n", def.name);
        let _ = writeln!(out, "{}\n", def.summary);
        let _ = writeln!(out, "{}\n", markdown_text(def.description));
        let mut usage = format!("pgkeep [options] {}", def.name);
        if !def.params.is_empty() {
            let _ = write!(usage, " {}", def.params);
        }
        let _ = writeln!(out, "Usage: `{usage}`\n");
        let options: Vec<String> = OPTIONS
            .iter()
            .filter(|o| o.valid_for(def.command))
            .map(|o| {
                let required = if o.required_for(def.command) {
                    " (required)"
                } else {
                    ""
                };
                format!("[`{0}`](#option-{0}){required}", o.name)
            })
            .collect();
        if options.is_empty() {
            out.push_str("Options: none.\n");
        } else {
            let _ = writeln!(out, "Options: {}.", options.join(", "));
        }
    }
    out.push_str("\n## Options\n");
    for option in OPTIONS {
        let _ = writeln!(out, "\n### Option `{}`\n", option.name);
        let _ = writeln!(out, "{}\n", option.summary);
        let _ = writeln!(out, "{}\n", markdown_text(option.help));
        let commands: Vec<String> = option
            .commands
            .iter()
            .map(|rule| {
                let required = if rule.required { " (required)" } else { "" };
                format!("`{}`{required}", rule.command)
            })
            .collect();
        let _ = writeln!(out, "- commands: {}", commands.join(", "));
        for (label, value) in facts(option, None) {
            let _ = writeln!(out, "- {label}: {value}");
        }
    }
    out
}

/// Help prose for markdown: `<stanza>` would otherwise be taken for an HTML tag.
fn markdown_text(text: &str) -> String {
    text.replace('<', "&lt;")
}

const MARKDOWN_HEAD: &str = "\
# pgkeep commands and options

<!-- Generated from src/config/options.rs and src/config/command.rs; do not edit.
     Regenerate with: PGKEEP_BLESS=1 cargo test config::help -->

Options are read from, highest precedence first: the command line, the environment, the
configuration file, the default.

- **Command line**: `pgkeep [options] <command> [options] [parameters]`. Options take
  `--name=value` or `--name value`; a boolean alone (`--start-fast`) means `y`, `--no-<name>`
  means `n`. `--reset-<name>` ignores the value from the file and environment and uses the
  default. List and hash options (`--recovery-option=a=b`) may be repeated.
- **Environment**: `PGKEEP_<NAME>`, the name in upper case with `-` as `_`
  (`PGKEEP_REPO1_PATH=/repo`, `PGKEEP_START_FAST=y`). Booleans are `y` or `n`; list and hash
  values are separated by `:`.
- **Configuration file**: `--config` (default `/etc/pgkeep/pgkeep.conf`), then every `*.conf`
  in `--config-include-path` (default `/etc/pgkeep/conf.d`) in name order. Sections, first
  match wins for command C and stanza S: `[S:C]`, `[S]`, `[global:C]`, `[global]`. Lines are
  `key=value` or `# comment`; booleans are `y` or `n`; a list or hash option is repeated on
  several lines. Options of scope *stanza* may only be set in stanza sections, options of
  scope *command line* in no file. Options a command does not use are ignored, so one file
  serves every command.
- **Indexed options**: options of PostgreSQL hosts and repositories carry an index, as in
  pgBackRest: `pg1-path` to `pg8-path`, `repo1-path` to `repo256-path`. pgkeep works with one
  PostgreSQL host and one repository so far: an index other than 1 is refused (exit 31, `option
  'repo2-path' is not supported yet: pgkeep has one repository (repo1)`) by every command that
  uses the option, from the command line, the environment or a configuration file, rather than
  accepted and ignored.
- **Types**: sizes accept units that are powers of 1024 (`16KiB`, `16KB`, `4K`, `1MiB`,
  `1GB`); times are seconds, decimals allowed (`0.5`); paths must be absolute.

";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn docs_options_md_matches_the_tables() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/options.md");
        let expected = options_markdown();
        if std::env::var_os("PGKEEP_BLESS").is_some() {
            assert!(
                std::fs::write(&path, &expected).is_ok(),
                "cannot write {path:?}"
            );
        }
        let actual = std::fs::read_to_string(&path).unwrap_or_default();
        assert!(
            actual == expected,
            "docs/options.md is out of date: run PGKEEP_BLESS=1 cargo test config::help"
        );
    }

    #[test]
    fn general_help_lists_every_command() {
        let text = render(None).unwrap_or_default();
        for def in COMMANDS {
            assert!(text.contains(&format!("    {:<16}{}", def.name, def.summary)));
        }
    }

    #[test]
    fn command_help_lists_valid_options_with_defaults() {
        let text = render(Some("backup")).unwrap_or_default();
        assert!(text.starts_with("pgkeep 0.1.0 - 'backup' command help\n"));
        assert!(text.contains("  --start-fast"));
        assert!(text.contains("[default=incr]"), "{text}");
        assert!(text.contains("  --pg1-path"));
        assert!(!text.contains("--delta"));
        assert!(text.lines().all(|line| line.len() <= WIDTH), "{text}");
    }

    #[test]
    fn option_help_shows_the_facts_for_the_command() {
        let text = render(Some("restore type")).unwrap_or_default();
        assert!(text.contains("default: default\n"), "{text}");
        assert!(
            text.contains("allowed: default, immediate, time,"),
            "{text}"
        );
        let text = render(Some("backup db-path")).unwrap_or_default();
        assert!(text.contains("'pg-path' option help"), "{text}");
        assert!(
            text.contains("names: pg1-path (pg2-path to pg8-path: not supported yet)\n"),
            "{text}"
        );
        assert!(
            text.contains("deprecated names: db-path, dbN-path\n"),
            "{text}"
        );
        assert!(text.contains("environment: PGKEEP_PG1_PATH\n"), "{text}");
    }

    #[test]
    fn bad_topics_are_refused() {
        use ErrorKind::*;
        let cases = [
            ("nope", CommandInvalid, "invalid command 'nope'"),
            ("backup nope", OptionInvalid, "invalid option 'nope'"),
            (
                "backup delta",
                OptionInvalid,
                "option 'delta' not valid for command 'backup'",
            ),
            (
                "backup type set",
                ParamInvalid,
                "help takes at most a command and an option",
            ),
        ];
        for (topic, kind, message) in cases {
            let err = render(Some(topic)).err();
            assert_eq!(err.as_ref().map(|e| e.kind()), Some(kind), "{topic}");
            assert_eq!(err.as_ref().map(|e| e.message()), Some(message));
        }
    }

    #[test]
    fn wrap_keeps_lines_within_width() {
        let text = wrap("aaa bbb ccc ddd", "  ", 10);
        assert_eq!(text, "  aaa bbb\n  ccc ddd\n");
    }
}
