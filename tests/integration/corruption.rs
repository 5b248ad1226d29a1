//! The corruption matrix (issue 13, "make it stay fixed"): each kind of repository file,
//! flipped, truncated or deleted, and what `verify`, `restore` and `archive-get` then do. One
//! real cluster and repository (bundles and block maps on) are made once; each case damages a
//! copy of that repository, so the matrix costs a copy per case, not a backup.
//!
//! What must hold in every row: nothing wrong is restored or served. A restore that succeeds
//! gives the original table content once started; one that cannot is refused before
//! `pg_control` is written, or leaves a cluster PostgreSQL refuses to start.

use std::path::{Path, PathBuf};

use crate::common::ClusterOptions;
use crate::common::faults::{IMMEDIATE, Spare, archived, new_segments, table_sum};
use crate::common::pgkeep::{Run, Stanza, empty_dir, pgkeep_bin, wait_until};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Kind {
    /// The data object of a block-incremental relation file.
    DataObject,
    /// A bundle of small files.
    Bundle,
    /// The block map of that relation file.
    BlockMap,
    Manifest,
    ManifestCopy,
    BackupInfo,
    ArchiveInfo,
    /// The first WAL segment the backup needs.
    WalSegment,
    /// The `.history` file of timeline 2.
    History,
    /// backup.manifest and its copy, both damaged the same way.
    ManifestAndCopy,
    /// backup.info and its copy.
    BackupInfoAndCopy,
    /// archive.info and its copy.
    ArchiveInfoAndCopy,
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Damage {
    /// One byte in the middle changed.
    Flip,
    /// Cut to half its length.
    Truncate,
    Delete,
}

/// What `restore` of the damaged repository does.
#[derive(Clone, Copy, Debug)]
enum Restore {
    /// Exits 0, and the cluster starts with the original content.
    Restores,
    /// Exits with this code (`None`: any non-zero), naming what, before `pg_control` exists.
    Refuses(Option<i32>, &'static str),
    /// Exits 0, but PostgreSQL stops with an error instead of starting: nothing wrong is used.
    DoesNotStart,
}

/// One row: the damage and the expected outcome of each command.
struct Row {
    kind: Kind,
    damage: Damage,
    /// `verify`'s exit code and a line it must print.
    verify: (i32, &'static str),
    restore: Restore,
    /// `archive-get` of the file the row concerns (the WAL segment or the history file), where
    /// it fetches anything: exit code and a line it must print ("" for none).
    archive_get: Option<(i32, &'static str)>,
}

use Damage::{Delete, Flip, Truncate};
use Kind::*;
use Restore::{DoesNotStart, Refuses, Restores};

const fn row(
    kind: Kind,
    damage: Damage,
    verify: (i32, &'static str),
    restore: Restore,
    archive_get: Option<(i32, &'static str)>,
) -> Row {
    Row {
        kind,
        damage,
        verify,
        restore,
        archive_get,
    }
}

/// The matrix, every row as issue 13 wants it and as pgkeep behaves today. `{segment}` in a
/// text stands for the backup's first WAL segment.
#[rustfmt::skip]
const MATRIX: &[Row] = &[
    // Backup files: verify names the file, restore refuses before pg_control.
    row(DataObject, Flip, (104, "is invalid: unable to read"), Refuses(Some(29), "unable to decompress: zst data is corrupt"), None),
    row(DataObject, Truncate, (104, "unable to decompress: zst stream is truncated"), Refuses(Some(29), "unable to decompress: zst stream is truncated"), None),
    row(DataObject, Delete, (104, ".zst' is missing"), Refuses(Some(55), ".zst' is missing"), None),
    row(Bundle, Flip, (104, "/bundle/1') is invalid: unable to decompress"), Refuses(Some(29), "unable to decompress: zst data is corrupt"), None),
    row(Bundle, Truncate, (104, "/bundle/1' is truncated"), Refuses(Some(28), "/bundle/1' is truncated"), None),
    row(Bundle, Delete, (104, "/bundle/1') is missing"), Refuses(Some(55), "/bundle/1' is missing"), None),
    row(BlockMap, Flip, (104, ".map' is corrupt: checksum mismatch"), Refuses(Some(29), ".map' is corrupt: checksum mismatch"), None),
    row(BlockMap, Truncate, (104, ".map' is corrupt: checksum mismatch"), Refuses(Some(29), ".map' is corrupt: checksum mismatch"), None),
    row(BlockMap, Delete, (104, ".map' is missing"), Refuses(Some(55), ".map' is missing"), None),
    // Info files: the twin is used, verify warns, restore and archive-get go on.
    row(Manifest, Flip, (0, "backup.manifest' is invalid: "), Restores, None),
    row(Manifest, Truncate, (0, "backup.manifest' is invalid: not valid JSON"), Restores, None),
    row(Manifest, Delete, (0, "backup.manifest' is missing: using its copy"), Restores, None),
    row(ManifestCopy, Flip, (0, "backup.manifest.copy' is invalid: "), Restores, None),
    row(ManifestCopy, Truncate, (0, "backup.manifest.copy' is invalid: not valid JSON"), Restores, None),
    row(ManifestCopy, Delete, (0, "backup.manifest.copy' is missing"), Restores, None),
    row(BackupInfo, Flip, (0, "backup.info' is invalid: "), Restores, None),
    row(BackupInfo, Truncate, (0, "backup.info' is invalid: not valid JSON"), Restores, None),
    row(BackupInfo, Delete, (0, "backup.info' is missing: using its copy"), Restores, None),
    row(ArchiveInfo, Flip, (0, "archive.info' is invalid: "), Restores, Some((0, "archive.info.copy'"))),
    row(ArchiveInfo, Truncate, (0, "archive.info' is invalid: not valid JSON"), Restores, Some((0, "archive.info.copy'"))),
    row(ArchiveInfo, Delete, (0, "archive.info' is missing: using its copy"), Restores, Some((0, "archive.info' is missing, using its copy"))),
    // A damaged segment the backup needs: verify names it; PostgreSQL does not start on it.
    // archive-get exits 255 for it, so recovery stops there instead of promoting (defect 7).
    row(WalSegment, Flip, (104, "{segment}-"), DoesNotStart, Some((255, "unable to get WAL file '{segment}'"))),
    row(WalSegment, Truncate, (104, "zst stream is truncated"), DoesNotStart, Some((255, "unable to get WAL file '{segment}'"))),
    row(WalSegment, Delete, (104, "missing {segment}"), Refuses(Some(55), "is missing {segment}"), Some((1, ""))),
    // History files carry no checksum: verify does not read them and archive-get cannot tell
    // damage (see docs/testing.md). A restore to the backup's consistent point does not need
    // timeline 2.
    row(History, Flip, (0, ""), Restores, Some((0, ""))),
    row(History, Truncate, (0, ""), Restores, Some((0, ""))),
    row(History, Delete, (0, ""), Restores, Some((1, ""))),
    // Both twins unusable: refused, never guessed.
    row(ManifestAndCopy, Flip, (104, "no usable copy of manifest"), Refuses(None, "invalid info file"), None),
    row(ManifestAndCopy, Delete, (104, "backup.manifest' and its copy are missing"), Refuses(Some(55), "manifest of backup set"), None),
    row(BackupInfoAndCopy, Flip, (104, "no usable copy of"), Refuses(None, "invalid info file"), None),
    row(BackupInfoAndCopy, Delete, (104, "backup.info' and its copy are missing"), Refuses(Some(55), "does not exist"), None),
    // Whether the segment is in the archive cannot be known: recovery must stop, and restore
    // refuses before writing.
    row(ArchiveInfoAndCopy, Flip, (104, "no usable copy of"), Refuses(None, "unable to check the WAL backup set"), Some((255, "unable to get WAL file '{segment}'"))),
    row(ArchiveInfoAndCopy, Delete, (104, "and its copy are missing"), Refuses(None, "unable to check the WAL backup set"), Some((255, "unable to get WAL file '{segment}'"))),
];

/// The repository every case starts from, and what a restore of it must give.
struct Pristine {
    s: Stanza,
    spare: Spare,
    label: String,
    /// The relation file of `t`, relative to the data directory.
    relation: String,
    /// The first WAL segment the backup needs.
    start_segment: String,
    expected: String,
}

fn pristine() -> Pristine {
    let s = Stanza::with_options(
        "demo",
        ClusterOptions::default(),
        "repo1-bundle=y\nrepo1-block=y",
    );
    s.pgkeep(&["stanza-create"]).ok();
    // Large enough (about 4 MiB) to be stored block by block, with a block map.
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 60000) g; \
         checkpoint",
    );
    let run = s
        .pgkeep(&["--type=full", "--log-level-console=info", "backup"])
        .ok();
    let label = run
        .stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("new backup label")
        .trim()
        .to_string();
    let expected = table_sum(&s.cluster, "t");
    let relation = s.cluster.psql("select pg_relation_filepath('t')");
    let manifest: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(s.repo.join(format!("backup/demo/{label}/backup.manifest")))
            .unwrap(),
    )
    .unwrap();
    let start_segment = manifest["content"]["archive_start"]
        .as_str()
        .expect("archive_start")
        .to_string();

    // A real timeline 2: the backup restored and promoted at the end of the archive, which
    // is segments past the backup's, so that timeline 2 has no copy of the backup's WAL.
    let written = new_segments(&s, 2);
    wait_until(60, || archived(&s, written.last().unwrap()));
    let spare = Spare::new();
    empty_dir(spare.data_dir());
    spare.restore(&s, &[]).ok();
    spare.cluster.set("port", &spare.cluster.port().to_string());
    spare.cluster.set(
        "unix_socket_directories",
        &format!("'{}'", spare.cluster.socket_dir().display()),
    );
    // The restored archive_command would find '%p' (relative) under the original's pg1-path.
    spare.cluster.set(
        "archive_command",
        &format!(
            "'{} --config={} --stanza=demo --pg1-path={} archive-push %p'",
            pgkeep_bin().display(),
            s.conf.display(),
            spare.data_dir().display()
        ),
    );
    spare.cluster.start();
    let history = s.repo.join("archive/demo/15-1/00000002.history");
    wait_until(60, || history.is_file());
    spare.cluster.stop();
    Pristine {
        s,
        spare,
        label,
        relation,
        start_segment,
        expected,
    }
}

impl Pristine {
    /// The files a row of `kind` damages in the repository copy `repo`.
    fn files(&self, kind: Kind, repo: &Path) -> Vec<PathBuf> {
        let file = self.file(kind, repo);
        match kind {
            ManifestAndCopy | BackupInfoAndCopy | ArchiveInfoAndCopy => {
                let copy = PathBuf::from(format!("{}.copy", file.display()));
                vec![file, copy]
            }
            _ => vec![file],
        }
    }

    /// The file of `kind` in the repository copy `repo`.
    fn file(&self, kind: Kind, repo: &Path) -> PathBuf {
        let set = repo.join(format!("backup/demo/{}", self.label));
        match kind {
            DataObject => set.join(format!("pg_data/{}.zst", self.relation)),
            Bundle => set.join("bundle/1"),
            BlockMap => set.join(format!("pg_data/{}.map", self.relation)),
            Manifest => set.join("backup.manifest"),
            ManifestCopy => set.join("backup.manifest.copy"),
            BackupInfo => repo.join("backup/demo/backup.info"),
            ArchiveInfo => repo.join("archive/demo/archive.info"),
            WalSegment => {
                let dir = repo.join(format!("archive/demo/15-1/{}", &self.start_segment[..16]));
                std::fs::read_dir(&dir)
                    .unwrap()
                    .flatten()
                    .map(|e| e.path())
                    .find(|p| {
                        p.file_name()
                            .unwrap()
                            .to_string_lossy()
                            .starts_with(&format!("{}-", self.start_segment))
                    })
                    .expect("the backup's first WAL segment is archived")
            }
            History => repo.join("archive/demo/15-1/00000002.history"),
            ManifestAndCopy => self.file(Manifest, repo),
            BackupInfoAndCopy => self.file(BackupInfo, repo),
            ArchiveInfoAndCopy => self.file(ArchiveInfo, repo),
        }
    }

    /// What archive-get is asked for in a row of `kind`, if anything.
    fn fetched(&self, kind: Kind) -> Option<String> {
        match kind {
            WalSegment | ArchiveInfo | ArchiveInfoAndCopy => Some(self.start_segment.clone()),
            History => Some("00000002.history".to_string()),
            _ => None,
        }
    }

    /// Runs one row on a fresh copy of the repository; returns what differed from the row.
    fn check(&self, row: &Row) -> Vec<String> {
        let s = &self.s;
        let case = s.dir.path().join("case-repo");
        if case.exists() {
            std::fs::remove_dir_all(&case).unwrap();
        }
        let copied = std::process::Command::new("cp")
            .arg("-a")
            .arg(&s.repo)
            .arg(&case)
            .status()
            .unwrap();
        assert!(copied.success());
        for file in self.files(row.kind, &case) {
            damage(&file, row.damage);
        }
        let repo = format!("--repo1-path={}", case.display());
        let what = format!("{:?} {:?}", row.kind, row.damage);
        let mut wrong = Vec::new();
        let expect = |command: &str, run: &Run, code: Option<i32>, text: &str| {
            let text = text.replace("{segment}", &self.start_segment);
            mismatch(&what, command, run, code, &text)
        };

        let verify = s.pgkeep(&[&repo, "verify"]);
        wrong.extend(expect("verify", &verify, Some(row.verify.0), row.verify.1));

        if let (Some(file), Some((code, text))) = (self.fetched(row.kind), row.archive_get) {
            let dest = s.dir.path().join("fetched");
            let _ = std::fs::remove_file(&dest);
            let get = s.pgkeep(&[&repo, "archive-get", &file, &dest.display().to_string()]);
            wrong.extend(expect("archive-get", &get, Some(code), text));
            // Not delivered: nothing is left at '%p' for PostgreSQL to take.
            if get.code != 0 && dest.exists() {
                wrong.push(format!("{what}: archive-get failed but wrote '%p'"));
            }
        }

        let spare = &self.spare;
        empty_dir(spare.data_dir());
        let restore = spare.restore(s, &[&repo, IMMEDIATE[0], IMMEDIATE[1]]);
        match row.restore {
            Restores => {
                wrong.extend(expect("restore", &restore, Some(0), ""));
                if restore.code == 0 {
                    let sum = spare.start_and_sum("t");
                    if sum != self.expected {
                        wrong.push(format!("{what}: restored content differs: {sum}"));
                    }
                }
            }
            Refuses(code, text) => {
                wrong.extend(expect("restore", &restore, code, text));
                if restore.code != 0 && spare.data_dir().join("global/pg_control").exists() {
                    wrong.push(format!("{what}: a refused restore wrote pg_control"));
                }
            }
            DoesNotStart => {
                wrong.extend(expect("restore", &restore, Some(0), ""));
                if restore.code == 0 {
                    spare.own_settings();
                    if spare.cluster.try_start().is_ok() {
                        let sum = table_sum(&spare.cluster, "t");
                        spare.cluster.stop();
                        wrong.push(format!("{what}: the restored cluster started ({sum})"));
                    }
                }
            }
        }
        std::fs::remove_dir_all(&case).unwrap();
        wrong
    }
}

/// What differs between `run` and the expected exit code (`None`: any non-zero) and text.
fn mismatch(what: &str, command: &str, run: &Run, code: Option<i32>, text: &str) -> Option<String> {
    let code_ok = match code {
        Some(code) => run.code == code,
        None => run.code != 0,
    };
    (!code_ok || !run.output().contains(text)).then(|| {
        format!(
            "{what}: {command} exited {} (expected {code:?} and {text:?}):\n{}",
            run.code,
            run.output()
        )
    })
}

fn damage(path: &Path, damage: Damage) {
    match damage {
        Flip => {
            let mut bytes = std::fs::read(path).unwrap();
            let middle = bytes.len() / 2;
            bytes[middle] ^= 0x5a;
            std::fs::write(path, bytes).unwrap();
        }
        Truncate => {
            let len = std::fs::metadata(path).unwrap().len();
            let file = std::fs::OpenOptions::new().write(true).open(path).unwrap();
            file.set_len(len / 2).unwrap();
        }
        Delete => std::fs::remove_file(path).unwrap(),
    }
}

fn run_matrix(rows: &[Row]) {
    let p = pristine();
    let mut wrong = Vec::new();
    for row in rows {
        wrong.extend(p.check(row));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n\n"));
}

#[test]
fn corruption_matrix() {
    run_matrix(MATRIX);
}
