//! archive-async with the repository on the backup host: the background processes run on the
//! database host, keep their spool there, and read and write the repository over SSH.

use std::time::Duration;

use super::Deployment;

#[test]
fn async_push_and_get_reach_the_repository_over_ssh() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    let spool = d.dir.path().join("db-host/spool");
    let conf = std::fs::read_to_string(&d.db_conf).unwrap();
    let conf = conf.replacen(
        "[global]\n",
        &format!(
            "[global]\narchive-async=y\nprocess-max=2\nspool-path={}\n",
            spool.display()
        ),
        1,
    );
    std::fs::write(&d.db_conf, conf).unwrap();

    d.db.psql("create table t as select g from generate_series(1, 1000) g");
    let mut segments = Vec::new();
    for _ in 0..3 {
        d.db.psql("insert into t select g from generate_series(1, 1000) g");
        segments.push(d.db.psql("select pg_walfile_name(pg_current_wal_lsn())"));
        d.db.psql("select pg_switch_wal()");
    }
    let last = segments.last().unwrap().clone();
    d.db.wait_for(
        &format!("select last_archived_wal >= '{last}' from pg_stat_archiver"),
        "t",
        Duration::from_secs(60),
    );
    let dir = d.repo.join("archive/demo/15-1/0000000100000000");
    let archived: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    for segment in &segments {
        assert!(
            archived.iter().any(|n| n.starts_with(segment.as_str())),
            "{segment}: {archived:?}"
        );
    }
    let log = std::fs::read_to_string(d.dir.path().join("db-host/log/demo-archive-push-async.log"))
        .unwrap();
    assert!(log.contains("WAL file(s) to archive: "), "{log}");

    // archive-get prefetches over SSH into the database host's spool.
    let dest = d.dir.path().join("db-host/RECOVERYXLOG");
    d.on_db(&["archive-get", &segments[0], &dest.display().to_string()])
        .ok();
    assert_eq!(std::fs::metadata(&dest).unwrap().len(), 16 << 20);
    let missing = d.dir.path().join("db-host/MISSING");
    d.on_db(&[
        "archive-get",
        "0000000100000000000000FF",
        &missing.display().to_string(),
    ])
    .code(1);
    assert!(!missing.exists());
}
