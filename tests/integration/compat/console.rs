//! Console and log lines by both tools (issue 14, items 5 and 7): the user-guide flow compared
//! line by line after normalising, the stopped-cluster error, and a hint under a non-default
//! `--config` run as written. Each line pgkeep prints differently on purpose is removed by a
//! named filter below, and listed in docs/compatibility.md.

use crate::common::reference::{Both, Pair};

/// A documented difference: its name (as in docs/compatibility.md) and what it does to a
/// normalised line: `None` drops a line only one tool prints, `Some` rewrites it.
struct Known {
    name: &'static str,
    rewrite: fn(&str) -> Option<String>,
}

/// Drops `line` when `drop` says so.
fn drop_if(line: &str, drop: bool) -> Option<String> {
    (!drop).then(|| line.to_string())
}

/// The lines that differ on purpose; see docs/compatibility.md.
const KNOWN: &[Known] = &[
    Known {
        // pgBackRest also waits at backup start for the start segment to reach the archive.
        name: "archive check at backup start",
        rewrite: |line| {
            drop_if(
                line,
                line.ends_with("INFO: check archive for segment <WAL>"),
            )
        },
    },
    Known {
        // pgkeep logs the archive retention anchor at info, pgBackRest at detail.
        name: "archive retention line at info",
        rewrite: |line| drop_if(line, line.contains("archive retention on backup")),
    },
    Known {
        // pgkeep says how much a delta restore kept.
        name: "delta restore summary",
        rewrite: |line| drop_if(line, line.contains("INFO: delta restore: ")),
    },
    Known {
        // pgkeep confirms the stop file it wrote.
        name: "stop file confirmation",
        rewrite: |line| drop_if(line, line.contains("INFO: stop file created for")),
    },
    Known {
        // pgkeep's info shows each backup's start and stop LSNs.
        name: "info: lsn start/stop",
        rewrite: |line| drop_if(line, line.trim_start().starts_with("lsn start/stop: ")),
    },
    Known {
        // pgkeep's hints name the command to run, with the options it needs.
        name: "hints that name a command",
        rewrite: |line| drop_if(line, line.trim_start().starts_with("HINT: use '<TOOL> ")),
    },
    Known {
        // check and stop accept lock-path and spool-path in pgkeep (and list them when set).
        name: "begin line: lock-path and spool-path",
        rewrite: |line| {
            Some(if line.contains(" command begin ") {
                line.replace(" --lock-path=<LOCK>", "")
                    .replace(" --spool-path=<SPOOL>", "")
            } else {
                line.to_string()
            })
        },
    },
];

/// The normalised lines of `text` once known differences are applied; archived WAL file
/// names (whose checksum and compression differ by design) are reduced to the segment.
fn compared(pair: &Pair, text: &str) -> Vec<String> {
    let file = regex::Regex::new(r"<WAL>-[0-9a-f]{40,64}\.(gz|zst|lz4|bz2)").unwrap();
    pair.normalise(text)
        .lines()
        .filter_map(|line| {
            KNOWN.iter().try_fold(line.to_string(), |line, known| {
                let _ = known.name;
                (known.rewrite)(&line)
            })
        })
        .map(|line| file.replace_all(&line, "<WAL>-<FILE>").to_string())
        .collect()
}

/// Asserts that both tools printed the same lines to stdout and to stderr, once known
/// differences are set aside, and exited with the same code.
#[track_caller]
fn assert_same(pair: &Pair, step: &str, both: &Both) {
    assert_eq!(
        both.pgkeep.code,
        both.pgbackrest.code,
        "{step}: exit codes\n{}",
        both.shown()
    );
    for (stream, ours, theirs) in [
        ("stdout", &both.pgkeep.stdout, &both.pgbackrest.stdout),
        ("stderr", &both.pgkeep.stderr, &both.pgbackrest.stderr),
    ] {
        let ours = compared(pair, ours);
        let theirs = compared(pair, theirs);
        assert_eq!(
            ours,
            theirs,
            "{step}: {stream} differs (left pgkeep, right pgBackRest)\n{}",
            both.shown()
        );
    }
}

