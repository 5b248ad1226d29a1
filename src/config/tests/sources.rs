//! Which source wins, how each source spells options, and what the resolved Config offers.

use super::{Args, Dir, Env, fail, ok, strings};
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
fn indexes_pgkeep_does_not_act_on_are_refused_from_every_source() {
    use crate::error::ErrorKind;
    let dir = Dir::new();
    let repo2 = dir.write("repo2.conf", "[global]\nrepo2-path=/r2\n");
    let pg2 = dir.write("pg2.conf", "[main]\npg1-path=/a\npg2-host=standby\n");
    let repo_why = "is not supported yet: pgkeep has one repository (repo1)";
    let pg_why = "is not supported yet: pgkeep works with one PostgreSQL host (pg1)";
    let repo2_arg = format!("--config={}", repo2.display());
    let pg2_arg = format!("--config={}", pg2.display());
    #[rustfmt::skip]
    let cases: Vec<(Vec<&str>, Env, String)> = vec![
        (vec!["--no-config", "--repo2-path=/r2", "check"], &[], format!("option 'repo2-path' {repo_why}")),
        (vec!["--no-config", "--repo256-path=/r", "stanza-create"], &[], format!("option 'repo256-path' {repo_why}")),
        (vec!["--no-config", "--reset-repo2-path", "check"], &[], format!("option 'repo2-path' {repo_why}")),
        (vec!["--no-config", "--db2-path=/b", "check"], &[], format!("option 'pg2-path' {pg_why}")),
        (vec!["--no-config", "--pg8-port=5433", "backup"], &[], format!("option 'pg8-port' {pg_why}")),
        (vec!["--no-config", "check"], &[("PGKEEP_REPO2_PATH", "/r2")], format!("option 'repo2-path' in environment variable 'PGKEEP_REPO2_PATH' {repo_why}")),
        (vec!["--no-config", "backup"], &[("PGKEEP_PG3_PATH", "/c")], format!("option 'pg3-path' in environment variable 'PGKEEP_PG3_PATH' {pg_why}")),
        (vec![repo2_arg.as_str(), "stanza-create"], &[], format!("option 'repo2-path' at line 2 of '{}' {repo_why}", repo2.display())),
        (vec![pg2_arg.as_str(), "check"], &[], format!("option 'pg2-host' at line 3 of '{}' {pg_why}", pg2.display())),
    ];
    for (mut args, env, message) in cases {
        args.extend(["--stanza=main", "--pg1-path=/a"]);
        let err = fail(&args, env);
        assert_eq!(err.kind(), ErrorKind::OptionInvalid, "{args:?}");
        assert_eq!(err.message(), message, "{args:?}");
    }
    // A command that does not use the option ignores it, as it ignores repo1-path: one file
    // and one environment serve every command.
    let config = ok(
        &[&repo2_arg, "--stanza=main", "start"],
        &[("PGKEEP_REPO2_PATH", "/r2")],
    );
    assert_eq!(config.indexes(Opt::RepoPath), Vec::<u32>::new());
    // Index 1 is unaffected, in every spelling.
    let config = ok(
        &[
            "--no-config",
            "--stanza=main",
            "--db-path=/a",
            "--repo1-path=/r",
            "check",
        ],
        &[],
    );
    assert_eq!(config.indexes(Opt::PgPath), vec![1]);
    assert_eq!(config.str(Opt::RepoPath), Some("/r"));
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
