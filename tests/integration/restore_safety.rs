//! Restore refuses what it cannot do safely, against real PostgreSQL 15 clusters (issue 13):
//! `--delta`/`--force` never empty a directory that is not shown to be the cluster's, a
//! restore whose WAL is missing from the archive is refused before anything is written, and a
//! config path holding `%` reaches archive-get intact through restore_command.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::TempDir;
use crate::common::pgkeep::{Stanza, chown_postgres, empty_dir, run_pgkeep};

/// Starts the restored cluster and waits until recovery has ended.
fn start_and_wait(s: &Stanza) {
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
}

/// Every file under `dir` with its content, and every directory, by relative path.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Option<Vec<u8>>> {
    let mut out = BTreeMap::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(path) = pending.pop() {
        for entry in std::fs::read_dir(&path).unwrap() {
            let path = entry.unwrap().path();
            let rel = path.strip_prefix(dir).unwrap().to_path_buf();
            if path.is_dir() {
                out.insert(rel, None);
                pending.push(path);
            } else {
                out.insert(rel, Some(std::fs::read(&path).unwrap()));
            }
        }
    }
    out
}

/// A directory of someone else's files, owned by postgres.
fn unrelated_files(dir: &Path) {
    std::fs::create_dir_all(dir.join("photos/2026")).unwrap();
    std::fs::write(dir.join("notes.txt"), "not a database").unwrap();
    std::fs::write(dir.join("photos/2026/cat.jpg"), [0xffu8, 0xd8, 0xff, 0xe0]).unwrap();
    chown_postgres(dir);
}

#[test]
fn delta_and_force_refuse_a_directory_that_is_not_a_data_directory() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table t as select g as id from generate_series(1, 1000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("t");
    s.cluster.stop();

    let other = TempDir::new();
    unrelated_files(other.path());
    let before = snapshot(other.path());
    let pg_path = format!("--pg1-path={}", other.path().display());
    for option in ["--delta", "--force"] {
        s.pgkeep(&[&pg_path, option, "restore"])
            .code(40)
            .contains(
                "holds neither 'PG_VERSION' nor 'backup.manifest' to show that it is a \
                 PostgreSQL data directory: --delta and --force are disabled",
            )
            .contains(&format!(
                "unable to restore to path '{}' because it contains files",
                other.path().display()
            ));
        assert_eq!(
            snapshot(other.path()),
            before,
            "{option} changed the directory"
        );
    }

    // A real data directory is still cleaned by delta.
    let stray = s.data_dir().join("base/stray_file");
    std::fs::write(&stray, "stray").unwrap();
    chown_postgres(&stray);
    s.pgkeep(&["--delta", "--log-level-console=detail", "restore"])
        .ok()
        .contains(&format!("remove invalid file '{}'", stray.display()));
    assert!(!stray.exists());
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn delta_refuses_a_tablespace_destination_the_data_directory_does_not_link_to() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let ts_dir = TempDir::new();
    let location = ts_dir.path().join("ts1");
    std::fs::create_dir(&location).unwrap();
    chown_postgres(&location);
    s.cluster.psql(&format!(
        "create tablespace ts1 location '{}'",
        location.display()
    ));
    s.cluster.psql(
        "create table in_ts tablespace ts1 as select g as id from generate_series(1, 1000) g",
    );
    let expected = s.table_digest("in_ts");
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.stop();
    let version_dir = std::fs::read_dir(&location)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().to_string())
        .find(|name| name.starts_with("PG_15_"))
        .expect("the tablespace's version directory");

    // Another directory holding the very version directory name, with someone else's files.
    let foreign = ts_dir.path().join("foreign");
    unrelated_files(&foreign.join(&version_dir));
    chown_postgres(&foreign);
    let before = snapshot(&foreign);
    let map = format!("--tablespace-map=ts1={}", foreign.display());
    for option in ["--delta", "--force"] {
        s.pgkeep(&[&map, option, "restore"])
            .code(40)
            .contains(&format!(
                "unable to restore to path '{}' because it contains files",
                foreign.join(&version_dir).display()
            ))
            .contains("is not known to be this cluster's");
        assert_eq!(snapshot(&foreign), before, "{option} changed the directory");
    }
    // The data directory's link points to the tablespace's own location: delta cleans it.
    std::fs::write(location.join(&version_dir).join("stray"), "x").unwrap();
    s.pgkeep(&["--delta", "restore"]).ok();
    assert!(!location.join(&version_dir).join("stray").exists());
    start_and_wait(&s);
    assert_eq!(s.table_digest("in_ts"), expected);
}

