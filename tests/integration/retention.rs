//! SCENARIO §3 (Retention) against real PostgreSQL 15 clusters: expire after each backup,
//! `expire --dry-run`, `expire --set`, and the clean-up of a crash in the middle of an expire.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::ClusterOptions;
use crate::common::pgkeep::{Run, Stanza, chown_postgres, wait_until};

fn stanza(conf: &str) -> Stanza {
    let s = Stanza::with_options("demo", ClusterOptions::default(), conf);
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 2000) g",
    );
    s
}

/// Takes a backup of `kind`, returning its label and the run (logged at info).
fn backup(s: &Stanza, kind: &str) -> (String, Run) {
    let kind = format!("--type={kind}");
    let run = s
        .pgkeep(&["--log-level-console=info", &kind, "backup"])
        .ok();
    let label = run
        .stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("new backup label")
        .trim()
        .to_string();
    (label, run)
}

/// A change to the table, so every backup and WAL segment has something new.
fn write(s: &Stanza, n: u32) {
    s.cluster
        .psql(&format!("insert into t values ({n}, 'row {n}')"));
}

/// Fills and switches `count` WAL segments and waits until each is archived; returns them.
fn switch_wal(s: &Stanza, count: u32) -> Vec<String> {
    let mut switched = Vec::new();
    for i in 0..count {
        write(s, 100_000 + i);
        let segment = s
            .cluster
            .psql("select pg_walfile_name(pg_current_wal_lsn())");
        s.cluster.psql("select pg_switch_wal()");
        wait_until(30, || archived(s).contains(&segment));
        switched.push(segment);
    }
    switched
}

/// The segment names archived for the cluster (not `.backup`, `.partial` or `.history`).
fn archived(s: &Stanza) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let Ok(dirs) = std::fs::read_dir(s.repo.join("archive/demo/15-1")) else {
        return out;
    };
    for dir in dirs.flatten().filter(|d| d.path().is_dir()) {
        for file in std::fs::read_dir(dir.path()).unwrap().flatten() {
            let name = file.file_name().to_string_lossy().to_string();
            if name.len() > 24 && name.as_bytes()[24] == b'-' {
                out.insert(name[..24].to_string());
            }
        }
    }
    out
}

/// A backup's first and last WAL segment, from `info --output=json`.
fn wal_range(s: &Stanza, label: &str) -> (String, String) {
    let run = s.pgkeep(&["info", "--output=json"]).ok();
    let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
    let backup = json[0]["backup"]
        .as_array()
        .unwrap()
        .iter()
        .find(|b| b["label"] == label)
        .unwrap_or_else(|| panic!("{label} not listed"));
    let field = |k: &str| backup["archive"][k].as_str().unwrap().to_string();
    (field("start"), field("stop"))
}

fn set_dir(s: &Stanza, label: &str) -> PathBuf {
    s.repo.join("backup/demo").join(label)
}

/// Every file under `root` with its content, so a run that changes nothing can be proved so.
fn snapshot(root: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).unwrap().flatten() {
            let path = entry.path();
            let rel = path.strip_prefix(root).unwrap().display().to_string();
            let kind = entry.file_type().unwrap();
            if kind.is_symlink() {
                let target = std::fs::read_link(&path).unwrap();
                out.push((rel, target.display().to_string().into_bytes()));
            } else if kind.is_dir() {
                out.push((format!("{rel}/"), Vec::new()));
                pending.push(path);
            } else {
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    out.sort();
    out
}

/// Stops the cluster, empties its data directory and restores `args`; then starts it and waits
/// until recovery ended.
fn restore_and_start(s: &Stanza, args: &[&str]) {
    s.cluster.stop();
    for entry in std::fs::read_dir(s.data_dir()).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            std::fs::remove_dir_all(&path).unwrap();
        } else {
            std::fs::remove_file(&path).unwrap();
        }
    }
    let mut all = vec!["--log-level-console=info", "restore"];
    all.extend_from_slice(args);
    s.pgkeep(&all).ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(60));
}

