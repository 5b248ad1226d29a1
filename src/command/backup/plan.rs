//! Building a backup's file list: walk the data directory, apply PostgreSQL's exclusions, and
//! decide per file whether to copy it, reference it from the prior backup, or check its content.
//!
//! Decisions are pure given the listing and the prior manifest, so they are unit-tested without
//! a cluster.

use std::collections::{HashMap, HashSet};

use crate::error::Result;
use crate::log_detail;
use crate::pg::PgVersion;
use crate::pg::exclude::{self, Exclusion};
use crate::repo::Manifest;
use crate::repo::manifest::{FileEntry, LinkEntry, PG_DATA, PathEntry};
use crate::storage::{FileInfo, FileType, Storage};

/// One file found in the data directory.
#[derive(Debug, Clone)]
pub struct SourceFile {
    /// Path relative to the data directory.
    pub rel: String,
    pub info: FileInfo,
}

/// The data directory as the backup will record it.
#[derive(Debug, Default)]
pub struct Listing {
    pub paths: Vec<PathEntry>,
    pub files: Vec<SourceFile>,
    pub links: Vec<LinkEntry>,
}

/// Resolves uids and gids to names once each.
#[derive(Default)]
pub struct Owners {
    users: HashMap<u32, Option<String>>,
    groups: HashMap<u32, Option<String>>,
}

impl Owners {
    pub fn user(&mut self, uid: u32) -> Option<String> {
        self.users
            .entry(uid)
            .or_insert_with(|| {
                nix::unistd::User::from_uid(uid.into())
                    .ok()
                    .flatten()
                    .map(|u| u.name)
            })
            .clone()
    }

    pub fn group(&mut self, gid: u32) -> Option<String> {
        self.groups
            .entry(gid)
            .or_insert_with(|| {
                nix::unistd::Group::from_gid(gid.into())
                    .ok()
                    .flatten()
                    .map(|g| g.name)
            })
            .clone()
    }
}

/// Walks the data directory. Tablespace links under `pg_tblspc` are recorded and followed, so
/// their files are backed up under `pg_tblspc/<oid>/`.
pub fn list_data_dir(
    pg: &dyn Storage,
    version: PgVersion,
    exclude: &[String],
    owners: &mut Owners,
) -> Result<Listing> {
    let mut listing = Listing::default();
    let root = pg.info("")?;
    if let Some(root) = root {
        listing.paths.push(PathEntry {
            name: PG_DATA.to_string(),
            mode: root.mode,
            user: owners.user(root.uid),
            group: owners.group(root.gid),
        });
    }
    let mut pending = vec![String::new()];
    while let Some(dir) = pending.pop() {
        let Some(entries) = pg.list(&dir)? else {
            // Removed by the database while we walked (e.g. a dropped database).
            continue;
        };
        let names: Vec<String> = entries.iter().map(|e| e.name.clone()).collect();
        let unlogged: HashSet<String> = if is_database_dir(&dir) {
            exclude::unlogged_to_skip(&names)
        } else {
            HashSet::new()
        };
        for entry in entries {
            let rel = if dir.is_empty() {
                entry.name.clone()
            } else {
                format!("{dir}/{}", entry.name)
            };
            // A link to a directory (a tablespace, a relocated pg_wal or log directory) is
            // followed: its contents are part of the cluster.
            let linked_dir = entry.file_type == FileType::Link
                && pg
                    .info(&format!("{rel}/"))?
                    .is_some_and(|i| i.file_type == FileType::Path);
            let is_dir = entry.file_type == FileType::Path || linked_dir;
            let exclusion = match user_exclusion(&rel, is_dir, exclude) {
                Some(exclusion) => exclusion,
                None => exclude::classify(&rel, is_dir, version),
            };
            if exclusion == Exclusion::Skip {
                log_detail!("skip '{rel}': excluded from the backup");
                continue;
            }
            let contents = exclusion == Exclusion::Include;
            match entry.file_type {
                FileType::Path => {
                    listing.paths.push(path_entry(&rel, &entry, owners));
                    if contents {
                        pending.push(rel);
                    }
                }
                FileType::Link => {
                    let target = entry.link_target.clone().unwrap_or_default();
                    listing.links.push(LinkEntry {
                        name: format!("{PG_DATA}/{rel}"),
                        target,
                    });
                    if !is_dir {
                        crate::log_warn!(
                            "'{rel}' is a link to a file: the link is recorded, the file it points to is not backed up"
                        );
                    }
                    if is_dir && contents {
                        // The directory's own mode, then its contents.
                        if let Some(info) = pg.info(&format!("{rel}/"))? {
                            listing.paths.push(path_entry(&rel, &info, owners));
                        }
                        pending.push(rel);
                    }
                }
                FileType::File => {
                    if unlogged.contains(&entry.name) {
                        log_detail!("skip '{rel}': unlogged relation, reset by recovery");
                        continue;
                    }
                    listing.files.push(SourceFile { rel, info: entry });
                }
                FileType::Special => {
                    log_detail!("skip '{rel}': not a regular file, directory or link")
                }
            }
        }
    }
    listing.paths.sort_by(|a, b| a.name.cmp(&b.name));
    listing.links.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(listing)
}

