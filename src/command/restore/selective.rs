//! Selective restore: which databases `db-include` / `db-exclude` leave out.
//!
//! A database left out is still restored as files, but as zero-filled sparse files of the
//! backed-up size: recovery replays WAL into them (every page touched after the backup's
//! checkpoint arrives as a full-page image) and completes, and the DBA then drops the database.
//! System databases (oid below 16384: template0, template1, postgres) are always restored, as
//! is each database directory's PG_VERSION. Databases are named by name or oid; the manifest's
//! database list maps one to the other.

use std::collections::BTreeSet;

use crate::error::{Error, ErrorKind, Result};
use crate::repo::Manifest;
use crate::repo::manifest::PG_DATA;

/// PostgreSQL's `FirstNormalObjectId`: objects below it come with initdb.
const FIRST_NORMAL_OID: u32 = 16384;

/// The databases a restore zeroes, with what to tell the DBA.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Excluded {
    pub oids: BTreeSet<u32>,
    /// `DROP DATABASE` statements (or a description when the name is unknown), oid order.
    pub drops: Vec<String>,
}

impl Excluded {
    pub fn is_empty(&self) -> bool {
        self.oids.is_empty()
    }

    /// Whether the manifest file `name` belongs to an excluded database and is zeroed.
    pub fn zeroes(&self, name: &str) -> bool {
        !self.oids.is_empty() && database_of(name).is_some_and(|oid| self.oids.contains(&oid))
    }
}

/// The database a data file belongs to: `base/<oid>/...` or
/// `pg_tblspc/<tablespace>/<version dir>/<oid>/...`, except PG_VERSION.
fn database_of(name: &str) -> Option<u32> {
    let rel = name.strip_prefix(PG_DATA)?.strip_prefix('/')?;
    let parts: Vec<&str> = rel.split('/').collect();
    let (oid, file) = match parts.as_slice() {
        ["base", oid, file] => (oid, file),
        ["pg_tblspc", _, _, oid, file] => (oid, file),
        _ => return None,
    };
    if *file == "PG_VERSION" {
        return None;
    }
    oid.parse().ok()
}

/// The databases every database directory of the manifest names, by oid.
fn database_dirs(manifest: &Manifest) -> BTreeSet<u32> {
    manifest
        .paths
        .iter()
        .filter_map(|p| p.name.strip_prefix(&format!("{PG_DATA}/base/")))
        .filter_map(|oid| oid.parse().ok())
        .collect()
}