#[test]
fn an_interrupted_restore_into_an_empty_directory_can_be_finished_with_delta() {
    use std::os::unix::fs::PermissionsExt;
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 20000) g; \
         checkpoint",
    );
    let run = s
        .pgkeep(&[
            "--type=full",
            "--repo1-bundle=n",
            "--log-level-console=info",
            "backup",
        ])
        .ok();
    let label = run
        .stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("backup label")
        .trim()
        .to_string();
    let expected = s.table_digest("t");
    let rel = s.cluster.psql("select pg_relation_filepath('t')");
    s.cluster.stop();
    empty_dir(s.data_dir());

    // The largest file cannot be read: with one process it is restored first, so the restore
    // stops before PG_VERSION is written.
    let stored = s
        .repo
        .join(format!("backup/demo/{label}/pg_data/{rel}.zst"));
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o000)).unwrap();
    let run = s.pgkeep(&["--process-max=1", "restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(!s.data_dir().join("PG_VERSION").exists());
    assert!(s.data_dir().join("backup.manifest").exists());

    // The restore's own marker shows the directory is a data directory being restored.
    std::fs::set_permissions(&stored, std::fs::Permissions::from_mode(0o640)).unwrap();
    s.pgkeep(&["--delta", "restore"]).ok();
    assert!(!s.data_dir().join("backup.manifest").exists());
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

/// The archived file of a segment.
fn archived(repo: &Path, segment: &str) -> PathBuf {
    let dir = repo.join("archive/demo/15-1").join(&segment[..16]);
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with(&format!("{segment}-"))
        })
        .unwrap_or_else(|| panic!("{segment} not archived in '{}'", dir.display()))
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

#[test]
fn restore_refuses_before_writing_when_the_wal_the_backup_needs_is_missing() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table t as select g as id from generate_series(1, 1000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("t");
    let info = s.pgkeep(&["info", "--output=json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let start = json[0]["backup"][0]["archive"]["start"]
        .as_str()
        .unwrap()
        .to_string();
    s.cluster.stop();
    empty_dir(s.data_dir());

    // A segment the backup needs is gone from the archive.
    let segment = archived(&s.repo, &start);
    let aside = s.dir.path().join("aside");
    std::fs::rename(&segment, &aside).unwrap();
    s.pgkeep(&["restore"])
        .code(55)
        .contains(&format!("is missing {start}"))
        .contains("--no-archive-check");
    assert!(is_empty(s.data_dir()), "restore wrote before refusing");
    // The DBA who supplies the WAL another way says so.
    s.pgkeep(&["--no-archive-check", "restore"]).ok();
    assert!(s.data_dir().join("PG_VERSION").exists());
    empty_dir(s.data_dir());
    std::fs::rename(&aside, &segment).unwrap();

    // archive.info and its copy unreadable.
    let info_path = s.repo.join("archive/demo/archive.info");
    let copy_path = s.repo.join("archive/demo/archive.info.copy");
    let (info_bytes, copy_bytes) = (
        std::fs::read(&info_path).unwrap(),
        std::fs::read(&copy_path).unwrap(),
    );
    std::fs::write(&info_path, "garbage").unwrap();
    std::fs::write(&copy_path, "garbage").unwrap();
    let run = s.pgkeep(&["restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(
        run.output().contains("unable to check the WAL backup set"),
        "{}",
        run.output()
    );
    assert!(is_empty(s.data_dir()), "restore wrote before refusing");
    std::fs::write(&info_path, info_bytes).unwrap();
    std::fs::write(&copy_path, copy_bytes).unwrap();

    // The normal case.
    s.pgkeep(&["restore"]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn a_config_path_with_percent_signs_reaches_archive_get_intact() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    // Rows written after the backup: only WAL fetched through restore_command brings them.
    s.cluster
        .psql("create table later as select g as id from generate_series(1, 1000) g");
    let expected = s.table_digest("later");
    s.pgkeep(&["check"]).ok();
    s.cluster.stop();
    empty_dir(s.data_dir());

    let dir = s.dir.path().join("conf %f %p 100%");
    std::fs::create_dir(&dir).unwrap();
    let conf = dir.join("pgkeep.conf");
    std::fs::copy(&s.conf, &conf).unwrap();
    chown_postgres(&dir);
    let config = format!("--config={}", conf.display());
    run_pgkeep(&[&config, "--stanza=demo", "restore"], &[]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("later"), expected);
    let auto_conf = std::fs::read_to_string(s.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(
        auto_conf.contains("conf %%f %%p 100%%/pgkeep.conf"),
        "{auto_conf}"
    );
}
