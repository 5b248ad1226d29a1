//! SCENARIO §5 (dedicated backup host) and §7 (replication), and the failures of remote
//! operation, over a real sshd on loopback addresses: 127.0.0.2 is the backup host (holds the
//! repository, runs backup and expire), 127.0.0.3 the database host (runs the cluster,
//! archive-push, archive-get, restore). Both "hosts" are this machine, with a config file each.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::pgkeep::{Run, chown_postgres, pgkeep_bin, run_pgkeep, spawn_pgkeep, wait_until};
use common::sshd::{BACKUP_HOST, DB_HOST, Sshd};
use common::{ClusterOptions, PgCluster, TempDir};

/// Two pgkeep configurations around one cluster and one sshd.
struct Deployment {
    db: PgCluster,
    /// Kept running for the deployment's lifetime.
    _sshd: Sshd,
    backup_conf: PathBuf,
    db_conf: PathBuf,
    repo: PathBuf,
    dir: TempDir,
}

impl Deployment {
    fn new() -> Deployment {
        Deployment::with_options(ClusterOptions::default())
    }

    fn with_options(mut options: ClusterOptions) -> Deployment {
        let sshd = Sshd::start();
        let dir = TempDir::new();
        let root = dir.path();
        let repo = root.join("backup-host/repo");
        for sub in [
            "backup-host/repo",
            "backup-host/lock",
            "backup-host/log",
            "db-host/lock",
            "db-host/log",
        ] {
            std::fs::create_dir_all(root.join(sub)).unwrap();
        }
        let backup_conf = root.join("backup-host/pgkeep.conf");
        let db_conf = root.join("db-host/pgkeep.conf");
        let archive_command = format!(
            "{} --config={} --stanza=demo archive-push %p",
            pgkeep_bin().display(),
            db_conf.display()
        );
        options.settings.extend([
            ("archive_mode".to_string(), "on".to_string()),
            (
                "archive_command".to_string(),
                format!("'{archive_command}'"),
            ),
            ("wal_level".to_string(), "replica".to_string()),
            ("max_wal_senders".to_string(), "5".to_string()),
        ]);
        let db = PgCluster::init(options);
        let port = sshd.port();
        let ssh = sshd.ssh().display();
        // The backup host: the repository, and pg1-host for the cluster.
        std::fs::write(
            &backup_conf,
            format!(
                "[global]\nrepo1-path={}\nlock-path={root}/backup-host/lock\n\
                 log-path={root}/backup-host/log\nstart-fast=y\narchive-timeout=30\n\
                 cmd-ssh={ssh}\nrepo1-retention-full=2\n\n\
                 [demo]\npg1-host={DB_HOST}\npg1-host-user=postgres\npg1-host-port={port}\n\
                 pg1-host-config={}\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
                repo.display(),
                db_conf.display(),
                db.data_dir().display(),
                db.port(),
                db.socket_dir().display(),
                root = root.display(),
            ),
        )
        .unwrap();
        // The database host: the cluster, and repo1-host for the repository.
        std::fs::write(
            &db_conf,
            format!(
                "[global]\nrepo1-host={BACKUP_HOST}\nrepo1-host-user=postgres\n\
                 repo1-host-port={port}\nrepo1-host-config={}\nlock-path={root}/db-host/lock\n\
                 log-path={root}/db-host/log\ncmd-ssh={ssh}\n\n\
                 [demo]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
                backup_conf.display(),
                db.data_dir().display(),
                db.port(),
                db.socket_dir().display(),
                root = root.display(),
            ),
        )
        .unwrap();
        chown_postgres(root);
        std::fs::set_permissions(&repo, std::os::unix::fs::PermissionsExt::from_mode(0o750))
            .unwrap();
        db.start();
        Deployment {
            db,
            _sshd: sshd,
            backup_conf,
            db_conf,
            repo,
            dir,
        }
    }

    fn run(conf: &Path, args: &[&str]) -> Run {
        let config = format!("--config={}", conf.display());
        let mut all = vec![config.as_str(), "--stanza=demo"];
        all.extend_from_slice(args);
        run_pgkeep(&all, &[])
    }

    /// pgkeep on the backup host.
    fn on_backup(&self, args: &[&str]) -> Run {
        Deployment::run(&self.backup_conf, args)
    }

    /// pgkeep on the database host.
    fn on_db(&self, args: &[&str]) -> Run {
        Deployment::run(&self.db_conf, args)
    }