/// Resolves `include` and `exclude` (names or oids) against the backup's databases.
pub fn excluded(manifest: &Manifest, include: &[String], exclude: &[String]) -> Result<Excluded> {
    if include.is_empty() && exclude.is_empty() {
        return Ok(Excluded::default());
    }
    let dirs = database_dirs(manifest);
    let name_of = |oid: u32| {
        manifest
            .databases
            .iter()
            .find(|d| d.oid == oid)
            .map(|d| d.name.clone())
    };
    let lookup = |given: &str, what: &str| -> Result<u32> {
        let found = manifest
            .databases
            .iter()
            .find(|d| d.name == given)
            .map(|d| d.oid)
            .or_else(|| given.parse::<u32>().ok().filter(|oid| dirs.contains(oid)));
        found.ok_or_else(|| {
            let known: Vec<String> = manifest
                .databases
                .iter()
                .map(|d| format!("{} ({})", d.name, d.oid))
                .collect();
            let hint = if known.is_empty() {
                "this backup set does not record database names: give the database oid".into()
            } else {
                format!("the backup set's databases are: {}", known.join(", "))
            };
            Error::new(
                ErrorKind::DbMissing,
                format!(
                    "database to {what} '{given}' is not in backup set '{}'",
                    manifest.label
                ),
            )
            .with_hint(hint)
        })
    };
    let mut oids: BTreeSet<u32> = BTreeSet::new();
    if !include.is_empty() {
        let kept: BTreeSet<u32> = include
            .iter()
            .map(|given| lookup(given, "include"))
            .collect::<Result<_>>()?;
        oids.extend(dirs.iter().filter(|oid| !kept.contains(oid)));
    }
    for given in exclude {
        let oid = lookup(given, "exclude")?;
        if oid < FIRST_NORMAL_OID {
            return Err(Error::new(
                ErrorKind::OptionInvalidValue,
                format!("system database '{given}' cannot be excluded"),
            )
            .with_hint("template0, template1 and postgres are always restored"));
        }
        oids.insert(oid);
    }
    oids.retain(|oid| *oid >= FIRST_NORMAL_OID);
    let drops = oids
        .iter()
        .map(|oid| match name_of(*oid) {
            Some(name) => format!("DROP DATABASE \"{}\";", name.replace('"', "\"\"")),
            None => format!("the database with oid {oid}"),
        })
        .collect();
    Ok(Excluded { oids, drops })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::command::restore::fixture::{self, path};
    use crate::repo::manifest::DatabaseEntry;

    fn manifest() -> Manifest {
        let db = |name: &str, oid| DatabaseEntry {
            name: name.into(),
            oid,
        };
        let mut m = fixture::manifest();
        m.databases = vec![
            db("template1", 1),
            db("template0", 4),
            db("postgres", 5),
            db("app", 16384),
            db("my\"db", 16385),
            db("other", 16386),
        ];
        for oid in [1, 4, 5, 16384, 16385, 16386] {
            m.paths.push(path(&format!("pg_data/base/{oid}")));
        }
        m
    }

    #[test]
    fn include_keeps_the_named_and_system_databases() {
        let excluded = excluded(&manifest(), &["app".into()], &[]).unwrap();
        assert_eq!(excluded.oids, BTreeSet::from([16385, 16386]));
        assert_eq!(
            excluded.drops,
            ["DROP DATABASE \"my\"\"db\";", "DROP DATABASE \"other\";"]
        );
        assert!(excluded.zeroes("pg_data/base/16385/2619"));
        assert!(excluded.zeroes("pg_data/pg_tblspc/16500/PG_15_202209061/16386/16390.1"));
        assert!(!excluded.zeroes("pg_data/base/16385/PG_VERSION"));
        assert!(!excluded.zeroes("pg_data/base/16384/2619"));
        assert!(!excluded.zeroes("pg_data/base/5/2619"));
        assert!(!excluded.zeroes("pg_data/global/1262"));
    }

    #[test]
    fn exclude_by_name_or_oid() {
        let excluded = excluded(&manifest(), &[], &["16384".into(), "other".into()]).unwrap();
        assert_eq!(excluded.oids, BTreeSet::from([16384, 16386]));
        let none = super::excluded(&manifest(), &[], &[]).unwrap();
        assert!(none.is_empty() && !none.zeroes("pg_data/base/16384/1"));
    }

    #[test]
    fn unknown_and_system_databases_are_refused() {
        let err = excluded(&manifest(), &["nope".into()], &[]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DbMissing);
        assert_eq!(
            err.message(),
            "database to include 'nope' is not in backup set 'L'"
        );
        assert!(err.hint().unwrap().contains("app (16384)"));
        let err = excluded(&manifest(), &[], &["postgres".into()]).unwrap_err();
        assert_eq!(
            err.message(),
            "system database 'postgres' cannot be excluded"
        );
        // An oid must name a database directory of the backup.
        assert!(excluded(&manifest(), &["99999".into()], &[]).is_err());
    }

    #[test]
    fn without_names_oids_still_work() {
        let mut m = manifest();
        m.databases.clear();
        let excluded = excluded(&m, &[], &["16385".into()]).unwrap();
        assert_eq!(excluded.drops, ["the database with oid 16385"]);
        let err = super::excluded(&m, &[], &["app".into()]).unwrap_err();
        assert_eq!(
            err.hint().unwrap(),
            "this backup set does not record database names: give the database oid"
        );
    }
}
