//! SCENARIO §2 (Backup) and the backup options of a mature tool, against real PG 15 clusters.

use crate::common;

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use crate::common::pgkeep::{Stanza, empty_dir, wait_until};

/// Stops the cluster, empties its data directory, restores with `args`, starts it and waits
/// for recovery to end.
fn restore_and_start(s: &Stanza, args: &[&str]) {
    s.cluster.stop();
    empty_dir(s.data_dir());
    let mut all = args.to_vec();
    all.push("restore");
    s.pgkeep(&all).ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
}

#[test]
fn start_fast_or_the_next_regular_checkpoint_is_announced() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&[
        "--log-level-console=info",
        "--no-start-fast",
        "--type=full",
        "backup",
    ])
    .ok()
    .contains("backup begins after the next regular checkpoint completes");
    s.pgkeep(&["--log-level-console=info", "--start-fast", "backup"])
        .ok()
        .contains("backup begins after the requested immediate checkpoint completes");
}

#[test]
fn unwritable_repository_fails_cleanly_and_the_next_backup_needs_no_cleanup() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let backup_dir = s.repo.join("backup/demo");
    std::fs::set_permissions(&backup_dir, std::fs::Permissions::from_mode(0o500)).unwrap();
    let run = s.pgkeep(&["--stop-auto", "--type=full", "backup"]);
    assert_ne!(run.code, 0);
    assert!(run.output().contains("ERROR: ["), "{}", run.output());
    assert!(
        run.output().contains("Permission denied"),
        "{}",
        run.output()
    );
    std::fs::set_permissions(&backup_dir, std::fs::Permissions::from_mode(0o750)).unwrap();
    assert!(s.labels().is_empty(), "a failed backup is listed");
    // The server is not left in backup mode: the next backup starts at once.
    s.pgkeep(&["--type=full", "backup"]).ok();
    assert_eq!(s.labels().len(), 1);
}

#[test]
fn a_backup_killed_mid_copy_is_resumed_and_restores() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // Two tables of ~15 MB each, compressed slowly, so the kill lands between them. Their files
    // must not change between the two runs, or the resumed run rightly copies them again:
    // autovacuum is off for them and `vacuum freeze` sets every hint bit now, so neither a
    // later read nor autovacuum dirties a page that a checkpoint would write back.
    for table in ["big1", "big2"] {
        s.cluster.psql(&format!(
            "create table {table} with (autovacuum_enabled = off) as select g as id, md5(g::text) || md5((g * 7)::text) as v from generate_series(1, 150000) g"
        ));
        s.cluster.psql(&format!("vacuum (freeze) {table}"));
    }
    s.cluster.psql("checkpoint");
    let expected = s.table_digest("big2");
    let config = format!("--config={}", s.conf.display());
    let mut backup = common::pgkeep::spawn_pgkeep(&[
        &config,
        "--stanza=demo",
        "--type=full",
        "--compress-level=15",
        "--process-max=1",
        // Block-incremental files are copied again on resume, never reused.
        "--repo1-block=n",
        "backup",
    ]);
    // Kill -9 as soon as progress records a stored file.
    let backup_dir = s.repo.join("backup/demo");
    wait_until(300, || {
        std::fs::read_dir(&backup_dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("backup.resume")).is_ok_and(|t| {
                    t.contains("\"checksum\": \"") && t.matches("\"name\"").count() >= 1
                })
            })
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(backup.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    let _ = backup.wait();
    assert!(s.labels().is_empty());

    let run = s
        .pgkeep(&[
            // detail: a failure shows why each recorded file was not reused.
            "--log-level-console=detail",
            "--type=full",
            "--process-max=2",
            "--repo1-block=n",
            "backup",
        ])
        .ok();
    let line = run
        .output()
        .lines()
        .find(|l| l.contains("resumed backup"))
        .map(str::to_string)
        .unwrap_or_default();
    assert!(line.contains("file(s) reused"), "{}", run.output());
    let reused: usize = line
        .split(" file(s) reused")
        .next()
        .and_then(|t| t.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0);
    assert!(reused >= 1, "{}", run.output());
    assert_eq!(s.labels().len(), 1);
    restore_and_start(&s, &[]);
    assert_eq!(s.table_digest("big2"), expected);
}

