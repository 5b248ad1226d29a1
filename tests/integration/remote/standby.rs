//! SCENARIO §7: a hot standby built from the backup host's repository follows the archive,
//! then, after a delta restore with primary_conninfo, streams from the primary.

use std::time::Duration;

use super::Deployment;
use crate::common::pgkeep::chown_postgres;
use crate::common::{self, ClusterOptions, PgCluster};

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
