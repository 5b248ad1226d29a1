//! Choosing each option's value for a command: command line, then environment, then file,
//! then default; converting and checking the winner; refusing missing required options.
//!
//! Only options valid for the command are resolved. A grouped option (`pg2-port`) is resolved
//! at every index some option of its group was given at, plus index 1, so that defaults fill
//! in the clusters and repositories the user described. The paths of the configuration files
//! are resolved first, from the command line and environment alone, since the files decide
//! everything else.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;

use crate::config::command::Command;
use crate::config::def::{Kind, OptionDef, Scope};
use crate::config::files::Location;
use crate::config::options::{OPTIONS, Opt};
use crate::config::parse::{Args, Key, Raw, Setting};
use crate::config::value::{Value, convert};
use crate::error::{Error, ErrorKind, Result};

/// Where a resolved value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Default,
    ConfigFile,
    Env,
    CommandLine,
}

/// One option's outcome.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    /// `None` when unset (no default), or negated (`--no-config`).
    pub value: Option<Value>,
    /// The text the value was converted from, paths normalised.
    pub text: Option<String>,
    pub source: Source,
}

/// The raw values of every source.
pub struct Sources<'a> {
    pub args: &'a Args,
    pub env: &'a BTreeMap<Key, Raw>,
    pub file: &'a BTreeMap<Key, Raw>,
}

/// Every option valid for `command`, resolved.
pub fn resolve(command: Command, sources: &Sources) -> Result<BTreeMap<Key, Resolved>> {
    let mut out = BTreeMap::new();
    let mut missing: Vec<(&OptionDef, u32)> = Vec::new();
    for def in resolve_order() {
        if !def.valid_for(command) {
            continue;
        }
        for index in indexes(def, sources) {
            let resolved = resolve_one(def, index, command, sources, &out)?;
            if resolved.value.is_none()
                && resolved.source == Source::Default
                && def.required_for(command)
            {
                missing.push((def, index));
            }
            out.insert((def.id, index), resolved);
        }
    }
    // The stanza first: without it, a missing stanza option sends the user looking in the
    // wrong place.
    missing.sort_by_key(|(def, index)| (def.scope != Scope::CommandLine, *index));
    if let Some((def, index)) = missing.first() {
        let mut err = Error::new(
            ErrorKind::OptionRequired,
            format!("{command} command requires option: {}", def.key(*index)),
        );
        if def.scope == Scope::Stanza {
            err = err.with_hint("does this stanza exist?");
        }
        return Err(err);
    }
    Ok(out)
}

/// Which configuration files to read, and the stanza whose sections apply, from the command
/// line and environment only.
pub fn locate(command: Command, sources: &Sources) -> Result<(Location, Option<String>)> {
    let mut out = BTreeMap::new();
    for opt in [
        Opt::ConfigPath,
        Opt::Config,
        Opt::ConfigIncludePath,
        Opt::Stanza,
    ] {
        let def = opt.def();
        if def.valid_for(command) {
            let resolved = resolve_one(def, 1, command, sources, &out)?;
            out.insert((opt, 1), resolved);
        }
    }
    let path = |opt: Opt| {
        out.get(&(opt, 1)).map(|resolved| {
            let explicit = resolved.source != Source::Default;
            (resolved.text.as_ref().map(PathBuf::from), explicit)
        })
    };
    let (main, main_required) = path(Opt::Config).unwrap_or((None, false));
    let (mut include, include_required) = path(Opt::ConfigIncludePath).unwrap_or((None, false));
    // --no-config: no file at all unless an include path was given on purpose.
    if main.is_none() && !include_required {
        include = None;
    }
    let stanza = out.get(&(Opt::Stanza, 1)).and_then(|r| r.text.clone());
    let location = Location {
        main,
        main_required,
        include,
        include_required,
    };
    Ok((location, stanza))
}

/// The table, with config-path first: the defaults of config and config-include-path are
/// relative to it.
fn resolve_order() -> impl Iterator<Item = &'static OptionDef> {
    let first = Opt::ConfigPath.def();
    std::iter::once(first).chain(OPTIONS.iter().filter(|def| def.id != Opt::ConfigPath))
}

/// The indexes to resolve `def` at.
fn indexes(def: &OptionDef, sources: &Sources) -> BTreeSet<u32> {
    let mut out = BTreeSet::from([1]);
    if let Some(group) = def.group {
        let keys = sources
            .args
            .options
            .keys()
            .chain(sources.env.keys())
            .chain(sources.file.keys());
        for (opt, index) in keys {
            if opt.def().group == Some(group) {
                out.insert(*index);
            }
        }
    }
    out
}

fn resolve_one(
    def: &OptionDef,
    index: u32,
    command: Command,
    sources: &Sources,
    resolved: &BTreeMap<Key, Resolved>,
) -> Result<Resolved> {
    let key = (def.id, index);
    let name = def.key(index);
    let given = match sources.args.options.get(&key) {
        Some(Setting::Values(values)) => Some((values, Source::CommandLine, String::new())),
        Some(Setting::Negate) if def.kind == Kind::Boolean => {
            return Ok(Resolved {
                value: Some(Value::Bool(false)),
                text: Some("n".to_string()),
                source: Source::CommandLine,
            });
        }
        Some(Setting::Negate) => {
            return Ok(Resolved {
                value: None,
                text: None,
                source: Source::CommandLine,
            });
        }
        Some(Setting::Reset) => None,
        None => {
            let env = sources.env.get(&key).map(|raw| (raw, Source::Env));
            env.or_else(|| sources.file.get(&key).map(|raw| (raw, Source::ConfigFile)))
                .map(|(raw, source)| (&raw.values, source, raw.origin.suffix()))
        }
    };
    if let Some((values, source, origin)) = given {
        let (value, text) = convert(def, command, &name, values, &origin)?;
        return Ok(Resolved {
            value: Some(value),
            text: Some(text),
            source,
        });
    }
    let default = match derived_default(def.id, resolved) {
        Some(text) => Some(text),
        None => def.default_for(command).map(str::to_string),
    };
    let Some(text) = default else {
        return Ok(Resolved {
            value: None,
            text: None,
            source: Source::Default,
        });
    };
    let (value, text) = convert(def, command, &name, &[text], "")?;
    Ok(Resolved {
        value: Some(value),
        text: Some(text),
        source: Source::Default,
    })
}

/// The defaults of config and config-include-path follow an explicit config-path.
fn derived_default(opt: Opt, resolved: &BTreeMap<Key, Resolved>) -> Option<String> {
    let file = match opt {
        Opt::Config => "pgkeep.conf",
        Opt::ConfigIncludePath => "conf.d",
        _ => return None,
    };
    let base = resolved.get(&(Opt::ConfigPath, 1))?;
    if base.source == Source::Default {
        return None;
    }
    let base = base.text.as_deref()?.trim_end_matches('/');
    Some(format!("{base}/{file}"))
}
