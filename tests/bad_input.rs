//! Bad input: each gets a one-line error naming what is wrong, a documented exit code, and no
//! partial state.

mod common;

use std::os::unix::fs::PermissionsExt;

use common::pgkeep::{Stanza, run_pgkeep};
use common::{ClusterOptions, PgCluster};

#[test]
fn unknown_option_is_refused() {
    run_pgkeep(&["--bogus-option=1", "info"], &[])
        .code(31)
        .contains("invalid option '--bogus-option'");
}

#[test]
fn option_not_valid_for_the_command_is_refused() {
    run_pgkeep(&["--stanza=demo", "--delta", "backup"], &[])
        .code(31)
        .contains("not valid for command 'backup'");
}

#[test]
fn missing_stanza_option_is_refused() {
    run_pgkeep(&["backup"], &[])
        .code(37)
        .contains("backup command requires option: stanza");
}

#[test]
fn missing_or_unreadable_config_file_is_refused() {
    run_pgkeep(&["--config=/nonexistent/pgkeep.conf", "info"], &[])
        .code(27)
        .contains("/nonexistent/pgkeep.conf");
    let dir = common::TempDir::new();
    let conf = dir.path().join("pgkeep.conf");
    std::fs::write(&conf, "[global]\nrepo1-path=/tmp\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o000)).unwrap();
    run_pgkeep(&[&format!("--config={}", conf.display()), "info"], &[])
        .code(27)
        .contains("pgkeep.conf");
}

#[test]
fn stanza_that_was_never_created_is_refused() {
    let s = Stanza::new();
    s.pgkeep(&["restore"])
        .code(103)
        .contains("stanza 'demo' does not exist");
}

#[test]
fn wrong_pg1_path_names_both_paths() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // Another cluster's data directory, while the configured server is the one pgkeep reaches.
    let other = PgCluster::init(ClusterOptions::default());
    let run = s
        .pgkeep(&[
            &format!("--pg1-path={}", other.data_dir().display()),
            "backup",
        ])
        .code(58);
    assert!(
        run.output()
            .contains(&other.data_dir().display().to_string()),
        "{}",
        run.output()
    );
    assert!(
        run.output().contains(&s.data_dir().display().to_string()),
        "{}",
        run.output()
    );
    assert!(s.labels().is_empty());
}

#[test]
fn missing_repository_path_is_refused() {
    let s = Stanza::new();
    let run = s
        .pgkeep(&["--repo1-path=/nonexistent/repo", "stanza-create"])
        .code(73);
    assert!(
        run.output()
            .contains("repository path '/nonexistent/repo' does not exist"),
        "{}",
        run.output()
    );
}

#[test]
fn unwritable_repository_leaves_nothing_behind() {
    let s = Stanza::new();
    let repo = s.dir.path().join("readonly-repo");
    std::fs::create_dir(&repo).unwrap();
    // Owned by root, not writable by postgres.
    std::fs::set_permissions(&repo, std::fs::Permissions::from_mode(0o755)).unwrap();
    let run = s.pgkeep(&[&format!("--repo1-path={}", repo.display()), "stanza-create"]);
    assert_ne!(run.code, 0);
    assert!(
        run.output().contains("Permission denied"),
        "{}",
        run.output()
    );
    assert_eq!(
        std::fs::read_dir(&repo).unwrap().count(),
        0,
        "something was written"
    );
}

#[test]
fn restore_into_a_non_empty_directory_is_refused() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    let target = common::TempDir::new();
    std::fs::write(target.path().join("stray"), "x").unwrap();
    s.pgkeep(&[
        &format!("--pg1-path={}", target.path().display()),
        "restore",
    ])
    .code(40)
    .contains("because it contains files");
    assert_eq!(std::fs::read_dir(target.path()).unwrap().count(), 1);
}

#[test]
fn restore_while_the_cluster_runs_is_refused() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.pgkeep(&["--force", "restore"])
        .code(38)
        .contains("unable to restore while PostgreSQL is running");
    s.cluster.psql("select 1");
}

#[test]
fn concurrent_backup_is_refused() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // Hold the backup lock as another pgkeep would.
    std::fs::create_dir_all(&s.lock).unwrap();
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(s.lock.join("demo-backup.lock"))
        .unwrap();
    file.try_lock().unwrap();
    std::fs::write(s.lock.join("demo-backup.lock"), "4242\n").unwrap();
    s.pgkeep(&["backup"])
        .code(50)
        .contains("unable to acquire lock")
        .contains("held by process 4242");
    drop(file);
    s.pgkeep(&["backup"]).ok();
}