#[test]
fn every_compression_type_round_trips() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table c as select g as id, md5(g::text) as v from generate_series(1, 20000) g",
    );
    let expected = s.table_digest("c");
    let mut labels = Vec::new();
    for compress in ["none", "gz", "lz4", "zst"] {
        s.pgkeep(&[
            "--type=full",
            "--repo1-bundle=n",
            &format!("--compress-type={compress}"),
            "backup",
        ])
        .ok();
        labels.push(s.labels().last().unwrap().clone());
    }
    // Files carry the extension of their compression type.
    for (label, ext) in labels.iter().zip(["", ".gz", ".lz4", ".zst"]) {
        let pg_version = s
            .repo
            .join(format!("backup/demo/{label}/pg_data/PG_VERSION{ext}"));
        assert!(pg_version.exists(), "{}", pg_version.display());
    }
    for label in &labels {
        restore_and_start(&s, &[&format!("--set={label}")]);
        assert_eq!(s.table_digest("c"), expected, "restore of {label}");
    }
}

#[test]
fn offline_backup_of_a_stopped_cluster() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table off as select g from generate_series(1, 1000) g");
    let expected = s.table_digest("off");
    s.pgkeep(&["--no-online", "--type=full", "backup"])
        .code(38)
        .contains("postmaster.pid");
    s.cluster.stop();
    s.pgkeep(&[
        "--log-level-console=info",
        "--no-online",
        "--type=full",
        "backup",
    ])
    .ok()
    .contains("offline backup");
    let info = s
        .pgkeep(&["info", &format!("--set={}", s.labels()[0])])
        .ok();
    assert!(info.stdout.contains("offline backup"), "{}", info.stdout);
    s.cluster.start();
    restore_and_start(&s, &[]);
    assert_eq!(s.table_digest("off"), expected);
}

#[test]
fn archive_copy_makes_a_backup_restorable_without_the_archive() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table ac as select g from generate_series(1, 1000) g");
    let expected = s.table_digest("ac");
    s.pgkeep(&["--archive-copy", "--type=full", "backup"]).ok();
    let label = s.labels()[0].clone();
    let wal = std::fs::read_dir(s.repo.join(format!("backup/demo/{label}/pg_data/pg_wal")))
        .unwrap()
        .count();
    assert!(wal >= 1, "no WAL stored in the backup");
    s.cluster.stop();
    // Lose the archive: the backup still restores to a consistent state.
    std::fs::remove_dir_all(s.repo.join("archive/demo/15-1")).unwrap();
    std::fs::create_dir(s.repo.join("archive/demo/15-1")).unwrap();
    common::pgkeep::chown_postgres(&s.repo.join("archive/demo/15-1"));
    empty_dir(s.data_dir());
    s.pgkeep(&["--type=immediate", "--target-action=promote", "restore"])
        .ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
    assert_eq!(s.table_digest("ac"), expected);
}

