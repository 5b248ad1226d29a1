//! Unit tests of clean.rs against real directories.

use std::collections::BTreeMap;
use std::os::unix::fs::symlink;

use super::*;
use crate::command::restore::fixture::{file, link, manifest, path};
use crate::command::restore::plan::{Remap, plan};
use crate::command::restore::selective::Excluded;
use crate::repo::Manifest;

struct Dirs {
    _tmp: tempfile::TempDir,
    data: PathBuf,
    ts: PathBuf,
    outside: PathBuf,
}

fn dirs() -> Dirs {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let ts = tmp.path().join("ts");
    let outside = tmp.path().join("outside");
    for dir in [&data, &ts, &outside] {
        fs::create_dir(dir).unwrap();
    }
    Dirs {
        data,
        ts,
        outside,
        _tmp: tmp,
    }
}

fn backup_of(d: &Dirs) -> Manifest {
    let mut m = manifest();
    for p in ["pg_data/base", "pg_data/base/5", "pg_data/pg_tblspc"] {
        m.paths.push(path(p));
    }
    m.paths.push(path("pg_data/pg_tblspc/16400"));
    m.paths
        .push(path("pg_data/pg_tblspc/16400/PG_15_202209061"));
    m.files.push(file("pg_data/PG_VERSION", 3));
    m.files.push(file("pg_data/base/5/1259", 8192));
    m.files
        .push(file("pg_data/pg_tblspc/16400/PG_15_202209061/x", 1));
    m.links
        .push(link("pg_data/pg_tblspc/16400", &d.ts.display().to_string()));
    m
}

fn touch(path: &Path) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, b"x").unwrap();
}

#[test]
fn clean_removes_what_the_backup_does_not_hold_and_nothing_outside() {
    let d = dirs();
    let m = backup_of(&d);
    let plan = plan(
        &m,
        &d.data,
        &Remap::default(),
        &BTreeMap::new(),
        &Excluded::default(),
        "pg_wal",
    )
    .unwrap();
    assert_eq!(occupied(&plan).unwrap(), []);

    touch(&d.data.join("PG_VERSION"));
    touch(&d.data.join("base/5/1259"));
    touch(&d.data.join("base/5/stray"));
    touch(&d.data.join("base/99/whole_db"));
    touch(&d.data.join("pg_wal/000000010000000000000001"));
    touch(&d.data.join("postgresql.auto.conf"));
    // A link to a directory outside: the link goes, what it points to stays.
    touch(&d.outside.join("precious"));
    symlink(&d.outside, d.data.join("base/escape")).unwrap();
    // The tablespace link is there but points elsewhere: it is replaced.
    fs::create_dir(d.data.join("pg_tblspc")).unwrap();
    symlink(&d.outside, d.data.join("pg_tblspc/16400")).unwrap();
    // In the tablespace: another major's directory stays, ours is cleaned.
    touch(&d.ts.join("PG_14_202107181/keep"));
    touch(&d.ts.join("PG_15_202209061/x"));
    touch(&d.ts.join("PG_15_202209061/stray"));
    assert_eq!(
        occupied(&plan).unwrap(),
        [(0, d.data.clone()), (1, d.ts.join("PG_15_202209061"))]
    );

    let expected = expected(&plan, "pg_wal", &["postgresql.auto.conf"]);
    let removed = clean(&plan, &expected).unwrap();
    assert_eq!(
        removed,
        Removed {
            files: 3,
            links: 2,
            paths: 1
        }
    );
    assert!(d.data.join("PG_VERSION").exists());
    assert!(d.data.join("base/5/1259").exists());
    assert!(!d.data.join("base/5/stray").exists());
    assert!(!d.data.join("base/99").exists());
    assert!(d.data.join("pg_wal").is_dir());
    assert!(!d.data.join("pg_wal/000000010000000000000001").exists());
    assert!(d.data.join("postgresql.auto.conf").exists());
    assert!(fs::symlink_metadata(d.data.join("base/escape")).is_err());
    assert!(fs::symlink_metadata(d.data.join("pg_tblspc/16400")).is_err());
    assert!(d.outside.join("precious").exists());
    assert!(d.ts.join("PG_14_202107181/keep").exists());
    assert!(d.ts.join("PG_15_202209061/x").exists());
    assert!(!d.ts.join("PG_15_202209061/stray").exists());
}

#[test]
fn a_matching_tablespace_link_is_kept_and_a_foreign_version_dir_is_not_occupied() {
    let d = dirs();
    let m = backup_of(&d);
    let plan = plan(
        &m,
        &d.data,
        &Remap::default(),
        &BTreeMap::new(),
        &Excluded::default(),
        "pg_wal",
    )
    .unwrap();
    touch(&d.ts.join("PG_14_202107181/keep"));
    assert_eq!(occupied(&plan).unwrap(), []);
    touch(&d.ts.join("PG_15_202209061/x"));
    assert_eq!(
        occupied(&plan).unwrap(),
        [(1, d.ts.join("PG_15_202209061"))]
    );
    fs::create_dir_all(d.data.join("pg_tblspc")).unwrap();
    symlink(&d.ts, d.data.join("pg_tblspc/16400")).unwrap();
    let removed = clean(&plan, &expected(&plan, "pg_wal", &[])).unwrap();
    assert_eq!(removed, Removed::default());
    assert!(fs::read_link(d.data.join("pg_tblspc/16400")).is_ok());
}

#[test]
fn only_a_data_directory_and_the_destinations_its_links_point_to_are_owned() {
    let d = dirs();
    let m = backup_of(&d);
    let plan = plan(
        &m,
        &d.data,
        &Remap::default(),
        &BTreeMap::new(),
        &Excluded::default(),
        "pg_wal",
    )
    .unwrap();
    // Unrelated files: not a data directory, nothing is the cluster's.
    touch(&d.data.join("notes.txt"));
    fs::create_dir(d.data.join("PG_VERSION")).unwrap();
    assert!(!is_data_dir(&d.data));
    assert_eq!(owned_roots(&plan, is_data_dir(&d.data)), [false, false]);

    fs::remove_dir(d.data.join("PG_VERSION")).unwrap();
    touch(&d.data.join("PG_VERSION"));
    assert!(is_data_dir(&d.data));
    // No tablespace link, or one to somewhere else: the destination is not shown to be ours.
    assert_eq!(owned_roots(&plan, true), [true, false]);
    fs::create_dir(d.data.join("pg_tblspc")).unwrap();
    symlink(&d.outside, d.data.join("pg_tblspc/16400")).unwrap();
    assert_eq!(owned_roots(&plan, true), [true, false]);
    fs::remove_file(d.data.join("pg_tblspc/16400")).unwrap();
    symlink(&d.ts, d.data.join("pg_tblspc/16400")).unwrap();
    assert_eq!(owned_roots(&plan, true), [true, true]);
    assert_eq!(owned_roots(&plan, false), [false, false]);

    // An interrupted restore's marker shows it too.
    fs::remove_file(d.data.join("PG_VERSION")).unwrap();
    touch(&d.data.join(RESTORE_MARKER));
    assert!(is_data_dir(&d.data));
}

#[test]
fn a_live_postmaster_is_refused_and_a_stale_one_is_not() {
    let d = dirs();
    fs::write(
        d.data.join("postmaster.pid"),
        format!("{}\n/x\n", std::process::id()),
    )
    .unwrap();
    let err = check_not_running(&d.data).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::PgRunning);
    // Pid numbers stop well below this one.
    fs::write(d.data.join("postmaster.pid"), "2147483600\n").unwrap();
    check_not_running(&d.data).unwrap();
}
