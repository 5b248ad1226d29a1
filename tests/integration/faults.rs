//! Crashes at the durable steps (issue 13, "make it stay fixed"): each test runs a command with
//! `PGKEEP_FAILPOINT` so that it kills itself (SIGKILL) exactly at one step, then checks what
//! any crash must leave: the next command succeeds, `info` lists no half-made set, `verify`
//! passes and a restore gives the table the original had. Needs the `failpoints` feature
//! (`scripts/test.sh` builds with it); without it the failpoints compile to nothing and this
//! file is left out.
#![cfg(feature = "failpoints")]

use std::path::{Path, PathBuf};

use crate::common::faults::{
    IMMEDIATE, Spare, archived, assert_archive_get_returns, assert_repository_valid, backup_dirs,
    die_at, hold_archiving, new_segments, release_archiving, stanza_with_table, table_sum,
};
use crate::common::pgkeep::empty_dir;

#[test]
fn backup_killed_at_each_durable_step_leaves_a_valid_repository() {
    let s = stanza_with_table();
    let spare = Spare::new();
    let steps = [
        ("storage-write-written:4", "full"),
        ("storage-write-synced:2", "full"),
        ("storage-write-renamed:5", "incr"),
        ("storage-write-path-synced:3", "diff"),
        ("info-file-saved", "incr"),
        ("backup-manifest-saved", "full"),
        ("backup-info-saved", "incr"),
    ];
    for (round, (point, kind)) in steps.into_iter().enumerate() {
        s.cluster.psql(&format!(
            "insert into t select g, 'round {round}' from generate_series(1, 100) g"
        ));
        let expected = table_sum(&s.cluster, "t");
        let before = s.labels();
        let kind = format!("--type={kind}");
        die_at(&s, point, &[&kind, "backup"]);
        // A set is listed only once backup.info names it: the last step, and then it is whole.
        let listed = assert_repository_valid(&s);
        let saved = usize::from(point == "backup-info-saved");
        assert_eq!(listed.len(), before.len() + saved, "after '{point}'");
        s.pgkeep(&[&kind, "backup"]).ok();
        let after = assert_repository_valid(&s);
        assert_eq!(after.len(), listed.len() + 1, "after '{point}'");
        // The interrupted directory was resumed or removed: every directory is a listed set.
        assert_eq!(backup_dirs(&s), after, "after '{point}'");
        spare.assert_restores(&s, "t", &expected);
    }
}

#[test]
fn archive_push_killed_at_each_durable_step_pushes_again() {
    let s = stanza_with_table();
    hold_archiving(&s);
    let points = [
        "storage-write-written",
        "storage-write-synced",
        "storage-write-renamed",
        "archive-push-before-rename",
    ];
    let segments = new_segments(&s, points.len());
    let expected = table_sum(&s.cluster, "t");
    for (point, segment) in points.into_iter().zip(&segments) {
        let source = s.data_dir().join("pg_wal").join(segment);
        let source_arg = source.display().to_string();
        die_at(&s, point, &["archive-push", &source_arg]);
        assert!(
            !archived(&s, segment),
            "'{segment}' archived before '{point}'"
        );
        s.pgkeep(&["archive-push", &source_arg]).ok();
        assert!(
            archived(&s, segment),
            "'{segment}' not archived after '{point}'"
        );
        assert_archive_get_returns(&s, segment, &source);
    }
    // PostgreSQL archives the rest; the pushed segments are already there, with its content.
    release_archiving(&s, segments.last().unwrap());
    assert_repository_valid(&s);
    // All WAL replayed: the rows of every pushed segment are back.
    let spare = Spare::new();
    spare.assert_restores_with(&s, &[], "t", &expected);
}

#[test]
fn expire_killed_midway_completes_next_time() {
    let s = stanza_with_table();
    let spare = Spare::new();
    for point in ["expire-info-saved", "storage-file-removed:5"] {
        s.pgkeep(&["--type=full", "backup"]).ok();
        s.cluster
            .psql(&format!("insert into t values (0, '{point}')"));
        let expected = table_sum(&s.cluster, "t");
        s.pgkeep(&["--type=full", "backup"]).ok();
        let before = s.labels();
        let newest = before.last().unwrap().clone();
        assert!(before.len() >= 3, "{before:?}");
        die_at(&s, point, &["--repo1-retention-full=1", "expire"]);
        // backup.info was saved first: only the kept set is listed, the others' directories
        // (or what is left of them) are still there.
        assert_eq!(assert_repository_valid(&s), vec![newest.clone()]);
        assert_eq!(backup_dirs(&s), before, "after '{point}'");
        s.pgkeep(&["--repo1-retention-full=1", "expire"]).ok();
        assert_eq!(assert_repository_valid(&s), vec![newest.clone()]);
        assert_eq!(backup_dirs(&s), vec![newest], "after '{point}'");
        spare.assert_restores(&s, "t", &expected);
    }
}

fn pg_control(dir: &Path) -> PathBuf {
    dir.join("global/pg_control")
}

#[test]
fn restore_killed_before_pg_control_cannot_start_and_reruns() {
    let s = stanza_with_table();
    let expected = table_sum(&s.cluster, "t");
    let spare = Spare::new();
    // `restore-paths-created`: directories and links exist, no file yet (before the marker was
    // written first, a --delta rerun refused such a directory as not a data directory).
    for point in [
        "restore-paths-created",
        "restore-before-pg-control",
        "storage-write-synced:20",
    ] {
        empty_dir(spare.data_dir());
        let args = spare.restore_args(&IMMEDIATE);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        die_at(&s, point, &args);
        // pg_control comes last: what a killed restore leaves cannot be started.
        assert!(!pg_control(spare.data_dir()).exists(), "after '{point}'");
        // Killed early, there may be no postgresql.conf yet to give the spare its own port.
        if spare.data_dir().join("postgresql.conf").exists() {
            spare.own_settings();
        }
        assert!(
            spare.cluster.try_start().is_err(),
            "a half-restored cluster started after '{point}'"
        );
        spare
            .restore(&s, &["--delta", IMMEDIATE[0], IMMEDIATE[1]])
            .ok();
        assert_eq!(spare.start_and_sum("t"), expected, "after '{point}'");
        assert_repository_valid(&s);
    }
}
