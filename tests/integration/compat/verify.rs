//! `verify` run by both tools on one repository state: the report of `--output=text` (with and
//! without `--verbose`) and `--output=none`, on a healthy repository after a full and an
//! incremental backup, then after one backup file of the full backup is damaged in each
//! repository.
//!
//! Differences allowed here, each listed in docs/compatibility.md:
//! - exit code on damage: pgkeep 104 (CommandError), pgBackRest 0;
//! - `total WAL checked` counts pgkeep's `.backup` and `.partial` files as well as segments.

use std::path::{Path, PathBuf};

use crate::common::reference::{Both, Pair};

/// A pair with a full backup and an incremental one taken after a change in `postgres` (so
/// template1's files are unchanged, and the incremental references them).
fn backed_up() -> Pair {
    let pair = Pair::new();
    pair.stanza_create();
    pair.both(&["--type=full", "backup"]).code(0);
    pair.cluster
        .psql("create table t as select generate_series(1, 1000) as i");
    pair.both(&["--type=incr", "backup"]).code(0);
    pair
}

/// The report lines of a run's stdout: from `stanza: ` at the start of a line to the next log
/// line (which starts with its timestamp) or the end.
fn report(stdout: &str) -> Vec<String> {
    let mut lines = stdout
        .lines()
        .skip_while(|line| !line.starts_with("stanza: "));
    let mut out = Vec::new();
    if let Some(first) = lines.next() {
        out.push(first.to_string());
        out.extend(
            lines
                .take_while(|line| !line.starts_with(|c: char| c.is_ascii_digit()))
                .map(str::to_string),
        );
    }
    out
}

/// The normalised report lines of each tool.
fn reports(pair: &Pair, both: &Both) -> (Vec<String>, Vec<String>) {
    let lines = |stdout: &str| -> Vec<String> {
        report(stdout)
            .iter()
            .map(|line| pair.normalise(line))
            .collect()
    };
    (lines(&both.pgkeep.stdout), lines(&both.pgbackrest.stdout))
}

/// The backup labels in a repository, oldest first.
fn labels(repo: &Path) -> Vec<String> {
    let mut labels: Vec<String> = std::fs::read_dir(repo.join("backup/demo"))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().to_string())
        .filter(|name| name.contains('-') && !name.starts_with("backup"))
        .collect();
    labels.sort();
    labels
}

fn flip_byte(path: &Path, at: u64) {
    let mut bytes = std::fs::read(path).unwrap();
    bytes[at as usize] ^= 0xff;
    std::fs::write(path, bytes).unwrap();
}

/// Damages the first byte of `name`'s stored form in pgBackRest's full backup.
fn damage_pgbackrest(repo: &Path, full: &str, name: &str) -> PathBuf {
    let path = repo.join(format!("backup/demo/{full}/{name}.gz"));
    flip_byte(&path, 0);
    path
}

/// The file entries of a pgkeep manifest.
fn manifest_files(repo: &Path, label: &str) -> Vec<serde_json::Value> {
    let path = repo.join(format!("backup/demo/{label}/backup.manifest"));
    let text = std::fs::read_to_string(path).unwrap();
    let manifest: serde_json::Value = serde_json::from_str(&text).unwrap();
    manifest["content"]["files"].as_array().unwrap().clone()
}

/// Damages the first byte of `name`'s stored form in pgkeep's full backup, in its bundle or
/// its own file, as the manifest says.
fn damage_pgkeep(repo: &Path, full: &str, name: &str) -> PathBuf {
    let dir = repo.join(format!("backup/demo/{full}"));
    let files = manifest_files(repo, full);
    let entry = files
        .iter()
        .find(|file| file["name"] == name)
        .unwrap_or_else(|| panic!("'{name}' not in pgkeep's manifest"));
    match entry["bundle_id"].as_u64() {
        Some(id) => {
            let path = dir.join(format!("bundle/{id}"));
            flip_byte(&path, entry["bundle_offset"].as_u64().unwrap());
            path
        }
        None => {
            let path = dir.join(format!("{name}.zst"));
            flip_byte(&path, 0);
            path
        }
    }
}

