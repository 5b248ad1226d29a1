//! Which source wins, how each source spells options, and what the resolved Config offers.

use super::{Args, Dir, Env, ok, strings};
use crate::config::{Command, Opt, Source};
use crate::log::Level;

const FILE: &str = "[global]\nprocess-max=2\nbuffer-size=2MiB\n[main]\npg1-path=/file\n";

#[test]
fn command_line_beats_env_beats_file_beats_default() {
    let dir = Dir::new();
    let config = dir.config(FILE);
    const ENV: Env = &[("PGKEEP_PROCESS_MAX", "3"), ("PGKEEP_PG1_PATH", "/env")];
    #[rustfmt::skip]
    let cases: &[(Args, Env, i64, Source, &str, Source)] = &[
        (&[], &[], 2, Source::ConfigFile, "/file", Source::ConfigFile),
        (&[], ENV, 3, Source::Env, "/env", Source::Env),
        (&["--process-max=4", "--pg1-path=/cli"], ENV, 4, Source::CommandLine, "/cli", Source::CommandLine),
        (&["--reset-process-max", "--reset-pg1-path"], ENV, 1, Source::Default, "", Source::Default),
    ];
    for (extra, env, process_max, process_source, pg_path, pg_source) in cases {
        let mut args = vec![config.as_str(), "--stanza=main", "archive-get"];
        args.extend_from_slice(extra);
        let config = ok(&args, env);
        assert_eq!(config.int(Opt::ProcessMax), Some(*process_max), "{extra:?}");
        assert_eq!(config.source(Opt::ProcessMax), *process_source, "{extra:?}");
        assert_eq!(config.str(Opt::PgPath).unwrap_or(""), *pg_path, "{extra:?}");
        assert_eq!(config.source(Opt::PgPath), *pg_source, "{extra:?}");
        // Untouched by the overrides: still from the file.
        assert_eq!(config.int(Opt::BufferSize), Some(2 * 1024 * 1024));
    }
}

#[test]
fn defaults_fill_what_no_source_sets() {
    let config = ok(
        &["--no-config", "--stanza=main", "--pg1-path=/pg", "backup"],
        &[],
    );
    assert_eq!(config.int(Opt::BufferSize), Some(1024 * 1024));
    assert_eq!(config.str(Opt::BufferSize), Some("1MiB"));
    assert_eq!(config.time_ms(Opt::ArchiveTimeout), Some(60_000));
    assert_eq!(config.str(Opt::CompressType), Some("zst"));
    assert_eq!(config.int(Opt::CompressLevel), None);
    assert_eq!(config.str(Opt::RepoPath), Some("/var/lib/pgkeep"));
    assert_eq!(config.int(Opt::PgPort), Some(5432));
    assert_eq!(config.str(Opt::PgDatabase), Some("postgres"));
    assert_eq!(config.str(Opt::PgUser), None);
    assert!(config.bool(Opt::ArchiveCheck));
    assert!(!config.bool(Opt::StartFast));
    assert_eq!(config.source(Opt::StartFast), Source::Default);
    // Not valid for backup: not there at all.
    assert_eq!(config.str(Opt::TargetAction), None);
    assert!(!config.bool(Opt::Delta));
}

#[test]
fn aliases_work_in_every_source() {
    let dir = Dir::new();
    #[rustfmt::skip]
    let cases: &[(Args, Env, &str)] = &[
        (&["--db-path=/alias", "--thread-max=5", "--repo-path=/r"], &[], "cli"),
        (&[], &[("PGKEEP_DB_PATH", "/alias"), ("PGKEEP_THREAD_MAX", "5"), ("PGKEEP_REPO_PATH", "/r")], "env"),
        (&["@file"], &[], "file"),
    ];
    for (extra, env, label) in cases {
        let config_arg = if extra.first() == Some(&"@file") {
            dir.config("[global]\nthread-max=5\nrepo-path=/r\n[main]\ndb1-path=/alias\n")
        } else {
            "--no-config".to_string()
        };
        let mut args = vec![config_arg.as_str(), "--stanza=main", "restore"];
        args.extend(extra.iter().copied().filter(|a| !a.starts_with('@')));
        let config = ok(&args, env);
        assert_eq!(config.str(Opt::PgPath), Some("/alias"), "{label}");
        assert_eq!(config.int(Opt::ProcessMax), Some(5), "{label}");
        assert_eq!(config.str_at(Opt::RepoPath, 1), Some("/r"), "{label}");
    }
}

