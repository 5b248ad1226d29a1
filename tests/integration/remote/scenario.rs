//! SCENARIO §5 step by step: stanza-create and backups on the backup host, archive-push from
//! the database host into the backup host's repository, restore on the database host, and a
//! backup after the new timeline.

use std::path::Path;
use std::time::Duration;

use super::Deployment;
use crate::common;

#[test]
fn dedicated_backup_host_scenario() {
    let d = Deployment::new();
    // §5.1: the stanza is created from the backup host, reading pg_control over ssh.
    d.on_backup(&["--log-level-console=info", "stanza-create"])
        .ok()
        .contains("stanza-create for stanza 'demo' on repo1");
    // archive-push on the database host lands in the backup host's repository.
    d.switch_and_wait_archived();
    let archived = walkdir(&d.repo.join("archive/demo"));
    assert!(
        archived
            .iter()
            .any(|name| name.len() > 24 && name.starts_with("0000000100000000000000")),
        "{archived:?}"
    );

    d.db.psql("create table remote_data as select g as id, md5(g::text) as payload from generate_series(1, 20000) g");
    // §5.2: backups on the backup host.
    d.on_backup(&["--log-level-console=info", "backup"])
        .ok()
        .contains("no prior backup exists, incr backup has been changed to full")
        .contains("full backup size = ");
    // Small files travel compressed from the database host into bundles (repo1-bundle's
    // default); restore below reads them back through the repository host.
    let bundled = std::fs::read_dir(d.repo.join("backup/demo"))
        .unwrap()
        .flatten()
        .any(|set| set.path().join("bundle/1").exists());
    assert!(bundled, "no bundle in the full backup");
    d.db.psql(
        "insert into remote_data select g, md5(g::text) from generate_series(20001, 25000) g",
    );
    d.on_backup(&[
        "--log-level-console=info",
        "--type=diff",
        "--process-max=3",
        "backup",
    ])
    .ok()
    .contains("diff backup size = ");
    // info works from both hosts and agrees.
    let labels = d.labels(d.on_backup(&["info", "--output=json"]).ok());
    assert_eq!(labels.len(), 2, "{labels:?}");
    assert_eq!(d.labels(d.on_db(&["info", "--output=json"]).ok()), labels);
    let text = d.on_db(&["info"]).ok().stdout;
    assert!(text.contains("stanza: demo\n    status: ok"), "{text}");

    // What runs where is enforced.
    d.on_backup(&["restore"])
        .code(31)
        .contains("restore command must be run on the PostgreSQL host");
    d.on_db(&["backup"])
        .code(31)
        .contains("backup command must be run on the repository host");

    // §5.2: restore on the database host, pulling from the backup host; archive-get fetches
    // WAL from there during recovery.
    let expected = Deployment::digest(&d.db, "remote_data");
    d.db.stop();
    std::fs::remove_dir_all(d.db.data_dir()).unwrap();
    std::fs::create_dir(d.db.data_dir()).unwrap();
    common::give_to_postgres(d.db.data_dir());
    d.on_db(&["--log-level-console=info", "restore"])
        .ok()
        .contains("restore command end: completed successfully");
    d.db.start();
    d.db.wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(120));
    assert_eq!(Deployment::digest(&d.db, "remote_data"), expected);

    // A new timeline: the next backup from the backup host works, with its WAL archived
    // from the database host.
    let timeline = d.db.psql("select timeline_id from pg_control_checkpoint()");
    assert_ne!(timeline, "1");
    d.db.psql("insert into remote_data values (0, 'after restore')");
    d.on_backup(&["--log-level-console=info", "--type=incr", "backup"])
        .ok()
        .contains("incr backup size = ");
    let labels = d.labels(d.on_backup(&["info", "--output=json"]).ok());
    assert_eq!(labels.len(), 3, "{labels:?}");
}

/// File names under `dir`, recursively.
fn walkdir(dir: &Path) -> Vec<String> {
    let mut names = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
            if entry.file_type().unwrap().is_dir() {
                pending.push(entry.path());
            } else {
                names.push(entry.file_name().to_string_lossy().into_owned());
            }
        }
    }
    names
}
