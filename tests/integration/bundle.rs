//! Bundling small files (repo1-bundle): a cluster of 500 small tables backed up, restored,
//! verified, damaged and resumed, against real PostgreSQL 15 clusters.

use crate::common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::pgkeep::{Stanza, empty_dir, wait_until};
use serde_json::Value;

const TABLES: usize = 500;

/// A stanza whose cluster has `TABLES` small tables, children of `p`, one row each.
fn small_tables() -> Stanza {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(&format!(
        "create table p (id int, v text); \
         do $$ begin for i in 1..{TABLES} loop \
           execute format('create table t%s () inherits (p)', i); \
           execute format('insert into t%s values (%s, md5(%s::text))', i, i, i); \
         end loop; end $$; \
         vacuum; checkpoint"
    ));
    s
}

/// Row count and md5 over every small table, each row with its table's name.
fn digest(s: &Stanza) -> String {
    s.cluster.psql(
        "select count(*) || ':' || md5(string_agg(tableoid::regclass::text || '=' || id || v, \
         ',' order by tableoid::regclass::text)) from p",
    )
}

fn label_of(run: &common::pgkeep::Run) -> String {
    run.stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("new backup label")
        .trim()
        .to_string()
}

fn backup(s: &Stanza, args: &[&str]) -> String {
    let mut all = vec!["--log-level-console=info", "--process-max=2"];
    all.extend_from_slice(args);
    all.push("backup");
    label_of(&s.pgkeep(&all).ok())
}

fn manifest(s: &Stanza, label: &str) -> Value {
    let path = s.repo.join(format!("backup/demo/{label}/backup.manifest"));
    let json: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    json["content"].clone()
}

/// The manifest entry of a data-directory file.
fn entry(manifest: &Value, rel: &str) -> Value {
    let name = format!("pg_data/{rel}");
    manifest["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == name.as_str())
        .unwrap_or_else(|| panic!("no entry {name}"))
        .clone()
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for e in std::fs::read_dir(&dir).unwrap().flatten() {
            if e.file_type().unwrap().is_dir() {
                pending.push(e.path());
            } else {
                found.push(e.path());
            }
        }
    }
    found
}

/// Restores into the stopped cluster's data directory (emptied first when `empty`) and starts
/// it.
fn restore_and_start(s: &Stanza, args: &[&str], empty: bool) -> common::pgkeep::Run {
    if empty {
        empty_dir(s.data_dir());
    }
    let mut all = vec!["--log-level-console=info"];
    all.extend_from_slice(args);
    all.push("restore");
    let run = s.pgkeep(&all).ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
    run
}

fn relation(s: &Stanza, table: &str) -> String {
    s.cluster
        .psql(&format!("select pg_relation_filepath('{table}')"))
}