    fn labels(&self, run: Run) -> Vec<String> {
        let json: serde_json::Value = serde_json::from_str(&run.stdout).expect("info json");
        json[0]["backup"]
            .as_array()
            .map(|b| {
                b.iter()
                    .map(|b| b["label"].as_str().unwrap().to_string())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn digest(cluster: &PgCluster, table: &str) -> String {
        cluster.psql(&format!(
            "select count(*) || ':' || md5(string_agg(t::text, ',' order by t::text)) from {table} t"
        ))
    }

    /// Waits until the segment holding the current WAL position is archived (after a switch).
    fn switch_and_wait_archived(&self) {
        let segment = self.db.psql("select pg_walfile_name(pg_current_wal_lsn())");
        self.db.psql("select pg_switch_wal()");
        self.db.wait_for(
            &format!("select last_archived_wal >= '{segment}' from pg_stat_archiver"),
            "t",
            Duration::from_secs(60),
        );
    }
}

#[test]
fn dedicated_backup_host_scenario() {
    let d = Deployment::new();
    // §5.1: the stanza is created from the backup host, reading pg_control over ssh.
    d.on_backup(&["--log-level-console=info", "stanza-create"])
        .ok()
        .contains("stanza 'demo' created");
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

/// A second cluster on the database host, made from the repository: initdb only gives it its
/// own port and socket directory; its data directory is emptied for restore.
fn standby_cluster() -> PgCluster {
    let standby = PgCluster::init(ClusterOptions::default());
    std::fs::remove_dir_all(standby.data_dir()).unwrap();
    std::fs::create_dir(standby.data_dir()).unwrap();
    common::give_to_postgres(standby.data_dir());
    standby
}

/// After a restore the configuration is the primary's: point the standby at its own port and
/// socket, as read-only.
fn configure_standby(standby: &PgCluster) {
    standby.set("port", &standby.port().to_string());
    standby.set(
        "unix_socket_directories",
        &format!("'{}'", standby.socket_dir().display()),
    );
    standby.set("hot_standby", "on");
}

#[test]
fn standbys_follow_the_archive_then_stream_from_the_primary() {
    let d = Deployment::new();
    d.on_backup(&["stanza-create"]).ok();
    d.db.psql("create table before_backup as select g from generate_series(1, 1000) g");
    d.on_backup(&["--type=full", "backup"]).ok();

    // §7.1: a hot standby built on the database host from the backup host's repository, with
    // the historic spelling of a standby restore; its restore_command is archive-get.
    let standby = standby_cluster();
    let standby_path = format!("--pg1-path={}", standby.data_dir().display());
    d.on_db(&[
        &standby_path,
        "--recovery-option=standby_mode=on",
        "restore",
    ])
    .ok();
    assert!(standby.data_dir().join("standby.signal").exists());
    let auto_conf =
        std::fs::read_to_string(standby.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(
        auto_conf.contains("restore_command") && auto_conf.contains("archive-get"),
        "{auto_conf}"
    );
    configure_standby(&standby);
    standby.start();
    assert_eq!(standby.psql("select pg_is_in_recovery()"), "t");
    d.db.psql("create table from_archive as select g from generate_series(1, 500) g");
    d.db.psql("select pg_switch_wal()");
    standby.wait_for(
        "select count(*) from pg_class where relname = 'from_archive'",
        "1",
        Duration::from_secs(60),
    );
    assert_eq!(standby.psql("select count(*) from from_archive"), "500");
    let log = standby.server_log();
    assert!(log.contains("entering standby mode"), "{log}");
    assert!(
        log.contains("database system is ready to accept read-only connections"),
        "{log}"
    );

    // §7.2: streaming. A replication user with a password, a pg_hba entry that asks for it,
    // the password in a .pgpass file; primary_conninfo names the file but holds no password.
    d.db.psql("create role replicator with replication login password 'jw8s0F4'");
    let hba = d.db.data_dir().join("pg_hba.conf");
    let rules = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(
        &hba,
        format!("local replication replicator scram-sha-256\n{rules}"),
    )
    .unwrap();
    d.db.psql("select pg_reload_conf()");
    let pgpass = d.dir.path().join("db-host/pgpass");
    std::fs::write(&pgpass, "*:*:*:replicator:jw8s0F4\n").unwrap();
    std::fs::set_permissions(&pgpass, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    chown_postgres(&pgpass);
    let conninfo = format!(
        "--recovery-option=primary_conninfo=host={} port={} user=replicator passfile={} application_name=standby1",
        d.db.socket_dir().display(),
        d.db.port(),
        pgpass.display()
    );
    standby.stop();
    d.on_db(&[
        &standby_path,
        "--delta",
        "--type=standby",
        &conninfo,
        "restore",
    ])
    .ok();
    for file in ["postgresql.auto.conf", "postgresql.conf"] {
        let text = std::fs::read_to_string(standby.data_dir().join(file)).unwrap();
        assert!(!text.contains("jw8s0F4"), "password written to {file}");
    }
    configure_standby(&standby);
    standby.start();
    d.db.wait_for(
        "select state from pg_stat_replication where application_name = 'standby1'",
        "streaming",
        Duration::from_secs(60),
    );
    // No WAL switch: the new table arrives by streaming.
    d.db.psql("create table streamed as select g from generate_series(1, 42) g");
    standby.wait_for(
        "select count(*) from pg_class where relname = 'streamed'",
        "1",
        Duration::from_secs(30),
    );
    assert_eq!(standby.psql("select count(*) from streamed"), "42");
    assert_eq!(
        standby.psql("select status from pg_stat_wal_receiver"),
        "streaming"
    );
    let log = standby.server_log();
    assert!(log.contains("started streaming WAL from primary"), "{log}");
    standby.stop();
}
