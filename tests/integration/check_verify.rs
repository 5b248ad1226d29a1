//! The commands that check a setup, against real PostgreSQL 15 clusters: `check` (one test per
//! misconfiguration it must name), `verify` (repositories built from real backups, then damaged
//! on purpose, one way per case) and `stanza-delete` (refused without stop and while the
//! cluster runs; afterwards the stanza is gone and can be created again).

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::pgkeep::{Run, Stanza, chown_postgres};

/// A stanza whose repository has been created.
fn created() -> Stanza {
    let s = Stanza::new();
    s.pgkeep(&["stanza-create"]).ok();
    s
}

/// Takes a backup of `kind` and returns its label.
fn backup(s: &Stanza, kind: &str) -> String {
    let kind = format!("--type={kind}");
    let run = s
        // One repository file per backup file: the tests below damage them one by one
        // (tests/integration/bundle.rs covers damaged bundles).
        .pgkeep(&[
            "--log-level-console=info",
            "--repo1-bundle=n",
            &kind,
            "backup",
        ])
        .ok();
    run.stdout
        .lines()
        .find_map(|l| l.split("new backup label = ").nth(1))
        .expect("new backup label")
        .trim()
        .to_string()
}

// check

#[test]
fn check_switches_wal_and_sees_the_segment_archived() {
    let s = created();
    let run = s
        .pgkeep(&["--log-level-console=info", "check"])
        .ok()
        .contains("check repo1 configuration (primary)")
        .contains("check repo1 archive for WAL (primary)");
    let line = run
        .stdout
        .lines()
        .find(|l| l.contains("successfully archived to"))
        .unwrap_or_else(|| panic!("no archived line:\n{}", run.stdout));
    assert!(
        line.contains(&format!("'{}/archive/demo/15-1/", s.repo.display())),
        "{line}"
    );
    // Again at once: the restore point is the activity that makes the second switch happen.
    s.pgkeep(&["check"]).ok();
}

#[test]
fn check_refuses_a_cluster_that_does_not_archive() {
    let s = created();
    s.cluster.set("archive_mode", "off");
    s.cluster.restart();
    s.pgkeep(&["check"])
        .code(87)
        .contains("archive_mode must be enabled")
        .contains("HINT: set archive_mode = on");
}

#[test]
fn check_times_out_when_archive_command_does_not_archive() {
    let s = created();
    s.cluster.set("archive_command", "'/bin/true'");
    s.cluster.restart();
    s.pgkeep(&["--archive-timeout=2", "check"])
        .code(82)
        .contains("archive_command '/bin/true' does not run archive-push")
        .contains("was not archived before the 2000ms timeout")
        .contains("HINT: check that archive_command '/bin/true' runs");
}

#[test]
fn check_refuses_a_stanza_that_was_not_created() {
    let s = Stanza::new();
    s.pgkeep(&["check"])
        .code(55)
        .contains("stanza 'demo' does not exist")
        .contains("stanza-create");
}

#[test]
fn check_refuses_a_repository_that_is_not_there() {
    let s = created();
    let missing = format!("--repo1-path={}", s.dir.path().join("gone").display());
    s.pgkeep(&[&missing, "check"])
        .code(73)
        .contains("gone' does not exist");
}

// verify

/// A stanza with a full backup (table `t`) and an incremental one (new table `u`), plus two
/// archived WAL segments after them.
struct Fixture {
    s: Stanza,
    full: String,
    incr: String,
    /// The first segment archived after the backups: no backup needs it.
    spare: String,
    /// `base/<db>/<relfilenode>` of each table.
    t_file: String,
    u_file: String,
}

fn fixture() -> Fixture {
    let s = created();
    s.cluster.psql(
        "create table t as select g as id, md5(g::text) as v from generate_series(1, 20000) g",
    );
    let full = backup(&s, "full");
    s.cluster
        .psql("create table u as select g as id from generate_series(1, 5000) g");
    let incr = backup(&s, "incr");
    let spare = checked_segment(&s);
    checked_segment(&s);
    let t_file = s.cluster.psql("select pg_relation_filepath('t')");
    let u_file = s.cluster.psql("select pg_relation_filepath('u')");
    Fixture {
        s,
        full,
        incr,
        spare,
        t_file,
        u_file,
    }
}

/// Runs check and returns the segment it switched and saw archived.
fn checked_segment(s: &Stanza) -> String {
    let run = s.pgkeep(&["--log-level-console=info", "check"]).ok();
    run.stdout
        .lines()
        .find_map(|l| l.split("WAL segment ").nth(1))
        .and_then(|rest| rest.split(' ').next())
        .expect("archived segment")
        .to_string()
}

impl Fixture {
    /// A copy of the repository to damage, owned by postgres.
    fn copy(&self, name: &str) -> PathBuf {
        let copy = self.s.dir.path().join(name);
        let status = Command::new("cp")
            .arg("-a")
            .arg(&self.s.repo)
            .arg(&copy)
            .status()
            .unwrap();
        assert!(status.success());
        chown_postgres(&copy);
        copy
    }

