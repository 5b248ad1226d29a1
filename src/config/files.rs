//! Reading configuration files and picking out the values for one command and stanza.
//!
//! The main file is read, then every `*.conf` in the include path in name order, as if
//! appended to it (so one section may be spread over several files). For command C and stanza
//! S the sections `[S:C]`, `[S]`, `[global:C]`, `[global]` are consulted, first one wins.
//! Options the command does not use are skipped silently (one file serves every command);
//! mistakes that would otherwise go unnoticed are warned about. Values are not checked here:
//! resolve.rs does that for the values that win.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::config::command::Command;
use crate::config::def::{self, Scope};
use crate::config::ini;
use crate::config::parse::{Key, Origin, Raw};
use crate::error::{Error, ErrorKind, Result};

/// Which files to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    /// `None` with `--no-config`.
    pub main: Option<PathBuf>,
    /// Given explicitly: a missing file is an error.
    pub main_required: bool,
    pub include: Option<PathBuf>,
    pub include_required: bool,
}

/// The values found in the files for one command and stanza.
#[derive(Debug, Default)]
pub struct Loaded {
    pub values: BTreeMap<Key, Raw>,
    /// The main file, when it was read.
    pub main_file: Option<PathBuf>,
}

/// An INI entry and the file it came from.
struct Line {
    entry: ini::Entry,
    file: PathBuf,
}

