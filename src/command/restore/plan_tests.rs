//! Unit tests of plan.rs: placement, remapping and the refusal of unsafe manifests.

use super::*;
use crate::command::restore::fixture::{file, link, manifest, path};

fn with_tablespace() -> Manifest {
    let mut m = manifest();
    m.paths.push(path("pg_data/base"));
    m.paths.push(path("pg_data/pg_tblspc"));
    m.paths.push(path("pg_data/pg_tblspc/16400"));
    m.paths
        .push(path("pg_data/pg_tblspc/16400/PG_15_202209061"));
    m.files.push(file("pg_data/base/1", 8192));
    m.files.push(file(
        "pg_data/pg_tblspc/16400/PG_15_202209061/5/16401",
        8192,
    ));
    m.links.push(link("pg_data/pg_tblspc/16400", "/srv/ts1"));
    m.links.push(link("pg_data/pg_wal", "/srv/wal"));
    m
}

fn names() -> BTreeMap<u32, String> {
    BTreeMap::from([(16400, "ts1".to_string())])
}

fn run(m: &Manifest, remap: &Remap) -> Result<Plan> {
    plan(
        m,
        Path::new("/pg"),
        remap,
        &names(),
        &Excluded::default(),
        "pg_wal",
    )
}

#[test]
fn tablespaces_go_home_and_other_links_become_directories() {
    let m = with_tablespace();
    let plan = run(&m, &Remap::default()).unwrap();
    assert_eq!(plan.roots.len(), 2);
    assert_eq!(plan.roots[1].path, Path::new("/srv/ts1"));
    assert_eq!(
        plan.roots[1].owned_top,
        Some(vec!["PG_15_202209061".to_string()])
    );
    assert_eq!(plan.links.len(), 1);
    assert_eq!(plan.links[0].rel, "pg_tblspc/16400");
    assert_eq!(plan.links[0].tablespace, Some(16400));
    assert!(!plan.tablespaces_moved);
    let placed: Vec<PathBuf> = plan.files.iter().map(|(p, _)| plan.absolute(p)).collect();
    assert_eq!(
        placed,
        [
            PathBuf::from("/pg/base/1"),
            PathBuf::from("/srv/ts1/PG_15_202209061/5/16401")
        ]
    );
    // The tablespace's own directory entry is its destination.
    assert_eq!(plan.absolute(&plan.paths[3]), Path::new("/srv/ts1"));
}

#[test]
fn tablespace_map_by_name_or_oid_and_map_all() {
    let m = with_tablespace();
    let by_name = Remap {
        tablespaces: vec![("ts1".into(), "/new/ts".into())],
        ..Remap::default()
    };
    let plan = run(&m, &by_name).unwrap();
    assert_eq!(plan.roots[1].path, Path::new("/new/ts"));
    assert!(plan.tablespaces_moved);
    let by_oid = Remap {
        tablespaces: vec![("16400".into(), "/by/oid".into())],
        tablespace_all: Some("/all".into()),
        ..Remap::default()
    };
    assert_eq!(
        run(&m, &by_oid).unwrap().roots[1].path,
        Path::new("/by/oid")
    );
    let all = Remap {
        tablespace_all: Some("/all".into()),
        ..Remap::default()
    };
    assert_eq!(run(&m, &all).unwrap().roots[1].path, Path::new("/all/ts1"));
    let unnamed = super::plan(
        &m,
        Path::new("/pg"),
        &all,
        &BTreeMap::new(),
        &Excluded::default(),
        "pg_wal",
    );
    assert_eq!(unnamed.unwrap().roots[1].path, Path::new("/all/16400"));
}

#[test]
fn link_all_and_link_map_restore_links() {
    let m = with_tablespace();
    let all = Remap {
        link_all: true,
        ..Remap::default()
    };
    let plan = run(&m, &all).unwrap();
    assert_eq!(plan.links.len(), 2);
    assert_eq!(plan.links[1].rel, "pg_wal");
    assert_eq!(plan.links[1].destination, Path::new("/srv/wal"));
    assert_eq!(plan.roots[2].owned_top, None);
    assert_eq!(plan.links[1].root, Some(2));
    let map = Remap {
        links: vec![("pg_data/pg_wal".into(), "/fast/wal".into())],
        ..Remap::default()
    };
    assert_eq!(
        run(&m, &map).unwrap().links[1].destination,
        Path::new("/fast/wal")
    );
}

#[test]
fn a_link_to_something_not_backed_up_is_only_made() {
    let mut m = with_tablespace();
    m.links
        .push(link("pg_data/postgresql.conf", "/etc/pg/postgresql.conf"));
    let all = Remap {
        link_all: true,
        ..Remap::default()
    };
    let plan = run(&m, &all).unwrap();
    assert_eq!(plan.links[2].rel, "postgresql.conf");
    assert_eq!(plan.links[2].root, None);
    assert_eq!(plan.roots.len(), 3);
}

