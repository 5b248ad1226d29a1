//! Restore refuses what it cannot do safely, against real PostgreSQL 15 clusters (issue 13):
//! a config path holding `%` reaches archive-get intact through restore_command.

mod common;

use std::time::Duration;

use common::pgkeep::{Stanza, chown_postgres, empty_dir, run_pgkeep};

/// Starts the restored cluster and waits until recovery has ended.
fn start_and_wait(s: &Stanza) {
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
}

#[test]
fn a_config_path_with_percent_signs_reaches_archive_get_intact() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    // Rows written after the backup: only WAL fetched through restore_command brings them.
    s.cluster
        .psql("create table later as select g as id from generate_series(1, 1000) g");
    let expected = s.table_digest("later");
    s.pgkeep(&["check"]).ok();
    s.cluster.stop();
    empty_dir(s.data_dir());

    let dir = s.dir.path().join("conf %f %p 100%");
    std::fs::create_dir(&dir).unwrap();
    let conf = dir.join("pgkeep.conf");
    std::fs::copy(&s.conf, &conf).unwrap();
    chown_postgres(&dir);
    let config = format!("--config={}", conf.display());
    run_pgkeep(&[&config, "--stanza=demo", "restore"], &[]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("later"), expected);
    let auto_conf = std::fs::read_to_string(s.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(
        auto_conf.contains("conf %%f %%p 100%%/pgkeep.conf"),
        "{auto_conf}"
    );
}
