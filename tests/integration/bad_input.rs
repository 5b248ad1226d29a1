//! Bad input: each gets a one-line error naming what is wrong, a documented exit code, and no
//! partial state.

use crate::common;

use std::os::unix::fs::PermissionsExt;

use crate::common::pgkeep::{Stanza, run_pgkeep};

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
        .code(55)
        .contains("/nonexistent/pgkeep.conf");
    let dir = common::TempDir::new();
    let conf = dir.path().join("pgkeep.conf");
    std::fs::write(&conf, "[global]\nrepo1-path=/tmp\n").unwrap();
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o000)).unwrap();
    run_pgkeep(&[&format!("--config={}", conf.display()), "info"], &[])
        .code(41)
        .contains("pgkeep.conf");
}

#[test]
fn stanza_that_was_never_created_is_refused() {
    let s = Stanza::new();
    // A stanza the repository has never seen (the cluster's own is created by its first
    // archive-push), restored into an empty directory: no running cluster is in the way.
    let target = s.dir.path().join("target");
    std::fs::create_dir(&target).unwrap();
    common::pgkeep::chown_postgres(&target);
    s.pgkeep_all(&[
        "--stanza=never",
        &format!("--pg1-path={}", target.display()),
        "restore",
    ])
    .code(55)
    .contains("stanza 'never' does not exist");
}

