//! Table tests of retention: chains of backups described by their types, a policy, and what
//! must expire and which WAL must stay.

use super::*;
use crate::repo::DbHistory;

const T0: i64 = 1_790_000_000;

/// A chain of backups from type letters (`F`, `D`, `I`), one per day (stop time `T0 + i days`).
/// Backup `i` needs segments `10i+2 ..= 10i+3` of timeline 1.
fn chain(types: &str) -> Vec<BackupRecord> {
    let mut out: Vec<BackupRecord> = Vec::new();
    let mut full = String::new();
    for (i, letter) in types.chars().enumerate() {
        let stamp = format!("202601{:02}-120000", i + 1);
        let (backup_type, label, prior) = match letter {
            'F' => {
                full = format!("{stamp}F");
                (BackupType::Full, full.clone(), None)
            }
            'D' => (
                BackupType::Diff,
                format!("{full}_{stamp}D"),
                Some(full.clone()),
            ),
            _ => (
                BackupType::Incr,
                format!("{full}_{stamp}I"),
                out.last().map(|b| b.label.clone()),
            ),
        };
        let n = 10 * i as u32;
        out.push(BackupRecord {
            label,
            backup_type,
            prior,
            references: Vec::new(),
            db_id: 1,
            timestamp_start: T0 + i as i64 * DAY - 600,
            timestamp_stop: T0 + i as i64 * DAY,
            lsn_start: String::new(),
            lsn_stop: String::new(),
            archive_start: seg(n + 2),
            archive_stop: seg(n + 3),
            size: 0,
            delta: 0,
            repo_size: 0,
            repo_delta: 0,
            annotation: Default::default(),
            version: None,
            error: None,
        });
    }
    out
}

fn seg(n: u32) -> String {
    format!("00000001{:08X}{:08X}", n / 256, n % 256)
}

fn info(backups: Vec<BackupRecord>) -> BackupInfo {
    let db = |id| DbHistory {
        id,
        version: "15".into(),
        system_id: 7,
        catalog_version: 202209061,
        control_version: 1300,
    };
    BackupInfo {
        db_history: vec![db(1)],
        backups,
    }
}

fn policy(full: Option<FullRetention>, diff: Option<u32>) -> RetentionPolicy {
    RetentionPolicy {
        full,
        diff,
        archive: None,
        archive_type: BackupType::Full,
    }
}

/// The expired sets as `reason: label, dependents` strings.
fn expired(plan: &RetentionPlan) -> Vec<String> {
    plan.expired
        .iter()
        .map(|s| format!("{}: {}", s.reason.name(), s.describe()))
        .collect()
}

fn labels(backups: &[BackupRecord], indexes: &[usize]) -> Vec<String> {
    indexes.iter().map(|&i| backups[i].label.clone()).collect()
}

fn anchor(plan: &RetentionPlan) -> Option<(String, String)> {
    match plan.archive.first()? {
        ArchiveDecision::Retain(r) => Some((r.anchor.clone(), r.start.clone())),
        ArchiveDecision::RemoveAll { .. } => None,
    }
}

#[test]
fn full_count_keeps_the_newest_fulls_and_expires_older_sets_whole() {
    let none = plan(
        &info(Vec::new()),
        &policy(Some(FullRetention::Count(2)), None),
        T0,
    );
    assert!(none.expired.is_empty() && none.archive.is_empty());

    let one = chain("F");
    let p = plan(
        &info(one.clone()),
        &policy(Some(FullRetention::Count(1)), None),
        T0,
    );
    assert!(p.expired.is_empty());
    assert_eq!(anchor(&p), Some((one[0].label.clone(), seg(2))));
    // With retention 2 one full is too few: as pgBackRest, no WAL expires until there are as
    // many fulls as retention counts.
    let p = plan(
        &info(one.clone()),
        &policy(Some(FullRetention::Count(2)), None),
        T0,
    );
    assert_eq!(anchor(&p), None);

    let b = chain("FDIFIF");
    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(2)), None),
        T0,
    );
    assert_eq!(
        expired(&p),
        [format!("full: {}", labels(&b, &[0, 1, 2]).join(", "))]
    );
    assert_eq!(
        p.retained
            .iter()
            .map(|r| r.label.clone())
            .collect::<Vec<_>>(),
        labels(&b, &[3, 4, 5])
    );
    assert_eq!(anchor(&p), Some((b[3].label.clone(), seg(32))));
    assert!(p.expires(&b[2].label) && !p.expires(&b[4].label));

    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(3)), None),
        T0,
    );
    assert!(p.expired.is_empty());
    assert_eq!(anchor(&p), Some((b[0].label.clone(), seg(2))));

    // No full retention: nothing expires, and no WAL either.
    let p = plan(&info(b), &policy(None, None), T0);
    assert!(p.expired.is_empty() && p.archive.is_empty());
}