    /// Runs verify (at info level) on a repository.
    fn verify(&self, repo: &Path, extra: &[&str]) -> Run {
        let repo = format!("--repo1-path={}", repo.display());
        let mut args = vec![repo.as_str(), "--log-level-console=info"];
        args.extend_from_slice(extra);
        args.push("verify");
        self.s.pgkeep(&args)
    }

    /// The stored file of `name` (e.g. `base/5/16384`) in a backup set of `repo`.
    fn stored(&self, repo: &Path, label: &str, name: &str) -> PathBuf {
        repo.join(format!("backup/demo/{label}/pg_data/{name}.zst"))
    }

    /// A backup's first WAL segment, from info.
    fn archive_start(&self, label: &str) -> String {
        let run = self.s.pgkeep(&["info", "--output=json"]).ok();
        let json: serde_json::Value = serde_json::from_str(&run.stdout).unwrap();
        let backups = json[0]["backup"].as_array().unwrap();
        let backup = backups.iter().find(|b| b["label"] == label).unwrap();
        backup["archive"]["start"].as_str().unwrap().to_string()
    }
}

/// The archived file of a segment in `repo`.
fn archived(repo: &Path, segment: &str) -> PathBuf {
    let dir = repo.join("archive/demo/15-1").join(&segment[..16]);
    std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .find(|p| {
            let name = p.file_name().unwrap().to_string_lossy().to_string();
            name.starts_with(&format!("{segment}-"))
        })
        .unwrap_or_else(|| panic!("{segment} not archived in '{}'", dir.display()))
}

