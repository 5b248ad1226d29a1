//! Tests of the configuration layer as the command layer sees it: [`parse`] from argv, an
//! environment and real files in a temporary directory, to a [`Config`]. Every test names its
//! configuration file (or passes `--no-config`) so the host's /etc/pgkeep never leaks in.

mod errors;
mod files;
mod remote;
mod sources;

use std::path::PathBuf;

use super::{Config, parse};
use crate::error::Error;

/// Command-line arguments in a table of cases.
type Args = &'static [&'static str];
/// Environment variables in a table of cases.
type Env = &'static [(&'static str, &'static str)];

fn strings(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn vars(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn ok(args: &[&str], env: &[(&str, &str)]) -> Config {
    match parse(&strings(args), &vars(env)) {
        Ok(config) => config,
        Err(err) => panic!("{args:?}: {err}"),
    }
}

fn fail(args: &[&str], env: &[(&str, &str)]) -> Error {
    match parse(&strings(args), &vars(env)) {
        Ok(config) => panic!("{args:?} parsed: {config:?}"),
        Err(err) => err,
    }
}

/// A temporary directory for configuration files.
struct Dir {
    dir: tempfile::TempDir,
}

impl Dir {
    fn new() -> Dir {
        Dir {
            dir: tempfile::tempdir().expect("temporary directory"),
        }
    }

    /// Writes `name` under the directory; returns its path.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create directory");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// The `--config=<path>` argument for a main file with `text`.
    fn config(&self, text: &str) -> String {
        format!("--config={}", self.write("pgkeep.conf", text).display())
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }
}
