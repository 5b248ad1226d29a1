//! What the user said, on the command line and in the environment, before any checking of
//! values.
//!
//! `pgkeep [options] <command> [options] [params]`: options may come before or after the
//! command; `--name=value` and `--name value`; a boolean alone means `y`; `--no-<name>`
//! negates, `--reset-<name>` ignores the file and environment value; `--` ends options.
//! Environment variables are `PGKEEP_<NAME>`. The result is raw text per option and index;
//! converting and choosing between sources is resolve.rs's job, files are files.rs's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::config::command::Command;
use crate::config::def::{self, Kind, OptionDef};
use crate::config::options::Opt;
use crate::error::{Error, ErrorKind, Result};

/// An option at an index (1 for options without a group).
pub type Key = (Opt, u32);

/// Where a raw value from the environment or a file was given, to say so in messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Origin {
    Env(String),
    File { path: PathBuf, line: usize },
}

impl Origin {
    /// Appended to a message about a bad value.
    pub fn suffix(&self) -> String {
        match self {
            Origin::Env(name) => format!(" in environment variable '{name}'"),
            Origin::File { path, line } => format!(" at line {line} of '{}'", path.display()),
        }
    }
}

/// Raw text for one option from the environment or a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Raw {
    /// One element unless the option is a list or hash.
    pub values: Vec<String>,
    pub origin: Origin,
}

/// What the command line said about one option.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Setting {
    Values(Vec<String>),
    Negate,
    Reset,
}

/// The command line, split.
#[derive(Debug, Default)]
pub struct Args {
    pub command: Option<Command>,
    /// The command was given as `<command>:remote`: this pgkeep is the far side of another
    /// pgkeep's ssh connection.
    pub remote: bool,
    /// The command was given as `<command>:async`: this pgkeep is the background process that
    /// archive-push or archive-get started (archive-async).
    pub background: bool,
    pub params: Vec<String>,
    pub options: BTreeMap<Key, Setting>,
    /// Options in the order first given, to hand them on in that order.
    pub order: Vec<Key>,
}

/// Splits the command line (without the program name).
pub fn args(args: &[String]) -> Result<Args> {
    let mut out = Args::default();
    let mut rest = args.iter();
    let mut options_ended = false;
    while let Some(arg) = rest.next() {
        if !options_ended && arg == "--" {
            options_ended = true;
            continue;
        }
        if options_ended || !arg.starts_with('-') || arg == "-" {
            match out.command {
                None => {
                    let (name, remote) = match arg.strip_suffix(":remote") {
                        Some(name) => (name, true),
                        None => (arg.as_str(), false),
                    };
                    let (name, background) = match name.strip_suffix(":async") {
                        Some(name) => (name, true),
                        None => (name, false),
                    };
                    out.remote = remote;
                    out.background = background;
                    let command = Command::parse(name).ok_or_else(|| {
                        Error::new(
                            ErrorKind::CommandInvalid,
                            format!("invalid command '{arg}'"),
                        )
                        .with_hint("use 'pgkeep help' to list the commands")
                    })?;
                    out.command = Some(command);
                }
                Some(_) => out.params.push(arg.clone()),
            }
            continue;
        }
        let invalid = |name: &str| {
            Error::new(
                ErrorKind::OptionInvalid,
                format!("invalid option '--{name}'"),
            )
        };
        let Some(body) = arg.strip_prefix("--") else {
            return Err(Error::new(
                ErrorKind::OptionInvalid,
                format!("invalid option '{arg}'"),
            ));
        };
        let (name, inline) = match body.split_once('=') {
            Some((name, value)) => (name, Some(value)),
            None => (body, None),
        };
        let found = def::find(name).ok_or_else(|| invalid(name))?;
        let def = found.opt.def();
        let key_name = def.key(found.index);
        let setting = if found.negate || found.reset {
            if inline.is_some() {
                return Err(Error::new(
                    ErrorKind::OptionInvalid,
                    format!("option '--{name}' does not take a value"),
                ));
            }
            if found.negate && !def.can_negate() {
                return Err(Error::new(
                    ErrorKind::OptionInvalid,
                    format!("option '{key_name}' cannot be negated"),
                ));
            }
            if found.reset && def.scope == def::Scope::CommandLine {
                // There is nothing to reset: the option is never read from a file.
                return Err(Error::new(
                    ErrorKind::OptionInvalid,
                    format!("option '{key_name}' cannot be reset"),
                ));
            }
            if found.negate {
                Setting::Negate
            } else {
                Setting::Reset
            }
        } else {
            let value = match (inline, def.kind) {
                (Some(value), _) => value.to_string(),
                (None, Kind::Boolean) => "y".to_string(),
                (None, _) => rest.next().cloned().ok_or_else(|| {
                    Error::new(
                        ErrorKind::OptionInvalid,
                        format!("option '--{name}' requires an argument"),
                    )
                })?,
            };
            Setting::Values(vec![value])
        };
        merge(&mut out, (found.opt, found.index), def, setting)?;
    }
    Ok(out)
}