/// The files under each timeline directory of archive id 15-1 (segments, `.partial` and
/// `.backup` files), by name.
fn archived(repo: &Path) -> Vec<String> {
    let mut names = Vec::new();
    for dir in std::fs::read_dir(repo.join("archive/demo/15-1")).unwrap() {
        let dir = dir.unwrap();
        if dir.file_type().unwrap().is_dir() {
            for file in std::fs::read_dir(dir.path()).unwrap() {
                names.push(file.unwrap().file_name().to_string_lossy().to_string());
            }
        }
    }
    names.sort();
    names
}

/// A WAL segment's stored name: 24 hex digits, then `-` and its checksum.
fn is_segment(name: &str) -> bool {
    name.len() > 25 && name[..24].bytes().all(|b| b.is_ascii_hexdigit()) && &name[24..25] == "-"
}

/// The `total WAL checked` of a normalised archiveId line, and the line with it replaced.
fn wal_counts(line: &str) -> (usize, String) {
    let re = regex::Regex::new(r"total WAL checked: (\d+), total valid WAL: (\d+)").unwrap();
    let caps = re
        .captures(line)
        .unwrap_or_else(|| panic!("no WAL counts in '{line}'"));
    assert_eq!(caps[1], caps[2], "{line}");
    let total = caps[1].parse().unwrap();
    let line = re.replace(line, "total WAL checked: <N>, total valid WAL: <N>");
    (total, line.to_string())
}

/// Compares the verbose reports of a repository with no damaged WAL: equal lines except the
/// WAL counts of the archiveId line, where pgkeep also counts its `.backup` and `.partial`
/// files (docs/compatibility.md: "verify report: WAL counted").
fn assert_same_verbose_reports(pair: &Pair, ours: &[String], theirs: &[String]) {
    assert_eq!(ours.len(), theirs.len(), "{ours:#?}\n{theirs:#?}");
    let (our_wal, our_line) = wal_counts(&ours[2]);
    let (their_wal, their_line) = wal_counts(&theirs[2]);
    assert_eq!(our_line, their_line);
    let our_files = archived(&pair.pgkeep.repo);
    let their_segments: Vec<String> = archived(&pair.pgbackrest.repo)
        .into_iter()
        .filter(|name| is_segment(name))
        .collect();
    assert_eq!(our_wal, our_files.len(), "{our_files:#?}");
    assert_eq!(their_wal, their_segments.len(), "{their_segments:#?}");
    // Both count the segments their archive holds. (pgBackRest's may hold the first segment
    // too, archived before pgkeep's stanza existed.)
    let segment = |name: &String| name[..24].to_string();
    for name in our_files.iter().filter(|name| is_segment(name)) {
        assert!(
            their_segments
                .iter()
                .any(|theirs| segment(theirs) == segment(name)),
            "{name} not in pgBackRest's archive: {their_segments:#?}"
        );
    }
    assert_eq!(ours[..2], theirs[..2]);
    assert_eq!(ours[3..], theirs[3..]);
}

