//! Where every part of a backup set goes, decided and checked (by `safety`) before anything
//! is written: a manifest that could make restore write elsewhere is refused whole. Tablespaces
//! (`pg_tblspc/<oid>` links) go to their original location, `tablespace-map` or
//! `tablespace-map-all`; other links (a relocated pg_wal, say) become plain directories in the
//! data directory unless `link-all` or `link-map` restores them as links. The result names
//! each entry by a root (the data directory, or a link destination) and a path relative to it,
//! so writes go to the planned place, never through a link found on disk.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::Manifest;
use crate::repo::manifest::LinkEntry;
use crate::{log_info, log_warn};

use crate::repo::manifest_check::{self, check_destination, data_rel, tablespace_oid};

use super::safety;
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

/// Which remaps were used, to refuse the ones that name nothing.
struct Used {
    tablespaces: Vec<bool>,
    links: Vec<bool>,
}

/// Builds and checks the plan. `names` maps tablespace oids to names where known; `wal_dir` is
/// the version's WAL directory, which restore always creates.
pub fn plan(
    manifest: &Manifest,
    pg_path: &Path,
    remap: &Remap,
    names: &BTreeMap<u32, String>,
    excluded: &Excluded,
    wal_dir: &str,
) -> Result<Plan> {
    manifest_check::check_manifest(manifest)?;
    let mut roots = vec![Root {
        path: pg_path.to_path_buf(),
        owned_top: None,
    }];
    let mut links: Vec<PlannedLink> = Vec::new();
    let mut tablespaces_moved = false;
    let mut used = Used {
        tablespaces: vec![false; remap.tablespaces.len()],
        links: vec![false; remap.links.len()],
    };
    let rels: Vec<&str> = manifest
        .links
        .iter()
        .map(|l| data_rel(manifest, &l.name))
        .collect::<Result<_>>()?;
    for (link, rel) in manifest.links.iter().zip(&rels) {
        manifest_check::check_link(manifest, link, rel, &rels)?;
        let tablespace = tablespace_oid(rel);
        let placed = match tablespace {
            Some(oid) => {
                let (destination, moved) =
                    tablespace_destination(link, oid, remap, names, &mut used)?;
                tablespaces_moved |= moved;
                Some((destination, true))
            }
            None => link_destination(manifest, link, rel, remap, wal_dir, &mut used)?,
        };
        let Some((destination, is_dir)) = placed else {
            continue;
        };
        let root = is_dir.then(|| {
            // At a tablespace location only the backup's version directory is restore's.
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
            roots.len() - 1
        });
        links.push(PlannedLink {
            rel: rel.to_string(),
            destination,
            root,
            tablespace,
        });
    }
    safety::unused_remaps(manifest, remap, &used.tablespaces, &used.links, names)?;
    safety::check_overlaps(&roots)?;

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
    if let Some(file) = manifest
        .files
        .iter()
        .zip(&files)
        .find(|(_, (p, _))| p.rel.is_empty())
    {
        return Err(Error::new(
            ErrorKind::FileInvalid,
            format!(
                "manifest of backup set '{}' has a file where a directory or link goes: '{}'",
                manifest.label, file.0.name
            ),
        ));
    }
    Ok(Plan {
        roots,
        links,
        paths,
        files,
        tablespaces_moved,
    })
}

/// A tablespace's directory: `tablespace-map` (by oid or name), else `tablespace-map-all`
/// (under its name, or its oid when the name is unknown), else where it was. Also whether it
/// moved.
fn tablespace_destination(
    link: &LinkEntry,
    oid: u32,
    remap: &Remap,
    names: &BTreeMap<u32, String>,
    used: &mut Used,
) -> Result<(PathBuf, bool)> {
    let name = names.get(&oid);
    let what = format!("tablespace '{oid}'");
    let mapped = remap
        .tablespaces
        .iter()
        .position(|(key, _)| key.parse::<u32>().ok() == Some(oid) || Some(key) == name);
    let to = match (mapped, &remap.tablespace_all) {
        (Some(index), _) => {
            used.tablespaces[index] = true;
            remap.tablespaces[index].1.clone()
        }
        (None, Some(all)) => format!("{all}/{}", name.cloned().unwrap_or_else(|| oid.to_string())),
        (None, None) => return Ok((check_destination(&what, &link.target, false)?, false)),
    };
    let path = check_destination(&what, &to, true)?;
    let moved = path != Path::new(&link.target);
    if moved {
        // pgBackRest's line: the tablespace by its link in the data directory.
        log_info!("map tablespace 'pg_tblspc/{oid}' to '{to}'");
    }
    Ok((path, moved))
}

/// Where another link points, and whether it is a directory restore writes under (the WAL
/// directory, or one the backup holds entries under); `None` when it is not restored as a
/// link: without `link-all` or `link-map` such a link becomes a plain directory in the data
/// directory, because its destination may not be safe to write on this host.
fn link_destination(
    manifest: &Manifest,
    link: &LinkEntry,
    rel: &str,
    remap: &Remap,
    wal_dir: &str,
    used: &mut Used,
) -> Result<Option<(PathBuf, bool)>> {
    let prefix = format!("{}/", link.name);
    let is_dir = rel == wal_dir
        || manifest.paths.iter().any(|p| p.name.starts_with(&prefix))
        || manifest.files.iter().any(|f| f.name.starts_with(&prefix));
    let what = format!("link '{rel}'");
    let mapped = remap
        .links
        .iter()
        .position(|(key, _)| key.strip_prefix("pg_data/").unwrap_or(key) == rel);
    let destination = match (mapped, remap.link_all) {
        (Some(index), _) => {
            used.links[index] = true;
            let to = &remap.links[index].1;
            log_info!("map link '{rel}' to '{to}'");
            check_destination(&what, to, true)?
        }
        (None, true) => check_destination(&what, &link.target, false)?,
        (None, false) if is_dir => {
            log_info!(
                "link '{rel}' (to '{}') is restored as a directory in the data directory: use \
                 link-all or link-map to restore the link",
                link.target
            );
            return Ok(None);
        }
        (None, false) => {
            log_warn!(
                "link '{rel}' (to '{}') is not restored: the backup holds nothing under it; use \
                 link-all or link-map to restore the link",
                link.target
            );
            return Ok(None);
        }
    };
    Ok(Some((destination, is_dir)))
}

#[cfg(test)]
#[path = "plan_tests.rs"]
mod tests;