#[test]
fn small_files_are_bundled_restored_and_verified() {
    let s = small_tables();
    let expected = digest(&s);
    let full = backup(&s, &["--type=full"]);
    let m = manifest(&s, &full);
    let entries = m["files"].as_array().unwrap().len();
    let stored = files_under(&s.repo.join(format!("backup/demo/{full}")));
    let bundles = stored
        .iter()
        .filter(|p| p.parent().unwrap().ends_with("bundle"))
        .count();
    assert!(bundles >= 2, "{bundles} bundles (two workers)");
    assert!(
        stored.len() * 10 < entries,
        "{} repository files for {entries} entries",
        stored.len()
    );
    let t1 = entry(&m, &relation(&s, "t1"));
    assert!(t1["bundle_id"].is_u64(), "{t1}");
    // Zero-length files (empty fsm-less relations' siblings, pg_notify...) are stored nowhere.
    let empty = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["size"] == 0)
        .expect("an empty file");
    assert!(
        empty["bundle_id"].is_null() && empty["repo_size"] == 0,
        "{empty}"
    );

    // Incremental after changing three tables: only they (and the cluster's own moving files)
    // are copied, into this backup's bundles; the rest reference the full's bundles.
    s.cluster.psql(
        "update t7 set v = 'x'; update t8 set v = 'y'; insert into t9 values (0, 'z'); \
         checkpoint",
    );
    let after = digest(&s);
    let incr = backup(&s, &["--type=incr"]);
    let mi = manifest(&s, &incr);
    for table in ["t7", "t8", "t9"] {
        let e = entry(&mi, &relation(&s, table));
        assert!(e["reference"].is_null() && e["bundle_id"].is_u64(), "{e}");
    }
    let kept = entry(&mi, &relation(&s, "t100"));
    assert_eq!(kept["reference"], full.as_str());
    assert_eq!(
        kept["bundle_id"],
        entry(&m, &relation(&s, "t100"))["bundle_id"]
    );
    let copied = mi["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["reference"].is_null())
        .count();
    assert!(copied < 100, "{copied} files copied by the incremental");

    s.pgkeep(&["verify"]).ok();
    let t5 = relation(&s, "t5");
    let t100_rel = relation(&s, "t100");
    s.cluster.stop();
    restore_and_start(&s, &[], true);
    assert_eq!(digest(&s), after);
    // Delta restore: a removed small file comes back from its bundle, the rest is kept.
    s.cluster.stop();
    std::fs::remove_file(s.data_dir().join(&t5)).unwrap();
    let run = restore_and_start(&s, &["--delta"], false);
    assert!(
        run.output().contains("files matched the backup"),
        "{}",
        run.output()
    );
    assert!(s.data_dir().join(&t5).exists());
    assert_eq!(digest(&s), after);
    assert_ne!(digest(&s), expected);

    // A flipped byte inside a bundle: verify names the file, restore fails clearly.
    let t100 = entry(&m, &t100_rel);
    let bundle = s.repo.join(format!(
        "backup/demo/{full}/bundle/{}",
        t100["bundle_id"].as_u64().unwrap()
    ));
    let original = std::fs::read(&bundle).unwrap();
    let offset = t100["bundle_offset"].as_u64().unwrap() as usize;
    let mut damaged = original.clone();
    damaged[offset + t100["repo_size"].as_u64().unwrap() as usize / 2] ^= 0x55;
    std::fs::write(&bundle, &damaged).unwrap();
    let run = s.pgkeep(&["--log-level-console=info", "verify"]);
    assert_ne!(run.code, 0, "{}", run.output());
    let name = format!("{t100_rel}' (in bundle");
    assert!(run.output().contains(&name), "{}", run.output());
    s.cluster.stop();
    empty_dir(s.data_dir());
    let run = s.pgkeep(&[&format!("--set={full}"), "restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(run.output().contains(&t100_rel), "{}", run.output());
    assert!(!s.data_dir().join("global/pg_control").exists());

    // A truncated bundle likewise.
    std::fs::write(&bundle, &original[..offset + 1]).unwrap();
    let run = s.pgkeep(&["--log-level-console=info", "verify"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(run.output().contains("is truncated"), "{}", run.output());
    empty_dir(s.data_dir());
    let run = s.pgkeep(&[&format!("--set={full}"), "restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(run.output().contains("is truncated"), "{}", run.output());
    std::fs::write(&bundle, &original).unwrap();
    s.pgkeep(&["verify"]).ok();
}

#[test]
fn without_bundling_every_file_is_its_own_repository_file() {
    let s = small_tables();
    let label = backup(&s, &["--type=full", "--repo1-bundle=n"]);
    let m = manifest(&s, &label);
    let stored = files_under(&s.repo.join(format!("backup/demo/{label}")));
    assert!(!s.repo.join(format!("backup/demo/{label}/bundle")).exists());
    let entries = m["files"].as_array().unwrap();
    assert!(entries.iter().all(|f| f["bundle_id"].is_null()));
    // Every entry, plus the manifest and its copy.
    assert_eq!(stored.len(), entries.len() + 2);
    let expected = digest(&s);
    s.cluster.stop();
    restore_and_start(&s, &[], true);
    assert_eq!(digest(&s), expected);
}

#[test]
fn a_bundled_backup_killed_mid_copy_is_resumed_and_valid() {
    let s = small_tables();
    s.cluster.psql(
        "create table big as select g as id, md5(g::text) || md5((g * 7)::text) as v \
         from generate_series(1, 150000) g; checkpoint",
    );
    let expected = digest(&s);
    let config = format!("--config={}", s.conf.display());
    let mut run = common::pgkeep::spawn_pgkeep(&[
        &config,
        "--stanza=demo",
        "--type=full",
        "--compress-level=15",
        "--process-max=1",
        "--repo1-bundle-size=1MiB",
        "backup",
    ]);
    // Kill -9 once the large file is recorded and bundles are being written.
    let backup_dir = s.repo.join("backup/demo");
    wait_until(120, || {
        std::fs::read_dir(&backup_dir).is_ok_and(|entries| {
            entries.flatten().any(|e| {
                std::fs::read_to_string(e.path().join("backup.resume"))
                    .is_ok_and(|t| t.contains("\"checksum\": \""))
                    && std::fs::read_dir(e.path().join("bundle")).is_ok_and(|b| b.count() > 0)
            })
        })
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(run.id() as i32),
        nix::sys::signal::Signal::SIGKILL,
    )
    .ok();
    let _ = run.wait();
    assert!(s.labels().is_empty());

    let label = backup(&s, &["--type=full"]);
    let bundles = files_under(&s.repo.join(format!("backup/demo/{label}/bundle")));
    // No temp bundle of the killed run is left, and every bundle is one the manifest uses.
    let m = manifest(&s, &label);
    let used: std::collections::BTreeSet<String> = m["files"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|f| f["bundle_id"].as_u64().map(|id| id.to_string()))
        .collect();
    for bundle in &bundles {
        let name = bundle.file_name().unwrap().to_string_lossy().to_string();
        assert!(used.contains(&name), "stray bundle {}", bundle.display());
    }
    s.pgkeep(&["verify"]).ok();
    s.cluster.stop();
    restore_and_start(&s, &[], true);
    assert_eq!(digest(&s), expected);
}