#[test]
fn retention_full_expires_the_oldest_set_and_the_wal_no_backup_needs() {
    let s = stanza("repo1-retention-full=2");
    let early = switch_wal(&s, 3);

    // One full is fewer than the two retention counts: as pgBackRest, it is too soon to expire
    // any WAL, and the WAL archived before the first full stays.
    let (f1, run) = backup(&s, "full");
    let (f1_start, f1_stop) = wal_range(&s, &f1);
    assert!(!run.output().contains("remove archive"), "{}", run.output());
    let now = archived(&s);
    for segment in &early {
        assert!(now.contains(segment), "{segment} removed: {now:?}");
    }

    write(&s, 1);
    let (d1, _) = backup(&s, "diff");
    write(&s, 2);
    let (i1, _) = backup(&s, "incr");
    switch_wal(&s, 2);
    write(&s, 3);
    // The second full meets the retention: the first anchors it, the WAL before it goes.
    let (f2, run) = backup(&s, "full");
    assert!(
        !run.output().contains("expire full backup set"),
        "{}",
        run.output()
    );
    run.contains(&format!(
        "repo1: 15-1 archive retention on backup {f1}, start = {f1_start}"
    ))
    .contains("repo1: 15-1 remove archive, start = ");
    let now = archived(&s);
    for segment in &early {
        assert!(
            segment < &f1_start && !now.contains(segment),
            "{segment} kept: {now:?}"
        );
    }
    assert!(now.contains(&f1_start) && now.contains(&f1_stop), "{now:?}");
    let (f2_start, f2_stop) = wal_range(&s, &f2);
    let between = switch_wal(&s, 2);
    write(&s, 4);
    let expected = s.table_digest("t");

    // The third full expires the first with its diff and incr, and the WAL before the second.
    let (f3, run) = backup(&s, "full");
    run.contains(&format!("repo1: expire full backup set {f1}, {d1}, {i1}"))
        .contains(&format!("remove expired backup {f1}"))
        .contains(&format!(
            "repo1: 15-1 archive retention on backup {f2}, start = {f2_start}"
        ));
    assert_eq!(s.labels(), [f2.clone(), f3]);
    for label in [&f1, &d1, &i1] {
        assert!(!set_dir(&s, label).exists(), "{label} still on disk");
    }
    let now = archived(&s);
    assert!(now.iter().all(|segment| segment >= &f2_start), "{now:?}");
    for segment in [&f2_start, &f2_stop].into_iter().chain(&between) {
        assert!(now.contains(segment), "{segment} removed: {now:?}");
    }

    // The oldest remaining backup restores and replays the archive to the end.
    restore_and_start(&s, &[&format!("--set={f2}")]);
    assert_eq!(s.table_digest("t"), expected);
}

#[test]
fn retention_diff_expires_the_older_diff_with_its_incr_but_never_an_incr_alone() {
    let s = stanza("repo1-retention-full=2\nrepo1-retention-diff=1");
    let (full, _) = backup(&s, "full");
    write(&s, 1);
    let (d1, _) = backup(&s, "diff");
    write(&s, 2);
    let (i1, _) = backup(&s, "incr");
    write(&s, 3);
    let (d2, run) = backup(&s, "diff");
    run.contains(&format!("repo1: expire diff backup set {d1}, {i1}"));
    assert_eq!(s.labels(), [full.clone(), d2.clone()]);
    assert!(!set_dir(&s, &d1).exists() && !set_dir(&s, &i1).exists());
    assert!(set_dir(&s, &full).exists() && set_dir(&s, &d2).exists());

    // An incremental on the remaining diff stays, after its backup and after a plain expire.
    write(&s, 4);
    let (i2, run) = backup(&s, "incr");
    assert!(!run.output().contains("backup set:"), "{}", run.output());
    let run = s.pgkeep(&["--log-level-console=info", "expire"]).ok();
    assert!(!run.output().contains("backup set:"), "{}", run.output());
    assert_eq!(s.labels(), [full, d2, i2]);
}

