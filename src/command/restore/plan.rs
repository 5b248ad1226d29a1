//! Where every part of a backup set goes, decided and checked before anything is written.
//!
//! Every manifest name must be `pg_data` or lie under `pg_data/` with plain components (no
//! `..`, `.`, empty or absolute parts), and every link restored as a link must point to an
//! absolute, `..`-free destination outside the data directory and apart from every other
//! link's: a manifest that could make restore write elsewhere is refused whole. Tablespaces
//! (`pg_tblspc/<oid>` links) go to their original location, `tablespace-map` or
//! `tablespace-map-all`; other links (a relocated pg_wal, say) become plain directories in the
//! data directory unless `link-all` or `link-map` restores them as links. The result names
//! each entry by a root (the data directory, or a link destination) and a path relative to it,
//! so writes go to the planned place, never through a link found on disk.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::Manifest;
use crate::repo::manifest::PG_DATA;

use super::selective::Excluded;

/// What the user asked to move.
#[derive(Debug, Default)]
pub struct Remap {
    /// `tablespace-map`: name or oid → directory.
    pub tablespaces: Vec<(String, String)>,
    /// `tablespace-map-all`.
    pub tablespace_all: Option<String>,
    /// `link-map`: link (relative to the data directory) → destination.
    pub links: Vec<(String, String)>,
    /// `link-all`.
    pub link_all: bool,
}

/// A directory that restore writes under and, with delta, cleans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    pub path: PathBuf,
    /// For a tablespace: the only top-level entries restore owns (its version directory);
    /// anything else there (another major's directory) is left alone. `None`: all of it.
    pub owned_top: Option<Vec<String>>,
}

/// A manifest entry's place: a root and the path relative to it ("" for the root).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Place {
    pub root: usize,
    pub rel: String,
}

/// A link restored as a link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLink {
    /// Relative to the data directory, e.g. `pg_tblspc/16400`.
    pub rel: String,
    pub destination: PathBuf,
    /// The root its destination is, when it is a directory (a tablespace, the WAL directory,
    /// or a link the backup holds entries under). A link to anything else is only made,
    /// its destination left as it is.
    pub root: Option<usize>,
    /// Tablespace oid, for tablespace links.
    pub tablespace: Option<u32>,
}

/// The whole placement of a backup set.
#[derive(Debug)]
pub struct Plan {
    /// Root 0 is the data directory.
    pub roots: Vec<Root>,
    pub links: Vec<PlannedLink>,
    /// One per `manifest.paths` entry, same order.
    pub paths: Vec<Place>,
    /// One per `manifest.files` entry, same order, with whether it is zeroed.
    pub files: Vec<(Place, bool)>,
    /// Whether any tablespace goes somewhere other than where it was.
    pub tablespaces_moved: bool,
}

impl Plan {
    /// The absolute path of a place.
    pub fn absolute(&self, place: &Place) -> PathBuf {
        let root = &self.roots[place.root].path;
        if place.rel.is_empty() {
            root.clone()
        } else {
            root.join(&place.rel)
        }
    }
}

/// The manifest name's path inside the data directory ("" for `pg_data`), or an error when the
/// name could lead anywhere else.
pub fn data_rel<'a>(manifest: &Manifest, name: &'a str) -> Result<&'a str> {
    if name == PG_DATA {
        return Ok("");
    }
    let rel = name
        .strip_prefix(PG_DATA)
        .and_then(|rest| rest.strip_prefix('/'))
        .filter(|rel| {
            rel.split('/')
                .all(|part| !part.is_empty() && part != "." && part != ".." && !part.contains('\0'))
        });
    rel.ok_or_else(|| {
        Error::new(
            ErrorKind::FileInvalid,
            format!(
                "manifest of backup set '{}' names a path outside the data directory: '{name}'",
                manifest.label
            ),
        )
        .with_hint(
            "the manifest is damaged or was not written by pgkeep: restore another set with --set",
        )
    })
}

/// Checks a destination given for a link: absolute, without `.` or `..`, not `/`.
fn check_destination(what: &str, destination: &str, user: bool) -> Result<PathBuf> {
    let path = Path::new(destination);
    let clean = path.is_absolute()
        && path.components().count() > 1
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
        && !destination
            .split('/')
            .skip(1)
            .any(|p| p == "." || p == "..");
    if clean {
        return Ok(path.to_path_buf());
    }
    let (kind, hint) = if user {
        (
            ErrorKind::OptionInvalidValue,
            "give an absolute path without '.' or '..'",
        )
    } else {
        (
            ErrorKind::FileInvalid,
            "use tablespace-map or link-map to give it an absolute destination, or restore another set",
        )
    };
    Err(Error::new(
        kind,
        format!("{what} destination '{destination}' must be an absolute path without '.' or '..'"),
    )
    .with_hint(hint))
}

