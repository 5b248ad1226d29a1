//! Recovery settings per major version, against real servers: point-in-time recovery and
//! standby restores on PostgreSQL 11 (recovery.conf), 12 and 17 (postgresql.auto.conf with
//! recovery.signal or standby.signal), and earlier settings commented out when a backup of a
//! restored cluster is restored again. PG 15 is covered by restore.rs.

use std::time::Duration;

use crate::common::ClusterOptions;
use crate::common::pgkeep::Stanza;

fn settings_file(s: &Stanza, major: u32) -> String {
    let name = if major < 12 {
        "recovery.conf"
    } else {
        "postgresql.auto.conf"
    };
    std::fs::read_to_string(s.data_dir().join(name)).unwrap()
}

fn pitr_and_standby(major: u32) {
    let s = Stanza::with_options("demo", ClusterOptions::major(major), "");
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    std::thread::sleep(Duration::from_millis(1100));
    s.cluster.psql(
        "create table important_table (message text); insert into important_table values ('kept')",
    );
    let target = s.cluster.psql("select now()::text");
    std::thread::sleep(Duration::from_millis(1100));
    s.cluster.psql("drop table important_table");
    let switch = if major >= 10 {
        "select pg_switch_wal()"
    } else {
        "select pg_switch_xlog()"
    };
    s.cluster.psql(switch);
    // The drop must be archived for recovery to see that it passed the target.
    s.pgkeep(&["--type=incr", "backup"]).ok();
    s.cluster.stop();

    s.pgkeep(&[
        "--delta",
        "--type=time",
        &format!("--target={target}"),
        "--target-action=promote",
        "--target-exclusive",
        "restore",
    ])
    .ok();
    let text = settings_file(&s, major);
    assert!(text.contains("recovery_target_time = '"), "{text}");
    assert!(
        text.contains("recovery_target_action = 'promote'"),
        "{text}"
    );
    assert!(
        text.contains("recovery_target_inclusive = 'false'"),
        "{text}"
    );
    assert_eq!(s.data_dir().join("recovery.signal").exists(), major >= 12);
    assert!(!s.data_dir().join("standby.signal").exists());
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
    assert_eq!(
        s.cluster.psql("select message from important_table"),
        "kept"
    );
    let log = s.cluster.server_log();
    assert!(
        log.contains("recovery stopping before commit of transaction"),
        "{log}"
    );

    // A backup of the restored cluster carries the restore's settings (from 12, in
    // postgresql.auto.conf): restoring it comments them out before writing new ones.
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster.stop();
    s.pgkeep(&["--delta", "--type=standby", "restore"]).ok();
    let text = settings_file(&s, major);
    if major >= 12 {
        assert!(s.data_dir().join("standby.signal").exists());
        assert!(!s.data_dir().join("recovery.signal").exists());
        assert!(
            text.contains("# Removed by pgkeep restore # recovery_target_time = '"),
            "{text}"
        );
    } else {
        assert!(text.contains("standby_mode = 'on'"), "{text}");
        assert!(!text.contains("recovery_target_time"), "{text}");
    }
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "t", Duration::from_secs(60));
    assert_eq!(
        s.cluster.psql("select message from important_table"),
        "kept"
    );
}

// One test per supported major: `scripts/test.sh` installs them all (15 from Debian, the
// others from npm with scripts/install-pg.sh).
#[test]
fn postgresql_11_recovery_conf() {
    pitr_and_standby(11);
}

#[test]
fn postgresql_12_signal_files() {
    pitr_and_standby(12);
}

#[test]
fn postgresql_13_signal_files() {
    pitr_and_standby(13);
}

#[test]
fn postgresql_14_signal_files() {
    pitr_and_standby(14);
}

#[test]
fn postgresql_15_signal_files() {
    pitr_and_standby(15);
}

#[test]
fn postgresql_16_signal_files() {
    pitr_and_standby(16);
}

#[test]
fn postgresql_17_signal_files() {
    pitr_and_standby(17);
}

#[test]
fn postgresql_18_signal_files() {
    pitr_and_standby(18);
}