#[test]
fn archive_retention_keeps_the_wal_that_makes_a_retained_backup_consistent() {
    let s = stanza("repo1-retention-full=2\nrepo1-retention-archive=1");
    let (f1, _) = backup(&s, "full");
    let (f1_start, f1_stop) = wal_range(&s, &f1);
    let at_f1 = s.table_digest("t");
    let between = switch_wal(&s, 3);
    write(&s, 1);
    let (f2, run) = backup(&s, "full");
    let (f2_start, _) = wal_range(&s, &f2);
    run.contains(&format!(
        "repo1: 15-1 archive retention on backup {f2}, start = {f2_start}"
    ));

    // Under load the first switch has named f1's own stop segment (seen once in CI); only the
    // segments after f1's stop belong to neither backup.
    let only_between: Vec<&String> = between.iter().filter(|s| **s > f1_stop).collect();
    assert!(
        only_between.len() >= 2,
        "f1 stop {f1_stop}, switched {between:?}"
    );
    let now = archived(&s);
    for segment in only_between {
        assert!(
            !now.contains(segment),
            "{segment} kept: {now:?} (f1 {f1_start}..{f1_stop}, f2 start {f2_start})"
        );
    }
    assert!(now.contains(&f1_start) && now.contains(&f1_stop), "{now:?}");

    // The older full still restores to its own end: its WAL is all there.
    restore_and_start(
        &s,
        &[
            &format!("--set={f1}"),
            "--type=immediate",
            "--target-action=promote",
        ],
    );
    assert_eq!(s.table_digest("t"), at_f1);
}

#[test]
fn expire_dry_run_changes_nothing_and_set_removes_a_backup_with_its_dependents() {
    let s = stanza("");
    let (f1, run) = backup(&s, "full");
    run.contains("option 'repo1-retention-full' is not set for 'repo1-retention-full-type=count', the repository may run out of space")
        .contains("HINT: to retain full backups indefinitely (without warning), set option 'repo1-retention-full' to the maximum.");
    write(&s, 1);
    let (d1, _) = backup(&s, "diff");
    write(&s, 2);
    let (i1, _) = backup(&s, "incr");
    write(&s, 3);
    let (f2, _) = backup(&s, "full");
    assert_eq!(s.labels().len(), 4);

    let before = snapshot(&s.repo);
    s.pgkeep(&[
        "--log-level-console=info",
        "--dry-run",
        "--repo1-retention-full=1",
        "expire",
    ])
    .ok()
    .contains(&format!(
        "[DRY-RUN] repo1: expire full backup set {f1}, {d1}, {i1}"
    ))
    .contains(&format!("[DRY-RUN] repo1: remove expired backup {f1}"))
    .contains(&format!(
        "[DRY-RUN] repo1: 15-1 archive retention on backup {f2}"
    ));
    assert!(
        snapshot(&s.repo) == before,
        "--dry-run changed the repository"
    );

    s.pgkeep(&["--log-level-console=info", &format!("--set={d1}"), "expire"])
        .ok()
        .contains(&format!("repo1: expire adhoc backup set {d1}, {i1}"));
    assert_eq!(s.labels(), [f1.clone(), f2.clone()]);
    assert!(!set_dir(&s, &d1).exists() && !set_dir(&s, &i1).exists());

    s.pgkeep(&[&format!("--set={f2}"), "expire"])
        .code(75)
        .contains(&format!(
            "backup set '{f2}' cannot be expired: it is the latest backup"
        ));
    s.pgkeep(&["--set=20200101-000000F", "expire"])
        .code(75)
        .contains("backup set '20200101-000000F' does not exist");
    s.pgkeep(&[&format!("--set={f1}"), "expire"]).ok();
    s.pgkeep(&[&format!("--set={f2}"), "expire"])
        .code(75)
        .contains(&format!(
            "full backup '{f2}' cannot be expired: it is the only full backup"
        ));
    assert_eq!(s.labels(), vec![f2.clone()]);

    // A crash after backup.info was saved leaves the set's directory: the next expire removes it.
    let leftover = set_dir(&s, &f1);
    std::fs::create_dir_all(leftover.join("pg_data")).unwrap();
    std::fs::write(leftover.join("backup.manifest"), "{}").unwrap();
    chown_postgres(&leftover);
    s.pgkeep(&["--log-level-console=info", "expire"])
        .ok()
        .contains(&format!("remove expired backup {f1}"));
    assert!(!leftover.exists());
    assert!(set_dir(&s, &f2).exists());
    assert_eq!(s.labels(), [f2]);
}