#[test]
fn remaps_that_name_nothing_are_refused() {
    let m = with_tablespace();
    let bad_ts = Remap {
        tablespaces: vec![("ts9".into(), "/x".into())],
        ..Remap::default()
    };
    let err = run(&m, &bad_ts).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::TablespaceMap);
    assert_eq!(err.message(), "unable to remap invalid tablespace 'ts9'");
    assert_eq!(
        err.hint().unwrap(),
        "the backup set's tablespaces are: ts1 (16400)"
    );
    let bad_link = Remap {
        links: vec![("pg_log".into(), "/x".into())],
        ..Remap::default()
    };
    let err = run(&m, &bad_link).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::LinkMap);
    assert_eq!(err.message(), "unable to remap invalid link 'pg_log'");
    assert_eq!(err.hint().unwrap(), "the backup set's links are: pg_wal");
    let ts_as_link = Remap {
        links: vec![("pg_tblspc/16400".into(), "/x".into())],
        ..Remap::default()
    };
    let err = run(&m, &ts_as_link).unwrap_err();
    assert_eq!(
        err.hint().unwrap(),
        "tablespaces are remapped with tablespace-map"
    );
    let relative = Remap {
        tablespaces: vec![("ts1".into(), "new/ts".into())],
        ..Remap::default()
    };
    let err = run(&m, &relative).unwrap_err();
    assert_eq!(
        err.message(),
        "tablespace '16400' destination 'new/ts' must be an absolute path without '.' or '..'"
    );
}

#[test]
fn destinations_inside_the_data_directory_or_each_other_are_refused() {
    let m = with_tablespace();
    let inside = Remap {
        tablespaces: vec![("ts1".into(), "/pg/ts".into())],
        ..Remap::default()
    };
    let err = run(&m, &inside).unwrap_err();
    assert_eq!(
        err.message(),
        "link destination '/pg/ts' overlaps the data directory '/pg'"
    );
    let overlap = Remap {
        links: vec![("pg_wal".into(), "/srv/ts1/wal".into())],
        ..Remap::default()
    };
    let err = run(&m, &overlap).unwrap_err();
    assert_eq!(
        err.message(),
        "link destinations '/srv/ts1' and '/srv/ts1/wal' overlap"
    );
    let root = Remap {
        links: vec![("pg_wal".into(), "/".into())],
        ..Remap::default()
    };
    assert!(run(&m, &root).is_err());
}

#[test]
fn manifest_names_outside_the_data_directory_are_refused() {
    for bad in [
        "pg_data/../x",
        "/etc/passwd",
        "pg_data/base/../../x",
        "pg_data//x",
        "pg_data/./x",
        "other/x",
        "pg_datax/y",
        "",
    ] {
        let mut m = with_tablespace();
        m.files.push(file(bad, 1));
        let err = run(&m, &Remap::default()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::FileInvalid, "{bad}");
        assert_eq!(
            err.message(),
            format!("manifest of backup set 'L' names a path outside the data directory: '{bad}'")
        );
    }
    let mut m = with_tablespace();
    m.paths.push(path("pg_data/../up"));
    assert!(run(&m, &Remap::default()).is_err());
}

#[test]
fn link_escapes_are_refused() {
    // A tablespace link with a relative destination.
    let mut m = with_tablespace();
    m.links[0].target = "../../outside".into();
    let err = run(&m, &Remap::default()).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::FileInvalid);
    assert_eq!(
        err.message(),
        "tablespace '16400' destination '../../outside' must be an absolute path without '.' or '..'"
    );
    // A destination climbing out with '..'.
    let mut m = with_tablespace();
    m.links[0].target = "/srv/../pg/base".into();
    assert!(run(&m, &Remap::default()).is_err());
    // A link where a database directory goes, pointing into the data directory.
    let mut m = with_tablespace();
    m.links
        .push(link("pg_data/pg_tblspc/16400/PG_15_202209061", "/etc"));
    let err = run(&m, &Remap::default()).unwrap_err();
    assert!(
        err.message()
            .contains("in pg_tblspc that is not a tablespace")
            || err.message().contains("link inside another link"),
        "{err}"
    );
    // A file where the tablespace link goes.
    let mut m = with_tablespace();
    m.files.push(file("pg_data/pg_tblspc/16400", 1));
    let err = run(&m, &Remap::default()).unwrap_err();
    assert!(
        err.message()
            .contains("has a file where a directory or link goes"),
        "{err}"
    );
    // A link named as the data directory itself.
    let mut m = with_tablespace();
    m.links.push(link("pg_data", "/etc"));
    assert!(run(&m, &Remap::default()).is_err());
}

#[test]
fn excluded_databases_are_marked_zeroed() {
    let m = with_tablespace();
    let excluded = Excluded {
        oids: [5].into(),
        drops: vec![],
    };
    let plan = plan(
        &m,
        Path::new("/pg"),
        &Remap::default(),
        &names(),
        &excluded,
        "pg_wal",
    )
    .unwrap();
    assert!(!plan.files[0].1);
    assert!(plan.files[1].1);
}
