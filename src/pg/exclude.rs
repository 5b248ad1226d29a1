//! What a backup leaves out of a data directory, by PostgreSQL's own rules.
//!
//! PostgreSQL's base backup protocol (basebackup.c) skips files that are rebuilt at startup or
//! that would harm a restored cluster: the contents of pg_wal and of the runtime directories,
//! the postmaster's pid and options files, a leftover backup_label, temporary files and
//! relations, and the data of unlogged relations (only their init fork is needed to recreate
//! them empty). pgkeep follows the same list, with pgBackRest's additions (recovery settings,
//! which restore writes itself, and pgkeep's own temp files). [`classify`] decides one path
//! from its name alone; [`unlogged_to_skip`] needs a database directory's listing, since
//! whether a relation is unlogged shows only in its siblings. Walking the directory is the
//! caller's job.

use std::collections::HashSet;

use crate::pg::version::PgVersion;

/// What to do with one entry of the data directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exclusion {
    /// Back it up (for a directory: and descend into it).
    Include,
    /// A directory: back it up, empty; do not descend.
    SkipContents,
    /// Leave it out.
    Skip,
}

/// Top-level directories recreated empty on restore: PostgreSQL fills them at run time.
const SKIP_CONTENTS_DIRS: [&str; 7] = [
    "pg_dynshmem",
    "pg_notify",
    "pg_replslot",
    "pg_serial",
    "pg_snapshots",
    "pg_stat_tmp",
    "pg_subtrans",
];

/// Top-level files never backed up, whatever the version.
const SKIP_FILES: [&str; 8] = [
    "postmaster.pid",
    "postmaster.opts",
    "backup_label",
    "backup_label.old",
    "tablespace_map",
    "backup_manifest",
    "postgresql.auto.conf.tmp",
    "current_logfiles.tmp",
];

/// The prefix of PostgreSQL's temporary files and directories (`PG_TEMP_FILE_PREFIX`).
const TEMP_PREFIX: &str = "pgsql_tmp";

/// Classifies `rel_path`, a path relative to the data directory with `/` separators
/// (`base/5/16384`). `is_dir` says whether it is a directory. pg_wal itself is `Include`: its
/// segments are then `Skip` and its `archive_status` (and, from 17, `summaries`) directory is
/// `SkipContents`, so the backup holds the WAL directory skeleton PostgreSQL expects.
pub fn classify(rel_path: &str, is_dir: bool, version: PgVersion) -> Exclusion {
    let parts: Vec<&str> = rel_path.split('/').filter(|p| !p.is_empty()).collect();
    let Some((&name, parents)) = parts.split_last() else {
        return Exclusion::Include;
    };
    let wal_dir = version.wal_dir();

    // Anything below a directory whose contents are skipped, should a caller descend anyway.
    if parents.iter().any(|p| p.starts_with(TEMP_PREFIX))
        || parents.len() >= 2 && parents[0] == wal_dir
        || parents
            .first()
            .is_some_and(|top| SKIP_CONTENTS_DIRS.contains(top))
    {
        return Exclusion::Skip;
    }

    // Rules that apply in any directory.
    if name.starts_with(TEMP_PREFIX) {
        return if is_dir {
            Exclusion::SkipContents
        } else {
            Exclusion::Skip
        };
    }
    // pg_internal.init is rebuilt at startup; its temp copies carry a suffix.
    if !is_dir && (name.starts_with("pg_internal.init") || name.ends_with(".pgkeep.tmp")) {
        return Exclusion::Skip;
    }

    match parents {
        [] if is_dir => {
            if SKIP_CONTENTS_DIRS.contains(&name) {
                Exclusion::SkipContents
            } else {
                Exclusion::Include
            }
        }
        [] => {
            if SKIP_FILES.contains(&name) || is_recovery_file(name, version) {
                Exclusion::Skip
            } else {
                Exclusion::Include
            }
        }
        [top] if *top == wal_dir => {
            let kept = name == "archive_status" || version.major() >= 17 && name == "summaries";
            if is_dir && kept {
                Exclusion::SkipContents
            } else {
                Exclusion::Skip
            }
        }
        _ if !is_dir && is_database_dir(parents) && is_temp_relation(name) => Exclusion::Skip,
        _ => Exclusion::Include,
    }
}

