//! SCENARIO §4 (Restore), step by step, against real PostgreSQL 15 clusters: delta and force,
//! point-in-time recovery with the backup set chosen for the target, and the other target
//! types. Remapping, selective restore and unsafe manifests are in restore_remap.rs.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::pgkeep::{Run, Stanza};

/// Starts the restored cluster and waits until recovery has ended.
fn start_and_wait(s: &Stanza) {
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
}

/// The data file of a table.
fn relation_file(s: &Stanza, table: &str) -> PathBuf {
    s.data_dir().join(
        s.cluster
            .psql(&format!("select pg_relation_filepath('{table}')")),
    )
}

/// The detail line restore logged for `path`.
fn line_for<'a>(run: &'a Run, path: &Path) -> &'a str {
    let needle = format!("restore file {} (", path.display());
    run.stdout
        .lines()
        .find(|l| l.contains(&needle))
        .unwrap_or_else(|| panic!("no line for {}:\n{}", path.display(), run.stdout))
}

fn label_of(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("new backup label = "))
        .unwrap_or_else(|| panic!("no backup label in:\n{}", run.stdout));
    line.rsplit(' ').next().unwrap().to_string()
}

#[test]
fn delta_keeps_matching_files_restores_changed_ones_and_removes_strays() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 20000) g; \
         checkpoint",
    );
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("t");
    let table_file = relation_file(&s, "t");
    s.cluster.stop();

    // Same size, different content; a stray file and directory; a missing file.
    let damage = |file: &Path| {
        let meta = std::fs::metadata(file).unwrap();
        let mut bytes = std::fs::read(file).unwrap();
        bytes[9000..9016].fill(0xff);
        std::fs::write(file, &bytes).unwrap();
        let handle = std::fs::File::options().write(true).open(file).unwrap();
        handle.set_modified(meta.modified().unwrap()).unwrap();
    };
    damage(&table_file);
    let stray = table_file.with_file_name("stray_file");
    std::fs::write(&stray, "stray").unwrap();
    std::fs::create_dir_all(s.data_dir().join("stray_dir/inner")).unwrap();
    std::fs::remove_file(s.data_dir().join("base/1/PG_VERSION")).unwrap();
    common::pgkeep::chown_postgres(s.data_dir());

    let run = s
        .pgkeep(&[
            "--delta",
            "--process-max=2",
            "--log-level-console=detail",
            "restore",
        ])
        .ok()
        .contains(&format!("remove invalid file '{}'", stray.display()))
        .contains(&format!(
            "remove invalid path '{}'",
            s.data_dir().join("stray_dir").display()
        ))
        .contains("delta restore: ")
        .contains("restore global/pg_control (performed last");
    let changed = line_for(&run, &table_file);
    assert!(changed.contains(" checksum "), "{changed}");
    let version = line_for(&run, &s.data_dir().join("PG_VERSION"));
    assert!(
        version.ends_with("- exists and matches backup"),
        "{version}"
    );
    assert!(line_for(&run, &s.data_dir().join("base/1/PG_VERSION")).contains(" checksum "));
    assert!(!stray.exists() && !s.data_dir().join("stray_dir").exists());

    // --force with --delta trusts size and time: the same damage goes unnoticed (the
    // documented risk), and a plain delta finds it again.
    damage(&table_file);
    let run = s
        .pgkeep(&[
            "--delta",
            "--force",
            "--log-level-console=detail",
            "restore",
        ])
        .ok();
    let kept = line_for(&run, &table_file);
    assert!(
        kept.ends_with("- exists and matches size and modification time"),
        "{kept}"
    );
    let run = s
        .pgkeep(&["--delta", "--log-level-console=detail", "restore"])
        .ok();
    assert!(line_for(&run, &table_file).contains(" checksum "));

    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn running_clusters_and_non_empty_directories_are_refused_and_force_overwrites() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table t as select g as id from generate_series(1, 1000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("t");
    s.pgkeep(&["--delta", "restore"])
        .code(38)
        .contains("unable to restore while PostgreSQL is running");
    s.cluster.stop();
    s.pgkeep(&["restore"])
        .code(40)
        .contains(&format!(
            "unable to restore to path '{}' because it contains files",
            s.data_dir().display()
        ))
        .contains("HINT: empty the directory, or use --delta (or --force) to overwrite it");
    // --force alone compares nothing: every file is restored.
    let run = s
        .pgkeep(&["--force", "--log-level-console=detail", "restore"])
        .ok();
    assert!(!run.stdout.contains("exists and matches"), "{}", run.stdout);
    assert!(run.stdout.contains(" checksum "), "{}", run.stdout);
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn an_interrupted_delta_restore_cannot_start_and_can_be_rerun() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 20000) g; \
         checkpoint",
    );
    let label = label_of(
        &s.pgkeep(&[
            "--type=full",
            "--repo1-bundle=n",
            "--log-level-console=info",
            "backup",
        ])
        .ok(),
    );
    let expected = s.table_digest("t");
    let table_file = relation_file(&s, "t");
    let rel = table_file.strip_prefix(s.data_dir()).unwrap();
    s.cluster.stop();
    std::fs::write(&table_file, b"damaged").unwrap();

    // The repository copy of the damaged file cannot be read: the restore fails half-way.
    let stored = s
        .repo
        .join(format!("backup/demo/{label}/pg_data/{}.zst", rel.display()));
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = s.pgkeep(&["--delta", "restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(!s.data_dir().join("global/pg_control").exists());
    assert!(
        s.cluster.try_start().is_err(),
        "a half-restored cluster started"
    );

    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o640)).unwrap();
    s.pgkeep(&["--delta", "restore"]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn point_in_time_recovery_chooses_the_backup_before_the_target() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let backup = |kind: &str| {
        let run = s
            .pgkeep(&[
                &format!("--type={kind}"),
                "--log-level-console=info",
                "backup",
            ])
            .ok();
        // Stop times are recorded to the second: keep backups and targets apart.
        std::thread::sleep(Duration::from_millis(1100));
        label_of(&run)
    };
    let full = backup("full");
    let diff = backup("diff");
    s.cluster
        .psql("create table important_table (message text); insert into important_table values ('important data')");
    let target = s.cluster.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1100));
    s.cluster.psql("drop table important_table");
    let incr = backup("incr");
    s.cluster.stop();

    // A set that ended after the target is refused, naming the one to use.
    let time = format!("--target={target}");
    s.pgkeep(&[
        "--delta",
        "--type=time",
        &time,
        &format!("--set={incr}"),
        "restore",
    ])
    .code(75)
    .contains(&format!("backup set '{incr}' ended at '"))
    .contains(&format!("not before the time target '{target}'"))
    .contains(&format!(
        "the newest backup set that ended before the target is '{diff}'"
    ));
    // A target before every backup, and a time without its zone.
    s.pgkeep(&[
        "--delta",
        "--type=time",
        "--target=2000-01-01 00:00:00+00",
        "restore",
    ])
    .code(75)
    .contains(&format!(
        "no backup set ended before the time target '2000-01-01 00:00:00+00': the oldest, '{full}'"
    ));
    s.pgkeep(&[
        "--delta",
        "--type=time",
        "--target=2026-11-24 21:00:00",
        "restore",
    ])
    .code(32)
    .contains("time target '2026-11-24 21:00:00' has no time zone");
    assert!(
        s.data_dir().join("global/pg_control").exists(),
        "a refused restore wrote"
    );

    s.pgkeep(&[
        "--delta",
        "--type=time",
        &time,
        "--target-action=promote",
        "--log-level-console=info",
        "restore",
    ])
    .ok()
    .contains(&format!(
        "backup set {diff} chosen for time target '{target}'"
    ))
    .contains(&format!("restore backup set {diff}"));
    let auto_conf = std::fs::read_to_string(s.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(
        auto_conf.contains("recovery_target_time = '"),
        "{auto_conf}"
    );
    assert!(
        auto_conf.contains("recovery_target_action = 'promote'"),
        "{auto_conf}"
    );
    start_and_wait(&s);
    assert_eq!(
        s.cluster.psql("select message from important_table"),
        "important data"
    );
    let log = s.cluster.server_log();
    assert!(
        log.contains("recovery stopping before commit of transaction"),
        "{log}"
    );
    assert!(
        log.contains("last completed transaction was at log time"),
        "{log}"
    );

    // An explicit older set reaches the same target too.
    s.cluster.stop();
    s.pgkeep(&[
        "--delta",
        "--type=time",
        &time,
        &format!("--set={full}"),
        "--target-action=promote",
        "--target-timeline=1",
        "--log-level-console=info",
        "restore",
    ])
    .ok()
    .contains(&format!("backup set {full} ended at '"));
    start_and_wait(&s);
    assert_eq!(
        s.cluster.psql("select message from important_table"),
        "important data"
    );
}