#[test]
fn exclusions_and_annotations() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let junk = s.data_dir().join("junk");
    std::fs::create_dir(&junk).unwrap();
    std::fs::write(junk.join("big.log"), "x".repeat(10_000)).unwrap();
    std::fs::write(s.data_dir().join("extra.txt"), "extra").unwrap();
    common::pgkeep::chown_postgres(s.data_dir());
    s.pgkeep(&[
        "--log-level-console=info",
        "--exclude=junk/",
        "--exclude=extra.txt",
        "--annotation=source=nightly job",
        "--annotation=ticket=42",
        "--type=full",
        "backup",
    ])
    .ok()
    .contains("exclude contents of 'junk' from backup using 'junk/' exclusion");
    let label = s.labels()[0].clone();
    // As pgBackRest: annotations in the text with --set, one per line.
    let detail = s.pgkeep(&["info", &format!("--set={label}")]).ok();
    assert!(
        detail.stdout.contains(
            "            annotation(s)\n                source: nightly job\n                ticket: 42\n"
        ),
        "{}",
        detail.stdout
    );
    assert!(
        detail.stdout.contains("database list: "),
        "{}",
        detail.stdout
    );
    assert!(detail.stdout.contains("postgres ("), "{}", detail.stdout);
    let json: serde_json::Value = serde_json::from_str(
        &s.pgkeep(&["info", "--output=json", &format!("--set={label}")])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(json[0]["backup"][0]["annotation"]["ticket"], "42");
    assert!(
        json[0]["backup"][0]["database-list"]
            .as_array()
            .unwrap()
            .len()
            >= 3
    );
    // A label the repository does not hold is a status, as in pgBackRest: exit 0.
    s.pgkeep(&["info", "--set=20200101-000000F"])
        .ok()
        .contains("status: error (requested backup not found)");

    restore_and_start(&s, &[]);
    assert!(s.data_dir().join("junk").is_dir());
    assert!(!s.data_dir().join("junk/big.log").exists());
    assert!(!s.data_dir().join("extra.txt").exists());
}

#[test]
fn a_corrupt_page_is_reported_and_the_backup_completes() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table damaged as select g as id, md5(g::text) as v from generate_series(1, 5000) g",
    );
    s.cluster.psql("checkpoint");
    let rel = s.cluster.psql("select pg_relation_filepath('damaged')");
    s.cluster.stop();
    // Flip one byte of tuple data in block 1, with the server stopped.
    let path = s.data_dir().join(rel.trim());
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[8192 + 8000] ^= 0x55;
    std::fs::write(&path, &bytes).unwrap();
    s.cluster.start();

    let run = s.pgkeep(&["--type=full", "backup"]).ok();
    assert!(
        run.output().contains(&format!(
            "invalid page checksums found in file {} at blocks 1",
            path.display()
        )),
        "{}",
        run.output()
    );
    let label = s.labels()[0].clone();
    let detail = s.pgkeep(&["info", &format!("--set={label}")]).ok();
    assert!(
        detail.stdout.contains("page checksums: checked"),
        "{}",
        detail.stdout
    );
    assert!(
        detail
            .stdout
            .contains(&format!("page checksum error: {} (blocks 1)", rel.trim())),
        "{}",
        detail.stdout
    );
    let json: serde_json::Value = serde_json::from_str(
        &s.pgkeep(&["info", "--output=json", &format!("--set={label}")])
            .ok()
            .stdout,
    )
    .unwrap();
    assert_eq!(
        json[0]["backup"][0]["checksum-page-error"][0]["blocks"][0],
        1
    );

    // Without data checksum problems nothing is reported.
    s.cluster.psql("drop table damaged");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let label = s.labels()[1].clone();
    let detail = s.pgkeep(&["info", &format!("--set={label}")]).ok();
    assert!(
        !detail.stdout.contains("page checksum error"),
        "{}",
        detail.stdout
    );
}

/// A tmpfs of a given size, unmounted on drop.
struct SmallDisk(std::path::PathBuf);

impl SmallDisk {
    fn mount(path: &std::path::Path, size_mb: u32) -> SmallDisk {
        std::fs::create_dir_all(path).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size_mb}m,mode=0750"),
                "tmpfs",
            ])
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success(), "mount tmpfs");
        common::pgkeep::chown_postgres(path);
        SmallDisk(path.to_path_buf())
    }

    fn resize(&self, size_mb: u32) {
        let status = std::process::Command::new("mount")
            .args(["-o", &format!("remount,size={size_mb}m"), "tmpfs"])
            .arg(&self.0)
            .status()
            .unwrap();
        assert!(status.success(), "remount tmpfs");
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.0)
            .status();
    }
}