/// Recovery settings a restore writes itself; a copy from the backed-up cluster would mislead
/// it.
fn is_recovery_file(name: &str, version: PgVersion) -> bool {
    if version.major() >= 12 {
        name == "recovery.signal" || name == "standby.signal"
    } else {
        name == "recovery.conf" || name == "recovery.done"
    }
}

fn is_number(text: &str) -> bool {
    !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit())
}

/// `base/<oid>` or `pg_tblspc/<oid>/<version dir>/<oid>`.
fn is_database_dir(parents: &[&str]) -> bool {
    match parents {
        ["base", db] => is_number(db),
        ["pg_tblspc", space, _, db] => is_number(space) && is_number(db),
        _ => false,
    }
}

/// A relation file name split into relfilenode, fork and segment: `16384_vm.2` is
/// ("16384", Some("vm"), Some("2")).
fn parse_relation_file(name: &str) -> Option<(&str, Option<&str>, Option<&str>)> {
    let (stem, segment) = match name.split_once('.') {
        Some((stem, segment)) if is_number(segment) => (stem, Some(segment)),
        Some(_) => return None,
        None => (name, None),
    };
    let (node, fork) = match stem.split_once('_') {
        Some((node, fork)) if matches!(fork, "fsm" | "vm" | "init") => (node, Some(fork)),
        Some(_) => return None,
        None => (stem, None),
    };
    is_number(node).then_some((node, fork, segment))
}

/// `t<backend>_<relfilenode>[_<fork>][.<segment>]`: a temporary relation's file.
fn is_temp_relation(name: &str) -> bool {
    name.strip_prefix('t')
        .and_then(|rest| rest.split_once('_'))
        .is_some_and(|(backend, relation)| {
            is_number(backend) && parse_relation_file(relation).is_some()
        })
}