/// The `exclude` option, as pgBackRest reads it: `dir/` skips the directory's contents but
/// keeps the directory; anything else matches a file or directory exactly (a directory with its
/// contents).
fn user_exclusion(rel: &str, is_dir: bool, exclude: &[String]) -> Option<Exclusion> {
    for pattern in exclude {
        if let Some(dir) = pattern.strip_suffix('/') {
            if is_dir && rel == dir {
                crate::log_info!(
                    "exclude contents of '{rel}' from backup using '{pattern}' exclusion"
                );
                return Some(Exclusion::SkipContents);
            }
        } else if rel == pattern {
            crate::log_info!("exclude '{rel}' from backup using '{pattern}' exclusion");
            return Some(Exclusion::Skip);
        }
    }
    None
}

fn path_entry(rel: &str, info: &FileInfo, owners: &mut Owners) -> PathEntry {
    PathEntry {
        name: format!("{PG_DATA}/{rel}"),
        mode: info.mode,
        user: owners.user(info.uid),
        group: owners.group(info.gid),
    }
}

/// `base/<oid>` and `pg_tblspc/<oid>/<version dir>/<oid>` hold one database's relations.
fn is_database_dir(dir: &str) -> bool {
    let parts: Vec<&str> = dir.split('/').collect();
    let is_oid = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    match parts.as_slice() {
        ["base", oid] => is_oid(oid),
        ["pg_tblspc", ts, _, oid] => is_oid(ts) && is_oid(oid),
        _ => false,
    }
}

/// What to do with one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Copy it into this backup.
    Copy,
    /// Unchanged since the prior backup: reference that backup's copy.
    Reference(FileEntry),
    /// Size and time match the prior backup but cannot be trusted: compare checksums, then
    /// reference or copy.
    Check(FileEntry),
}