#[test]
fn a_full_disk_fails_the_backup_cleanly() {
    let s = Stanza::new();
    s.cluster.psql("create table filler as select g as id, md5(g::text) || md5(g::text) as v from generate_series(1, 200000) g");
    // A repository on a disk too small for the backup.
    let disk = SmallDisk::mount(&s.dir.path().join("small-repo"), 4);
    let repo = format!("--repo1-path={}", disk.0.display());
    s.pgkeep(&[&repo, "stanza-create"]).ok();
    // WAL goes to the main repository through archive_command; this backup only checks its own.
    let run = s.pgkeep(&[
        &repo,
        "--no-archive-check",
        "--compress-type=none",
        "--type=full",
        "backup",
    ]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(
        run.output().contains("No space left on device"),
        "{}",
        run.output()
    );
    let info = s.pgkeep(&[&repo, "info"]).ok();
    assert!(
        info.stdout.contains("error (no valid backups)"),
        "{}",
        info.stdout
    );
    // With room again, the next backup succeeds without any cleanup.
    disk.resize(200);
    s.pgkeep(&[
        &repo,
        "--no-archive-check",
        "--compress-type=none",
        "--type=full",
        "backup",
    ])
    .ok();
    let info = s.pgkeep(&[&repo, "info"]).ok();
    assert!(info.stdout.contains("full backup: "), "{}", info.stdout);
}

#[test]
fn a_lost_database_connection_fails_the_backup_and_the_next_one_succeeds() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql("create table slow as select g as id, md5(g::text) || md5((g * 3)::text) as v from generate_series(1, 150000) g");
    let config = format!("--config={}", s.conf.display());
    let mut backup = common::pgkeep::spawn_pgkeep(&[
        &config,
        "--stanza=demo",
        "--type=full",
        "--compress-level=15",
        "backup",
    ]);
    // Terminate pgkeep's session while it copies.
    wait_until(60, || {
        s.cluster.psql("select pg_terminate_backend(pid) from pg_stat_activity where application_name = 'pgkeep [backup]'") == "t"
    });
    let status = backup.wait().unwrap();
    assert!(!status.success());
    assert!(s.labels().is_empty());
    s.pgkeep(&["--type=full", "backup"]).ok();
    assert_eq!(s.labels().len(), 1);
}

#[test]
fn a_linked_directory_in_the_data_directory_is_backed_up_with_its_contents() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let outside = common::TempDir::new();
    std::fs::write(
        outside.path().join("notes.txt"),
        "kept outside the data directory",
    )
    .unwrap();
    common::pgkeep::chown_postgres(outside.path());
    std::os::unix::fs::symlink(outside.path(), s.data_dir().join("extra")).unwrap();
    s.pgkeep(&["--type=full", "--repo1-bundle=n", "backup"])
        .ok();
    let label = s.labels()[0].clone();
    assert!(
        s.repo
            .join(format!("backup/demo/{label}/pg_data/extra/notes.txt.zst"))
            .exists()
    );
    // Restored as a directory inside the data directory (pgBackRest's default for links).
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    let restored = s.data_dir().join("extra/notes.txt");
    assert_eq!(
        std::fs::read_to_string(restored).unwrap(),
        "kept outside the data directory"
    );
    s.cluster.start();
}

#[test]
fn a_linked_directory_is_restored_as_a_link_with_link_all() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let outside = common::TempDir::new();
    let target = outside.path().join("logs");
    std::fs::create_dir(&target).unwrap();
    std::fs::write(target.join("notes.txt"), "linked").unwrap();
    common::pgkeep::chown_postgres(outside.path());
    std::os::unix::fs::symlink(&target, s.data_dir().join("extra")).unwrap();
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.stop();
    empty_dir(s.data_dir());
    std::fs::remove_dir_all(&target).unwrap();
    s.pgkeep(&["--link-all", "restore"]).ok();
    assert_eq!(
        std::fs::read_link(s.data_dir().join("extra")).unwrap(),
        target
    );
    assert_eq!(
        std::fs::read_to_string(target.join("notes.txt")).unwrap(),
        "linked"
    );
    s.cluster.start();
}