#[test]
fn verify_reports_as_pgbackrest_does_on_a_healthy_then_a_damaged_repository() {
    let pair = backed_up();

    // Healthy: no report without --verbose (there is nothing wrong), whatever the output.
    for args in [
        vec!["verify"],
        vec!["verify", "--output=none"],
        vec!["verify", "--output=text"],
        vec!["verify", "--output=none", "--verbose"],
    ] {
        let both = pair.both(&args).code(0);
        let (ours, theirs) = reports(&pair, &both);
        assert!(
            ours.is_empty() && theirs.is_empty(),
            "{args:?}\n{}",
            both.shown()
        );
    }
    // --output=none --verbose: the report is logged (at info, so on this console) but not
    // printed on its own.
    let both = pair.both(&["verify", "--output=none", "--verbose"]).code(0);
    for run in [&both.pgkeep, &both.pgbackrest] {
        assert!(
            run.stdout.contains("INFO: stanza: demo\n"),
            "{}",
            both.shown()
        );
    }
    let both = pair.both(&["verify", "--output=text", "--verbose"]).code(0);
    let (ours, theirs) = reports(&pair, &both);
    assert_eq!(
        ours[..2],
        ["stanza: demo", "status: ok"],
        "{}",
        both.shown()
    );
    // Every file of each manifest is counted, zero-length ones (stored nowhere) included.
    let labels_ours = labels(&pair.pgkeep.repo);
    for (line, label) in [(&ours[4], &labels_ours[0]), (&ours[6], &labels_ours[1])] {
        let files = manifest_files(&pair.pgkeep.repo, label).len();
        assert_eq!(
            line,
            &format!(
                "  backup: <LABEL>, status: valid, total files checked: {files}, total valid files: {files}"
            )
        );
    }
    assert_same_verbose_reports(&pair, &ours, &theirs);

    // One file of the full backup damaged in each repository: its first stored byte. The
    // incremental backup references the file (template1 did not change), so it is invalid too.
    let name = "pg_data/base/1/1259";
    damage_pgkeep(&pair.pgkeep.repo, &labels(&pair.pgkeep.repo)[0], name);
    damage_pgbackrest(
        &pair.pgbackrest.repo,
        &labels(&pair.pgbackrest.repo)[0],
        name,
    );

    // pgBackRest exits 0 on damage, pgkeep with CommandError (104) (docs/compatibility.md: "verify
    // exit code on damage").
    let both = pair.both(&["verify", "--output=text"]);
    assert_eq!(
        (both.pgkeep.code, both.pgbackrest.code),
        (104, 0),
        "{}",
        both.shown()
    );
    assert!(
        both.pgkeep.stderr.contains(&format!(
            "/pg_data/base/1/1259' (in bundle '{}",
            pair.pgkeep.repo.join("backup/demo").display()
        )) && both
            .pgkeep
            .stderr
            .contains("ERROR: [104]: verify command encountered 1 error(s)"),
        "{}",
        both.shown()
    );
    assert!(
        both.pgbackrest.stdout.contains("/pg_data/base/1/1259.gz'"),
        "{}",
        both.shown()
    );
    // The same lines but the class of the damage: pgkeep cannot decompress the file ('other');
    // pgBackRest's gz reader counts a damaged gz header as a checksum mismatch
    // (docs/compatibility.md: "verify report: damaged compressed data").
    let (ours, theirs) = reports(&pair, &both);
    let (total_full, total_incr) = (count_at(&ours[2]), count_at(&ours[4]));
    let backup_line = |total: usize| {
        format!(
            "  backup: <LABEL>, status: invalid, total files checked: {total}, total valid files: {}",
            total - 1
        )
    };
    let expected = |class: &str| {
        vec![
            "stanza: demo".to_string(),
            "status: error".to_string(),
            backup_line(total_full),
            format!("    {class}: 1"),
            backup_line(total_incr),
            format!("    {class}: 1"),
        ]
    };
    assert_eq!(ours, expected("other"), "{}", both.shown());
    assert_eq!(theirs, expected("checksum invalid"), "{}", both.shown());

    let both = pair.both(&["verify", "--output=text", "--verbose"]);
    assert_eq!((both.pgkeep.code, both.pgbackrest.code), (104, 0));
    let (ours, theirs) = reports(&pair, &both);
    assert_eq!(ours[1], "status: error", "{}", both.shown());
    assert_eq!(
        ours[5],
        "    missing: 0, checksum invalid: 0, size invalid: 0, other: 1",
        "{}",
        both.shown()
    );
    // The class of the damage apart (above), the same report.
    let theirs_as_ours: Vec<String> = theirs
        .iter()
        .map(|line| {
            line.replace(
                "checksum invalid: 1, size invalid: 0, other: 0",
                "checksum invalid: 0, size invalid: 0, other: 1",
            )
        })
        .collect();
    assert_ne!(theirs_as_ours, theirs, "{}", both.shown());
    assert_same_verbose_reports(&pair, &ours, &theirs_as_ours);

    // --output=none: nothing printed on its own, the same exit codes.
    let both = pair.both(&["verify", "--output=none"]);
    assert_eq!((both.pgkeep.code, both.pgbackrest.code), (104, 0));
    let (ours, theirs) = reports(&pair, &both);
    assert!(ours.is_empty() && theirs.is_empty(), "{}", both.shown());
}

/// The `total files checked` of a report's backup line.
fn count_at(line: &str) -> usize {
    let re = regex::Regex::new(r"total files checked: (\d+)").unwrap();
    let caps = re
        .captures(line)
        .unwrap_or_else(|| panic!("no count in '{line}'"));
    caps[1].parse().unwrap()
}
