//! Block-level incremental backups (`repo1-block`) against a real PostgreSQL 15 cluster: an
//! incremental stores only the changed blocks of a large table, chains of full, incr, incr and
//! diff restore to the right data (also with `--delta`), verify checks the reassembled files,
//! damage is found, and `repo1-block=n` stores whole files as before.

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::pgkeep::{Run, Stanza, empty_dir};
use pgkeep::repo::Manifest;
use pgkeep::repo::block_map::BlockMap;
use pgkeep::repo::manifest::FileEntry;
use pgkeep::storage::PosixStorage;

fn label_of(run: &Run) -> String {
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("new backup label = "))
        .unwrap_or_else(|| panic!("no backup label in:\n{}", run.stdout));
    line.rsplit(' ').next().unwrap().to_string()
}

fn backup(s: &Stanza, args: &[&str]) -> String {
    let mut all = args.to_vec();
    all.extend(["--log-level-console=info", "backup"]);
    label_of(&s.pgkeep(&all).ok())
}

fn manifest(s: &Stanza, label: &str) -> Manifest {
    Manifest::load(&PosixStorage::new(s.repo.clone()), &s.name, label)
        .unwrap()
        .unwrap()
}

fn entry(s: &Stanza, label: &str, name: &str) -> FileEntry {
    manifest(s, label).file(name).unwrap().clone()
}

fn start_and_wait(s: &Stanza) {
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
}

fn change(s: &Stanza, modulo: u32, rest: u32) {
    s.cluster.psql(&format!(
        "update big set v = 'changed ' || v where g % {modulo} = {rest}; checkpoint"
    ));
}

fn stored_object(s: &Stanza, label: &str, name: &str) -> PathBuf {
    s.repo.join(format!("backup/{}/{label}/{name}.zst", s.name))
}

