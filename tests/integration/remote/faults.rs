//! Remote failures: unreachable host, refused key, missing remote binary, a silent far side,
//! ssh killed mid-backup; a corrupt page found on the database host; and archive-get's prompt
//! answer for a segment not archived yet.

use std::path::Path;
use std::time::Duration;

use super::Deployment;
use crate::common;
use crate::common::pgkeep::{spawn_pgkeep, wait_until};
use crate::common::sshd::{BACKUP_HOST, DB_HOST};

#[test]
fn connection_failures_name_the_host_and_exit_cleanly() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    let closed = common::free_port().to_string();
    let started = std::time::Instant::now();
    d.on_backup(&[&format!("--pg1-host-port={closed}"), "backup"])
        .code(49)
        .contains(&format!(
            "unable to connect to 'postgres@{DB_HOST}:{closed}'"
        ))
        .contains("Connection refused");
    d.on_backup(&["--pg1-host-user=nobody", "backup"])
        .code(49)
        .contains(&format!("unable to connect to 'nobody@{DB_HOST}:"))
        .contains("Permission denied");
    d.on_backup(&["--pg1-host-cmd=/nonexistent/pgkeep", "backup"])
        .code(49)
        .contains("/nonexistent/pgkeep: No such file or directory");
    // The database host side too: archive-get with an unreachable repository host fails
    // (it is not "segment missing", exit 1).
    d.on_db(&[
        &format!("--repo1-host-port={closed}"),
        "archive-get",
        "000000010000000000000001",
        "/tmp/x",
    ])
    .code(49)
    .contains(&format!("'postgres@{BACKUP_HOST}:{closed}'"));
    assert!(started.elapsed() < Duration::from_secs(60));
    // A far side that never answers: protocol-timeout, not a hang.
    let silent = d.dir.path().join("silent-ssh");
    std::fs::write(&silent, "#!/bin/sh\nexec sleep 60\n").unwrap();
    std::fs::set_permissions(&silent, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let started = std::time::Instant::now();
    d.on_backup(&[
        &format!("--cmd-ssh={}", silent.display()),
        "--protocol-timeout=1",
        "backup",
    ])
    .code(39)
    .contains(&format!("unable to read from 'postgres@{DB_HOST}:"))
    .contains("timeout after 1000ms waiting for a response");
    assert!(started.elapsed() < Duration::from_secs(10));
    // Nothing was listed by the failed backups.
    assert!(
        d.labels(d.on_backup(&["info", "--output=json"]).ok())
            .is_empty()
    );
}

#[test]
fn archive_get_of_a_missing_segment_returns_one_promptly() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    let started = std::time::Instant::now();
    let dest = d.dir.path().join("db-host/RECOVERYXLOG");
    d.on_db(&[
        "archive-get",
        "0000000100000000000000FF",
        &dest.display().to_string(),
    ])
    .code(1);
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!dest.exists());
}

#[test]
fn killed_ssh_mid_backup_fails_cleanly_and_the_next_backup_succeeds() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    // Enough data that the copy takes a while.
    d.db.psql("create table big as select g as id, md5(g::text) || md5((g+1)::text) as payload from generate_series(1, 1500000) g");
    d.on_backup(&["--type=full", "backup"]).ok();
    let before = d.labels(d.on_backup(&["info", "--output=json"]).ok());

    let config = format!("--config={}", d.backup_conf.display());
    let mut child = spawn_pgkeep(&[
        &config,
        "--stanza=demo",
        "--type=full",
        "--compress-level=9",
        "backup",
    ]);
    let pid = child.id();
    // Once the copy is under way, kill every ssh this backup started.
    wait_until(60, || {
        !ssh_children(pid).is_empty() && backup_dirs(&d.repo).len() > before.len()
    });
    std::thread::sleep(Duration::from_millis(300));
    for ssh in ssh_children(pid) {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(ssh),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    let status = child.wait().unwrap();
    assert!(
        !status.success(),
        "the backup survived its ssh being killed"
    );
    let log = std::fs::read_to_string(d.dir.path().join("backup-host/log/demo-backup.log"))
        .unwrap_or_default();
    assert!(log.contains(&format!("'postgres@{DB_HOST}:")), "{log}");
    // Nothing half-written is listed.
    assert_eq!(
        d.labels(d.on_backup(&["info", "--output=json"]).ok()),
        before
    );
    // The next backup succeeds.
    d.on_backup(&["--type=full", "backup"]).ok();
    assert_eq!(
        d.labels(d.on_backup(&["info", "--output=json"]).ok()).len(),
        before.len() + 1
    );
}

/// Pids of the ssh processes started by `pid` (its direct children named ssh).
fn ssh_children(pid: u32) -> Vec<i32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(child) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let stat = std::fs::read_to_string(entry.path().join("stat")).unwrap_or_default();
        // "<pid> (<comm>) <state> <ppid> ..."
        let Some((comm, rest)) = stat.split_once(") ") else {
            continue;
        };
        let ppid = rest
            .split_whitespace()
            .nth(1)
            .and_then(|p| p.parse::<u32>().ok());
        if ppid == Some(pid) && (comm.ends_with("(ssh") || comm.ends_with("(sh")) {
            found.push(child);
        }
    }
    found
}

/// Backup set directories in the repository (finished or not).
fn backup_dirs(repo: &Path) -> Vec<String> {
    std::fs::read_dir(repo.join("backup/demo"))
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.len() >= 16 && name.chars().next().is_some_and(|c| c.is_ascii_digit()))
        .collect()
}

#[test]
fn a_corrupt_page_is_found_on_the_database_host() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    d.db.psql(
        "create table damaged as select g as id, md5(g::text) as v from generate_series(1, 5000) g",
    );
    d.db.psql("checkpoint");
    let rel = d.db.psql("select pg_relation_filepath('damaged')");
    d.db.stop();
    let path = d.db.data_dir().join(rel.trim());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8192 + 8000] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    d.db.start();
    // Verified by the chain on the database host; the suspicious page is re-read there too.
    d.on_backup(&["--type=full", "backup"])
        .ok()
        .contains(&format!(
            "invalid page checksums found in file {} at blocks 1",
            path.display()
        ));
}