fn tablespace_oid(rel: &str) -> Option<u32> {
    rel.strip_prefix("pg_tblspc/")
        .filter(|oid| !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|oid| oid.parse().ok())
}

/// Builds and checks the plan. `names` maps tablespace oids to names where known.
pub fn plan(
    manifest: &Manifest,
    pg_path: &Path,
    remap: &Remap,
    names: &BTreeMap<u32, String>,
    excluded: &Excluded,
    wal_dir: &str,
) -> Result<Plan> {
    let mut roots = vec![Root {
        path: pg_path.to_path_buf(),
        owned_top: None,
    }];
    let mut links: Vec<PlannedLink> = Vec::new();
    let mut tablespaces_moved = false;
    let mut used_ts = vec![false; remap.tablespaces.len()];
    let mut used_links = vec![false; remap.links.len()];
    let rels: Vec<&str> = manifest
        .links
        .iter()
        .map(|l| data_rel(manifest, &l.name))
        .collect::<Result<_>>()?;
    for (link, rel) in manifest.links.iter().zip(&rels) {
        let nested = rels
            .iter()
            .any(|other| rel.starts_with(&format!("{other}/")));
        if rel.is_empty() || nested {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "manifest of backup set '{}' has a link inside another link: '{}'",
                    manifest.label, link.name
                ),
            ));
        }
        let tablespace = tablespace_oid(rel);
        let destination = if let Some(oid) = tablespace {
            let name = names.get(&oid);
            let mapped = remap
                .tablespaces
                .iter()
                .position(|(key, _)| key.parse::<u32>().ok() == Some(oid) || Some(key) == name);
            let destination = match (mapped, &remap.tablespace_all) {
                (Some(index), _) => {
                    used_ts[index] = true;
                    Some(remap.tablespaces[index].1.clone())
                }
                (None, Some(all)) => Some(format!(
                    "{all}/{}",
                    name.cloned().unwrap_or_else(|| oid.to_string())
                )),
                (None, None) => None,
            };
            match destination {
                Some(to) => {
                    let path = check_destination(&format!("tablespace '{oid}'"), &to, true)?;
                    if path != Path::new(&link.target) {
                        crate::log_info!(
                            "remap tablespace {rel}{} directory to '{to}'",
                            name.map(|n| format!(" ({n})")).unwrap_or_default()
                        );
                        tablespaces_moved = true;
                    }
                    path
                }
                None => check_destination(&format!("tablespace '{oid}'"), &link.target, false)?,
            }
        } else if rel.starts_with("pg_tblspc/") {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "manifest of backup set '{}' has a link in pg_tblspc that is not a tablespace: '{}'",
                    manifest.label, link.name
                ),
            ));
        } else {
            let holds = {
                let prefix = format!("{}/", link.name);
                manifest.paths.iter().any(|p| p.name.starts_with(&prefix))
                    || manifest.files.iter().any(|f| f.name.starts_with(&prefix))
            };
            let mapped = remap
                .links
                .iter()
                .position(|(key, _)| key.strip_prefix("pg_data/").unwrap_or(key) == *rel);
            let destination = match (mapped, remap.link_all) {
                (Some(index), _) => {
                    used_links[index] = true;
                    let to = &remap.links[index].1;
                    crate::log_info!("remap link '{rel}' destination to '{to}'");
                    check_destination(&format!("link '{rel}'"), to, true)?
                }
                (None, true) => check_destination(&format!("link '{rel}'"), &link.target, false)?,
                (None, false) if holds || *rel == wal_dir => {
                    crate::log_info!(
                        "link '{rel}' (to '{}') is restored as a directory in the data \
                         directory: use link-all or link-map to restore the link",
                        link.target
                    );
                    continue;
                }
                (None, false) => {
                    crate::log_warn!(
                        "link '{rel}' (to '{}') is not restored: the backup holds nothing under \
                         it; use link-all or link-map to restore the link",
                        link.target
                    );
                    continue;
                }
            };
            if !holds && *rel != wal_dir {
                links.push(PlannedLink {
                    rel: rel.to_string(),
                    destination,
                    root: None,
                    tablespace: None,
                });
                continue;
            }
            destination
        };
        let owned_top = tablespace.map(|_| {
            let prefix = format!("{}/", link.name);
            manifest
                .paths
                .iter()
                .filter_map(|p| p.name.strip_prefix(&prefix))
                .filter(|child| !child.contains('/'))
                .map(str::to_string)
                .collect()
        });
        roots.push(Root {
            path: destination.clone(),
            owned_top,
        });
        links.push(PlannedLink {
            rel: rel.to_string(),
            destination,
            root: Some(roots.len() - 1),
            tablespace,
        });
    }
    unused_remaps(manifest, remap, &used_ts, &used_links, names)?;
    check_overlaps(&roots)?;

    let place = |name: &str| -> Result<Place> {
        let rel = data_rel(manifest, name)?;
        for link in &links {
            let Some(root) = link.root else {
                continue;
            };
            if rel == link.rel {
                return Ok(Place {
                    root,
                    rel: String::new(),
                });
            }
            if let Some(rest) = rel.strip_prefix(&format!("{}/", link.rel)) {
                return Ok(Place {
                    root,
                    rel: rest.to_string(),
                });
            }
        }
        Ok(Place {
            root: 0,
            rel: rel.to_string(),
        })
    };
    let paths = manifest
        .paths
        .iter()
        .map(|p| place(&p.name))
        .collect::<Result<Vec<_>>>()?;
    let files = manifest
        .files
        .iter()
        .map(|f| Ok((place(&f.name)?, excluded.zeroes(&f.name))))
        .collect::<Result<Vec<_>>>()?;
    for (file, (placed, _)) in manifest.files.iter().zip(&files) {
        if placed.rel.is_empty() {
            return Err(Error::new(
                ErrorKind::FileInvalid,
                format!(
                    "manifest of backup set '{}' has a file where a directory or link goes: '{}'",
                    manifest.label, file.name
                ),
            ));
        }
    }
    Ok(Plan {
        roots,
        links,
        paths,
        files,
        tablespaces_moved,
    })
}

