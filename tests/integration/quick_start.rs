//! SCENARIO §1 (Quick Start), step by step, against a real PostgreSQL 15 cluster.

use crate::common;

use crate::common::pgkeep::{Stanza, empty_dir, run_pgkeep};
use crate::common::{ClusterOptions, PgCluster};

#[test]
fn no_arguments_and_help_flags_print_usage_and_version_prints_the_version() {
    let run = run_pgkeep(&[], &[]).ok();
    assert!(run.stdout.contains("Usage:"), "{}", run.stdout);
    assert!(run.stdout.contains("backup"), "{}", run.stdout);
    let run = run_pgkeep(&["version"], &[]).ok();
    assert_eq!(
        run.stdout.trim(),
        format!("pgkeep {}", env!("CARGO_PKG_VERSION"))
    );
    // The flags most programs take mean the same (pgBackRest refuses them).
    let run = run_pgkeep(&["--version"], &[]).ok();
    assert_eq!(
        run.stdout.trim(),
        format!("pgkeep {}", env!("CARGO_PKG_VERSION"))
    );
    for flag in ["--help", "-h"] {
        let run = run_pgkeep(&[flag], &[]).ok();
        assert!(run.stdout.contains("Usage:"), "{flag}: {}", run.stdout);
    }
    let run = run_pgkeep(&["backup", "--help"], &[]).ok();
    assert_eq!(run.stdout, run_pgkeep(&["help", "backup"], &[]).ok().stdout);
}