/// Given the file names of one database directory, the names to leave out because they
/// belong to unlogged relations: every fork and segment of a relfilenode that has an `_init`
/// fork, except the `_init` fork itself, from which PostgreSQL recreates the relation empty.
pub fn unlogged_to_skip(names: &[String]) -> HashSet<String> {
    let unlogged: HashSet<&str> = names
        .iter()
        .filter_map(|name| parse_relation_file(name))
        .filter(|(_, fork, _)| *fork == Some("init"))
        .map(|(node, _, _)| node)
        .collect();
    names
        .iter()
        .filter(|name| {
            parse_relation_file(name)
                .is_some_and(|(node, fork, _)| fork != Some("init") && unlogged.contains(node))
        })
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use Exclusion::{Include, Skip, SkipContents};

    const DIR: bool = true;
    const FILE: bool = false;

    #[test]
    fn paths_classify_as_postgresql_base_backups_do() {
        let v15 = PgVersion::from_major(15);
        let cases: &[(&str, bool, Exclusion)] = &[
            ("PG_VERSION", FILE, Include),
            ("postgresql.conf", FILE, Include),
            ("postgresql.auto.conf", FILE, Include),
            ("global/pg_control", FILE, Include),
            ("base", DIR, Include),
            ("base/5", DIR, Include),
            ("base/5/16384", FILE, Include),
            ("base/5/16384_vm.1", FILE, Include),
            // WAL: the directory and archive_status kept, segments and other entries not.
            ("pg_wal", DIR, Include),
            ("pg_wal/000000010000000000000001", FILE, Skip),
            ("pg_wal/00000002.history", FILE, Skip),
            ("pg_wal/archive_status", DIR, SkipContents),
            (
                "pg_wal/archive_status/000000010000000000000001.done",
                FILE,
                Skip,
            ),
            ("pg_wal/summaries", DIR, Skip),
            ("pg_wal/other", DIR, Skip),
            ("pg_xlog", DIR, Include),
            // Runtime directories: kept empty.
            ("pg_dynshmem", DIR, SkipContents),
            ("pg_notify", DIR, SkipContents),
            ("pg_replslot", DIR, SkipContents),
            ("pg_serial", DIR, SkipContents),
            ("pg_snapshots", DIR, SkipContents),
            ("pg_stat_tmp", DIR, SkipContents),
            ("pg_subtrans", DIR, SkipContents),
            ("pg_subtrans/0000", FILE, Skip),
            ("pg_replslot/slot/state", FILE, Skip),
            ("pg_stat", DIR, Include),
            ("pg_xact", DIR, Include),
            ("base/pg_notify", DIR, Include),
            // Temporary files and directories, anywhere.
            ("base/pgsql_tmp", DIR, SkipContents),
            ("base/pgsql_tmp/pgsql_tmp123.0", FILE, Skip),
            (
                "pg_tblspc/16400/PG_15_202209061/pgsql_tmp",
                DIR,
                SkipContents,
            ),
            ("pgsql_tmp_file", FILE, Skip),
            // Files at the top only.
            ("postmaster.pid", FILE, Skip),
            ("postmaster.opts", FILE, Skip),
            ("backup_label", FILE, Skip),
            ("backup_label.old", FILE, Skip),
            ("tablespace_map", FILE, Skip),
            ("backup_manifest", FILE, Skip),
            ("postgresql.auto.conf.tmp", FILE, Skip),
            ("current_logfiles.tmp", FILE, Skip),
            ("current_logfiles", FILE, Include),
            ("recovery.signal", FILE, Skip),
            ("standby.signal", FILE, Skip),
            ("recovery.conf", FILE, Include),
            ("base/5/postmaster.pid", FILE, Include),
            // pg_internal.init and pgkeep's temp files anywhere.
            ("global/pg_internal.init", FILE, Skip),
            ("base/5/pg_internal.init", FILE, Skip),
            ("base/5/pg_internal.init.1234", FILE, Skip),
            ("base/5/16384.pgkeep.tmp", FILE, Skip),
            ("postgresql.conf.pgkeep.tmp", FILE, Skip),
            // Temporary relations in database directories only.
            ("base/5/t3_16384", FILE, Skip),
            ("base/5/t3_16384_fsm", FILE, Skip),
            ("base/5/t3_16384.1", FILE, Skip),
            ("base/5/t3_16384_vm.12", FILE, Skip),
            ("pg_tblspc/16400/PG_15_202209061/5/t12_16500", FILE, Skip),
            ("base/5/t3_", FILE, Include),
            ("base/5/t3_16384_main", FILE, Include),
            ("base/5/tx_16384", FILE, Include),
            ("global/t3_16384", FILE, Include),
            ("t3_16384", FILE, Include),
        ];
        for (path, is_dir, expected) in cases {
            assert_eq!(classify(path, *is_dir, v15), *expected, "{path}");
        }
    }

    #[test]
    fn version_specific_rules_follow_the_version() {
        let v11 = PgVersion::from_major(11);
        let v17 = PgVersion::from_major(17);
        let v96 = PgVersion::parse("9.6").unwrap();
        assert_eq!(classify("recovery.conf", FILE, v11), Skip);
        assert_eq!(classify("recovery.done", FILE, v11), Skip);
        assert_eq!(classify("recovery.signal", FILE, v11), Include);
        assert_eq!(classify("pg_wal/summaries", DIR, v17), SkipContents);
        assert_eq!(classify("pg_wal/summaries/x.summary", FILE, v17), Skip);
        assert_eq!(
            classify("pg_xlog/000000010000000000000001", FILE, v96),
            Skip
        );
        assert_eq!(classify("pg_xlog/archive_status", DIR, v96), SkipContents);
        assert_eq!(
            classify("pg_wal/000000010000000000000001", FILE, v96),
            Include
        );
    }

    #[test]
    fn unlogged_relations_keep_only_their_init_fork() {
        let names: Vec<String> = [
            "16384",
            "16384.1",
            "16384_fsm",
            "16384_vm",
            "16384_init",
            "16385",
            "16385_init",
            "16386",
            "16386_fsm",
            "163840",
            "PG_VERSION",
            "pg_filenode.map",
            "t3_16386_init",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let mut skipped: Vec<String> = unlogged_to_skip(&names).into_iter().collect();
        skipped.sort();
        assert_eq!(
            skipped,
            ["16384", "16384.1", "16384_fsm", "16384_vm", "16385"]
        );
        assert!(unlogged_to_skip(&[]).is_empty());
    }
}
