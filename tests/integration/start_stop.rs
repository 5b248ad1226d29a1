//! SCENARIO §6 (Starting and stopping): stop files for all stanzas or one, and `stop --force`.

use crate::common;

use std::time::{Duration, Instant};

use crate::common::pgkeep::{Stanza, pgkeep_bin};

#[test]
fn stop_all_forbids_runs_until_start() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep_all(&["--log-level-console=info", "stop"])
        .ok()
        .contains("stop file created for all stanzas");
    s.pgkeep(&["backup"])
        .code(62)
        .contains("stop file exists for all stanzas");
    // Archiving is refused too: PostgreSQL keeps the WAL and retries after start.
    s.pgkeep_all(&["stop"])
        .ok()
        .contains("stop file already exists for all stanzas");
    s.pgkeep_all(&["start"]).ok();
    s.pgkeep(&["backup"]).ok();
    s.pgkeep_all(&["start"])
        .ok()
        .contains("stop file does not exist");
}

#[test]
fn stop_one_stanza_leaves_others_running() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["stop"]).ok();
    s.pgkeep(&["backup"])
        .code(62)
        .contains("stop file exists for stanza demo");
    s.pgkeep(&["info"]).ok();
    // Another stanza name is not stopped (it fails for another reason: it does not exist).
    let config = format!("--config={}", s.conf.display());
    let other = common::pgkeep::run_pgkeep(
        &[
            &config,
            "--stanza=other",
            "--pg1-path=/nonexistent",
            "backup",
        ],
        &[],
    );
    assert!(
        !other.output().contains("stop file exists"),
        "{}",
        other.output()
    );
    s.pgkeep(&["start"]).ok();
    s.pgkeep(&["backup"]).ok();
}

#[test]
fn stop_force_terminates_a_running_backup() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // An archive_command that always fails: the backup waits for WAL that never arrives.
    s.cluster.set("archive_command", "'/bin/false'");
    s.cluster.restart();
    let config = format!("--config={}", s.conf.display());
    let mut backup = common::pgkeep::spawn_pgkeep(&[
        &config,
        "--stanza=demo",
        "--archive-timeout=120",
        "backup",
    ]);
    // Wait until the backup has copied everything and waits for the archive.
    let backup_dir = s.repo.join("backup/demo");
    common::pgkeep::wait_until(60, || {
        std::fs::read_dir(&backup_dir).is_ok_and(|entries| {
            entries
                .flatten()
                .any(|e| e.path().join("pg_data/backup_label.zst").exists())
        })
    });
    let started = Instant::now();
    s.pgkeep(&["--log-level-console=info", "--force", "stop"])
        .ok()
        .contains("sent term signal to process");
    let status = loop {
        if let Some(status) = backup.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "backup still running after stop --force"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(!status.success());
    // Nothing is listed as a valid backup; after start (and a working archive) backups run.
    assert!(s.labels().is_empty());
    s.pgkeep(&["start"]).ok();
    s.cluster.set(
        "archive_command",
        &format!(
            "'{} --config={} --stanza=demo archive-push %p'",
            pgkeep_bin().display(),
            s.conf.display()
        ),
    );
    s.cluster.restart();
    s.pgkeep(&["--log-level-console=info", "backup"])
        .ok()
        .contains("resumable backup")
        .contains("resumed backup");
    assert_eq!(s.labels().len(), 1);
}
