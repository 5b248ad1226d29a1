//! stanza-upgrade after a major-version upgrade: PostgreSQL 14 → 15.
//!
//! A real pg_upgrade cannot run here (the npm builds of the other majors ship no pg_upgrade or
//! pg_controldata), so the upgrade is done the other supported way: a new PostgreSQL 15 cluster
//! takes over the stanza, with the same data loaded. What the stanza sees is the same: another
//! major version and another system identifier at pg1-path.

mod common;

use std::time::Duration;

use common::pgkeep::{Stanza, empty_dir, pgkeep_bin};
use common::{ClusterOptions, PgCluster};

const LOAD: &str =
    "create table kept as select g as id, md5(g::text) as v from generate_series(1, 3000) g";

#[test]
fn stanza_upgrade_records_the_new_cluster_and_old_backups_stay_restorable() {
    let s = Stanza::with_options("demo", ClusterOptions::major(14), "");
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(LOAD);
    s.pgkeep(&["--type=full", "backup"]).ok();
    let old_label = s.labels()[0].clone();
    let expected = s.table_digest("kept");
    s.cluster.stop();

    // The upgraded cluster, archiving to the same stanza; the configuration now points at it.
    let archive_command = format!(
        "'{} --config={} --stanza=demo archive-push %p'",
        pgkeep_bin().display(),
        s.conf.display()
    );
    let new = PgCluster::init(
        ClusterOptions::major(15)
            .setting("archive_mode", "on")
            .setting("archive_command", &archive_command)
            .setting("wal_level", "replica"),
    );
    let conf = std::fs::read_to_string(&s.conf).unwrap();
    let global = conf.split("[demo]").next().unwrap();
    std::fs::write(
        &s.conf,
        format!(
            "{global}[demo]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
            new.data_dir().display(),
            new.port(),
            new.socket_dir().display()
        ),
    )
    .unwrap();
    new.start();
    new.psql(LOAD);

    // Until the stanza is upgraded, backups of the new cluster are refused.
    s.pgkeep(&["--type=full", "backup"])
        .code(58)
        .contains("stanza-upgrade");
    s.pgkeep(&["--log-level-console=info", "stanza-upgrade"])
        .ok()
        .contains("stanza 'demo' upgraded to version 15");
    s.pgkeep(&["--log-level-console=info", "stanza-upgrade"])
        .ok()
        .contains("stanza 'demo' is already up to date");

    // The first backup of the new cluster is a full one; its WAL goes to the new archive id.
    s.pgkeep(&["--log-level-console=info", "backup"])
        .ok()
        .contains("no prior backup exists, incr backup has been changed to full");
    assert!(s.repo.join("archive/demo/15-2").is_dir());
    let info = s.pgkeep(&["info"]).ok().stdout;
    assert!(
        info.contains("db (prior)") && info.contains("db (current)"),
        "{info}"
    );
    assert!(
        info.contains(&format!("full backup: {old_label}")),
        "{info}"
    );
    assert!(info.contains("wal archive min/max (15)"), "{info}");

    // The old backup restores with the old binaries, recovering from its own archive id even
    // though the new cluster's WAL has the same segment names.
    new.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&[
        &format!("--set={old_label}"),
        &format!("--pg1-path={}", s.data_dir().display()),
        "restore",
    ])
    .ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
    assert_eq!(s.table_digest("kept"), expected);
    assert!(s.cluster.psql("select version()").contains("PostgreSQL 14"));
}
