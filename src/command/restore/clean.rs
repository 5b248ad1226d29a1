//! The target directories before restore writes: a running cluster is refused, a directory
//! holding anything is refused unless `--delta` or `--force`, and with them everything the
//! backup does not hold is removed. `--delta` and `--force` clean only what is shown to be the
//! cluster's (`is_data_dir`, `owned_roots`): a directory of someone else's files is never
//! emptied because an option was given with the wrong path.
//!
//! Cleaning walks only the plan's roots (the data directory and the directories of links
//! restored as links), never follows a link (a link is compared with the planned one and
//! removed if it differs, its destination untouched), and at a tablespace location touches only
//! the backup's own version directory. Files the backup holds are kept here: whether their
//! content matches is decided per file, in parallel, when restoring.

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::{log_detail, log_info};

use super::plan::{Plan, Root};

/// What the plan puts at a path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Expect {
    Dir,
    File,
    Link(PathBuf),
    /// Left exactly as found (recovery settings with `--type=preserve`).
    Keep,
}

/// Refuses to restore while `postmaster.pid` names a live process.
pub fn check_not_running(pg_path: &Path) -> Result<()> {
    let pid_file = pg_path.join("postmaster.pid");
    let Ok(text) = fs::read_to_string(&pid_file) else {
        return Ok(());
    };
    let pid = text
        .lines()
        .next()
        .and_then(|l| l.trim().parse::<i32>().ok());
    let alive = pid
        .is_some_and(|pid| nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok());
    if alive {
        return Err(Error::new(
            ErrorKind::PgRunning,
            format!(
                "unable to restore while PostgreSQL is running: '{}' names a live process",
                pid_file.display()
            ),
        )
        .with_hint("stop the cluster before restoring"));
    }
    Ok(())
}

/// The file that a pgkeep restore leaves in the data directory while it runs, as pgBackRest
/// does: with `PG_VERSION`, it shows a later `--delta` that the directory is a data directory,
/// even when the interrupted restore had not yet written `PG_VERSION`.
pub const RESTORE_MARKER: &str = "backup.manifest";

/// Whether the data directory shows that it is one: `PG_VERSION` or `backup.manifest` is in it.
/// Only then may `--delta` and `--force` remove what is there.
pub fn is_data_dir(pg_path: &Path) -> bool {
    ["PG_VERSION", RESTORE_MARKER]
        .iter()
        .any(|name| fs::symlink_metadata(pg_path.join(name)).is_ok_and(|m| m.is_file()))
}

/// For each root, whether `--delta`/`--force` may clean it: the data directory when it is one
/// (`data_dir`), and a link destination (a tablespace, a relocated WAL directory) only when the
/// data directory is one and its link at the same place already points to that destination:
/// then it is where this cluster's files are. A destination that is not shown to be the
/// cluster's is written only when it is empty.
pub fn owned_roots(plan: &Plan, data_dir: bool) -> Vec<bool> {
    let data = &plan.roots[0].path;
    (0..plan.roots.len())
        .map(|index| {
            data_dir
                && (index == 0
                    || plan.links.iter().any(|link| {
                        link.root == Some(index)
                            && fs::read_link(data.join(&link.rel))
                                .is_ok_and(|found| found == link.destination)
                    }))
        })
        .collect()
}

/// The roots where restore would overwrite something: each root's index with the first entry
/// found there (the root itself when all of it is restore's).
pub fn occupied(plan: &Plan) -> Result<Vec<(usize, PathBuf)>> {
    let mut found = Vec::new();
    for (index, root) in plan.roots.iter().enumerate() {
        if let Some(path) = occupied_root(root)? {
            found.push((index, path));
        }
    }
    Ok(found)
}

fn occupied_root(root: &Root) -> Result<Option<PathBuf>> {
    let entries = match fs::read_dir(&root.path) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(Error::io(
                ErrorKind::PathOpen,
                "open",
                root.path.display(),
                &e,
            ));
        }
    };
    for entry in entries {
        let entry =
            entry.map_err(|e| Error::io(ErrorKind::PathOpen, "list", root.path.display(), &e))?;
        match &root.owned_top {
            None => return Ok(Some(root.path.clone())),
            Some(owned) if owned.iter().any(|o| entry.file_name() == o.as_str()) => {
                return Ok(Some(entry.path()));
            }
            Some(_) => {}
        }
    }
    Ok(None)
}