#[test]
fn indexed_options_resolve_at_every_index_given() {
    let config = ok(
        &[
            "--no-config",
            "--stanza=main",
            "--pg1-path=/a",
            "--db2-path=/b",
            "--pg2-port=5433",
            "stanza-create",
        ],
        &[("PGKEEP_PG3_PATH", "/c")],
    );
    assert_eq!(config.indexes(Opt::PgPath), vec![1, 2, 3]);
    assert_eq!(config.str_at(Opt::PgPath, 2), Some("/b"));
    assert_eq!(config.str_at(Opt::PgPath, 3), Some("/c"));
    assert_eq!(config.int_at(Opt::PgPort, 2), Some(5433));
    // Defaults fill the other clusters the user described.
    assert_eq!(config.int_at(Opt::PgPort, 3), Some(5432));
    assert_eq!(config.indexes(Opt::RepoPath), vec![1]);
}

#[test]
fn booleans_take_flags_values_and_negation() {
    let base = ["--no-config", "--stanza=main", "--pg1-path=/pg", "backup"];
    #[rustfmt::skip]
    let cases: &[(Args, Env, bool, bool)] = &[
        (&["--start-fast"], &[], true, true),
        (&["--start-fast=y"], &[], true, true),
        (&["--start-fast=n"], &[], false, true),
        (&["--no-archive-check"], &[], false, false),
        (&[], &[("PGKEEP_START_FAST", "y"), ("PGKEEP_ARCHIVE_CHECK", "n")], true, false),
        (&["--no-start-fast", "--archive-check"], &[("PGKEEP_START_FAST", "y"), ("PGKEEP_ARCHIVE_CHECK", "n")], false, true),
    ];
    for (extra, env, start_fast, archive_check) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let config = ok(&args, env);
        assert_eq!(
            config.bool(Opt::StartFast),
            *start_fast,
            "{extra:?} {env:?}"
        );
        assert_eq!(
            config.bool(Opt::ArchiveCheck),
            *archive_check,
            "{extra:?} {env:?}"
        );
    }
}

#[test]
fn reset_ignores_file_and_env_and_uses_the_default() {
    let dir = Dir::new();
    let config = dir.config("[global]\nstart-fast=y\ncompress-type=gz\n");
    let config = ok(
        &[
            &config,
            "--stanza=main",
            "--pg1-path=/pg",
            "--reset-start-fast",
            "backup",
            "--reset-compress-type",
        ],
        &[("PGKEEP_COMPRESS_TYPE", "lz4")],
    );
    assert!(!config.bool(Opt::StartFast));
    assert_eq!(config.str(Opt::CompressType), Some("zst"));
    assert_eq!(config.source(Opt::CompressType), Source::Default);
}

#[test]
fn hash_options_accumulate_in_order_from_each_source() {
    let dir = Dir::new();
    let file = dir.config("[main]\nrecovery-option=a=1\nrecovery-option = b = 2\n");
    let base = [file.as_str(), "--stanza=main", "--pg1-path=/pg", "restore"];
    let pairs = |items: &[(&str, &str)]| -> Vec<(String, String)> {
        items
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };

    let config = ok(&base, &[]);
    assert_eq!(
        config.hash(Opt::RecoveryOption),
        pairs(&[("a", "1"), ("b", "2")])
    );
    assert_eq!(config.source(Opt::RecoveryOption), Source::ConfigFile);

    let config = ok(&base, &[("PGKEEP_RECOVERY_OPTION", "c=3:d=x=y")]);
    assert_eq!(
        config.hash(Opt::RecoveryOption),
        pairs(&[("c", "3"), ("d", "x=y")])
    );

    let mut args = base.to_vec();
    args.extend([
        "--recovery-option=primary_conninfo=host=db1",
        "--recovery-option",
        "e=5",
    ]);
    let config = ok(&args, &[("PGKEEP_RECOVERY_OPTION", "c=3")]);
    assert_eq!(
        config.hash(Opt::RecoveryOption),
        pairs(&[("primary_conninfo", "host=db1"), ("e", "5")])
    );
    assert_eq!(config.source(Opt::RecoveryOption), Source::CommandLine);
}

#[test]
fn type_has_a_default_and_allowed_values_per_command() {
    let backup = ok(
        &["--no-config", "--stanza=s", "--pg1-path=/pg", "backup"],
        &[],
    );
    assert_eq!(backup.str(Opt::Type), Some("incr"));
    let restore = ok(
        &["--no-config", "--stanza=s", "--pg1-path=/pg", "restore"],
        &[],
    );
    assert_eq!(restore.str(Opt::Type), Some("default"));
    let restore = ok(
        &[
            "--no-config",
            "--stanza=s",
            "--pg1-path=/pg",
            "restore",
            "--type=time",
        ],
        &[],
    );
    assert_eq!(restore.str(Opt::Type), Some("time"));
}

