//! Exit codes side by side (issue 14, items 4 and 6): every error condition the other tests
//! produce, run by pgBackRest 2.45 and by pgkeep on one cluster. One case is its arguments and
//! the expected outcome: the same code from both, or a difference that docs/compatibility.md
//! lists (the case names the row, and the test checks the row is there).
//!
//! Not compared here: conditions that need hosts (ssh: 49, 39, run by
//! tests/integration/remote), damaged or hostile repository files (28, 29: each tool's
//! repository format is its own), archive-async's queue (110) and archive-get's 255, which
//! pgBackRest has no counterpart for (both listed in docs/compatibility.md).

use std::path::{Path, PathBuf};

use crate::common::pgkeep::chown_postgres;
use crate::common::reference::{Both, Pair};
use crate::common::{ClusterOptions, PgCluster};

/// What one case expects of the two exit codes.
enum Expect {
    /// Both exit with this code.
    Same(i32),
    /// A difference kept on purpose: `row` is the start of its row in docs/compatibility.md.
    Differs {
        pgkeep: i32,
        pgbackrest: i32,
        row: &'static str,
    },
}

/// One condition: what it is, the arguments after `--config` and `--stanza` (or all of them,
/// with `{conf}` placeholders, when `raw`), and the expected codes.
struct Case {
    what: &'static str,
    args: Vec<String>,
    raw: bool,
    expect: Expect,
}

fn case(what: &'static str, args: &[&str], expect: Expect) -> Case {
    Case {
        what,
        args: args.iter().map(|a| a.to_string()).collect(),
        raw: false,
        expect,
    }
}

fn raw(what: &'static str, args: &[&str], expect: Expect) -> Case {
    Case {
        raw: true,
        ..case(what, args, expect)
    }
}

/// Runs every case and panics once, listing each case whose codes are not as expected.
fn run_cases(pair: &Pair, cases: Vec<Case>) {
    let compatibility = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/compatibility.md"),
    )
    .expect("docs/compatibility.md");
    let mut failures = Vec::new();
    for case in cases {
        let args: Vec<&str> = case.args.iter().map(String::as_str).collect();
        let both = if case.raw {
            pair.both_raw(&args)
        } else {
            pair.both(&args)
        };
        if let Some(failure) = judge(&case, &both, &compatibility) {
            failures.push(format!("{}: {failure}\n{}", case.what, both.shown()));
        }
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n\n{}",
        failures.len(),
        failures.join("\n\n")
    );
}

fn judge(case: &Case, both: &Both, compatibility: &str) -> Option<String> {
    let (ours, theirs) = (both.pgkeep.code, both.pgbackrest.code);
    match case.expect {
        Expect::Same(code) if ours == code && theirs == code => None,
        Expect::Same(code) => Some(format!(
            "expected {code} from both, pgkeep {ours}, pgBackRest {theirs}"
        )),
        Expect::Differs {
            pgkeep,
            pgbackrest,
            row,
        } => {
            if !compatibility
                .lines()
                .any(|line| line.starts_with(&format!("| {row}")))
            {
                Some(format!("docs/compatibility.md has no row '| {row}'"))
            } else if ours != pgkeep || theirs != pgbackrest {
                Some(format!(
                    "the listed difference is pgkeep {pgkeep}, pgBackRest {pgbackrest}; got pgkeep {ours}, pgBackRest {theirs}"
                ))
            } else {
                None
            }
        }
    }
}

/// An empty directory owned by postgres, for a restore that must not touch the cluster.
fn scratch(pair: &Pair, name: &str) -> String {
    let dir = pair.dir.path().join(name);
    std::fs::create_dir(&dir).unwrap();
    chown_postgres(&dir);
    dir.display().to_string()
}

fn pg1_path(dir: &str) -> String {
    format!("--pg1-path={dir}")
}

/// Holds `name` in both tools' lock directories as a running command would (flock, as both
/// tools lock); released when dropped.
fn hold_locks(pair: &Pair, name: &str) -> Vec<std::fs::File> {
    [&pair.pgkeep.lock, &pair.pgbackrest.lock]
        .into_iter()
        .map(|dir| {
            let path = dir.join(name);
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(&path)
                .unwrap();
            file.try_lock().unwrap();
            chown_postgres(&path);
            file
        })
        .collect()
}

