//! The checks a manifest must pass on its own, before anything is restored from it or it is
//! called valid: every name lies under `pg_data/` with plain components (no `..`, `.`, empty
//! or absolute parts), modes are permission bits only, links do not nest and in `pg_tblspc`
//! are tablespaces (`pg_tblspc/<oid>`), and every link destination is absolute and `..`-free.
//! restore and verify both hold a manifest to them, so a backup verify calls valid is never
//! refused by restore for its names; what depends on a restore's options is restore's own.

use std::path::{Component, Path, PathBuf};

use crate::error::{Error, ErrorKind, Result};
use crate::repo::Manifest;
use crate::repo::manifest::{LinkEntry, PG_DATA};

/// The path checks a manifest must pass on its own, whatever the restore's options: every
/// path, file and link name lies under `pg_data/` with plain components, links do not nest and
/// in `pg_tblspc` are tablespaces, and every tablespace link points to an absolute, `..`-free
/// directory (PostgreSQL only makes such tablespace links: anything else was written by hand).
/// restore calls it before planning and verify calls it for every backup, so a backup verify
/// calls valid is never refused by restore for its names. What depends on the restore's
/// options (where remapped destinations go, whether they overlap the data directory, the
/// destination of a link restored as a link with `link-all`) is checked by `plan` alone.
pub fn check_manifest(manifest: &Manifest) -> Result<()> {
    let names = manifest
        .paths
        .iter()
        .map(|p| &p.name)
        .chain(manifest.files.iter().map(|f| &f.name));
    for name in names {
        data_rel(manifest, name)?;
    }
    let modes = manifest
        .paths
        .iter()
        .map(|p| (&p.name, p.mode))
        .chain(manifest.files.iter().map(|f| (&f.name, f.mode)));
    for (name, mode) in modes {
        check_mode(manifest, name, mode)?;
    }
    let rels: Vec<&str> = manifest
        .links
        .iter()
        .map(|l| data_rel(manifest, &l.name))
        .collect::<Result<_>>()?;
    for (link, rel) in manifest.links.iter().zip(&rels) {
        check_link(manifest, link, rel, &rels)?;
        if let Some(oid) = tablespace_oid(rel) {
            check_destination(&format!("tablespace '{oid}'"), &link.target, false)?;
        }
    }
    Ok(())
}

/// A mode a restore may give: permission bits only. PostgreSQL never makes set-user-ID,
/// set-group-ID or sticky files in its data directory; a manifest asking for them was written
/// by someone else, and obeying would plant a set-user-ID program owned by the restoring user.
fn check_mode(manifest: &Manifest, name: &str, mode: u32) -> Result<()> {
    if mode & !0o777 == 0 {
        return Ok(());
    }
    Err(Error::new(
        ErrorKind::FileInvalid,
        format!(
            "manifest of backup set '{}' gives '{name}' mode '{mode:o}': only permission bits \
             (0777) are allowed",
            manifest.label
        ),
    )
    .with_hint(
        "the manifest is damaged or was not written by pgkeep: restore another set with --set",
    ))
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
pub fn check_destination(what: &str, destination: &str, user: bool) -> Result<PathBuf> {
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

/// The oid of a tablespace link, `pg_tblspc/<oid>` relative to the data directory.
pub fn tablespace_oid(rel: &str) -> Option<u32> {
    rel.strip_prefix("pg_tblspc/")
        .filter(|oid| !oid.is_empty() && oid.bytes().all(|b| b.is_ascii_digit()))
        .and_then(|oid| oid.parse().ok())
}

/// Refuses a link the data directory cannot hold: the data directory itself, a link inside
/// another link, or a link in pg_tblspc that is not a tablespace.
pub fn check_link(manifest: &Manifest, link: &LinkEntry, rel: &str, all: &[&str]) -> Result<()> {
    let problem = if rel.is_empty()
        || all
            .iter()
            .any(|other| rel.starts_with(&format!("{other}/")))
    {
        "a link inside another link"
    } else if rel.starts_with("pg_tblspc/") && tablespace_oid(rel).is_none() {
        "a link in pg_tblspc that is not a tablespace"
    } else {
        return Ok(());
    };
    Err(Error::new(
        ErrorKind::FileInvalid,
        format!(
            "manifest of backup set '{}' has {problem}: '{}'",
            manifest.label, link.name
        ),
    )
    .with_hint(
        "the manifest is damaged or was not written by pgkeep: restore another set with --set",
    ))
}