#[test]
fn options_go_before_or_after_the_command_and_params_keep_their_order() {
    let config = ok(
        &[
            "--stanza=main",
            "archive-get",
            "--no-config",
            "000000010000000000000001",
            "pg_wal/RECOVERYXLOG",
        ],
        &[],
    );
    assert_eq!(config.command(), Command::ArchiveGet);
    assert_eq!(config.stanza(), Some("main"));
    assert_eq!(
        config.params(),
        strings(&["000000010000000000000001", "pg_wal/RECOVERYXLOG"])
    );
    let config = ok(
        &["--no-config", "--stanza=m", "archive-push", "--", "--odd"],
        &[],
    );
    assert_eq!(config.params(), strings(&["--odd"]));
}

#[test]
fn no_command_and_help_give_help() {
    let config = ok(&[], &[]);
    assert_eq!(config.command(), Command::Help);
    assert_eq!(config.help_topic(), None);
    let config = ok(&["help", "backup", "start-fast"], &[]);
    assert_eq!(config.command(), Command::Help);
    assert_eq!(config.help_topic(), Some("backup start-fast"));
    let config = ok(&["version"], &[("PGKEEP_NOT_AN_OPTION", "x")]);
    assert_eq!(config.command(), Command::Version);
    assert!(config.warnings().is_empty());
}

#[test]
fn help_and_version_flags_mean_the_commands() {
    for args in [&["--help"][..], &["-h"], &["--stanza=demo", "--help"]] {
        let config = ok(args, &[]);
        assert_eq!(config.command(), Command::Help, "{args:?}");
        assert_eq!(config.help_topic(), None, "{args:?}");
    }
    for args in [
        &["backup", "--help"][..],
        &["-h", "--stanza=demo", "backup"],
    ] {
        let config = ok(args, &[]);
        assert_eq!(config.command(), Command::Help, "{args:?}");
        assert_eq!(config.help_topic(), Some("backup"), "{args:?}");
    }
    for args in [&["--version"][..], &["backup", "--version"]] {
        assert_eq!(ok(args, &[]).command(), Command::Version, "{args:?}");
    }
    // After `--`, a parameter that looks like the flag is a parameter.
    let config = ok(
        &["--no-config", "--stanza=m", "archive-push", "--", "--help"],
        &[],
    );
    assert_eq!(config.command(), Command::ArchivePush);
    assert_eq!(config.params(), strings(&["--help"]));
}

#[test]
fn command_line_options_are_handed_on_by_current_name() {
    let config = ok(
        &[
            "--no-config",
            "--stanza=main",
            "--db-path=/pg",
            "--repo-path=/repo/",
            "restore",
            "--no-delta",
            "--recovery-option=a=b",
            "--recovery-option=c=d",
            "--reset-log-path",
        ],
        &[("PGKEEP_PROCESS_MAX", "4")],
    );
    let expected: Vec<(String, String)> = [
        ("stanza", "main"),
        ("pg1-path", "/pg"),
        ("repo1-path", "/repo"),
        ("delta", "n"),
        ("recovery-option", "a=b"),
        ("recovery-option", "c=d"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    assert_eq!(config.command_line_options(), expected);
    assert_eq!(
        config.command_line_args(Command::ArchiveGet),
        strings(&[
            "--no-config",
            "--stanza=main",
            "--pg1-path=/pg",
            "--repo1-path=/repo",
            "--reset-log-path",
        ])
    );
}

#[test]
fn log_settings_follow_the_options() {
    let config = ok(
        &[
            "--no-config",
            "--stanza=main",
            "--log-path=/logs",
            "--log-level-console=info",
            "--log-level-file=detail",
            "--no-log-timestamp",
            "stop",
        ],
        &[],
    );
    let log = config.log_settings();
    assert_eq!(log.console, Level::Info);
    assert_eq!(log.stderr, Level::Warn);
    assert_eq!(log.file, Level::Detail);
    assert_eq!(log.file_path, Some("/logs/main-stop.log".into()));
    assert!(!log.timestamp);

    let log = ok(&["--no-config", "start"], &[]).log_settings();
    assert_eq!(log.file_path, Some("/var/log/pgkeep/all-start.log".into()));
    assert!(log.timestamp);
    let log = ok(&["--no-config", "--log-level-file=off", "start"], &[]).log_settings();
    assert_eq!(log.file_path, None);
    assert_eq!(ok(&["version"], &[]).log_settings().file_path, None);
}