/// Copies a WAL segment the cluster has archived with both tools into `dir`, with its last
/// byte changed when `changed`.
fn segment_copy(pair: &Pair, segment: &str, dir: &Path, changed: bool) -> PathBuf {
    let mut bytes = std::fs::read(pair.cluster.data_dir().join("pg_wal").join(segment)).unwrap();
    if changed {
        let last = bytes.len() - 1;
        bytes[last] ^= 0xff;
    }
    std::fs::create_dir_all(dir).unwrap();
    let path = dir.join(segment);
    std::fs::write(&path, bytes).unwrap();
    chown_postgres(dir);
    path
}

#[test]
fn error_codes_before_the_stanza_exists() {
    let pair = Pair::new();
    let unreadable = pair.dir.path().join("unreadable.conf");
    std::fs::write(&unreadable, "[global]\n").unwrap();
    chown_postgres(&unreadable);
    std::fs::set_permissions(
        &unreadable,
        std::os::unix::fs::PermissionsExt::from_mode(0o000),
    )
    .unwrap();
    let unreadable = format!("--config={}", unreadable.display());
    let gone = pair.dir.path().join("gone").display().to_string();
    let missing_repo = format!("--repo1-path={gone}");
    use Expect::*;
    run_cases(
        &pair,
        vec![
            case("unknown option", &["--bogus-option=1", "info"], Same(31)),
            case(
                "option not valid for the command",
                &["--target-action=promote", "backup"],
                Same(31),
            ),
            raw("no stanza", &["--config={conf}", "backup"], Same(37)),
            raw(
                "stanza name with a path separator",
                &["--config={conf}", "--stanza=x/y", "info"],
                Differs {
                    pgkeep: 32,
                    pgbackrest: 0,
                    row: "a stanza name that is not letters, digits",
                },
            ),
            raw(
                "config file missing",
                &["--config=/nonexistent/x.conf", "--stanza=demo", "info"],
                Same(55),
            ),
            raw(
                "config file unreadable",
                &[&unreadable, "--stanza=demo", "info"],
                Same(41),
            ),
            raw(
                "config include path missing",
                &[
                    "--no-config",
                    "--config-include-path=/nonexistent/conf.d",
                    "--stanza=demo",
                    "info",
                ],
                Same(73),
            ),
            case("check before stanza-create", &["check"], Same(55)),
            case(
                "pg1-path missing, stanza-create",
                &[&pg1_path(&gone), "stanza-create"],
                Same(56),
            ),
            case(
                "pg1-path missing, check",
                &[&pg1_path(&gone), "check"],
                Same(27),
            ),
            case(
                "pg1-path missing, backup before stanza-create",
                &[&pg1_path(&gone), "backup"],
                Same(55),
            ),
            case(
                "repository missing, check",
                &[&missing_repo, "check"],
                Differs {
                    pgkeep: 73,
                    pgbackrest: 55,
                    row: "a missing `repo1-path`",
                },
            ),
            case(
                "restore while the cluster runs, before stanza-create",
                &["restore"],
                Same(38),
            ),
        ],
    );
}

