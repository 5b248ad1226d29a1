//! Random `kill -9` (issue 13, "make it stay fixed"): backup, archive-push, expire and restore
//! are each killed a few times after a delay drawn from a seeded generator (so a failure can be
//! replayed), anywhere in their run; after each kill the next run succeeds, `info` lists no
//! half-made set, `verify` passes and a restore gives the original table content. The signal
//! goes to pgkeep's own pid (started without `runuser` in between, see `spawn_pgkeep`), and
//! the test waits until that process is gone before the next step.

use crate::common;

use std::os::unix::process::ExitStatusExt;
use std::time::{Duration, Instant};

use crate::common::faults::{
    Spare, archived, assert_archive_get_returns, assert_repository_valid, backup_dirs,
    hold_archiving, new_segments, release_archiving, stanza_with_table, table_sum,
};
use crate::common::pgkeep::{Stanza, empty_dir, spawn_pgkeep};

/// Kills per command: enough to land in different phases, few enough for the default suite.
const KILLS: usize = 5;

/// The generator's seed: `PGKEEP_KILL_SEED` replays another run.
fn rng() -> fastrand::Rng {
    let seed = std::env::var("PGKEEP_KILL_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(13);
    eprintln!("kill delays seeded with {seed} (PGKEEP_KILL_SEED)");
    fastrand::Rng::with_seed(seed)
}

/// How long `args` takes when it is not killed (at least 50 ms).
fn timed(s: &Stanza, args: &[&str]) -> Duration {
    let started = Instant::now();
    s.pgkeep(args).ok();
    started.elapsed().max(Duration::from_millis(50))
}

/// Starts pgkeep on `s` with `args`, sends SIGKILL to its own pid after a random part of
/// `within`, and waits until the process is gone (reaped). Returns whether the kill landed
/// before it finished on its own.
fn kill_during(s: &Stanza, args: &[&str], within: Duration, rng: &mut fastrand::Rng) -> bool {
    let config = format!("--config={}", s.conf.display());
    let stanza = format!("--stanza={}", s.name);
    let mut all = vec![config.as_str(), stanza.as_str()];
    all.extend_from_slice(args);
    let delay = within.mul_f64(rng.f64());
    let mut child = spawn_pgkeep(&all);
    std::thread::sleep(delay);
    let pid = nix::unistd::Pid::from_raw(child.id() as i32);
    let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
    let status = child.wait().expect("wait for pgkeep");
    let killed = status.signal() == Some(nix::libc::SIGKILL);
    eprintln!("{args:?} after {delay:?}: {status}");
    assert!(
        killed || status.success(),
        "{args:?} failed on its own: {status}"
    );
    killed
}

#[test]
fn backup_killed_at_random_points_recovers() {
    let s = stanza_with_table();
    s.cluster
        .psql("insert into t select g, repeat(md5(g::text), 8) from generate_series(1, 60000) g");
    let within = timed(&s, &["--type=full", "backup"]);
    let spare = Spare::new();
    let mut rng = rng();
    let mut landed = 0;
    for round in 0..KILLS {
        s.cluster.psql(&format!(
            "update t set v = 'round {round}' where id % 97 = {round}"
        ));
        let expected = table_sum(&s.cluster, "t");
        let kind = ["--type=full", "--type=incr", "--type=diff"][round % 3];
        landed += usize::from(kill_during(&s, &[kind, "backup"], within, &mut rng));
        assert_repository_valid(&s);
        s.pgkeep(&[kind, "backup"]).ok();
        let listed = assert_repository_valid(&s);
        assert_eq!(backup_dirs(&s), listed, "round {round}");
        spare.assert_restores(&s, "t", &expected);
    }
    assert!(landed > 0, "no kill landed while a backup ran");
}

#[test]
fn archive_push_killed_at_random_points_recovers() {
    let s = stanza_with_table();
    hold_archiving(&s);
    let segments = new_segments(&s, KILLS + 1);
    let expected = table_sum(&s.cluster, "t");
    let push = |segment: &str| s.data_dir().join("pg_wal").join(segment);
    let within = timed(
        &s,
        &["archive-push", &push(&segments[0]).display().to_string()],
    );
    let mut rng = rng();
    let mut landed = 0;
    for segment in &segments[1..] {
        let source = push(segment);
        let source_arg = source.display().to_string();
        let killed = kill_during(&s, &["archive-push", &source_arg], within, &mut rng);
        landed += usize::from(killed);
        s.pgkeep(&["archive-push", &source_arg]).ok();
        assert!(archived(&s, segment), "'{segment}' not archived");
        assert_archive_get_returns(&s, segment, &source);
    }
    assert!(landed > 0, "no kill landed while archive-push ran");
    release_archiving(&s, segments.last().unwrap());
    assert_repository_valid(&s);
    Spare::new().assert_restores_with(&s, &[], "t", &expected);
}

#[test]
fn expire_killed_at_random_points_recovers() {
    let s = stanza_with_table();
    let expire = ["--repo1-retention-full=1", "expire"];
    s.pgkeep(&["--type=full", "backup"]).ok();
    let within = timed(&s, &expire);
    let spare = Spare::new();
    let mut rng = rng();
    for round in 0..KILLS {
        s.pgkeep(&["--type=full", "backup"]).ok();
        s.cluster
            .psql(&format!("insert into t values ({round}, 'expire')"));
        let expected = table_sum(&s.cluster, "t");
        s.pgkeep(&["--type=full", "backup"]).ok();
        let newest = s.labels().last().unwrap().clone();
        kill_during(&s, &expire, within, &mut rng);
        // Whether or not it got as far as backup.info, nothing listed lacks its files.
        assert_repository_valid(&s);
        s.pgkeep(&expire).ok();
        assert_eq!(assert_repository_valid(&s), vec![newest.clone()]);
        assert_eq!(backup_dirs(&s), vec![newest], "round {round}");
        spare.assert_restores(&s, "t", &expected);
    }
}

#[test]
fn restore_killed_at_random_points_recovers() {
    let s = stanza_with_table();
    s.cluster
        .psql("insert into t select g, repeat(md5(g::text), 8) from generate_series(1, 60000) g");
    s.pgkeep(&["--type=full", "backup"]).ok();
    let expected = table_sum(&s.cluster, "t");
    let spare = Spare::new();
    let args = spare.restore_args(&common::faults::IMMEDIATE);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    empty_dir(spare.data_dir());
    let within = timed(&s, &args);
    let mut rng = rng();
    let mut landed = 0;
    for round in 0..KILLS {
        empty_dir(spare.data_dir());
        let killed = kill_during(&s, &args, within, &mut rng);
        landed += usize::from(killed);
        // pg_control is written last: a restore killed before it leaves nothing that starts.
        if killed && !spare.data_dir().join("global/pg_control").exists() {
            if spare.data_dir().join("postgresql.conf").exists() {
                spare.own_settings();
            }
            assert!(spare.cluster.try_start().is_err(), "round {round}");
        }
        let mut again = vec!["--delta"];
        again.extend_from_slice(&common::faults::IMMEDIATE);
        spare.restore(&s, &again).ok();
        assert_eq!(spare.start_and_sum("t"), expected, "round {round}");
    }
    assert!(landed > 0, "no kill landed while a restore ran");
    assert_repository_valid(&s);
}