/// Every path the plan creates, with what goes there. `wal_dir` is created by restore when it
/// is not a link; `keep` names data-directory files left as they are.
pub fn expected(plan: &Plan, wal_dir: &str, keep: &[&str]) -> HashMap<PathBuf, Expect> {
    let mut map = HashMap::new();
    for root in &plan.roots {
        map.insert(root.path.clone(), Expect::Dir);
    }
    for place in &plan.paths {
        map.insert(plan.absolute(place), Expect::Dir);
    }
    for (place, _) in &plan.files {
        map.insert(plan.absolute(place), Expect::File);
    }
    let data = plan.roots[0].path.clone();
    let wal_is_link = plan.links.iter().any(|l| l.rel == wal_dir);
    for link in &plan.links {
        map.insert(data.join(&link.rel), Expect::Link(link.destination.clone()));
    }
    if wal_is_link {
        if let Some(root) = plan
            .links
            .iter()
            .find(|l| l.rel == wal_dir)
            .and_then(|l| l.root)
        {
            map.insert(plan.roots[root].path.join("archive_status"), Expect::Dir);
        }
    } else {
        map.insert(data.join(wal_dir), Expect::Dir);
        map.insert(data.join(wal_dir).join("archive_status"), Expect::Dir);
    }
    for name in keep {
        map.insert(data.join(name), Expect::Keep);
    }
    map.insert(data.join(RESTORE_MARKER), Expect::Keep);
    // Directories holding planned entries, whether or not the manifest lists them.
    let ancestors: Vec<PathBuf> = map
        .keys()
        .flat_map(|path| {
            let root = plan.roots.iter().find(|r| path.starts_with(&r.path));
            path.ancestors()
                .skip(1)
                .take_while(move |a| root.is_some_and(|r| a.starts_with(&r.path)))
                .map(Path::to_path_buf)
                .collect::<Vec<_>>()
        })
        .collect();
    for dir in ancestors {
        map.entry(dir).or_insert(Expect::Dir);
    }
    map
}

/// What a clean removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Removed {
    pub files: usize,
    pub links: usize,
    pub paths: usize,
}

/// Removes from every root whatever `expected` does not put there.
pub fn clean(plan: &Plan, expected: &HashMap<PathBuf, Expect>) -> Result<Removed> {
    let mut removed = Removed::default();
    for root in &plan.roots {
        if fs::symlink_metadata(&root.path).is_err() {
            continue;
        }
        log_info!(
            "remove invalid files/links/paths from '{}'",
            root.path.display()
        );
        clean_dir(
            &root.path,
            root.owned_top.as_deref(),
            expected,
            &mut removed,
        )?;
    }
    Ok(removed)
}

fn clean_dir(
    dir: &Path,
    owned_top: Option<&[String]>,
    expected: &HashMap<PathBuf, Expect>,
    removed: &mut Removed,
) -> Result<()> {
    let entries =
        fs::read_dir(dir).map_err(|e| Error::io(ErrorKind::PathOpen, "list", dir.display(), &e))?;
    for entry in entries {
        let entry = entry.map_err(|e| Error::io(ErrorKind::PathOpen, "list", dir.display(), &e))?;
        let path = entry.path();
        if let Some(owned) = owned_top
            && !owned.iter().any(|o| entry.file_name() == o.as_str())
        {
            continue;
        }
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => {
                return Err(Error::io(
                    ErrorKind::FileOpen,
                    "get info for",
                    path.display(),
                    &e,
                ));
            }
        };
        let kind = meta.file_type();
        let keep = match expected.get(&path) {
            Some(Expect::Keep) => true,
            Some(Expect::Dir) if kind.is_dir() => {
                clean_dir(&path, None, expected, removed)?;
                true
            }
            Some(Expect::File) => kind.is_file(),
            Some(Expect::Link(destination)) => {
                kind.is_symlink() && fs::read_link(&path).is_ok_and(|d| d == *destination)
            }
            _ => false,
        };
        if keep {
            continue;
        }
        // remove_dir_all removes links inside the tree, never what they point to.
        let result = if kind.is_dir() {
            removed.paths += 1;
            log_detail!("remove invalid path '{}'", path.display());
            fs::remove_dir_all(&path)
        } else {
            if kind.is_symlink() {
                removed.links += 1;
                log_detail!("remove invalid link '{}'", path.display());
            } else {
                removed.files += 1;
                log_detail!("remove invalid file '{}'", path.display());
            }
            fs::remove_file(&path)
        };
        result.map_err(|e| Error::io(ErrorKind::FileRemove, "remove", path.display(), &e))?;
    }
    Ok(())
}

#[cfg(test)]
#[path = "clean_tests.rs"]
mod tests;