fn flip_byte(path: &Path) {
    let mut bytes = std::fs::read(path).unwrap();
    let at = bytes.len() / 2;
    bytes[at] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

#[test]
fn verify_passes_a_healthy_repository_and_catches_damaged_backup_files() {
    let f = fixture();
    let run = f
        .verify(&f.s.repo, &["--process-max=3"])
        .ok()
        .contains(&format!("backup {}: valid", f.full))
        .contains(&format!("backup {}: valid", f.incr))
        .contains("archive id 15-1: ")
        .contains(", 0 invalid");
    assert!(!run.stderr.contains("WARN"), "{}", run.stderr);

    // A flipped byte in a file the full backup holds (and the incremental may reference).
    let repo = f.copy("flipped");
    let file = f.stored(&repo, &f.full, &f.t_file);
    flip_byte(&file);
    f.verify(&repo, &[])
        .code(104)
        .contains(&format!("backup file '{}' is invalid", file.display()))
        .contains(&format!("backup {}: invalid (1 corrupt)", f.full))
        .contains("verify command encountered");

    // A truncated file that only the incremental holds.
    let repo = f.copy("truncated");
    let file = f.stored(&repo, &f.incr, &f.u_file);
    let bytes = std::fs::read(&file).unwrap();
    std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    f.verify(&repo, &[])
        .code(104)
        .contains(&format!("backup file '{}' is invalid", file.display()))
        .contains(&format!("backup {}: valid", f.full))
        .contains(&format!("backup {}: invalid (1 corrupt)", f.incr));
    // --set checks one backup: the full one does not need the incremental's files.
    f.verify(&repo, &[&format!("--set={}", f.full)])
        .ok()
        .contains(&format!("backup {}: valid", f.full));
    f.verify(&repo, &[&format!("--set={}", f.incr)]).code(104);

    // A missing file.
    let repo = f.copy("missing");
    let file = f.stored(&repo, &f.full, "global/pg_control");
    std::fs::remove_file(&file).unwrap();
    f.verify(&repo, &[])
        .code(104)
        .contains(&format!("backup file '{}' is missing", file.display()))
        .contains(&format!("backup {}: invalid (1 file(s) missing)", f.full));
}

#[test]
fn verify_catches_missing_and_damaged_wal() {
    let f = fixture();
    // A segment the full backup needs to be consistent is gone.
    let start = f.archive_start(&f.full);
    let repo = f.copy("wal-missing");
    std::fs::remove_file(archived(&repo, &start)).unwrap();
    f.verify(&repo, &[])
        .code(104)
        .contains(&format!("missing {start}"))
        .contains(&format!(
            "backup {}: invalid (WAL missing: {start})",
            f.full
        ));

    // A flipped byte in a segment the incremental backup needs.
    let start = f.archive_start(&f.incr);
    let repo = f.copy("wal-flipped");
    let file = archived(&repo, &start);
    flip_byte(&file);
    f.verify(&repo, &[])
        .code(104)
        .contains(&format!(
            "archived WAL file '{}' is invalid",
            file.display()
        ))
        .contains(&format!("backup {}: valid", f.full))
        .contains(&format!(
            "backup {}: invalid (WAL invalid: {start})",
            f.incr
        ));
    // --set reads only the WAL of its backup's range.
    f.verify(&repo, &[&format!("--set={}", f.full)]).ok();

    // A hole no backup needs: the backups stay valid, point-in-time recovery is warned about.
    let repo = f.copy("wal-gap");
    std::fs::remove_file(archived(&repo, &f.spare)).unwrap();
    f.verify(&repo, &[])
        .ok()
        .contains(&format!(
            "WAL {} is missing: point-in-time recovery cannot cross it",
            f.spare
        ))
        .contains(&format!("backup {}: valid", f.incr));
}

#[test]
fn verify_warns_about_a_damaged_info_file_whose_copy_is_good() {
    let f = fixture();
    let repo = f.copy("info");
    let info = repo.join("backup/demo/backup.info");
    let text = std::fs::read_to_string(&info).unwrap();
    std::fs::write(&info, text.replacen("\"size\": ", "\"size\": 1", 1)).unwrap();
    let manifest = repo.join(format!("backup/demo/{}/backup.manifest.copy", f.full));
    std::fs::remove_file(&manifest).unwrap();
    let run = f
        .verify(&repo, &[])
        .ok()
        .contains(&format!("'{}' is invalid: checksum", info.display()))
        .contains("using its copy")
        .contains(&format!("'{}' is missing", manifest.display()))
        .contains(&format!("backup {}: valid", f.full))
        .contains(&format!("backup {}: valid", f.incr));
    assert!(run.stderr.contains("WARN"), "{}", run.stderr);

    // Both copies damaged: nothing to trust, an error.
    let copy = repo.join("backup/demo/backup.info.copy");
    std::fs::write(&copy, "{}").unwrap();
    f.verify(&repo, &[])
        .code(104)
        .contains("no usable copy of '");
}

// stanza-delete

#[test]
fn stanza_delete_is_refused_until_the_stanza_is_stopped() {
    let s = created();
    s.pgkeep(&["stanza-delete"])
        .code(55)
        .contains("stop file does not exist for stanza 'demo'")
        // The hint repeats the non-default --config, so that it runs as written.
        .contains(&format!(
            "HINT: run 'pgkeep --config={} --stanza=demo stop' first",
            s.conf.display()
        ));
    assert!(s.repo.join("archive/demo/archive.info").exists());
    assert!(s.repo.join("backup/demo/backup.info").exists());
}

#[test]
fn stanza_delete_of_a_running_cluster_needs_force() {
    let s = created();
    let label = backup(&s, "full");
    s.pgkeep(&["stop"]).ok();
    s.pgkeep(&["stanza-delete"])
        .code(38)
        .contains("PostgreSQL is running for stanza 'demo'")
        .contains("--force");
    assert!(s.repo.join("backup/demo").join(&label).exists());

    s.pgkeep(&["--log-level-console=info", "--force", "stanza-delete"])
        .ok()
        .contains(
            "stanza 'demo' deleted: 1 backup(s) and the WAL archive of archive id 15-1 removed",
        )
        .contains("the stop file for stanza 'demo' is kept");
    assert_gone_and_creatable(&s);
}

#[test]
fn stanza_delete_of_a_stopped_cluster_needs_no_force() {
    let s = created();
    backup(&s, "full");
    s.pgkeep(&["stop"]).ok();
    s.cluster.stop();
    s.pgkeep(&["--log-level-console=info", "stanza-delete"])
        .ok()
        .contains("stanza 'demo' deleted: 1 backup(s)");
    assert_gone_and_creatable(&s);
}

/// Removing a tree holds only the descriptors of the directories on the way down: a backup set
/// far wider than the process's descriptor limit (as with thousands of databases) is removed
/// under a limit of 64.
#[test]
fn stanza_delete_removes_a_tree_wider_than_the_descriptor_limit() {
    let s = created();
    let label = backup(&s, "full");
    s.pgkeep(&["stop"]).ok();
    s.cluster.stop();
    let wide = s.repo.join("backup/demo").join(&label).join("pg_data/wide");
    for index in 0..600 {
        let dir = wide.join(format!("d{index:04}/sub"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("file"), b"x").unwrap();
    }
    chown_postgres(&wide);
    let output = Command::new("prlimit")
        .args(["--nofile=64:64", "runuser", "-u", "postgres", "--"])
        .arg(common::pgkeep::pgkeep_bin())
        .arg(format!("--config={}", s.conf.display()))
        .args(["--stanza=demo", "stanza-delete"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_gone_and_creatable(&s);
}

/// After a delete: the stanza's directories are gone, the stop file stays (archive-push is
/// refused), info shows the stanza missing, and after start it can be created again.
fn assert_gone_and_creatable(s: &Stanza) {
    assert!(!s.repo.join("backup/demo").exists());
    assert!(!s.repo.join("archive/demo").exists());
    assert!(s.lock.join("demo.stop").exists());
    s.pgkeep(&["info"])
        .ok()
        .contains("error (missing stanza path)");
    s.pgkeep(&["check"]).code(62);
    s.pgkeep(&["start"]).ok();
    s.pgkeep(&["--log-level-console=info", "stanza-create"])
        .ok()
        .contains("stanza-create for stanza 'demo' on repo1");
}