#[test]
fn user_guide_flow_prints_what_pgbackrest_prints() {
    let pair = Pair::new();
    for (step, args) in [
        ("stanza-create", vec!["stanza-create"]),
        ("check", vec!["check"]),
        ("full backup", vec!["--type=full", "backup"]),
        ("diff backup", vec!["--type=diff", "backup"]),
        ("info", vec!["info"]),
        ("second full backup", vec!["--type=full", "backup"]),
        ("expire", vec!["--repo1-retention-full=1", "expire"]),
    ] {
        let both = pair.both(&args);
        assert_same(&pair, step, &both);
    }
    pair.cluster.stop();
    let restore = pair.both(&["--delta", "restore"]);
    assert_same(&pair, "restore --delta", &restore);
    assert!(
        restore
            .pgkeep
            .stdout
            .contains("INFO: repo1: restore backup set "),
        "{}",
        restore.shown()
    );
}

#[test]
fn errors_go_to_stderr_as_pgbackrest_prints_them() {
    let pair = Pair::new();
    pair.stanza_create();
    pair.both(&["stop"]).code(0);
    // At info on the console: the error on stderr without time or process, the end line on
    // stdout; at the default level: the error alone.
    for level in ["info", "warn"] {
        let option = format!("--log-level-console={level}");
        let both = pair.both(&[&option, "--type=full", "backup"]);
        assert_same(
            &pair,
            &format!("backup of a stopped stanza at {level}"),
            &both,
        );
    }
    let both = pair.both(&["--type=full", "backup"]);
    assert!(
        both.pgkeep
            .stderr
            .starts_with("ERROR: [062]: stop file exists for stanza demo\n")
            && both
                .pgkeep
                .stdout
                .contains("INFO: backup command end: aborted with exception [062]"),
        "{}",
        both.shown()
    );
}

#[test]
fn stopped_cluster_names_the_socket_and_hints_the_server_is_down() {
    let pair = Pair::new();
    pair.stanza_create();
    pair.cluster.stop();
    let both = pair.both(&["backup"]);
    assert_eq!(both.pgkeep.code, 56, "{}", both.shown());
    let socket = format!(
        "{}/.s.PGSQL.{}",
        pair.cluster.socket_dir().display(),
        pair.cluster.port()
    );
    for run in [&both.pgkeep, &both.pgbackrest] {
        assert!(
            run.stderr.contains(&format!(
                "connection to server on socket \"{socket}\" failed: No such file or directory"
            )),
            "{}",
            both.shown()
        );
    }
    assert!(
        both.pgkeep.stderr.contains(
            "HINT: is the server running locally and accepting connections on that socket?"
        ),
        "{}",
        both.shown()
    );
}

#[test]
fn hint_under_a_non_default_config_runs_as_written() {
    let pair = Pair::new();
    pair.stanza_create();
    let side = &pair.pgkeep;
    side.run(&pair.stanza, &["stop"]).code(0);
    let failed = side.run(&pair.stanza, &["--type=full", "backup"]).code(62);
    let hint = regex::Regex::new(r"HINT: use '([^']+)' to allow pgkeep to run again")
        .unwrap()
        .captures(&failed.stderr)
        .map(|c| c[1].to_string())
        .unwrap_or_else(|| panic!("no hint naming a command\n{}", failed.stderr));
    assert_eq!(
        hint,
        format!(
            "pgkeep --config={} --stanza=demo start",
            side.conf.display()
        )
    );
    // Run the hinted command as written (the binary by its path), then the backup works.
    let args: Vec<&str> = hint.split(' ').skip(1).collect();
    side.run_raw(&args).code(0);
    side.run(&pair.stanza, &["--type=full", "backup"]).code(0);
}

/// A restore into another directory than the one backed up: pgBackRest's `remap data
/// directory` line, then the same lines as pgBackRest's. Each tool restores into the same
/// (emptied) directory in turn, so that the paths in the lines agree.
#[test]
fn restore_to_another_directory_says_remap_as_pgbackrest() {
    let pair = Pair::new();
    pair.stanza_create();
    pair.both(&["--type=full", "backup"]).code(0);
    let target = pair.dir.path().join("elsewhere");
    let pg1_path = format!("--pg1-path={}", target.display());
    let restore_into = |side: &crate::common::reference::Side| {
        if target.exists() {
            std::fs::remove_dir_all(&target).unwrap();
        }
        std::fs::create_dir(&target).unwrap();
        crate::common::pgkeep::chown_postgres(&target);
        side.run(&pair.stanza, &[&pg1_path, "restore"])
    };
    let both = Both {
        pgkeep: restore_into(&pair.pgkeep),
        pgbackrest: restore_into(&pair.pgbackrest),
    };
    assert_same(&pair, "restore to another directory", &both);
    assert!(
        both.pgkeep.stdout.contains(&format!(
            "INFO: remap data directory to '{}'",
            target.display()
        )),
        "{}",
        both.shown()
    );
}