#[test]
fn wrong_pg1_path_names_both_paths() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // A directory with this cluster's pg_control (so the stanza matches) that is not the data
    // directory of the server pgkeep reaches.
    let other = s.dir.path().join("copy");
    std::fs::create_dir_all(other.join("global")).unwrap();
    for file in ["PG_VERSION", "global/pg_control"] {
        std::fs::copy(s.data_dir().join(file), other.join(file)).unwrap();
    }
    common::pgkeep::chown_postgres(&other);
    let run = s
        .pgkeep(&[&format!("--pg1-path={}", other.display()), "backup"])
        .code(58);
    assert!(
        run.output().contains(&other.display().to_string()),
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

/// Every file under `dir`, relative to it, sorted.
fn tree(dir: &std::path::Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(next) = todo.pop() {
        for entry in std::fs::read_dir(&next).unwrap() {
            let path = entry.unwrap().path();
            found.push(path.strip_prefix(dir).unwrap().display().to_string());
            if path.is_dir() && !path.is_symlink() {
                todo.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn hostile_stanza_names_are_refused_and_create_nothing() {
    let dir = common::TempDir::new();
    let root = dir.path().join("a/b");
    for sub in ["lock", "log", "repo"] {
        std::fs::create_dir_all(root.join(sub)).unwrap();
    }
    common::pgkeep::chown_postgres(dir.path());
    let option = |name: &str| format!("--{name}-path={}", root.join(name).display());
    let paths = [option("lock"), option("log")];
    let mut common_args: Vec<&str> = paths.iter().map(String::as_str).collect();
    common_args.extend(["--no-config", "--log-level-file=info"]);
    let rule = "a stanza name is 1 to 64 ASCII letters, digits, '_', '-' and '.', and does not \
                begin with '.'";
    let before = tree(dir.path());
    let long = "x".repeat(65);
    let hostile = [
        "../../x",
        "../x",
        "a/b",
        "x\ny",
        ".hidden",
        "..",
        "a b",
        long.as_str(),
    ];
    for name in hostile {
        for command in [
            "stop",
            "start",
            "stanza-create",
            "backup",
            "expire",
            "restore",
        ] {
            let stanza = format!("--stanza={name}");
            let mut args = common_args.clone();
            args.extend([stanza.as_str(), command]);
            run_pgkeep(&args, &[]).code(32).contains(rule);
            // The same name from the environment.
            let mut args = common_args.clone();
            args.push(command);
            run_pgkeep(&args, &[("PGKEEP_STANZA", name)])
                .code(32)
                .contains(rule)
                .contains("in environment variable 'PGKEEP_STANZA'");
        }
        let mut args = common_args.clone();
        let stanza = format!("--stanza={name}");
        args.extend([
            stanza.as_str(),
            "archive-push",
            "/nonexistent/000000010000000000000001",
        ]);
        run_pgkeep(&args, &[]).code(32).contains(rule);
    }
    // A configuration file section naming a stanza obeys the same rule.
    let conf = dir.path().join("pgkeep.conf");
    std::fs::write(
        &conf,
        format!(
            "[global]\nrepo1-path={}\n\n[../../x]\npg1-path=/tmp\n",
            root.join("repo").display()
        ),
    )
    .unwrap();
    let config = format!("--config={}", conf.display());
    run_pgkeep(
        &[&config, &paths[0], &paths[1], "--stanza=demo", "stop"],
        &[],
    )
    .code(32)
    .contains(rule)
    .contains(&format!(
        "in the section above line 5 of '{}'",
        conf.display()
    ));
    std::fs::remove_file(&conf).unwrap();
    // Nothing was created anywhere: not in lock-path or log-path, not beside them.
    assert_eq!(tree(dir.path()), before);
}

/// Rewrites an info file (manifest, backup.info) and its copy with `edit` applied to its content,
/// the checksum recomputed: what anyone who can write the repository can do.
fn rewrite_info(path: &std::path::Path, edit: impl Fn(&mut serde_json::Value)) {
    let bytes = std::fs::read(path).unwrap();
    let envelope: serde_json::Value = serde_json::from_slice(&bytes).unwrap();
    let mut content = envelope["content"].clone();
    edit(&mut content);
    let encoded = pgkeep::repo::info_file::encode(&content).unwrap();
    std::fs::write(path, &encoded).unwrap();
    std::fs::write(format!("{}.copy", path.display()), &encoded).unwrap();
}

#[test]
fn manifest_reference_outside_the_backups_is_a_clear_error_for_restore_and_verify() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["backup", "--type=full"]).ok();
    s.cluster
        .psql("create table t as select g from generate_series(1, 1000) g");
    s.pgkeep(&["backup", "--type=incr"]).ok();
    let labels = s.labels();
    let incr = labels.last().unwrap().clone();
    let manifest = s.repo.join(format!("backup/demo/{incr}/backup.manifest"));
    rewrite_info(&manifest, |content| {
        let files = content["files"].as_array_mut().unwrap();
        let referenced = files
            .iter_mut()
            .find(|f| f.get("reference").is_some())
            .expect("a file of the full backup");
        referenced["reference"] = serde_json::json!("../../x");
    });
    let message = "'../../x' is not a backup label: a backup label is YYYYMMDD-HHMMSSF";

    s.cluster.stop();
    common::pgkeep::empty_dir(s.data_dir());
    let run = s.pgkeep(&["restore"]).code(29).contains(message);
    assert!(
        run.output().contains(&manifest.display().to_string()),
        "{}",
        run.output()
    );
    assert!(!run.output().contains("AssertError"), "{}", run.output());
    assert_eq!(std::fs::read_dir(s.data_dir()).unwrap().count(), 0);

    let run = s.pgkeep(&["verify"]).code(104).contains(message);
    assert!(
        run.output().contains(&manifest.display().to_string()),
        "{}",
        run.output()
    );

    // backup.info's labels obey the same grammar: expire never removes a directory by one.
    let info = s.repo.join("backup/demo/backup.info");
    rewrite_info(&info, |content| {
        content["backups"][0]["label"] = serde_json::json!("../../x");
    });
    let run = s
        .pgkeep(&["expire", "--repo1-retention-full=1"])
        .code(29)
        .contains("'../../x' is not a backup label");
    assert!(
        run.output().contains(&info.display().to_string()),
        "{}",
        run.output()
    );
}

#[test]
fn log_lock_and_stop_files_are_created_0640() {
    use std::os::unix::fs::MetadataExt;
    let dir = common::TempDir::new();
    for sub in ["lock", "log", "repo"] {
        std::fs::create_dir_all(dir.path().join(sub)).unwrap();
    }
    common::pgkeep::chown_postgres(dir.path());
    let option = |name: &str| format!("--{name}-path={}", dir.path().join(name).display());
    let repo = format!("--repo1-path={}", dir.path().join("repo").display());
    // The usual umask: without an explicit mode the files would be 0644.
    let previous = nix::sys::stat::umask(nix::sys::stat::Mode::from_bits_truncate(0o022));
    let run = run_pgkeep(
        &[
            "--no-config",
            "--stanza=demo",
            &option("lock"),
            &option("log"),
            &repo,
            "--log-level-file=info",
            "expire",
        ],
        &[],
    );
    let stop = run_pgkeep(
        &["--no-config", "--stanza=demo", &option("lock"), "stop"],
        &[],
    );
    nix::sys::stat::umask(previous);
    // The stanza was never created; the lock and the log came first.
    run.code(55);
    stop.ok();
    for (sub, file) in [
        ("lock", "demo-backup.lock"),
        ("log", "demo-expire.log"),
        ("lock", "demo.stop"),
    ] {
        let path = dir.path().join(sub).join(file);
        let mode = std::fs::metadata(&path)
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
            .mode();
        assert_eq!(format!("{:o}", mode & 0o777), "640", "{}", path.display());
    }
}
