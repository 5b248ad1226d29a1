//! The checks that keep restore inside the places it was given, beyond the manifest's own
//! (`repo::manifest_check`): a remap that names nothing in the backup is refused (the DBA meant
//! something else), and no two roots (the data directory, link destinations) may contain one
//! another. A restore failing these is refused whole, before anything is written.

use std::collections::BTreeMap;

use crate::error::{Error, ErrorKind, Result};
use crate::repo::Manifest;
use crate::repo::manifest_check::tablespace_oid;

use super::plan::{Remap, Root};

/// A remap naming nothing in the backup is an error: the DBA meant something else.
pub fn unused_remaps(
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
            ErrorKind::TablespaceMap,
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
            ErrorKind::LinkMap,
            format!("unable to remap invalid link '{key}'"),
        )
        .with_hint(hint));
    }
    Ok(())
}

/// No root may contain another: a link into the data directory, or two tablespaces in one
/// place, would make one restore overwrite or clean another's files.
pub fn check_overlaps(roots: &[Root]) -> Result<()> {
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
