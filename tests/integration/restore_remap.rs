//! Restore's placement against real PostgreSQL 15 clusters: tablespaces in place and
//! remapped, a symlinked pg_wal, selective restore of databases, and manifests that would make
//! restore write outside the data directory (which verify refuses too).

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::Duration;

use crate::common::TempDir;
use crate::common::pgkeep::{Stanza, chown_postgres};

/// Removes everything in `dir`, links themselves rather than what they point to.
fn empty_dir(dir: &Path) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::symlink_metadata(&path).unwrap();
        if meta.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
}

fn start_and_wait(s: &Stanza) {
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
}

fn label_of(output: &str) -> String {
    let line = output
        .lines()
        .find(|l| l.contains("new backup label = "))
        .unwrap_or_else(|| panic!("no backup label in:\n{output}"));
    line.rsplit(' ').next().unwrap().to_string()
}

#[test]
fn tablespaces_restore_in_place_and_remapped_by_name() {
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
        "create table in_ts tablespace ts1 as select g as id, md5(g::text) as v \
         from generate_series(1, 5000) g",
    );
    // Reading sets hint bits: read and freeze before the backup, so the files stay as backed up.
    let expected = s.table_digest("in_ts");
    s.cluster.psql("vacuum freeze in_ts; checkpoint");
    let oid = s
        .cluster
        .psql("select oid from pg_tablespace where spcname = 'ts1'");
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.stop();

    // In place with delta: the tablespace's files are compared where they are.
    let run = s
        .pgkeep(&["--delta", "--log-level-console=detail", "restore"])
        .ok()
        .contains(&format!(
            "remove invalid files/links/paths from '{}'",
            location.display()
        ));
    let in_ts = run
        .stdout
        .lines()
        .filter(|l| l.contains(&format!("restore file {}/PG_15_", location.display())))
        .collect::<Vec<_>>();
    assert!(!in_ts.is_empty(), "{}", run.stdout);
    assert!(
        in_ts
            .iter()
            .all(|l| l.ends_with("exists and matches backup")),
        "{in_ts:?}"
    );
    start_and_wait(&s);
    assert_eq!(s.table_digest("in_ts"), expected);
    s.cluster.stop();

    // Remapped by name into a directory that does not exist yet.
    empty_dir(s.data_dir());
    let moved = ts_dir.path().join("moved");
    s.pgkeep(&[
        &format!("--tablespace-map=ts1={}", moved.display()),
        "--log-level-console=info",
        "restore",
    ])
    .ok()
    .contains(&format!(
        "map tablespace 'pg_tblspc/{oid}' to '{}'",
        moved.display()
    ));
    let link = s.data_dir().join(format!("pg_tblspc/{oid}"));
    assert_eq!(std::fs::read_link(&link).unwrap(), moved);
    let map = std::fs::read_to_string(s.data_dir().join("tablespace_map")).unwrap();
    assert_eq!(map, format!("{oid} {}\n", moved.display()));
    start_and_wait(&s);
    assert_eq!(s.table_digest("in_ts"), expected);
    assert_eq!(
        s.cluster
            .psql("select pg_tablespace_location(oid) from pg_tablespace where spcname = 'ts1'"),
        moved.display().to_string()
    );
    s.cluster.stop();

    // tablespace-map-all puts each tablespace under its name; an unknown name is refused.
    empty_dir(s.data_dir());
    let all = ts_dir.path().join("all");
    s.pgkeep(&["--tablespace-map=nope=/x", "restore"])
        .code(76)
        .contains("unable to remap invalid tablespace 'nope'")
        .contains(&format!("the backup set's tablespaces are: ts1 ({oid})"));
    s.pgkeep(&[
        &format!("--tablespace-map-all={}", all.display()),
        "restore",
    ])
    .ok();
    assert_eq!(std::fs::read_link(&link).unwrap(), all.join("ts1"));
    start_and_wait(&s);
    assert_eq!(s.table_digest("in_ts"), expected);
}