#[test]
fn quick_start_backup_info_break_restore() {
    let s = Stanza::new();
    s.pgkeep(&["--log-level-console=info", "stanza-create"])
        .ok()
        .contains("stanza-create for stanza 'demo' on repo1");
    // Running it again is harmless.
    s.pgkeep(&["--log-level-console=info", "stanza-create"])
        .ok()
        .contains("already exists and is valid");

    s.cluster.psql("create table quick as select g as id, md5(g::text) as payload from generate_series(1, 5000) g");
    let full = s
        .pgkeep(&["--log-level-console=info", "backup"])
        .ok()
        .contains("no prior backup exists, incr backup has been changed to full")
        .contains("full backup size = ");
    assert!(
        full.output().contains("new backup label = "),
        "{}",
        full.output()
    );

    s.cluster
        .psql("insert into quick select g, md5(g::text) from generate_series(5001, 6000) g");
    let diff = s
        .pgkeep(&["--log-level-console=info", "--type=diff", "backup"])
        .ok()
        .contains("diff backup size = ");
    assert!(
        !diff.output().contains("changed to full"),
        "{}",
        diff.output()
    );

    s.cluster
        .psql("insert into quick select g, md5(g::text) from generate_series(6001, 6500) g");
    s.pgkeep(&["--log-level-console=info", "--type=incr", "backup"])
        .ok()
        .contains("incr backup size = ");
    let expected = s.table_digest("quick");
    assert!(expected.starts_with("6500:"), "{expected}");

    let labels = s.labels();
    assert_eq!(labels.len(), 3, "{labels:?}");
    assert!(
        labels[0].ends_with('F') && labels[0].len() == 16,
        "{labels:?}"
    );
    assert!(
        labels[1].starts_with(&format!("{}_", labels[0])) && labels[1].ends_with('D'),
        "{labels:?}"
    );
    assert!(
        labels[2].starts_with(&format!("{}_", labels[0])) && labels[2].ends_with('I'),
        "{labels:?}"
    );

    let info = s.pgkeep_all(&["info"]).ok();
    let text = info.stdout;
    assert!(text.contains("stanza: demo\n    status: ok"), "{text}");
    assert!(
        text.contains(&format!("full backup: {}", labels[0])),
        "{text}"
    );
    assert!(
        text.contains(&format!("diff backup: {}", labels[1])),
        "{text}"
    );
    assert!(
        text.contains(&format!("incr backup: {}", labels[2])),
        "{text}"
    );
    assert!(
        text.contains("wal archive min/max (15): 0000000100000000000000"),
        "{text}"
    );
    assert!(text.contains("database size: "), "{text}");
    assert!(
        text.contains(&format!("backup reference list: {}", labels[0])),
        "{text}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&s.pgkeep(&["info", "--output=json"]).ok().stdout).unwrap();
    assert_eq!(json[0]["name"], "demo");
    assert_eq!(json[0]["status"]["code"], 0);
    assert_eq!(json[0]["backup"][1]["type"], "diff");
    assert_eq!(json[0]["backup"][1]["prior"], labels[0].as_str());
    assert!(json[0]["backup"][0]["info"]["size"].as_u64().unwrap() > 1_000_000);
    assert!(
        json[0]["archive"][0]["min"]
            .as_str()
            .unwrap()
            .starts_with("00000001")
    );

    // Break the cluster: without pg_control it cannot start.
    s.cluster.stop();
    std::fs::remove_file(s.data_dir().join("global/pg_control")).unwrap();
    assert!(
        s.cluster.try_start().is_err(),
        "cluster started without pg_control"
    );

    // Empty the data directory and restore the latest backup.
    empty_dir(s.data_dir());
    s.pgkeep(&["--log-level-console=info", "restore"])
        .ok()
        .contains(&format!("restore backup set {}", labels[2]))
        .contains("restore global/pg_control (performed last");
    let auto_conf = std::fs::read_to_string(s.data_dir().join("postgresql.auto.conf")).unwrap();
    assert!(auto_conf.contains("archive-get %f \"%p\"'"), "{auto_conf}");
    assert!(s.data_dir().join("recovery.signal").exists());

    s.cluster.start();
    s.cluster.wait_for(
        "select pg_is_in_recovery()",
        "f",
        std::time::Duration::from_secs(60),
    );
    assert_eq!(s.table_digest("quick"), expected);
    // Recovery replayed archived WAL through archive-get and then switched timeline.
    let log = s.cluster.server_log();
    assert!(log.contains("restored log file"), "{log}");
    assert!(log.contains("selected new timeline ID: 2"), "{log}");

    // After the restore (new timeline) the next backup works, and the new timeline's history
    // file and the backups' .backup files were archived.
    s.pgkeep(&["--log-level-console=info", "backup"])
        .ok()
        .contains("incr backup size = ");
    let archive = s.repo.join("archive/demo/15-1");
    common::pgkeep::wait_until(30, || archive.join("00000002.history").exists());
    let backup_files = std::fs::read_dir(archive.join("0000000100000000"))
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .contains(".backup-")
        })
        .count();
    assert!(
        backup_files >= 3,
        "expected a .backup file per backup, found {backup_files}"
    );

    // Each command logged to its own file, with timestamps and the process id.
    let log = std::fs::read_to_string(s.log.join("demo-backup.log")).unwrap();
    let line = log
        .lines()
        .find(|l| l.contains("backup command begin"))
        .unwrap();
    assert!(
        line.starts_with("20")
            && line.contains(" P00 [")
            && line.contains("INFO: backup command begin"),
        "{line}"
    );
    assert!(s.log.join("demo-restore.log").exists());
    assert!(s.log.join("demo-archive-push.log").exists());
}