#[test]
fn error_codes_with_a_backup() {
    let pair = Pair::new();
    pair.stanza_create();
    let segment = pair
        .cluster
        .psql("select pg_walfile_name(pg_current_wal_lsn())");
    pair.both(&["check"]).code(0);
    // Copied now: the backup's checkpoint may recycle it.
    let copies = pair.dir.path().join("copies");
    let duplicate = segment_copy(&pair, &segment, &copies, true);
    pair.both(&["--type=full", "backup"]).code(0);
    let gone = pair.dir.path().join("gone").display().to_string();
    let other = PgCluster::init(ClusterOptions::default());
    let other_path = other.data_dir().display().to_string();
    let foreign = other.data_dir().join("pg_wal/000000010000000000000001");
    let wal_dest = pair.dir.path().join("RECOVERYXLOG").display().to_string();
    let non_empty = scratch(&pair, "non-empty");
    std::fs::write(Path::new(&non_empty).join("stray"), "x").unwrap();
    use Expect::*;
    run_cases(
        &pair,
        vec![
            case(
                "info --set of an unknown label",
                &["info", "--set=20200101-000000F"],
                Same(0),
            ),
            case(
                "expire --set of an unknown label",
                &["--set=20200101-000000F", "expire"],
                Differs {
                    pgkeep: 75,
                    pgbackrest: 0,
                    row: "`expire --set` of a label that does not exist",
                },
            ),
            case("stanza-delete without stop", &["stanza-delete"], Same(55)),
            case(
                "--no-online backup while the cluster runs",
                &["--no-online", "backup"],
                Same(38),
            ),
            case(
                "restore while the cluster runs",
                &["--force", "restore"],
                Same(38),
            ),
            case(
                "pg1-path missing, backup",
                &[&pg1_path(&gone), "backup"],
                Same(56),
            ),
            case(
                "pg1-path missing, check",
                &[&pg1_path(&gone), "check"],
                Same(27),
            ),
            case(
                "pg1-path of another cluster than the server's",
                &[&pg1_path(&other_path), "backup"],
                Same(51),
            ),
            case(
                "WAL of another cluster",
                &["archive-push", &foreign.display().to_string()],
                Same(44),
            ),
            case(
                "WAL already archived with other content",
                &["archive-push", &duplicate.display().to_string()],
                Same(45),
            ),
            case(
                "archive-get of WAL the archive lacks",
                &["archive-get", "0000000100000000000000FF", &wal_dest],
                Same(1),
            ),
            case(
                "restore --set of an unknown label",
                &[
                    &pg1_path(&scratch(&pair, "set")),
                    "--set=20200101-000000F",
                    "restore",
                ],
                Same(75),
            ),
            case(
                "restore into a non-empty directory",
                &[&pg1_path(&non_empty), "restore"],
                Same(40),
            ),
            case(
                "tablespace-map of a tablespace the backup lacks",
                &[
                    &pg1_path(&scratch(&pair, "ts")),
                    "--tablespace-map=nope=/x",
                    "restore",
                ],
                Same(76),
            ),
            case(
                "link-map of a link the backup lacks",
                &[
                    &pg1_path(&scratch(&pair, "link")),
                    "--link-map=pg_log=/x",
                    "restore",
                ],
                Same(78),
            ),
            case(
                "db-include of a database the backup lacks",
                &[
                    &pg1_path(&scratch(&pair, "db")),
                    "--db-include=nope",
                    "restore",
                ],
                Same(80),
            ),
            case(
                "time target before every backup",
                &[
                    &pg1_path(&scratch(&pair, "before")),
                    "--type=time",
                    "--target=2000-01-01 00:00:00+00",
                    "restore",
                ],
                Same(75),
            ),
            case(
                "time target without a time zone",
                &[
                    &pg1_path(&scratch(&pair, "zone")),
                    "--type=time",
                    "--target=2000-01-01 00:00:00",
                    "restore",
                ],
                Differs {
                    pgkeep: 32,
                    pgbackrest: 75,
                    row: "a time target without a time zone",
                },
            ),
            case(
                "db-exclude of a system database",
                &[
                    &pg1_path(&scratch(&pair, "system-db")),
                    "--db-exclude=postgres",
                    "restore",
                ],
                Differs {
                    pgkeep: 32,
                    pgbackrest: 0,
                    row: "`db-exclude` of a system database",
                },
            ),
            case(
                "target-timeline without a history file",
                &[
                    &pg1_path(&scratch(&pair, "timeline")),
                    "--target-timeline=7",
                    "restore",
                ],
                Differs {
                    pgkeep: 55,
                    pgbackrest: 0,
                    row: "`target-timeline` with no history file in the archive",
                },
            ),
        ],
    );

    // A command holding the backup lock, then a stop file.
    let locks = hold_locks(&pair, "demo-backup.lock");
    run_cases(&pair, vec![case("backup lock held", &["backup"], Same(50))]);
    drop(locks);
    pair.both(&["stop"]).code(0);
    run_cases(
        &pair,
        vec![
            case("backup after stop", &["backup"], Same(62)),
            case(
                "check after stop",
                &["--archive-timeout=2", "check"],
                Differs {
                    pgkeep: 62,
                    pgbackrest: 82,
                    row: "`check` of a stopped stanza",
                },
            ),
            case(
                "stanza-delete while the cluster runs",
                &["stanza-delete"],
                Same(38),
            ),
        ],
    );
    pair.both(&["start"]).code(0);

    // verify of a repository whose backup.info and its copy are gone.
    for repo in [&pair.pgkeep.repo, &pair.pgbackrest.repo] {
        for name in ["backup.info", "backup.info.copy"] {
            std::fs::remove_file(repo.join("backup/demo").join(name)).unwrap();
        }
    }
    run_cases(
        &pair,
        vec![case(
            "verify of a damaged repository",
            &["verify"],
            Differs {
                pgkeep: 104,
                pgbackrest: 0,
                row: "`verify` exit code on damage",
            },
        )],
    );
}

