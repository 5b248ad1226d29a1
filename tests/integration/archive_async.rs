//! archive-async and archive-push-queue-max against real PostgreSQL 15 clusters: PostgreSQL's
//! archiver pushing through the spool, a restore replaying from the prefetch queue, a full
//! queue refused and (opt-in) dropped, and a failing background process reported by the
//! foreground; archive-get stopping recovery at a damaged segment, temporary files of killed
//! pushes removed, a full disk reported.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::common::pgkeep::{Stanza, chown_postgres, empty_dir, wait_until};
use crate::common::{ClusterOptions, TempDir};

/// A stanza whose config has `extra` and a spool of its own (removed with the `TempDir`).
fn stanza(extra: &str) -> (Stanza, PathBuf, TempDir) {
    let dir = TempDir::new();
    let spool = dir.path().join("spool");
    std::fs::create_dir_all(&spool).unwrap();
    chown_postgres(&spool);
    let conf = format!("spool-path={}\n{extra}", spool.display());
    let s = Stanza::with_options("demo", ClusterOptions::default(), &conf);
    (s, spool, dir)
}

/// Writes rows and switches WAL `count` times; returns the last segment switched away from.
fn switch_segments(s: &Stanza, count: usize) -> String {
    s.cluster
        .psql("create table if not exists t (id int, payload text)");
    let mut last = String::new();
    for round in 0..count {
        s.cluster.psql(&format!(
            "insert into t select g, md5(g::text) from generate_series({}, {}) g",
            round * 1000,
            round * 1000 + 999
        ));
        last = s
            .cluster
            .psql("select pg_walfile_name(pg_current_wal_lsn())");
        s.cluster.psql("select pg_switch_wal()");
    }
    last
}

fn wait_archived(s: &Stanza, segment: &str) {
    wait_until(120, || {
        let archived = s
            .cluster
            .psql("select coalesce(last_archived_wal, '') from pg_stat_archiver");
        archived.as_str() >= segment
    });
}

/// The archived file names of the stanza's first archive id.
fn archived(s: &Stanza) -> Vec<String> {
    let dir = s.repo.join("archive/demo/15-1/0000000100000000");
    let mut names: Vec<String> = std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
                .collect()
        })
        .unwrap_or_default();
    names.sort();
    names
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_default()
}

#[test]
fn async_push_archives_every_segment_and_async_get_replays_them() {
    let (s, spool, _spool_dir) =
        stanza("archive-async=y\nprocess-max=2\narchive-get-queue-max=64MiB\n");
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["backup"]).ok();
    // The .ok files live while PostgreSQL still has the segment ready: watch them appear.
    let out = spool.join("archive/demo/out");
    let seen = std::sync::Mutex::new(std::collections::BTreeSet::new());
    let done = std::sync::atomic::AtomicBool::new(false);
    let last = std::thread::scope(|scope| {
        scope.spawn(|| {
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                for entry in std::fs::read_dir(&out).into_iter().flatten().flatten() {
                    let name = entry.file_name().to_string_lossy().to_string();
                    if name.ends_with(".ok") {
                        seen.lock().unwrap().insert(name);
                    }
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        });
        let last = switch_segments(&s, 12);
        wait_archived(&s, &last);
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        last
    });
    let expected = s.table_digest("t");

    // Every switched segment is in the repository; the spool acknowledged what it pushed.
    let names = archived(&s);
    let first_number = u64::from_str_radix(&last[16..], 16).unwrap() - 11;
    for number in first_number..=u64::from_str_radix(&last[16..], 16).unwrap() {
        let segment = format!("{}{number:08X}", &last[..16]);
        assert!(
            names.iter().any(|n| n.starts_with(&format!("{segment}-"))),
            "{segment} not archived: {names:?}"
        );
    }
    let acknowledged = seen.into_inner().unwrap();
    assert!(!acknowledged.is_empty(), "no .ok in {}", out.display());
    for ok in &acknowledged {
        let segment = ok.trim_end_matches(".ok");
        assert!(names.iter().any(|n| n.starts_with(segment)), "{ok}");
    }
    let async_log = read(&s.log.join("demo-archive-push-async.log"));
    assert!(
        async_log.contains("archive-push:async command begin"),
        "{async_log}"
    );
    assert!(
        async_log.contains("WAL file(s) to archive: "),
        "{async_log}"
    );
    let push_log = read(&s.log.join("demo-archive-push.log"));
    assert!(
        push_log.contains("to the archive asynchronously"),
        "{push_log}"
    );

    // A restore to the end of the archive replays those segments from the prefetch queue and
    // ends recovery at the first segment the archive does not have.
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(120));
    assert_eq!(s.table_digest("t"), expected);
    let get_log = read(&s.log.join("demo-archive-get.log"));
    let found = get_log.matches("in the archive asynchronously").count();
    assert!(found >= 10, "{found} segments from the queue:\n{get_log}");
    assert!(
        get_log.contains("unable to find") && get_log.contains("in the archive asynchronously"),
        "{get_log}"
    );
    let get_async_log = read(&s.log.join("demo-archive-get-async.log"));
    assert!(
        get_async_log.contains("WAL file(s) from archive: "),
        "{get_async_log}"
    );
}