/// A remap naming nothing in the backup is an error: the DBA meant something else.
fn unused_remaps(
    manifest: &Manifest,
    remap: &Remap,
    used_ts: &[bool],
    used_links: &[bool],
    names: &BTreeMap<u32, String>,
) -> Result<()> {
    if let Some(index) = used_ts.iter().position(|used| !used) {
        let known: Vec<String> = manifest
            .links
            .iter()
            .filter_map(|l| l.name.strip_prefix("pg_data/").and_then(tablespace_oid))
            .map(|oid| match names.get(&oid) {
                Some(name) => format!("{name} ({oid})"),
                None => oid.to_string(),
            })
            .collect();
        let hint = if known.is_empty() {
            "the backup set has no tablespaces".to_string()
        } else {
            format!("the backup set's tablespaces are: {}", known.join(", "))
        };
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!(
                "unable to remap invalid tablespace '{}'",
                remap.tablespaces[index].0
            ),
        )
        .with_hint(hint));
    }
    if let Some(index) = used_links.iter().position(|used| !used) {
        let key = &remap.links[index].0;
        let rel = key.strip_prefix("pg_data/").unwrap_or(key);
        let hint = if tablespace_oid(rel).is_some() {
            "tablespaces are remapped with tablespace-map".to_string()
        } else {
            let known: Vec<&str> = manifest
                .links
                .iter()
                .filter_map(|l| l.name.strip_prefix("pg_data/"))
                .filter(|rel| tablespace_oid(rel).is_none())
                .collect();
            if known.is_empty() {
                "the backup set has no links other than tablespaces".to_string()
            } else {
                format!("the backup set's links are: {}", known.join(", "))
            }
        };
        return Err(Error::new(
            ErrorKind::OptionInvalidValue,
            format!("unable to remap invalid link '{key}'"),
        )
        .with_hint(hint));
    }
    Ok(())
}

/// No root may contain another: a link into the data directory, or two tablespaces in one
/// place, would make one restore overwrite or clean another's files.
fn check_overlaps(roots: &[Root]) -> Result<()> {
    for (i, a) in roots.iter().enumerate() {
        for b in roots.iter().skip(i + 1) {
            if a.path.starts_with(&b.path) || b.path.starts_with(&a.path) {
                let what = if i == 0 {
                    format!(
                        "link destination '{}' overlaps the data directory '{}'",
                        b.path.display(),
                        a.path.display()
                    )
                } else {
                    format!(
                        "link destinations '{}' and '{}' overlap",
                        a.path.display(),
                        b.path.display()
                    )
                };
                return Err(Error::new(ErrorKind::OptionInvalidValue, what).with_hint(
                    "give each tablespace and link its own directory outside the data directory \
                     (tablespace-map, link-map)",
                ));
            }
        }
    }
    Ok(())
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