fn flip_middle_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x5a;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn block_incremental_chain_stores_changed_blocks_and_restores() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // Frozen first: the first scan of a fresh table sets hint bits on every page, which would
    // change every block between the backups.
    s.cluster.psql(
        "create table big as select g, md5(g::text) as v from generate_series(1, 400000) g; \
         vacuum (freeze) big; checkpoint",
    );
    let name = format!(
        "pg_data/{}",
        s.cluster.psql("select pg_relation_filepath('big')")
    );
    let full = backup(&s, &["--type=full"]);
    let whole = entry(&s, &full, &name);
    assert!(whole.size >= 25 << 20, "table is {} bytes", whole.size);
    let block = whole
        .block
        .as_ref()
        .expect("full backup writes a block map");
    assert_eq!(block.holders, vec![full.clone()]);
    assert!(
        s.repo
            .join(format!("backup/demo/{full}/{name}.map"))
            .exists()
    );

    // A few hundred scattered rows: the incremental stores only their blocks.
    change(&s, 2000, 0);
    let incr1 = backup(&s, &["--type=incr"]);
    let digest1 = s.table_digest("big");
    let e1 = entry(&s, &incr1, &name);
    let b1 = e1.block.as_ref().unwrap();
    assert!(e1.reference.is_none());
    assert!(
        b1.stored_size * 10 < e1.size && e1.repo_size * 10 < e1.size,
        "incr stored {} bytes ({} in the repository) of {}",
        b1.stored_size,
        e1.repo_size,
        e1.size
    );
    assert!(b1.holders.contains(&full) && b1.holders.contains(&incr1));
    let info = s.pgkeep(&["info", "--output=json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    let delta = json[0]["backup"][1]["info"]["repository"]["delta"]
        .as_u64()
        .unwrap();
    assert!(delta < whole.size / 10, "incr repository delta {delta}");

    change(&s, 1999, 1);
    let incr2 = backup(&s, &["--type=incr"]);
    let digest2 = s.table_digest("big");
    let m2 = manifest(&s, &incr2);
    let b2 = m2.file(&name).unwrap().block.clone().unwrap();
    // Pages incr1 changed may change again (pruning), so incr1 need not hold blocks any more.
    assert!(b2.holders.contains(&full) && b2.holders.contains(&incr2));
    assert!(b2.stored_size * 10 < m2.file(&name).unwrap().size);
    assert!(m2.references.contains(&full));
    s.pgkeep(&["verify"]).ok();

    // The chain of three restores into an empty data directory.
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("big"), digest2);
    assert!(digest2.starts_with("400000:"), "{digest2}");

    // Delta restore of the first incremental over the changed data directory rewrites only
    // the blocks that differ.
    s.cluster.stop();
    let path = s.data_dir().join(name.trim_start_matches("pg_data/"));
    let run = s
        .pgkeep(&[
            "--delta",
            &format!("--set={incr1}"),
            "--type=immediate",
            "--target-action=promote",
            "--log-level-console=detail",
            "restore",
        ])
        .ok();
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains(&format!("restore file {} (", path.display())))
        .unwrap();
    assert!(line.contains("block(s) rewritten"), "{line}");
    start_and_wait(&s);
    assert_eq!(s.table_digest("big"), digest1);

    // A diff after two incrementals compares with the full backup's map.
    change(&s, 1997, 2);
    let diff = backup(&s, &["--type=diff"]);
    let d = entry(&s, &diff, &name);
    let mut holders = d.block.as_ref().unwrap().holders.clone();
    holders.sort();
    assert_eq!(holders, vec![full.clone(), diff]);
    assert!(d.repo_size * 5 < d.size, "diff stored {}", d.repo_size);

    // repo1-block=n stores the changed file whole, without a map; the next block backup starts
    // a new map from it.
    change(&s, 1993, 3);
    let plain = backup(&s, &["--type=incr", "--repo1-block=n"]);
    let p = entry(&s, &plain, &name);
    assert!(p.block.is_none() && p.reference.is_none());
    assert!(p.repo_size * 10 > p.size / 10, "whole file {}", p.repo_size);
    change(&s, 1991, 4);
    let again = backup(&s, &["--type=incr"]);
    assert_eq!(
        entry(&s, &again, &name).block.unwrap().holders,
        vec![again.clone()]
    );
    let digest_last = s.table_digest("big");
    s.pgkeep(&["verify"]).ok();
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("big"), digest_last);
    s.cluster.stop();

    // A damaged block in the full backup's object: verify finds it, restore refuses.
    flip_middle_byte(&stored_object(&s, &full, &name));
    s.pgkeep(&["verify"]).code(104).contains(&name);
    empty_dir(s.data_dir());
    let run = s.pgkeep(&[&format!("--set={incr2}"), "restore"]);
    assert_ne!(run.code, 0, "{}", run.output());
    assert!(
        run.output()
            .contains("does not match its hash in the block map")
            || run.output().contains("unable to decompress"),
        "{}",
        run.output()
    );
}

/// Restores backup set `label` to its own end (`--type=immediate`) into the stopped cluster,
/// starts it and returns the table's digest.
fn restore_set(s: &Stanza, label: &str) -> String {
    empty_dir(s.data_dir());
    s.pgkeep(&[
        &format!("--set={label}"),
        "--type=immediate",
        "--target-action=promote",
        "--target-timeline=current",
        "restore",
    ])
    .ok();
    start_and_wait(s);
    s.table_digest("big")
}