/// Reads the files of `location` and collects the values for `command` and `stanza`.
pub fn load(
    location: &Location,
    command: Command,
    stanza: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<Loaded> {
    let mut lines = Vec::new();
    let mut main_file = None;
    if let Some(path) = &location.main
        && let Some(text) = read(path, location.main_required)?
    {
        add_lines(&mut lines, &text, path)?;
        main_file = Some(path.clone());
    }
    if let Some(dir) = &location.include {
        for path in include_files(dir, location.include_required)? {
            // A file removed between listing and reading is as if never listed.
            if let Some(text) = read(&path, false)? {
                add_lines(&mut lines, &text, &path)?;
            }
        }
    }
    check_stanza_sections(&lines)?;
    let mut sections = Vec::new();
    if let Some(stanza) = stanza {
        sections.push(format!("{stanza}:{command}"));
        sections.push(stanza.to_string());
    }
    sections.push(format!("global:{command}"));
    sections.push("global".to_string());

    let mut values = BTreeMap::new();
    for section in &sections {
        for (key, raw) in section_values(&lines, section, command, warnings)? {
            values.entry(key).or_insert(raw);
        }
    }
    Ok(Loaded { values, main_file })
}

/// Section names other than `global[:<command>]` name a stanza: they obey the stanza rule,
/// as `--stanza` does, so that no name a command could run with is refused in one place and
/// accepted in another.
fn check_stanza_sections(lines: &[Line]) -> Result<()> {
    let mut seen = std::collections::BTreeSet::new();
    for line in lines {
        let section = line.entry.section.as_str();
        if !seen.insert(section) {
            continue;
        }
        let stanza = section.split_once(':').map_or(section, |(name, _)| name);
        if stanza != "global" {
            // The section is not echoed: the (shortened) name in the message is enough.
            let origin = format!(
                " in the section above line {} of '{}'",
                line.entry.line,
                line.file.display()
            );
            super::stanza::check(stanza, &origin)?;
        }
    }
    Ok(())
}

fn add_lines(lines: &mut Vec<Line>, text: &str, file: &Path) -> Result<()> {
    for entry in ini::parse(text, file)? {
        lines.push(Line {
            entry,
            file: file.to_path_buf(),
        });
    }
    Ok(())
}

/// The values one section sets for `command`.
fn section_values(
    lines: &[Line],
    section: &str,
    command: Command,
    warnings: &mut Vec<String>,
) -> Result<BTreeMap<Key, Raw>> {
    let is_command_section = section.contains(':');
    let is_global_section = section == "global" || section.starts_with("global:");
    let mut spelled: BTreeMap<Key, &str> = BTreeMap::new();
    let mut values: BTreeMap<Key, Raw> = BTreeMap::new();
    for line in lines.iter().filter(|line| line.entry.section == section) {
        let name = line.entry.key.as_str();
        let found = match def::find(name) {
            None => {
                warnings.push(format!(
                    "configuration file contains invalid option '{}'",
                    super::ini::excerpt(name)
                ));
                continue;
            }
            Some(found) if found.negate => {
                warnings.push(format!(
                    "configuration file contains negate option '{name}'"
                ));
                continue;
            }
            Some(found) if found.reset => {
                warnings.push(format!("configuration file contains reset option '{name}'"));
                continue;
            }
            Some(found) => found,
        };
        let def = found.opt.def();
        let key = (found.opt, found.index);
        if def.scope == Scope::CommandLine {
            warnings.push(format!(
                "configuration file contains command-line only option '{name}'"
            ));
            continue;
        }
        // Two spellings of one option in a section (db-path and pg1-path): neither can be
        // said to override the other.
        match spelled.get(&key) {
            Some(other) if *other != name => {
                return Err(Error::new(
                    ErrorKind::OptionInvalid,
                    format!(
                        "configuration file contains duplicate options ('{other}', '{name}') \
                         in section '[{section}]'"
                    ),
                ));
            }
            _ => {
                spelled.insert(key, name);
            }
        }
        if !def.valid_for(command) {
            if is_command_section {
                warnings.push(format!(
                    "configuration file contains option '{name}' invalid for section '{section}'"
                ));
            }
            continue;
        }
        let origin = Origin::File {
            path: line.file.clone(),
            line: line.entry.line,
        };
        // Read and then ignored, a `repo2-path` would leave the DBA believing backups also
        // go to a second repository: refused where the command would use the option.
        def::check_supported(found.opt, found.index, &origin.suffix())?;
        if def.scope == Scope::Stanza && is_global_section {
            warnings.push(format!(
                "configuration file contains stanza-only option '{name}' in global section \
                 '{section}'"
            ));
            continue;
        }
        match values.get_mut(&key) {
            Some(raw) if def.is_multi() => raw.values.push(line.entry.value.clone()),
            Some(_) => {
                return Err(Error::new(
                    ErrorKind::OptionInvalid,
                    format!(
                        "option '{}' cannot be set multiple times{}",
                        def.key(found.index),
                        origin.suffix()
                    ),
                ));
            }
            None => {
                values.insert(
                    key,
                    Raw {
                        values: vec![line.entry.value.clone()],
                        origin,
                    },
                );
            }
        }
    }
    Ok(values)
}

/// The text of a configuration file; `None` when it is missing and not `required`.
fn read(path: &Path, required: bool) -> Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(text) => Ok(Some(text)),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => Ok(None),
        // The codes pgBackRest gives these: a script tells a missing file from a bad one.
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Err(Error::new(
            ErrorKind::FileMissing,
            format!("unable to open missing file '{}' for read", path.display()),
        )
        .with_hint("create the file, or give the path of an existing one with --config")),
        Err(err) if err.kind() == std::io::ErrorKind::PermissionDenied => {
            Err(Error::io(ErrorKind::FileOpen, "open", path.display(), &err)
                .with_hint("check the file's permissions"))
        }
        Err(err) => Err(Error::io(ErrorKind::Config, "read", path.display(), &err)
            .with_hint("check the file's permissions and that it is text")),
    }
}

/// The `*.conf` files in `dir`, in name order.
fn include_files(dir: &Path, required: bool) -> Result<Vec<PathBuf>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound && !required => {
            return Ok(Vec::new());
        }
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            return Err(Error::new(
                ErrorKind::PathMissing,
                format!("unable to list missing path '{}'", dir.display()),
            )
            .with_hint(
                "create the directory, or give an existing one with --config-include-path",
            ));
        }
        Err(err) => return Err(Error::io(ErrorKind::Config, "list", dir.display(), &err)),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry =
            entry.map_err(|err| Error::io(ErrorKind::Config, "list", dir.display(), &err))?;
        let path = entry.path();
        let is_conf = path.extension().is_some_and(|ext| ext == "conf");
        if is_conf && path.is_file() {
            files.push(path);
        }
    }
    files.sort();
    Ok(files)
}