#[test]
fn a_symlinked_pg_wal_is_a_directory_unless_link_all_or_link_map() {
    let s = Stanza::new();
    s.cluster.stop();
    let wal_dir = TempDir::new();
    let wal = wal_dir.path().join("wal");
    std::fs::rename(s.data_dir().join("pg_wal"), &wal).unwrap();
    std::os::unix::fs::symlink(&wal, s.data_dir().join("pg_wal")).unwrap();
    chown_postgres(wal_dir.path());
    s.cluster.start();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table t as select g as id from generate_series(1, 3000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("t");
    s.cluster.stop();

    empty_dir(s.data_dir());
    s.pgkeep(&["--log-level-console=info", "restore"])
        .ok()
        .contains(&format!(
            "link 'pg_wal' (to '{}') is restored as a directory in the data directory",
            wal.display()
        ));
    let meta = std::fs::symlink_metadata(s.data_dir().join("pg_wal")).unwrap();
    assert!(meta.is_dir(), "pg_wal is not a plain directory");
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
    s.cluster.stop();

    // link-all: the old WAL directory still holds segments. The data directory's pg_wal is a
    // directory now, not a link to it, so nothing shows it is still this cluster's: even
    // delta leaves it alone until the DBA empties it.
    s.pgkeep(&["--link-all", "--log-level-console=info", "restore"])
        .code(40)
        .contains("because it contains files");
    let old_wal: Vec<_> = std::fs::read_dir(&wal).unwrap().flatten().collect();
    s.pgkeep(&["--link-all", "--delta", "restore"])
        .code(40)
        .contains(&format!(
            "unable to restore to path '{}' because it contains files",
            wal.display()
        ))
        .contains("HINT: the data directory's link 'pg_wal' does not point to");
    assert_eq!(std::fs::read_dir(&wal).unwrap().count(), old_wal.len());
    empty_dir(&wal);
    s.pgkeep(&["--link-all", "--delta", "restore"]).ok();
    assert_eq!(
        std::fs::read_link(s.data_dir().join("pg_wal")).unwrap(),
        wal
    );
    assert!(wal.join("archive_status").is_dir());
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
    s.cluster.stop();

    // Now the link points there: delta cleans the WAL directory as the cluster's.
    let stray = wal.join("stray");
    std::fs::write(&stray, "x").unwrap();
    chown_postgres(&stray);
    s.pgkeep(&["--link-all", "--delta", "restore"]).ok();
    assert!(!stray.exists());

    let elsewhere = wal_dir.path().join("elsewhere");
    empty_dir(s.data_dir());
    s.pgkeep(&["--link-map=pg_log=/x", "restore"])
        .code(78)
        .contains("unable to remap invalid link 'pg_log'");
    s.pgkeep(&[
        &format!("--link-map=pg_wal={}", elsewhere.display()),
        "restore",
    ])
    .ok();
    assert_eq!(
        std::fs::read_link(s.data_dir().join("pg_wal")).unwrap(),
        elsewhere
    );
    start_and_wait(&s);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn db_include_restores_one_database_and_the_others_drop_cleanly() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    for db in ["db1", "db2", "db3"] {
        s.cluster.psql(&format!("create database {db}"));
        s.cluster
            .try_psql_in(
                db,
                "create table a as select g as id, md5(g::text) as v from generate_series(1, 5000) g",
            )
            .unwrap();
    }
    let db2_oid = s
        .cluster
        .psql("select oid from pg_database where datname = 'db2'");
    let digest = |db: &str| {
        s.cluster.try_psql_in(
            db,
            "select count(*) || ':' || md5(string_agg(v, ',' order by id)) from a",
        )
    };
    let expected = digest("db1").unwrap();
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.stop();
    empty_dir(s.data_dir());

    s.pgkeep(&["--db-include=nope", "restore"])
        .code(80)
        .contains("database to include 'nope' is not in backup set");
    s.pgkeep(&["--db-exclude=postgres", "restore"])
        .code(32)
        .contains("system database 'postgres' cannot be excluded");
    s.pgkeep(&["--db-include=db1", "--log-level-console=info", "restore"])
        .ok()
        .contains("zeroed files of databases left out of the restore")
        .contains("DROP DATABASE \"db2\"; DROP DATABASE \"db3\";");
    // Zeroed files take no space.
    let db2_dir = s.data_dir().join(format!("base/{db2_oid}"));
    let mut zeroed = 0;
    for entry in std::fs::read_dir(&db2_dir).unwrap() {
        let path = entry.unwrap().path();
        let meta = std::fs::metadata(&path).unwrap();
        if meta.len() > 0 && path.file_name().unwrap() != "PG_VERSION" {
            assert_eq!(meta.blocks(), 0, "{} is not sparse", path.display());
            zeroed += 1;
        }
    }
    assert!(zeroed > 10, "{zeroed}");

    start_and_wait(&s);
    assert_eq!(digest("db1").unwrap(), expected);
    assert!(digest("db2").is_err(), "a left-out database answered");
    s.cluster.psql("drop database db2");
    s.cluster.psql("drop database db3");
    assert_eq!(
        s.cluster
            .psql("select string_agg(datname, ',' order by datname) from pg_database"),
        "db1,postgres,template0,template1"
    );
}

#[test]
fn manifests_naming_paths_outside_the_data_directory_are_refused_before_writing() {
    use pgkeep::repo::Manifest;
    use pgkeep::repo::manifest::LinkEntry;
    use pgkeep::storage::PosixStorage;

    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let run = s
        .pgkeep(&["--type=full", "--log-level-console=info", "backup"])
        .ok();
    let label = label_of(&run.stdout);
    s.cluster.stop();
    empty_dir(s.data_dir());

    let repo = PosixStorage::new(s.repo.clone());
    let original = Manifest::load(&repo, "demo", &label).unwrap().unwrap();
    let outside = TempDir::new();
    let escape = outside.path().join("escape");
    let file_named = |name: &str| {
        let mut m = original.clone();
        let mut f = m.files[0].clone();
        f.name = name.to_string();
        m.files.push(f);
        m
    };
    let with_link = |target: &str| {
        let mut m = original.clone();
        m.links.push(LinkEntry {
            name: "pg_data/pg_tblspc/16999".into(),
            target: target.into(),
        });
        let mut f = m.files[0].clone();
        f.name = "pg_data/pg_tblspc/16999/PG_15_202209061/x".into();
        m.files.push(f);
        m
    };
    let with_mode = |mode: u32| {
        let mut m = original.clone();
        m.files[0].mode = mode;
        m
    };
    let data = s.data_dir().display().to_string();
    let cases = [
        ("set-user-ID file", with_mode(0o4755), 28),
        ("sticky file", with_mode(0o1600), 28),
        ("dot-dot", file_named("pg_data/../escape"), 28),
        ("absolute", file_named(&escape.display().to_string()), 28),
        ("outside pg_data", file_named("pg_wal_x/../../escape"), 28),
        ("relative link", with_link("../../escape"), 28),
        ("link climbing out", with_link("/tmp/../escape"), 28),
        (
            "link into the data directory",
            with_link(&format!("{data}/base")),
            32,
        ),
        ("link over the data directory", with_link(&data), 32),
    ];
    for (what, manifest, code) in cases {
        manifest.save(&repo, "demo").unwrap();
        chown_postgres(&s.repo);
        s.pgkeep(&["restore"]).code(code);
        let left: Vec<_> = std::fs::read_dir(s.data_dir()).unwrap().collect();
        assert!(left.is_empty(), "{what}: restore wrote {left:?}");
        assert!(!escape.exists(), "{what}: restore wrote outside");
        assert!(
            !s.data_dir().parent().unwrap().join("escape").exists(),
            "{what}"
        );
        // verify refuses what restore refuses for the manifest alone; the overlaps depend on
        // where a restore is asked to go, which verify does not know.
        if code == 28 {
            s.pgkeep(&["--log-level-console=info", "verify"])
                .code(104)
                .contains(&format!("backup {label}: manifest refused by restore: "))
                .contains(&format!("backup {label}: invalid (manifest unusable)"));
        }
    }

    original.save(&repo, "demo").unwrap();
    chown_postgres(&s.repo);
    s.pgkeep(&["verify"]).ok();
    s.pgkeep(&["restore"]).ok();
    start_and_wait(&s);
}