#[test]
fn full_time_keeps_the_newest_full_older_than_the_period() {
    // Fulls end on days 0, 2 and 5; a diff on day 1.
    let b = chain("FDF__F".replace('_', "I").as_str());
    let now = T0 + 10 * DAY;
    let days = |n| policy(Some(FullRetention::Days(n)), None);
    let cases: [(u32, &[usize]); 5] = [
        // Cutoff day 3: fulls of days 0 and 2 are older; day 2 reaches the cutoff and stays.
        (7, &[0, 1]),
        // Cutoff exactly day 2: that full is not older than the period, so day 0 reaches it.
        (8, &[]),
        // Cutoff before every backup: nothing expires.
        (30, &[]),
        // Every full is older: the newest of them stays, so one full always remains.
        (1, &[0, 1, 2, 3, 4]),
        (3, &[0, 1, 2, 3, 4]),
    ];
    for (n, expect) in cases {
        let p = plan(&info(b.clone()), &days(n), now);
        let gone: Vec<String> = p
            .expired
            .iter()
            .flat_map(|s| s.labels().map(str::to_string))
            .collect();
        assert_eq!(gone, labels(&b, expect), "{n} days");
        assert!(p.retained.iter().any(|r| r.backup_type == BackupType::Full));
        // WAL stays from the oldest retained full onward.
        assert_eq!(
            anchor(&p).map(|a| a.0),
            Some(p.retained[0].label.clone()),
            "{n} days"
        );
    }
    // One second after the boundary the day-2 full is older and day 0 expires.
    let p = plan(&info(b.clone()), &days(8), now + 1);
    assert_eq!(
        expired(&p),
        [format!("full: {}, {}", b[0].label, b[1].label)]
    );
}

#[test]
fn diff_retention_counts_fulls_and_takes_dependent_incrementals() {
    // SCENARIO §3.2: full, diff, incr, diff with retention-diff=1.
    let b = chain("FDID");
    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(2)), Some(1)),
        T0,
    );
    assert_eq!(
        expired(&p),
        [format!("diff: {}, {}", b[1].label, b[2].label)]
    );

    let b = chain("FDIIDI");
    let p = plan(&info(b.clone()), &policy(None, Some(1)), T0);
    assert_eq!(
        expired(&p),
        [format!("diff: {}", labels(&b, &[1, 2, 3]).join(", "))]
    );
    assert_eq!(
        p.retained
            .iter()
            .map(|r| r.label.clone())
            .collect::<Vec<_>>(),
        labels(&b, &[0, 4, 5])
    );
    let p = plan(&info(b.clone()), &policy(None, Some(2)), T0);
    assert!(p.expired.is_empty(), "{:?}", expired(&p));

    // A newer full counts as a differential: the older diff expires, fulls never do.
    let b = chain("FDF");
    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(2)), Some(1)),
        T0,
    );
    assert_eq!(expired(&p), [format!("diff: {}", b[1].label)]);

    // Full retention runs first, diff retention on what remains.
    let b = chain("FDFDD");
    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(1)), Some(1)),
        T0,
    );
    assert_eq!(
        expired(&p),
        [
            format!("full: {}, {}", b[0].label, b[1].label),
            format!("diff: {}", b[3].label)
        ]
    );
}

#[test]
fn incrementals_never_expire_alone() {
    let b = chain("FIII");
    for diff in [1, 2] {
        let p = plan(
            &info(b.clone()),
            &policy(Some(FullRetention::Count(1)), Some(diff)),
            T0,
        );
        assert!(p.expired.is_empty());
    }
    assert_eq!(dependents(&b, &b[1].label), labels(&b, &[2, 3]));
    assert_eq!(dependents(&b, &b[0].label), labels(&b, &[1, 2, 3]));

    let b = chain("FIIFI");
    let p = plan(
        &info(b.clone()),
        &policy(Some(FullRetention::Count(1)), None),
        T0,
    );
    assert_eq!(
        expired(&p),
        [format!("full: {}", labels(&b, &[0, 1, 2]).join(", "))]
    );
}

#[test]
fn archive_anchor_follows_the_archive_type() {
    let b = chain("FDIFDI");
    let case = |archive: Option<u32>, archive_type, diff| {
        let p = RetentionPolicy {
            full: None,
            diff,
            archive,
            archive_type,
        };
        anchor(&plan(&info(b.clone()), &p, T0)).map(|a| a.0)
    };
    let label = |i: usize| Some(b[i].label.clone());
    assert_eq!(case(Some(1), BackupType::Full, None), label(3));
    assert_eq!(case(Some(2), BackupType::Full, None), label(0));
    assert_eq!(case(Some(2), BackupType::Diff, None), label(3));
    assert_eq!(case(Some(3), BackupType::Diff, None), label(1));
    assert_eq!(case(Some(2), BackupType::Incr, None), label(4));
    // Unset, diff follows repo1-retention-diff; incr has no default.
    assert_eq!(case(None, BackupType::Diff, Some(2)), label(3));
    assert_eq!(case(None, BackupType::Diff, None), None);
    assert_eq!(case(None, BackupType::Incr, None), None);
    // More than there are backups of the type: too soon, no WAL expires (as pgBackRest).
    assert_eq!(case(Some(3), BackupType::Full, None), None);
    assert_eq!(case(Some(7), BackupType::Incr, None), None);
    assert_eq!(case(Some(9), BackupType::Diff, None), None);
    assert_eq!(case(Some(6), BackupType::Incr, None), label(0));
}