#[test]
fn error_codes_of_check_for_archiving_settings() {
    let pair = Pair::new();
    pair.stanza_create();
    pair.cluster.set("archive_command", "'/bin/true'");
    pair.cluster.restart();
    use Expect::*;
    run_cases(
        &pair,
        vec![case(
            "archive_command that runs neither tool",
            &["--archive-timeout=2", "check"],
            Differs {
                pgkeep: 82,
                pgbackrest: 68,
                row: "`check` with an `archive_command` that does not name the tool",
            },
        )],
    );
    pair.cluster.set("archive_command", "''");
    pair.cluster.restart();
    run_cases(
        &pair,
        vec![case("archive_command not set", &["check"], Same(68))],
    );
    pair.cluster.set("archive_mode", "off");
    pair.cluster.restart();
    run_cases(&pair, vec![case("archive_mode off", &["check"], Same(87))]);
    pair.cluster.stop();
    run_cases(
        &pair,
        vec![
            case("stopped cluster, check", &["check"], Same(27)),
            case("stopped cluster, backup", &["backup"], Same(56)),
        ],
    );
}

/// Item 6: a mistyped `--stanza` fails at once with pgBackRest's code and writes nothing, while
/// a stanza with its own section, archived to, is still created by its first backup.
#[test]
fn mistyped_stanza_fails_at_once_and_leaves_nothing() {
    let pair = Pair::new();
    pair.stanza_create();
    let data = pg1_path(&pair.cluster.data_dir().display().to_string());
    let started = std::time::Instant::now();
    let both = pair
        .both_raw(&["--config={conf}", "--stanza=demo2", &data, "backup"])
        .code(55);
    assert!(
        started.elapsed() < std::time::Duration::from_secs(20),
        "took {:?}\n{}",
        started.elapsed(),
        both.shown()
    );
    assert!(
        both.pgkeep
            .output()
            .contains("has a stanza-create been performed?"),
        "{}",
        both.shown()
    );
    for repo in [&pair.pgkeep.repo, &pair.pgbackrest.repo] {
        for part in ["backup", "archive"] {
            let path = repo.join(part).join("demo2");
            assert!(!path.exists(), "'{}' was created", path.display());
        }
    }
}

/// The first-backup flow that stays: a stanza with its own section, whose cluster archives to
/// it, is created by its first backup (pgkeep only: pgBackRest always needs stanza-create).
#[test]
fn a_configured_stanza_is_still_created_by_its_first_backup() {
    let s = crate::common::pgkeep::Stanza::new();
    s.pgkeep(&["--log-level-console=info", "--type=full", "backup"])
        .ok()
        .contains("stanza 'demo' created by its first backup");
    assert_eq!(s.labels().len(), 1);
    // The same stanza with pg1-path given on the command line only is refused, as it has no
    // section of its own in a config file that lacks it.
    let other = s.dir.path().join("other.conf");
    std::fs::write(
        &other,
        format!(
            "[global]\nrepo1-path={}\nlock-path={}\nlog-path={}\n",
            s.dir.path().join("other-repo").display(),
            s.lock.display(),
            s.log.display()
        ),
    )
    .unwrap();
    std::fs::create_dir(s.dir.path().join("other-repo")).unwrap();
    chown_postgres(s.dir.path());
    let run = crate::common::pgkeep::run_pgkeep(
        &[
            &format!("--config={}", other.display()),
            "--stanza=demo",
            &pg1_path(&s.data_dir().display().to_string()),
            &format!("--pg1-port={}", s.cluster.port()),
            &format!("--pg1-socket-path={}", s.cluster.socket_dir().display()),
            "backup",
        ],
        &[],
    )
    .code(55)
    .contains("has a stanza-create been performed?");
    drop(run);
    assert_eq!(
        std::fs::read_dir(s.dir.path().join("other-repo"))
            .unwrap()
            .count(),
        0,
        "the refused backup wrote to the repository"
    );
}
