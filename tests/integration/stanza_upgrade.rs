//! stanza-upgrade after a major-version upgrade.
//!
//! Two ways a cluster changes major version under a stanza: a real `pg_upgrade` from
//! PostgreSQL 15 (Debian) to 16 (the complete build of `scripts/install-pg.sh 16-full`), and a
//! new PostgreSQL 15 cluster taking over the stanza of a 14 one (dump and reload). What the
//! stanza sees is the same: another major version and another system identifier at pg1-path.

use std::time::Duration;

use crate::common::pgkeep::{Stanza, empty_dir, pgkeep_bin};
use crate::common::{ClusterOptions, PgCluster, free_port, pg16_full_bin, run_as_postgres};

const LOAD: &str =
    "create table kept as select g as id, md5(g::text) as v from generate_series(1, 3000) g";

/// Restores the stanza's old backup `label` into the old cluster's data directory and checks
/// that the old binaries (`version`) start it with the `expected` data.
fn restore_old_backup(s: &Stanza, label: &str, expected: &str, version: &str) {
    empty_dir(s.data_dir());
    s.pgkeep(&[
        &format!("--set={label}"),
        &format!("--pg1-path={}", s.data_dir().display()),
        "restore",
    ])
    .ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
    assert_eq!(s.table_digest("kept"), expected);
    assert!(s.cluster.psql("select version()").contains(version));
}

/// The upgraded cluster's digest of table `kept`, as `Stanza::table_digest` computes it.
fn digest(cluster: &PgCluster) -> String {
    cluster.psql(
        "select count(*) || ':' || coalesce(md5(string_agg(t::text, ',' order by t::text)), '') from kept t",
    )
}

/// Points the stanza's `[demo]` section at `cluster`.
fn point_stanza_at(s: &Stanza, cluster: &PgCluster) {
    let conf = std::fs::read_to_string(&s.conf).unwrap();
    let global = conf.split("[demo]").next().unwrap();
    std::fs::write(
        &s.conf,
        format!(
            "{global}[demo]\npg1-path={}\npg1-port={}\npg1-socket-path={}\n",
            cluster.data_dir().display(),
            cluster.port(),
            cluster.socket_dir().display()
        ),
    )
    .unwrap();
}

/// The pgBackRest user guide's upgrade, step by step: pg_upgrade with the old cluster stopped,
/// point the configuration at the new cluster, stanza-upgrade before starting it, start, check,
/// back up. The data pg_upgrade carried over is in the new backup; the old backup restores with
/// the old binaries.
#[test]
fn stanza_upgrade_after_a_real_pg_upgrade_from_15_to_16() {
    let new_bin = pg16_full_bin();
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(LOAD);
    s.pgkeep(&["--type=full", "backup"]).ok();
    let old_label = s.labels()[0].clone();
    let expected = s.table_digest("kept");
    s.cluster.stop();

    let new = PgCluster::init(ClusterOptions::major(16).bin(new_bin.clone()));
    // pg_upgrade writes its scripts to the current directory: one postgres may write to.
    let upgrade = format!(
        "cd '{}' && exec '{}' -b '{}' -B '{}' -d '{}' -D '{}' -p {} -P {} -s '{}'",
        new.socket_dir().display(),
        new_bin.join("pg_upgrade").display(),
        s.cluster.bin_dir().display(),
        new_bin.display(),
        s.data_dir().display(),
        new.data_dir().display(),
        free_port(),
        free_port(),
        new.socket_dir().display(),
    );
    let output = run_as_postgres("sh", &["-c", &upgrade], &[]);
    assert!(
        output.status.success(),
        "pg_upgrade failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    new.set(
        "archive_command",
        &format!(
            "'{} --config={} --stanza=demo archive-push %p'",
            pgkeep_bin().display(),
            s.conf.display()
        ),
    );
    new.set("archive_mode", "on");
    new.set("wal_level", "replica");
    point_stanza_at(&s, &new);

    // stanza-upgrade reads pg_control only: it runs before the new cluster first starts, so
    // the new cluster's first archived segment already finds its archive id.
    s.pgkeep(&["--log-level-console=info", "stanza-upgrade"])
        .ok()
        .contains("stanza 'demo' upgraded to version 16");
    new.start();
    assert!(new.psql("select version()").contains("PostgreSQL 16"));
    assert_eq!(digest(&new), expected);
    s.pgkeep(&["check"]).ok();
    s.pgkeep(&["--log-level-console=info", "backup"])
        .ok()
        .contains("no prior backup exists, incr backup has been changed to full");
    assert!(s.repo.join("archive/demo/16-2").is_dir());
    let info = s.pgkeep(&["info"]).ok().stdout;
    assert!(info.contains("wal archive min/max (16)"), "{info}");
    assert!(
        info.contains(&format!("full backup: {old_label}")),
        "{info}"
    );

    // The new backup restores with the new binaries and has the upgraded data.
    new.stop();
    empty_dir(new.data_dir());
    s.pgkeep(&["restore"]).ok();
    new.start();
    new.wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
    assert_eq!(digest(&new), expected);
    new.stop();

    // The old backup restores with the old binaries from its own archive id.
    restore_old_backup(&s, &old_label, &expected, "PostgreSQL 15");
}

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
    point_stanza_at(&s, &new);
    new.start();
    new.psql(LOAD);

    // Until the stanza is upgraded, backups of the new cluster are refused.
    s.pgkeep(&["--type=full", "backup"])
        .code(51)
        .contains("do not match stanza version")
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
    restore_old_backup(&s, &old_label, &expected, "PostgreSQL 14");
}