#[test]
fn tablespaces_are_backed_up_and_restored_to_their_location() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    let ts_dir = common::TempDir::new();
    let location = ts_dir.path().join("ts1");
    std::fs::create_dir(&location).unwrap();
    common::pgkeep::chown_postgres(&location);
    s.cluster.psql(&format!(
        "create tablespace ts1 location '{}'",
        location.display()
    ));
    s.cluster.psql("create table in_ts tablespace ts1 as select g as id, md5(g::text) as v from generate_series(1, 3000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = s.table_digest("in_ts");
    s.cluster.stop();
    empty_dir(s.data_dir());
    empty_dir(&location);
    s.pgkeep(&["restore"]).ok();
    let link = std::fs::read_dir(s.data_dir().join("pg_tblspc"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    assert_eq!(std::fs::read_link(&link).unwrap(), location);
    s.cluster.start();
    assert_eq!(s.table_digest("in_ts"), expected);
}

#[test]
fn restore_with_several_workers_and_lz4_restores_every_file() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql("create table t as select g as id, repeat(md5(g::text), 20) as payload from generate_series(1, 20000) g");
    s.pgkeep(&[
        "--type=full",
        "--compress-type=lz4",
        "--process-max=3",
        "backup",
    ])
    .ok();
    let expected = s.table_digest("t");
    s.cluster.stop();
    // Excluded by PostgreSQL's base backup rules, or written by the restore itself.
    let skip = [
        "postmaster.pid",
        "postmaster.opts",
        "pg_wal",
        "log",
        "pg_stat",
        "pg_stat_tmp",
        "pg_subtrans",
        "postgresql.auto.conf",
    ];
    let before = file_names(s.data_dir(), &skip);
    empty_dir(s.data_dir());
    s.pgkeep(&["--process-max=3", "--log-level-console=detail", "restore"])
        .ok()
        .contains("restore file ");
    let mut after = file_names(s.data_dir(), &skip);
    // The backup adds backup_label and recovery.signal; nothing else may differ.
    after.retain(|n| n != "backup_label" && n != "recovery.signal");
    let before: Vec<String> = before
        .into_iter()
        .filter(|n| !n.ends_with("pg_internal.init"))
        .collect();
    let missing: Vec<&String> = before.iter().filter(|n| !after.contains(n)).collect();
    let extra: Vec<&String> = after.iter().filter(|n| !before.contains(n)).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing after restore: {missing:?}, unexpected: {extra:?}"
    );
    s.cluster.start();
    assert_eq!(s.table_digest("t"), expected);
}

/// Relative paths of every file under `root`, sorted, skipping the named top-level entries.
fn file_names(root: &std::path::Path, skip: &[&str]) -> Vec<String> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .to_string();
            if skip
                .iter()
                .any(|s| rel == *s || rel.starts_with(&format!("{s}/")))
            {
                continue;
            }
            if path.is_dir() {
                pending.push(path);
            } else {
                out.push(rel);
            }
        }
    }
    out.sort();
    out
}

#[test]
fn first_archive_push_creates_the_stanza() {
    let s = Stanza::new();
    assert!(!s.repo.join("archive/demo/archive.info").exists());
    s.cluster
        .psql("create table x(i int); insert into x values (1); select pg_switch_wal()");
    // archive.info is written first, then backup.info: wait for both.
    common::pgkeep::wait_until(30, || {
        s.repo.join("archive/demo/archive.info").exists()
            && s.repo.join("backup/demo/backup.info").exists()
    });
    s.pgkeep(&["--type=full", "backup"]).ok();
}