/// Decides how to back up `file` given the prior backup (diff/incr), if any.
///
/// Size and modification time decide, as for rsync, except when the time is suspicious: a
/// file modified at or after the second the prior backup started may have changed again within
/// the same second after it was copied, and a time in the future says the clock cannot be
/// trusted. Those files are checked by checksum.
pub fn decide(file: &SourceFile, prior: Option<&Manifest>, now: i64) -> Action {
    let Some(prior) = prior else {
        return Action::Copy;
    };
    let name = format!("{PG_DATA}/{}", file.rel);
    let Some(entry) = prior.file(&name) else {
        return Action::Copy;
    };
    if entry.size != file.info.size || entry.mtime != file.info.mtime {
        return Action::Copy;
    }
    let mut referenced = entry.clone();
    referenced.reference = Some(prior.holder(entry).to_string());
    if file.info.mtime >= prior.timestamp_start || file.info.mtime > now {
        Action::Check(referenced)
    } else {
        Action::Reference(referenced)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::CompressType;
    use crate::repo::BackupType;

    fn source(rel: &str, size: u64, mtime: i64) -> SourceFile {
        SourceFile {
            rel: rel.to_string(),
            info: FileInfo {
                name: rel.rsplit('/').next().unwrap().to_string(),
                file_type: FileType::File,
                size,
                mtime,
                mode: 0o600,
                uid: 0,
                gid: 0,
                link_target: None,
            },
        }
    }

    fn prior(files: Vec<(&str, u64, i64, Option<&str>)>) -> Manifest {
        Manifest {
            label: "20261124-100000F".into(),
            backup_type: BackupType::Full,
            prior: None,
            references: vec![],
            db_id: 1,
            pg_version: "15".into(),
            system_id: 1,
            pg_path: "/pg".into(),
            compress_type: CompressType::Zst,
            timestamp_start: 1_000,
            timestamp_stop: 1_100,
            lsn_start: "0/2000028".into(),
            lsn_stop: "0/2000100".into(),
            archive_start: "000000010000000000000002".into(),
            archive_stop: "000000010000000000000002".into(),
            timeline: 1,
            data_checksums: true,
            checksum_page: true,
            online: true,
            archive_copy: false,
            databases: vec![],
            annotation: Default::default(),
            paths: vec![],
            links: vec![],
            files: files
                .into_iter()
                .map(|(name, size, mtime, reference)| FileEntry {
                    name: format!("pg_data/{name}"),
                    size,
                    mtime,
                    mode: 0o600,
                    user: None,
                    group: None,
                    checksum: "c".repeat(64),
                    repo_size: size / 2,
                    reference: reference.map(str::to_string),
                    page_errors: None,
                    block: None,
                    bundle_id: None,
                    bundle_offset: None,
                })
                .collect(),
        }
    }

    #[test]
    fn a_full_backup_copies_everything() {
        assert_eq!(
            decide(&source("base/1/1", 10, 500), None, 2_000),
            Action::Copy
        );
    }

    #[test]
    fn unchanged_files_reference_the_backup_holding_them() {
        let prior = prior(vec![
            ("base/1/1", 10, 500, None),
            ("base/1/2", 10, 500, Some("20261120-000000F")),
        ]);
        match decide(&source("base/1/1", 10, 500), Some(&prior), 2_000) {
            Action::Reference(entry) => {
                assert_eq!(entry.reference.as_deref(), Some("20261124-100000F"))
            }
            other => panic!("{other:?}"),
        }
        match decide(&source("base/1/2", 10, 500), Some(&prior), 2_000) {
            Action::Reference(entry) => {
                assert_eq!(entry.reference.as_deref(), Some("20261120-000000F"))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn changed_size_or_time_or_new_files_are_copied() {
        let prior = prior(vec![("base/1/1", 10, 500, None)]);
        assert_eq!(
            decide(&source("base/1/1", 11, 500), Some(&prior), 2_000),
            Action::Copy
        );
        assert_eq!(
            decide(&source("base/1/1", 10, 501), Some(&prior), 2_000),
            Action::Copy
        );
        assert_eq!(
            decide(&source("base/1/3", 10, 500), Some(&prior), 2_000),
            Action::Copy
        );
    }

    #[test]
    fn suspicious_times_are_checked_by_checksum() {
        // Modified in the second the prior backup started, and a clock in the future.
        let prior = prior(vec![
            ("base/1/1", 10, 1_000, None),
            ("base/1/2", 10, 9_999, None),
        ]);
        assert!(matches!(
            decide(&source("base/1/1", 10, 1_000), Some(&prior), 2_000),
            Action::Check(_)
        ));
        assert!(matches!(
            decide(&source("base/1/2", 10, 9_999), Some(&prior), 2_000),
            Action::Check(_)
        ));
    }

    #[test]
    fn user_exclusions_follow_pgbackrest() {
        let exclude = vec![
            "junk/".to_string(),
            "log".to_string(),
            "extra.conf".to_string(),
        ];
        assert_eq!(
            user_exclusion("junk", true, &exclude),
            Some(Exclusion::SkipContents)
        );
        assert_eq!(user_exclusion("log", true, &exclude), Some(Exclusion::Skip));
        assert_eq!(
            user_exclusion("extra.conf", false, &exclude),
            Some(Exclusion::Skip)
        );
        assert_eq!(user_exclusion("junk/a", false, &exclude), None);
        assert_eq!(user_exclusion("logx", true, &exclude), None);
    }

    #[test]
    fn database_dirs_are_recognised() {
        assert!(is_database_dir("base/16384"));
        assert!(is_database_dir("pg_tblspc/16500/PG_15_202209061/16384"));
        assert!(!is_database_dir("base"));
        assert!(!is_database_dir("global"));
        assert!(!is_database_dir("base/pgsql_tmp"));
    }
}
