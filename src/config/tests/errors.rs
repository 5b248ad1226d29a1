//! Every refusal of the command line and environment: its kind (the exit code) and its exact
//! message.

use super::{Dir, fail};
use crate::error::ErrorKind::{self, *};

#[test]
fn command_line_mistakes_are_refused_with_their_message() {
    let base = ["--no-config", "--stanza=main", "--pg1-path=/pg"];
    #[rustfmt::skip]
    let cases: &[(&[&str], ErrorKind, &str)] = &[
        (&["bakup"], CommandInvalid, "invalid command 'bakup'"),
        (&[], CommandRequired, "no command found"),
        (&["backup", "--nope"], OptionInvalid, "invalid option '--nope'"),
        (&["backup", "--nope=1"], OptionInvalid, "invalid option '--nope'"),
        (&["backup", "-x"], OptionInvalid, "invalid option '-x'"),
        (&["backup", "--pg9-path=/x"], OptionInvalid, "invalid option '--pg9-path'"),
        (&["backup", "--repo257-path=/x"], OptionInvalid, "invalid option '--repo257-path'"),
        (&["backup", "--repo5-path=/x"], OptionInvalid, "option 'repo5-path' is not supported yet: pgkeep has one repository (repo1)"),
        (&["backup", "--pg0-path=/x"], OptionInvalid, "invalid option '--pg0-path'"),
        (&["backup", "--delta"], OptionInvalid, "option 'delta' not valid for command 'backup'"),
        (&["backup", "--no-delta"], OptionInvalid, "option 'delta' not valid for command 'backup'"),
        (&["info", "--pg2-port=1"], OptionInvalid, "option 'pg2-port' not valid for command 'info'"),
        (&["version"], OptionInvalid, "option 'stanza' not valid for command 'version'"),
        (&["backup", "--compress-type=bz3"], OptionInvalidValue, "'bz3' is not valid for 'compress-type' option"),
        (&["backup", "--type=immediate"], OptionInvalidValue, "'immediate' is not valid for 'type' option"),
        (&["backup", "--process-max=0"], OptionInvalidValue, "'0' is out of range for 'process-max' option"),
        (&["backup", "--buffer-size=128MiB"], OptionInvalidValue, "'128MiB' is out of range for 'buffer-size' option"),
        (&["backup", "--buffer-size=lots"], OptionInvalidValue, "'lots' is not valid for 'buffer-size' option"),
        (&["backup", "--archive-timeout=0"], OptionInvalidValue, "'0' is out of range for 'archive-timeout' option"),
        (&["backup", "--pg1-port=65536"], OptionInvalidValue, "'65536' is out of range for 'pg1-port' option"),
        (&["backup", "--start-fast=yes"], OptionInvalidValue, "boolean option 'start-fast' must be 'y' or 'n'"),
        (&["backup", "--repo1-path=repo"], OptionInvalidValue, "'repo' must begin with / for 'repo1-path' option"),
        (&["backup", "--stanza=other"], OptionInvalid, "option 'stanza' cannot be set multiple times"),
        (&["backup", "--db-path=/other"], OptionInvalid, "option 'pg1-path' cannot be set multiple times"),
        (&["backup", "--no-compress-type"], OptionInvalid, "option 'compress-type' cannot be negated"),
        (&["backup", "--reset-stanza"], OptionInvalid, "option 'stanza' cannot be reset"),
        (&["backup", "--no-start-fast=y"], OptionInvalid, "option '--no-start-fast' does not take a value"),
        (&["backup", "--start-fast", "--no-start-fast"], OptionInvalid, "option 'start-fast' cannot be set and negated"),
        (&["backup", "--start-fast", "--reset-start-fast"], OptionInvalid, "option 'start-fast' cannot be set and reset"),
        (&["backup", "--no-start-fast", "--reset-start-fast"], OptionInvalid, "option 'start-fast' cannot be negated and reset"),
        (&["backup", "--no-start-fast", "--no-start-fast"], OptionInvalid, "option 'start-fast' is negated multiple times"),
        (&["backup", "--process-max"], OptionInvalid, "option '--process-max' requires an argument"),
        (&["backup", "extra"], ParamInvalid, "command does not allow parameters"),
        (&["restore", "--recovery-option=nokey"], OptionInvalidValue, "key/value 'nokey' not valid for 'recovery-option' option"),
        (&["restore", "--target-action=stop"], OptionInvalidValue, "'stop' is not valid for 'target-action' option"),
    ];
    for (extra, kind, message) in cases {
        let mut args = base.to_vec();
        args.extend_from_slice(extra);
        let err = fail(&args, &[]);
        assert_eq!((err.kind(), err.message()), (*kind, *message), "{extra:?}");
    }
}