/// Records `setting`, refusing an option given twice unless it is a list or hash.
fn merge(out: &mut Args, key: Key, def: &OptionDef, setting: Setting) -> Result<()> {
    let name = def.key(key.1);
    let Some(existing) = out.options.get_mut(&key) else {
        out.options.insert(key, setting);
        out.order.push(key);
        return Ok(());
    };
    let problem = match (&mut *existing, setting) {
        (Setting::Values(values), Setting::Values(more)) if def.is_multi() => {
            values.extend(more);
            return Ok(());
        }
        (Setting::Values(_), Setting::Values(_)) => "cannot be set multiple times",
        (Setting::Negate, Setting::Negate) => "is negated multiple times",
        (Setting::Reset, Setting::Reset) => "is reset multiple times",
        (Setting::Negate, Setting::Reset) | (Setting::Reset, Setting::Negate) => {
            "cannot be negated and reset"
        }
        (Setting::Negate, Setting::Values(_)) | (Setting::Values(_), Setting::Negate) => {
            "cannot be set and negated"
        }
        (Setting::Reset, Setting::Values(_)) | (Setting::Values(_), Setting::Reset) => {
            "cannot be set and reset"
        }
    };
    Err(Error::new(
        ErrorKind::OptionInvalid,
        format!("option '{name}' {problem}"),
    ))
}

/// Refuses command-line options the command does not accept, and those spelled with an index
/// pgkeep does not act on yet (`--repo2-path`).
pub fn check_valid(args: &Args, command: Command) -> Result<()> {
    for (opt, index) in &args.order {
        let def = opt.def();
        if !def.valid_for(command) {
            return Err(Error::new(
                ErrorKind::OptionInvalid,
                format!(
                    "option '{}' not valid for command '{command}'",
                    def.key(*index)
                ),
            )
            .with_hint(format!(
                "use 'pgkeep help {command}' to list the options of the command"
            )));
        }
        def::check_supported(*opt, *index, "")?;
    }
    Ok(())
}

/// The `PGKEEP_*` variables that name options valid for `command`. Unknown names are warned
/// about; options the command does not use are ignored, since one environment serves every
/// command; an index pgkeep does not act on yet (`PGKEEP_REPO2_PATH`) is refused where the
/// command would use it. List and hash values are `:`-separated.
pub fn env(
    vars: &[(String, String)],
    command: Command,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<Key, Raw>> {
    let mut out: BTreeMap<Key, Raw> = BTreeMap::new();
    for (var, value) in vars {
        let Some(rest) = var.strip_prefix("PGKEEP_") else {
            continue;
        };
        let name = rest.to_lowercase().replace('_', "-");
        let found = match def::find(&name) {
            None => {
                warnings.push(format!("environment contains invalid option '{name}'"));
                continue;
            }
            Some(found) if found.negate => {
                warnings.push(format!(
                    "environment contains invalid negate option '{name}'"
                ));
                continue;
            }
            Some(found) if found.reset => {
                warnings.push(format!(
                    "environment contains invalid reset option '{name}'"
                ));
                continue;
            }
            Some(found) => found,
        };
        let def = found.opt.def();
        if !def.valid_for(command) {
            continue;
        }
        let origin = Origin::Env(var.clone());
        def::check_supported(found.opt, found.index, &origin.suffix())?;
        let values = if def.is_multi() {
            value.split(':').map(str::to_string).collect()
        } else {
            vec![value.clone()]
        };
        let raw = Raw { values, origin };
        // Two spellings of one option (PGKEEP_DB_PATH and PGKEEP_PG1_PATH): the environment
        // has no order to say which wins.
        if let Some(Raw {
            origin: Origin::Env(other),
            ..
        }) = out.insert((found.opt, found.index), raw)
        {
            return Err(Error::new(
                ErrorKind::OptionInvalid,
                format!("environment contains duplicate options ('{other}', '{var}')"),
            ));
        }
    }
    Ok(out)
}
