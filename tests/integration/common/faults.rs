//! Steps the crash and corruption tests share: running pgkeep so that it dies at a failpoint,
//! and checking what must hold after any crash: every set `info` lists is complete, `verify`
//! passes, and a restore of the latest set into a second cluster gives the same table content.

use std::path::Path;
use std::time::Duration;

use super::pgkeep::{Run, Stanza, empty_dir, wait_until};
use super::{ClusterOptions, PgCluster};

/// The exit status `runuser` reports for a child killed by SIGKILL (128 + 9).
#[cfg(feature = "failpoints")]
pub const KILLED: i32 = 137;

/// Runs pgkeep on `s` with `PGKEEP_FAILPOINT=point` and checks it died there: killed by SIGKILL,
/// after logging that it reached that failpoint (so not earlier, nor at another one).
#[cfg(feature = "failpoints")]
#[track_caller]
pub fn die_at(s: &Stanza, point: &str, args: &[&str]) -> Run {
    let config = format!("--config={}", s.conf.display());
    let stanza = format!("--stanza={}", s.name);
    let mut all = vec![config.as_str(), stanza.as_str()];
    all.extend_from_slice(args);
    let run = super::pgkeep::run_pgkeep(&all, &[("PGKEEP_FAILPOINT", point)]);
    let name = point.split(':').next().unwrap_or(point);
    assert_eq!(
        run.code,
        KILLED,
        "pgkeep {args:?} did not die at '{point}':\n{}",
        run.output()
    );
    run.contains(&format!("failpoint '{name}' reached"))
}

/// Restore options that stop at the backup's consistent point and promote there.
pub const IMMEDIATE: [&str; 2] = ["--type=immediate", "--target-action=promote"];

/// A table's row count and a checksum of its rows, as the check writes it.
pub fn table_sum(cluster: &PgCluster, table: &str) -> String {
    cluster.psql(&format!(
        "select count(*) || ':' || coalesce(sum(hashtext(t::text)), 0) from {table} t"
    ))
}

/// Every set `info` lists has its manifest (nothing half-made is listed), `verify` exits 0;
/// returns the labels.
#[track_caller]
pub fn assert_repository_valid(s: &Stanza) -> Vec<String> {
    let labels = s.labels();
    for label in &labels {
        let manifest = s
            .repo
            .join(format!("backup/{}/{label}/backup.manifest", s.name));
        assert!(
            manifest.is_file(),
            "'info' lists '{label}' but '{}' is missing",
            manifest.display()
        );
    }
    s.pgkeep(&["verify"]).ok();
    labels
}

/// A second cluster that restores go into: never started as initialised, only as restored.
pub struct Spare {
    pub cluster: PgCluster,
}

impl Spare {
    pub fn new() -> Spare {
        Spare {
            cluster: PgCluster::init(ClusterOptions::default()),
        }
    }

    pub fn data_dir(&self) -> &Path {
        self.cluster.data_dir()
    }

    /// `restore` of `s`'s repository into this cluster's directory, with `extra` options.
    pub fn restore_args(&self, extra: &[&str]) -> Vec<String> {
        let mut args = vec![format!("--pg1-path={}", self.data_dir().display())];
        args.extend(extra.iter().map(|a| a.to_string()));
        args.push("restore".to_string());
        args
    }

    pub fn restore(&self, s: &Stanza, extra: &[&str]) -> Run {
        let args = self.restore_args(extra);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        s.pgkeep(&args)
    }

    /// Makes a restored directory start as this cluster: the restored postgresql.conf names
    /// the original's port and socket, and archiving from it would push into the stanza.
    pub fn own_settings(&self) {
        self.cluster.set("port", &self.cluster.port().to_string());
        self.cluster.set(
            "unix_socket_directories",
            &format!("'{}'", self.cluster.socket_dir().display()),
        );
        self.cluster.set("archive_mode", "off");
    }