#[test]
fn help_topics_are_checked_when_parsing() {
    #[rustfmt::skip]
    let cases: &[(&[&str], ErrorKind, &str)] = &[
        (&["help", "bakup"], CommandInvalid, "invalid command 'bakup'"),
        (&["help", "backup", "delta"], OptionInvalid, "option 'delta' not valid for command 'backup'"),
        (&["help", "--nope"], OptionInvalid, "invalid option '--nope'"),
    ];
    for (args, kind, message) in cases {
        let err = fail(args, &[]);
        assert_eq!((err.kind(), err.message()), (*kind, *message), "{args:?}");
    }
}

#[test]
fn enum_values_are_listed_in_the_hint() {
    let err = fail(
        &[
            "--no-config",
            "--stanza=s",
            "--pg1-path=/p",
            "backup",
            "--compress-type=bz3",
        ],
        &[],
    );
    assert_eq!(err.hint(), Some("use one of: none, gz, lz4, zst"));
}

#[test]
fn required_options_are_named_stanza_first() {
    #[rustfmt::skip]
    let cases: &[(&[&str], &str, Option<&str>)] = &[
        (&["backup"], "backup command requires option: stanza", None),
        (&["--stanza=main", "backup"], "backup command requires option: pg1-path", Some("does this stanza exist?")),
        (&["archive-push", "/wal"], "archive-push command requires option: stanza", None),
        (&["--stanza=main", "restore"], "restore command requires option: pg1-path", Some("does this stanza exist?")),
    ];
    for (extra, message, hint) in cases {
        let mut args = vec!["--no-config"];
        args.extend_from_slice(extra);
        let err = fail(&args, &[]);
        assert_eq!(err.kind(), OptionRequired, "{extra:?}");
        assert_eq!(err.message(), *message, "{extra:?}");
        assert_eq!(err.hint(), *hint, "{extra:?}");
    }
}

#[test]
fn bad_values_from_env_and_file_say_where_they_came_from() {
    let base = ["--stanza=main", "--pg1-path=/pg", "backup"];
    let mut args = vec!["--no-config"];
    args.extend(base);
    let err = fail(&args, &[("PGKEEP_PROCESS_MAX", "0")]);
    assert_eq!(err.kind(), OptionInvalidValue);
    assert_eq!(
        err.message(),
        "'0' is out of range for 'process-max' option in environment variable \
         'PGKEEP_PROCESS_MAX'"
    );
    let err = fail(&args, &[("PGKEEP_START_FAST", "true")]);
    assert_eq!(
        err.message(),
        "boolean option 'start-fast' must be 'y' or 'n' in environment variable \
         'PGKEEP_START_FAST'"
    );

    let dir = Dir::new();
    let config = dir.config("[global]\n# tuning\n\ncompress-type=bz3\n");
    let mut args = vec![config.as_str()];
    args.extend(base);
    let err = fail(&args, &[]);
    assert_eq!(err.kind(), OptionInvalidValue);
    assert_eq!(
        err.message(),
        format!(
            "'bz3' is not valid for 'compress-type' option at line 4 of '{}'",
            dir.path("pgkeep.conf")
        )
    );
}

#[test]
fn two_env_spellings_of_one_option_are_refused() {
    let err = fail(
        &["--no-config", "--stanza=main", "backup"],
        &[("PGKEEP_DB_PATH", "/a"), ("PGKEEP_PG1_PATH", "/b")],
    );
    assert_eq!(err.kind(), OptionInvalid);
    assert_eq!(
        err.message(),
        "environment contains duplicate options ('PGKEEP_DB_PATH', 'PGKEEP_PG1_PATH')"
    );
}