#[test]
fn retained_backups_keep_their_wal_below_the_anchor() {
    let b = chain("FDIFDI");
    let p = RetentionPolicy {
        full: None,
        diff: None,
        archive: Some(1),
        archive_type: BackupType::Full,
    };
    let ArchiveDecision::Retain(r) = &plan(&info(b.clone()), &p, T0).archive[0] else {
        panic!("expected a retention");
    };
    assert_eq!(r.start, seg(32));
    let ranges: Vec<(String, String)> = r
        .keep
        .iter()
        .map(|k| (k.start.clone(), k.stop.clone()))
        .collect();
    let expect: Vec<(String, String)> = [0u32, 1, 2, 4, 5]
        .iter()
        .map(|i| (seg(10 * i + 2), seg(10 * i + 3)))
        .collect();
    assert_eq!(ranges, expect);

    let file = |n: u32, suffix: &str| format!("{}{suffix}-{}.zst", seg(n), "a".repeat(64));
    assert!(!r.keeps_file(&file(1, "")));
    assert!(r.keeps_file(&file(2, "")));
    assert!(r.keeps_file(&file(3, ".00000028.backup")));
    assert!(r.keeps_file(&file(12, ".partial")));
    assert!(!r.keeps_file(&file(4, "")));
    assert!(r.keeps_file(&file(32, "")) && r.keeps_file(&file(40, "")));
    assert!(r.keeps_file("00000001.history") && r.keeps_file("unknown"));

    let names: Vec<String> = (0..16)
        .map(|n| file(n, ""))
        .chain([file(3, ".00000028.backup")])
        .collect();
    let runs: Vec<(String, String, usize)> = removal_runs(&names, r)
        .into_iter()
        .map(|run| (run.first, run.last, run.files.len()))
        .collect();
    assert_eq!(
        runs,
        [
            (seg(0), seg(1), 2),
            (seg(4), seg(11), 8),
            (seg(14), seg(15), 2)
        ]
    );
}

#[test]
fn expire_set_takes_dependents_and_refuses_the_only_full_and_the_latest() {
    let b = chain("FDIFI");
    let i = info(b.clone());
    let p = plan_set(&i, &b[1].label, &policy(None, None)).unwrap();
    assert_eq!(
        expired(&p),
        [format!("adhoc: {}, {}", b[1].label, b[2].label)]
    );
    let p = plan_set(&i, &b[0].label, &policy(None, None)).unwrap();
    assert_eq!(
        expired(&p),
        [format!("adhoc: {}", labels(&b, &[0, 1, 2]).join(", "))]
    );

    let refused = |i: &BackupInfo, label: &str| {
        let err = plan_set(i, label, &policy(None, None)).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::BackupSetInvalid);
        err.message().to_string()
    };
    assert_eq!(
        refused(&i, "20990101-000000F"),
        "backup set '20990101-000000F' does not exist"
    );
    assert!(
        refused(&i, &b[3].label).contains("the latest backup"),
        "{}",
        refused(&i, &b[3].label)
    );
    assert!(refused(&i, &b[4].label).contains("it is the latest backup"));
    let only = info(chain("FDI"));
    let label = only.backups[0].label.clone();
    assert!(refused(&only, &label).contains("it is the only full backup"));
}

#[test]
fn clusters_without_retained_backups_lose_their_whole_archive() {
    let mut b = chain("FF");
    b[1].db_id = 2;
    let mut i = info(b.clone());
    let mut db2 = i.db_history[0].clone();
    db2.id = 2;
    i.db_history.push(db2);
    let p = RetentionPolicy {
        full: Some(FullRetention::Count(1)),
        ..policy(None, None)
    };
    let plan = plan(&i, &p, T0);
    assert_eq!(expired(&plan), [format!("full: {}", b[0].label)]);
    assert_eq!(plan.archive[0], ArchiveDecision::RemoveAll { db_id: 1 });
    assert!(matches!(&plan.archive[1], ArchiveDecision::Retain(r) if r.db_id == 2));

    // With both kept, the older cluster keeps WAL from its own newest backup onward.
    let p = RetentionPolicy {
        full: Some(FullRetention::Count(2)),
        archive: Some(1),
        ..policy(None, None)
    };
    let plan = super::plan(&i, &p, T0);
    assert!(matches!(&plan.archive[0], ArchiveDecision::Retain(r) if r.anchor == b[0].label));
    assert!(matches!(&plan.archive[1], ArchiveDecision::Retain(r) if r.anchor == b[1].label));
}