    /// Starts what was restored, waits for the end of recovery, returns `table_sum(table)` and
    /// stops it again.
    #[track_caller]
    pub fn start_and_sum(&self, table: &str) -> String {
        self.own_settings();
        if let Err(err) = self.cluster.try_start() {
            panic!("the restored cluster does not start: {err}");
        }
        self.cluster
            .wait_for("select pg_is_in_recovery()", "f", Duration::from_secs(90));
        let sum = table_sum(&self.cluster, table);
        self.cluster.stop();
        sum
    }

    /// Restores the latest set into an emptied directory, to its consistent point, and checks
    /// that `table` holds `expected` (its content when the backup was taken).
    #[track_caller]
    pub fn assert_restores(&self, s: &Stanza, table: &str, expected: &str) {
        self.assert_restores_with(s, &IMMEDIATE, table, expected);
    }

    /// [`Spare::assert_restores`] with other restore options (`&[]`: replay all archived WAL).
    #[track_caller]
    pub fn assert_restores_with(&self, s: &Stanza, options: &[&str], table: &str, expected: &str) {
        empty_dir(self.data_dir());
        self.restore(s, options).ok();
        assert_eq!(
            self.start_and_sum(table),
            expected,
            "the restored table differs"
        );
    }
}

/// A stanza with a table `t` of a few hundred KiB and a first full backup.
pub fn stanza_with_table() -> Stanza {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 5000) g",
    );
    s.pgkeep(&["--type=full", "backup"]).ok();
    s
}

/// The backup directories in the repository, listed or not, oldest first.
pub fn backup_dirs(s: &Stanza) -> Vec<String> {
    let mut dirs: Vec<String> = std::fs::read_dir(s.repo.join(format!("backup/{}", s.name)))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("20"))
        .collect();
    dirs.sort();
    dirs
}

/// Whether the archive holds segment `name` under its final name (not a temporary one).
pub fn archived(s: &Stanza, name: &str) -> bool {
    let dir = s
        .repo
        .join(format!("archive/{}/15-1/{}", s.name, &name[..16]));
    std::fs::read_dir(dir).is_ok_and(|entries| {
        entries.flatten().any(|e| {
            let file = e.file_name().to_string_lossy().into_owned();
            file.starts_with(&format!("{name}-")) && !file.ends_with(".tmp")
        })
    })
}

/// Stops PostgreSQL's own archiving (and waits until it has been seen failing), so that a test
/// pushes the segments that follow itself.
pub fn hold_archiving(s: &Stanza) {
    s.cluster
        .psql("alter system set archive_command = '/bin/false'; select pg_reload_conf()");
    wait_until(30, || {
        s.cluster.psql("select pg_switch_wal()");
        s.cluster
            .psql("select failed_count > 0 from pg_stat_archiver")
            == "t"
    });
}

/// Gives archiving back to PostgreSQL and waits until it has archived segment `last`.
pub fn release_archiving(s: &Stanza, last: &str) {
    s.cluster
        .psql("alter system reset archive_command; select pg_reload_conf()");
    let done =
        format!("select coalesce(last_archived_wal >= '{last}', false) from pg_stat_archiver");
    wait_until(60, || s.cluster.psql(&done) == "t");
}

/// Switches to a new WAL segment after a write, `count` times; returns the segments written.
pub fn new_segments(s: &Stanza, count: usize) -> Vec<String> {
    (0..count)
        .map(|round| {
            s.cluster
                .psql(&format!("insert into t values ({round}, 'segment')"));
            let segment = s
                .cluster
                .psql("select pg_walfile_name(pg_current_wal_insert_lsn())");
            s.cluster.psql("select pg_switch_wal()");
            segment
        })
        .collect()
}

/// `archive-get` of `segment` gives back `source` byte for byte.
#[track_caller]
pub fn assert_archive_get_returns(s: &Stanza, segment: &str, source: &Path) {
    let fetched = s.dir.path().join("fetched");
    s.pgkeep(&["archive-get", segment, &fetched.display().to_string()])
        .ok();
    assert!(
        std::fs::read(&fetched).unwrap() == std::fs::read(source).unwrap(),
        "'{segment}' came back different"
    );
    std::fs::remove_file(&fetched).unwrap();
}