#[test]
fn xid_name_lsn_and_immediate_targets() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.psql("create table t (x int)");
    let xid = s
        .cluster
        .psql("begin; insert into t values (1); select txid_current(); commit;");
    s.cluster.psql("insert into t values (2)");
    s.cluster
        .psql("select pg_create_restore_point('before_three')");
    s.cluster.psql("insert into t values (3)");
    let lsn = s.cluster.psql("select pg_current_wal_insert_lsn()");
    s.cluster.psql("insert into t values (4)");
    let last = s
        .cluster
        .psql("select pg_walfile_name(pg_current_wal_insert_lsn())");
    s.cluster.psql("select pg_switch_wal()");
    let archived = s.repo.join("archive/demo/15-1/0000000100000000");
    common::pgkeep::wait_until(60, || {
        std::fs::read_dir(&archived)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy().starts_with(&last))
    });
    s.cluster.stop();

    // Each restore starts again on timeline 1: the earlier ones branched off it.
    let restore = |args: &[&str]| -> Run {
        let mut all = vec!["--delta", "--log-level-console=info"];
        if args.iter().any(|a| a.starts_with("--type=")) {
            all.push("--target-action=promote");
        }
        all.extend_from_slice(args);
        all.push("restore");
        let run = s.pgkeep(&all).ok();
        start_and_wait(&s);
        run
    };
    let rows = || {
        s.cluster
            .psql("select coalesce(string_agg(x::text, ',' order by x), '') from t")
    };

    restore(&["--type=xid", &format!("--target={xid}")])
        .contains("an xid or name target cannot be placed against backups");
    assert_eq!(rows(), "1");
    // promote leaves a writable server.
    s.cluster.psql(
        "create table written_after_promote (i int); insert into written_after_promote values (1)",
    );
    s.cluster.stop();

    // Timeline 2 branched off after the backup: following it is allowed, an unknown one is not.
    s.pgkeep(&["--delta", "--target-timeline=7", "restore"])
        .code(55)
        .contains("target timeline 7 has no history file '00000007.history' in the archive");

    restore(&[
        "--type=name",
        "--target=before_three",
        "--target-timeline=1",
    ]);
    assert_eq!(rows(), "1,2");
    s.cluster.stop();

    restore(&[
        "--type=lsn",
        &format!("--target={lsn}"),
        "--target-timeline=current",
    ])
    .contains(&format!("chosen for lsn target '{lsn}'"));
    assert_eq!(rows(), "1,2,3");
    s.cluster.stop();

    restore(&["--type=immediate", "--target-timeline=1"]);
    assert_eq!(s.cluster.psql("select to_regclass('t') is null"), "t");
    s.cluster.stop();

    // Default recovery on timeline 1 replays everything that was archived.
    restore(&["--target-timeline=1"]);
    assert_eq!(rows(), "1,2,3,4");
}