#[test]
fn full_queue_is_an_error_and_drops_only_when_asked() {
    let (s, spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    let conf = read(&s.conf);
    let with = |extra: &str| {
        let text = conf.replacen("[global]\n", &format!("[global]\n{extra}"), 1);
        std::fs::write(&s.conf, text).unwrap();
    };
    with("archive-push-queue-max=1MiB\n");
    let segment = switch_segments(&s, 1);
    let ready = s
        .data_dir()
        .join(format!("pg_wal/archive_status/{segment}.ready"));
    // PostgreSQL's archiver keeps failing: the segment stays ready, in pg_wal, not archived.
    wait_until(60, || {
        s.cluster
            .psql("select failed_count > 1 from pg_stat_archiver")
            == "t"
    });
    assert!(ready.exists() && s.data_dir().join("pg_wal").join(&segment).exists());
    assert!(!archived(&s).iter().any(|n| n.starts_with(&segment)));
    let run = s
        .pgkeep(&["archive-push", &format!("pg_wal/{segment}")])
        .code(110)
        .contains(&format!(
            "WAL file '{segment}' not pushed: archive queue size 16MB exceeds archive-push-queue-max 1MB"
        ));
    assert!(run.output().contains("ERROR: [110]"), "{}", run.output());
    let status = read(&spool.join("archive/demo/archive-push.status"));
    assert!(!status.lines().any(|l| l == "queue-full=0"), "{status}");
    assert!(status.lines().any(|l| l == "dropped=0"), "{status}");

    // With the opt-in the archiver's next retry drops it: logged by name and counted.
    with("archive-push-queue-max=1MiB\narchive-push-queue-drop=y\n");
    wait_archived(&s, &segment);
    let log = read(&s.log.join("demo-archive-push.log"));
    assert!(
        log.contains(&format!(
            "WARN: dropped WAL file '{segment}' because archive queue exceeded 1MB"
        )),
        "{log}"
    );
    let status = read(&spool.join("archive/demo/archive-push.status"));
    assert!(
        status.contains(&format!("last-dropped={segment}")),
        "{status}"
    );
    assert!(status.lines().any(|l| l == "dropped=1"), "{status}");
    assert!(!archived(&s).iter().any(|n| n.starts_with(&segment)));

    // check, on the database host, reports the counters.
    with("");
    s.pgkeep(&["check"])
        .ok()
        .contains(&format!(
            "archive-push dropped 1 WAL file(s), the last '{segment}'"
        ))
        .contains("archive-push refused WAL ");
}

#[test]
fn failing_background_push_is_reported_by_the_foreground_and_recovers() {
    let (s, spool, _spool_dir) = stanza("archive-async=y\nprocess-max=2\n");
    s.pgkeep(&["stanza-create"]).ok();
    // The archive id's directory does not exist yet: it cannot be created.
    let archive_id = s.repo.join("archive/demo");
    std::fs::set_permissions(&archive_id, std::fs::Permissions::from_mode(0o500)).unwrap();
    let segment = switch_segments(&s, 1);
    wait_until(60, || {
        s.cluster
            .psql("select failed_count > 0 from pg_stat_archiver")
            == "t"
    });
    let run = s.pgkeep(&["archive-push", &format!("pg_wal/{segment}")]);
    assert!(run.code != 0, "{}", run.output());
    let run = run.contains("Permission denied");
    assert!(
        run.output().contains(&archive_id.display().to_string()),
        "{}",
        run.output()
    );
    assert!(
        !spool
            .join(format!("archive/demo/out/{segment}.ok"))
            .exists()
    );

    // Once the repository is writable again the next attempt pushes it.
    std::fs::set_permissions(&archive_id, std::fs::Permissions::from_mode(0o750)).unwrap();
    wait_archived(&s, &segment);
    assert!(archived(&s).iter().any(|n| n.starts_with(&segment)));
}

#[test]
fn segments_compressed_in_parallel_frames_read_back_with_pgkeep_and_the_tools() {
    let (s, _spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    let segment = switch_segments(&s, 1);
    wait_archived(&s, &segment);
    let wal = s.dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    chown_postgres(&wal);
    let original = wal.join(&segment);
    s.pgkeep(&["archive-get", &segment, &original.display().to_string()])
        .ok();
    let bytes = std::fs::read(&original).unwrap();
    assert_eq!(bytes.len(), 16 << 20);
    for (kind, tool) in [
        ("gz", "gzip"),
        ("lz4", "lz4"),
        ("zst", "zstd"),
        ("none", ""),
    ] {
        let repo = s.dir.path().join(format!("repo-{kind}"));
        std::fs::create_dir_all(&repo).unwrap();
        chown_postgres(&repo);
        let repo_option = format!("--repo1-path={}", repo.display());
        s.pgkeep(&[
            &repo_option,
            &format!("--compress-type={kind}"),
            "archive-push",
            &original.display().to_string(),
        ])
        .ok();
        let back = s.dir.path().join(format!("back-{kind}"));
        s.pgkeep(&[
            &repo_option,
            "archive-get",
            &segment,
            &back.display().to_string(),
        ])
        .ok();
        assert!(std::fs::read(&back).unwrap() == bytes, "{kind}");
        if tool.is_empty() {
            continue;
        }
        let dir = repo.join("archive/demo/15-1/0000000100000000");
        let stored = std::fs::read_dir(&dir)
            .unwrap()
            .next()
            .unwrap()
            .unwrap()
            .path();
        let output = std::process::Command::new(tool)
            .args(["-d", "-c"])
            .arg(&stored)
            .output()
            .unwrap();
        assert!(output.status.success(), "{tool}: {output:?}");
        assert!(output.stdout == bytes, "{tool} output differs");
    }
}

/// The archived file of `segment` in the stanza's first archive id.
fn archived_file(s: &Stanza, segment: &str) -> PathBuf {
    let name = archived(s)
        .into_iter()
        .find(|n| n.starts_with(&format!("{segment}-")))
        .unwrap_or_else(|| panic!("{segment} not archived"));
    s.repo
        .join("archive/demo/15-1")
        .join(&segment[..16])
        .join(name)
}

/// Starts the restored cluster (hot standby off: no connection before the end of recovery);
/// asserts that recovery stopped with PostgreSQL's FATAL for `segment` (archive-get exited 255)
/// instead of promoting past it.
fn assert_recovery_stops_at(s: &Stanza, segment: &str, attempt: usize) {
    // pg_ctl returns once recovery has started: wait for its outcome.
    let _ = s.cluster.try_start();
    wait_until(120, || {
        !s.cluster.is_running() || s.cluster.try_psql("select 1").is_ok()
    });
    assert!(
        !s.cluster.is_running(),
        "PostgreSQL promoted past damaged {segment}: {:?}",
        s.cluster.try_psql("select count(*) from t")
    );
    let fatal = format!(
        "FATAL:  could not restore file \"{segment}\" from archive: child process exited with exit code 255"
    );
    let log = s.cluster.server_log();
    assert_eq!(log.matches(&fatal).count(), attempt, "{log}");
}

#[test]
fn damaged_segment_stops_recovery_sync_async_and_standby_absent_one_ends_it() {
    let (s, _spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    s.pgkeep(&["backup"]).ok();
    let last = switch_segments(&s, 4);
    wait_archived(&s, &last);
    let expected = s.table_digest("t");
    assert!(expected.starts_with("4000:"), "{expected}");

    // The second of the four segments after the backup: two segments of rows follow it.
    let number = u64::from_str_radix(&last[16..], 16).unwrap();
    let damaged = format!("{}{:08X}", &last[..16], number - 2);
    let file = archived_file(&s, &damaged);
    let original = std::fs::read(&file).unwrap();
    let mut flipped = original.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0xff;
    std::fs::write(&file, &flipped).unwrap();

    // By hand: the damaged segment exits above 125 naming it; an absent one still exits 1.
    let wal = s.dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    chown_postgres(&wal);
    let destination = wal.join(&damaged);
    s.pgkeep(&["archive-get", &damaged, &destination.display().to_string()])
        .code(255)
        .contains(&format!("unable to get WAL file '{damaged}': "))
        .contains(&file.display().to_string());
    assert!(!destination.exists());
    let absent = format!("{}{:08X}", &last[..16], number + 50);
    let absent_destination = wal.join(&absent).display().to_string();
    s.pgkeep(&[
        "--log-level-console=info",
        "archive-get",
        &absent,
        &absent_destination,
    ])
    .code(1)
    .contains(&format!("unable to find {absent} in the archive"));

    // archive.info and its copy both unreadable: whether the segment is there cannot be known.
    let info = s.repo.join("archive/demo/archive.info");
    let info_copy = s.repo.join("archive/demo/archive.info.copy");
    let saved = (
        std::fs::read(&info).unwrap(),
        std::fs::read(&info_copy).unwrap(),
    );
    std::fs::write(&info, b"{ damaged").unwrap();
    std::fs::write(&info_copy, b"{ damaged").unwrap();
    s.pgkeep(&["archive-get", &absent, &absent_destination])
        .code(255)
        .contains(&format!(
            "unable to get WAL file '{absent}': invalid info file"
        ));
    std::fs::write(&info, &saved.0).unwrap();
    std::fs::write(&info_copy, &saved.1).unwrap();

    // A restore to the end of the archive: recovery stops at the damaged segment, FATAL.
    s.cluster.stop();
    empty_dir(s.data_dir());
    s.pgkeep(&["restore"]).ok();
    // Without hot standby pg_ctl waits for the end of recovery: promotion or failure.
    s.cluster.set("hot_standby", "off");
    assert_recovery_stops_at(&s, &damaged, 1);
    let get_log = read(&s.log.join("demo-archive-get.log"));
    assert!(
        get_log.contains("ERROR: [")
            && get_log.contains(&format!("unable to get WAL file '{damaged}'")),
        "{get_log}"
    );

    // The same through the asynchronous prefetch: a damaged segment it found is not "absent".
    let conf = read(&s.conf).replacen("[global]\n", "[global]\narchive-async=y\n", 1);
    std::fs::write(&s.conf, conf).unwrap();
    assert_recovery_stops_at(&s, &damaged, 2);
    let get_async_log = read(&s.log.join("demo-archive-get-async.log"));
    assert!(
        get_async_log.contains(&format!("{}", file.display())),
        "{get_async_log}"
    );

    // A standby stops too, rather than wait forever for a segment it was told is absent.
    let standby_signal = s.data_dir().join("standby.signal");
    std::fs::write(&standby_signal, b"").unwrap();
    chown_postgres(&standby_signal);
    assert_recovery_stops_at(&s, &damaged, 3);
    std::fs::remove_file(&standby_signal).unwrap();

    // Once the segment is repaired recovery goes on to the end: no row was lost.
    std::fs::write(&file, &original).unwrap();
    s.cluster.start();
    s.cluster
        .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(120));
    assert_eq!(s.table_digest("t"), expected);
}

/// Sets a file's modification time `seconds` into the past.
fn age(path: &Path, seconds: u64) {
    let when = std::time::SystemTime::now() - Duration::from_secs(seconds);
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(when)
        .unwrap();
}

#[test]
fn stale_push_temporaries_are_removed_by_the_next_push_and_by_expire() {
    let (s, _spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    switch_segments(&s, 2);
    // The first and the last archived segment (the name switch_segments returns can be the
    // segment before when a switch left the position on a boundary).
    let segments = || -> Vec<String> {
        archived(&s)
            .iter()
            .filter(|n| !n.ends_with(".pgkeep.tmp"))
            .map(|n| n[..24].to_string())
            .collect()
    };
    wait_until(120, || segments().len() >= 2);
    let segments = segments();
    let (first, last) = (segments[0].clone(), segments[segments.len() - 1].clone());
    assert_ne!(first, last, "{segments:?}");
    let dir = s.repo.join("archive/demo/15-1").join(&last[..16]);
    // What killed pushes leave: a framed push's temporary file, a streamed push's one.
    let temp = |segment: &str, tail: &str, seconds: u64| {
        let path = dir.join(format!("{segment}{tail}.pgkeep.tmp"));
        std::fs::write(&path, vec![7u8; 1 << 20]).unwrap();
        age(&path, seconds);
        path
    };
    let killed = temp(&last, ".4000001-1700000000000000000", 11 * 60);
    let killed_streamed = temp(&last, &format!("-{}", "a".repeat(64)), 11 * 60);
    let live = temp(&last, ".4000002-1700000000000000001", 60);
    let other_segment = temp(&first, ".4000003-1700000000000000002", 11 * 60);
    let old_other = temp(&first, ".4000004-1700000000000000003", 2 * 3600);
    let top = s.repo.join("archive/demo/15-1/00000002.history.pgkeep.tmp");
    std::fs::write(&top, b"x").unwrap();
    age(&top, 2 * 3600);
    chown_postgres(&s.repo);

    // PostgreSQL pushing the segment again (a retry): its stale temporaries go, nothing else.
    let wal = s.dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    chown_postgres(&wal);
    let copy = wal.join(&last).display().to_string();
    s.pgkeep(&["archive-get", &last, &copy]).ok();
    s.pgkeep(&["--log-level-console=info", "archive-push", &copy])
        .ok()
        .contains("already exists in the archive with the same checksum")
        .contains(&format!(
            "removed temporary file '{}' left by an interrupted push",
            killed.display()
        ));
    assert!(!killed.exists() && !killed_streamed.exists());
    assert!(live.exists(), "a live push's temporary file was removed");
    assert!(other_segment.exists() && old_other.exists() && top.exists());

    // expire removes those older than an hour, whatever the retention keeps.
    s.pgkeep(&[
        "--log-level-console=info",
        "expire",
        "--repo1-retention-full=1",
    ])
    .ok()
    .contains(&format!(
        "remove stale temporary file '{}'",
        old_other.display()
    ));
    assert!(!old_other.exists() && !top.exists());
    assert!(live.exists() && other_segment.exists());
    assert!(
        archived(&s)
            .iter()
            .any(|n| n.starts_with(&format!("{last}-")))
    );
    let names = archived(&s);
    assert!(
        names.iter().any(|n| n.starts_with(&format!("{first}-"))),
        "{first} not in {names:?}"
    );
}

/// A 1 MiB tmpfs mounted for one test, unmounted on drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(path: PathBuf) -> SmallDisk {
        std::fs::create_dir_all(&path).unwrap();
        let status = std::process::Command::new("mount")
            .args(["-t", "tmpfs", "-o", "size=1m", "tmpfs"])
            .arg(&path)
            .status()
            .unwrap();
        assert!(status.success(), "mount a tmpfs at {}", path.display());
        chown_postgres(&path);
        SmallDisk(path)
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_reported_with_the_path_once() {
    let (s, _spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    let segment = switch_segments(&s, 1);
    wait_archived(&s, &segment);
    let wal = s.dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    chown_postgres(&wal);
    let copy = wal.join(&segment).display().to_string();
    s.pgkeep(&["archive-get", &segment, &copy]).ok();

    let disk = SmallDisk::mount(s.dir.path().join("small"));
    let repo = format!("--repo1-path={}", disk.0.display());
    s.pgkeep(&[&repo, "stanza-create"]).ok();
    // Uncompressed, the 16 MiB segment cannot fit.
    let run = s
        .pgkeep(&[&repo, "--compress-type=none", "archive-push", &copy])
        .code(64)
        .contains("[28] No space left on device");
    let dir = format!("{}/archive/demo/15-1/{}/", disk.0.display(), &segment[..16]);
    let line = run
        .output()
        .lines()
        .find(|l| l.contains("ERROR: [064]"))
        .unwrap_or_default()
        .to_string();
    assert_eq!(line.matches(&dir).count(), 1, "{line}");
    assert_eq!(line.matches("unable to write").count(), 1, "{line}");
    // Nothing of the failed push is left to fill the disk.
    let left: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
}

/// A background process that does not deliver within `archive-timeout` (here: another process
/// holds its lock, so none can start) must not read as "absent" to PostgreSQL, which would end
/// recovery there: the foreground gets the segment from the archive itself, and exit 1 still
/// means the archive does not have it.
#[test]
fn async_get_that_times_out_gets_the_segment_directly() {
    let (s, _spool, _spool_dir) = stanza("");
    s.pgkeep(&["stanza-create"]).ok();
    let segment = switch_segments(&s, 1);
    wait_archived(&s, &segment);
    // Hold the background process's lock as a stuck one would.
    let lock_file = s.lock.join("demo-archive-get.lock");
    let holder = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_file)
        .unwrap();
    holder.try_lock().unwrap();
    chown_postgres(&lock_file);
    let wal = s.dir.path().join("wal");
    std::fs::create_dir_all(&wal).unwrap();
    chown_postgres(&wal);
    let destination = wal.join(&segment);
    s.pgkeep(&[
        "--log-level-console=info",
        "--archive-async",
        "--archive-timeout=1",
        "archive-get",
        &segment,
        &destination.display().to_string(),
    ])
    .ok()
    .contains(&format!(
        "unable to get WAL file '{segment}' from the archive asynchronously after 1 second(s): getting it directly"
    ))
    .contains(&format!("found {segment} in the archive"));
    assert_eq!(std::fs::metadata(&destination).unwrap().len(), 16 << 20);
    let absent = "0000000100000000000000FF";
    s.pgkeep(&[
        "--archive-async",
        "--archive-timeout=1",
        "archive-get",
        absent,
        &wal.join(absent).display().to_string(),
    ])
    .code(1);
    drop(holder);
}