#[test]
fn archive_push_and_get_round_trip_and_refuse_a_different_cluster() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster
        .psql("create table x(i int); insert into x values (1)");
    let segment: String = s
        .cluster
        .psql("select pg_walfile_name(pg_current_wal_lsn())");
    s.cluster.psql("select pg_switch_wal()");
    let wal_path = s.data_dir().join("pg_wal").join(&segment);
    common::pgkeep::wait_until(30, || {
        std::fs::read_dir(s.repo.join("archive/demo/15-1/0000000100000000")).is_ok_and(|mut d| {
            d.any(|e| {
                e.unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with(&segment)
            })
        })
    });
    let original = std::fs::read(&wal_path).unwrap();

    // An identical duplicate is accepted with a warning.
    s.pgkeep(&["archive-push", wal_path.to_str().unwrap()])
        .ok()
        .contains("already exists in the archive with the same checksum");

    // archive-get returns the same bytes; a missing segment is exit 1.
    let out = common::TempDir::new();
    let dest = out.path().join("RECOVERYXLOG");
    s.pgkeep(&["archive-get", &segment, dest.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&dest).unwrap(), original);
    s.pgkeep(&[
        "archive-get",
        "0000000100000000000000FF",
        dest.to_str().unwrap(),
    ])
    .code(1);

    // A different file under the same name is refused and the archive keeps the original.
    let fake = out.path().join(&segment);
    let mut changed = original.clone();
    let last = changed.len() - 1;
    changed[last] ^= 0xff;
    std::fs::write(&fake, &changed).unwrap();
    common::pgkeep::chown_postgres(out.path());
    s.pgkeep(&["archive-push", fake.to_str().unwrap()])
        .code(45)
        .contains("already exists in the archive with a different checksum");
    // Neither the duplicate nor the refused push left a second file or a temporary one.
    let archived: Vec<String> =
        std::fs::read_dir(s.repo.join("archive/demo/15-1/0000000100000000"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(&segment))
            .collect();
    assert_eq!(archived.len(), 1, "{archived:?}");
    assert!(!archived[0].ends_with(".pgkeep.tmp"), "{archived:?}");
    // What a push killed mid-write leaves (its temporary file) is never taken for the segment.
    let leftover = s
        .repo
        .join("archive/demo/15-1/0000000100000000")
        .join(format!("{segment}.4242-1.pgkeep.tmp"));
    std::fs::write(&leftover, &changed[..1000]).unwrap();
    common::pgkeep::chown_postgres(&leftover);
    s.pgkeep(&["archive-push", wal_path.to_str().unwrap()])
        .ok()
        .contains("already exists in the archive with the same checksum");
    std::fs::remove_file(&dest).unwrap();
    s.pgkeep(&["archive-get", &segment, dest.to_str().unwrap()])
        .ok();
    assert_eq!(std::fs::read(&dest).unwrap(), original);

    // A segment of another cluster (another system identifier) is refused.
    let other = PgCluster::init(ClusterOptions::default());
    let foreign = other.data_dir().join("pg_wal/000000010000000000000001");
    s.pgkeep(&["archive-push", foreign.to_str().unwrap()])
        .code(44)
        .contains("does not match stanza version 15, system id");
}

/// `info --output=json` is for scripts: its stdout is the JSON and nothing else at every log
/// level, with `log-level-console=info` in the configuration file as pgBackRest's user guide
/// has it, or any level on the command line. info logs its begin and end at debug level (as
/// pgBackRest does), so the text output is not interleaved with them at info either; at debug
/// those lines go to stderr when the output is JSON.
#[test]
fn info_json_stdout_is_only_json_at_every_log_level() {
    let s = Stanza::with_options(
        "demo",
        common::ClusterOptions::default(),
        "log-level-console=info",
    );
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["--type=full", "backup"]).ok();
    for level in ["", "detail", "debug", "trace"] {
        let option = format!("--log-level-console={level}");
        let mut args = vec!["--output=json", "info"];
        if !level.is_empty() {
            args.insert(0, &option);
        }
        let run = s.pgkeep(&args).ok();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap_or_else(|e| {
            panic!("level '{level}': stdout is not JSON ({e}):\n{}", run.stdout)
        });
        assert_eq!(json[0]["name"], "demo", "{json}");
        assert_eq!(json[0]["backup"].as_array().unwrap().len(), 1, "{json}");
        if level == "debug" || level == "trace" {
            assert!(run.stderr.contains("info command begin"), "{}", run.stderr);
        }
    }
    let text = s.pgkeep(&["info"]).ok();
    assert!(text.stdout.starts_with("stanza: demo"), "{}", text.stdout);
    assert!(
        !text.output().contains("command begin"),
        "{}",
        text.output()
    );
}
