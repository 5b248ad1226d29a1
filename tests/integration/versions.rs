//! The quick-start cycle on every other supported PostgreSQL major (15 is the default of every
//! other test): the version-specific parts (backup functions, recovery.conf before 12, signal
//! files from 12) against real servers. tests/integration/restore_versions.rs adds a
//! time-target restore and a standby per major. `scripts/test.sh` installs every major
//! (scripts/install-pg.sh).

use crate::common;

use crate::common::ClusterOptions;
use crate::common::pgkeep::Stanza;

fn backup_and_restore_cycle(major: u32) {
    let s = Stanza::with_options("demo", ClusterOptions::major(major), "");
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table v as select g as id, md5(g::text) as payload from generate_series(1, 2000) g",
    );
    s.pgkeep(&["--type=full", "backup"]).ok();
    s.cluster
        .psql("insert into v select g, md5(g::text) from generate_series(2001, 2500) g");
    s.pgkeep(&["--type=incr", "backup"]).ok();
    let expected = s.table_digest("v");
    let labels = s.labels();
    assert_eq!(labels.len(), 2);
    assert!(labels[1].ends_with('I'));

    s.cluster.stop();
    common::pgkeep::empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    if major < 12 {
        let conf = std::fs::read_to_string(s.data_dir().join("recovery.conf")).unwrap();
        assert!(conf.contains("restore_command = '"), "{conf}");
        assert!(!s.data_dir().join("recovery.signal").exists());
    } else {
        assert!(s.data_dir().join("recovery.signal").exists());
        assert!(!s.data_dir().join("recovery.conf").exists());
    }
    s.cluster.start();
    s.cluster.wait_for(
        "select pg_is_in_recovery()",
        "f",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(s.table_digest("v"), expected);
}

#[test]
fn postgresql_11_uses_recovery_conf() {
    backup_and_restore_cycle(11);
}

#[test]
fn postgresql_12() {
    backup_and_restore_cycle(12);
}

#[test]
fn postgresql_13() {
    backup_and_restore_cycle(13);
}

#[test]
fn postgresql_14() {
    backup_and_restore_cycle(14);
}

#[test]
fn postgresql_16() {
    backup_and_restore_cycle(16);
}

#[test]
fn postgresql_17() {
    backup_and_restore_cycle(17);
}

#[test]
fn postgresql_18() {
    backup_and_restore_cycle(18);
}