#[test]
fn repeated_changes_chain_deltas_and_damage_fails_the_sets_built_on_them() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    // Half-full pages keep updated rows on their page (HOT): the same blocks change each time.
    s.cluster.psql(
        "create table big with (fillfactor = 50) as \
         select g, md5(g::text) as v from generate_series(1, 200000) g; \
         vacuum (freeze) big; checkpoint",
    );
    let name = format!(
        "pg_data/{}",
        s.cluster.psql("select pg_relation_filepath('big')")
    );
    let mut sets = vec![(backup(&s, &["--type=full"]), s.table_digest("big"))];
    for (round, kind) in ["incr", "incr", "diff"].iter().enumerate() {
        s.cluster.psql(&format!(
            "update big set v = md5(v || '{round}') where g % 500 = 0; checkpoint"
        ));
        sets.push((
            backup(&s, &[&format!("--type={kind}")]),
            s.table_digest("big"),
        ));
    }
    let labels: Vec<String> = sets.iter().map(|(l, _)| l.clone()).collect();
    // The second incremental's changed blocks are deltas on deltas: three layers.
    let repo = PosixStorage::new(s.repo.clone());
    let map_of = |label: &str| BlockMap::load(&repo, &s.name, label, &name, None).unwrap();
    let incr2 = map_of(&labels[2]);
    let deepest = (0..incr2.blocks.len()).map(|n| incr2.layers(n).len()).max();
    assert_eq!(deepest, Some(3));
    assert_eq!(incr2.labels.len(), 3);
    let e2 = entry(&s, &labels[2], &name);
    // Pruning may compact a page (moving its tuples), so a delta is not always tiny.
    assert!(
        e2.repo_size * 5 < e2.block.as_ref().unwrap().stored_size,
        "deltas of {} changed bytes took {} in the repository",
        e2.block.as_ref().unwrap().stored_size,
        e2.repo_size
    );
    // Each incremental's map lists only its blocks, on the prior map: much smaller than the
    // full's. The diff's deltas and map are on the full only.
    let map_size = |label: &str| entry(&s, label, &name).block.unwrap().map_size;
    assert!(map_size(&labels[2]) * 4 < map_size(&labels[0]));
    assert_eq!(incr2.maps, vec![labels[0].clone(), labels[1].clone()]);
    let diff = map_of(&labels[3]);
    assert_eq!(diff.labels.len(), 2);
    assert_eq!(diff.maps, vec![labels[0].clone()]);
    s.pgkeep(&["verify"]).ok();
    for (label, digest) in &sets {
        s.cluster.stop();
        assert_eq!(&restore_set(&s, label), digest, "set {label}");
        assert!(digest.starts_with("200000:"), "{digest}");
    }
    s.cluster.stop();

    // Damage the first incremental's object: it and the incremental built on it are invalid,
    // the full and the diff (on the full) are not.
    flip_middle_byte(&stored_object(&s, &labels[1], &name));
    let run = s.pgkeep(&["--log-level-console=info", "verify"]).code(104);
    for (label, valid) in labels.iter().zip([true, false, false, true]) {
        let shown = format!(
            "backup {label}: {}",
            if valid { "valid" } else { "invalid" }
        );
        assert!(run.stdout.contains(&shown), "{shown} in:\n{}", run.output());
    }
    for label in &labels[1..3] {
        empty_dir(s.data_dir());
        let run = s.pgkeep(&[&format!("--set={label}"), "restore"]);
        assert_ne!(run.code, 0, "{}", run.output());
        assert!(
            run.output()
                .contains("does not match its hash in the block map")
                || run.output().contains("unable to decompress"),
            "{}",
            run.output()
        );
    }
    assert_eq!(restore_set(&s, &labels[3]), sets[3].1);
    s.cluster.stop();
}

/// A relation file of more than 64 MiB is restored with process-max 2: its blocks are written
/// by a second thread while they are assembled, and the files are created ahead of the workers
/// by a thread of their own (restore into an empty directory). The data must be the backup's.
#[test]
fn a_large_file_restores_with_its_writes_behind_and_files_created_ahead() {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table big as select g, md5(g::text) as v, md5((g + 1)::text) as w \
         from generate_series(1, 1000000) g; checkpoint",
    );
    let full = backup(&s, &["--type=full", "--process-max=2"]);
    let relation = s.cluster.psql("select pg_relation_filepath('big')");
    let name = format!("pg_data/{}", relation.trim());
    assert!(
        entry(&s, &full, &name).size > 64 << 20,
        "the table's first segment must be over 64 MiB"
    );
    change(&s, 97, 3);
    let diff = backup(&s, &["--type=diff", "--process-max=2"]);
    assert!(entry(&s, &diff, &name).block.is_some());
    let digest = s.table_digest("big");
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&[
        "--process-max=2",
        "--type=immediate",
        "--target-action=promote",
        "--target-timeline=current",
        "restore",
    ])
    .ok();
    start_and_wait(&s);
    assert_eq!(s.table_digest("big"), digest);
}
