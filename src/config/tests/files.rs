//! Configuration files: sections, include path, config-path, warnings and file errors.

use super::{Dir, fail, ok};
use crate::config::{Opt, Source};
use crate::error::ErrorKind;

#[test]
fn the_most_specific_section_wins() {
    let dir = Dir::new();
    let config = dir.config(
        "[global]\nprocess-max=1\nbuffer-size=32KiB\ncompress-level=1\nlog-path=/g\n\
         [global:backup]\nprocess-max=2\nbuffer-size=64KiB\ncompress-level=2\n\
         [main]\nprocess-max=3\nbuffer-size=128KiB\npg1-path=/pg\n\
         [main:backup]\nprocess-max=4\n\
         [other]\nprocess-max=9\n[other:backup]\nprocess-max=9\n[global:restore]\nprocess-max=9\n",
    );
    let backup = ok(&[&config, "--stanza=main", "backup"], &[]);
    assert_eq!(backup.int(Opt::ProcessMax), Some(4));
    assert_eq!(backup.int(Opt::BufferSize), Some(128 * 1024));
    assert_eq!(backup.int(Opt::CompressLevel), Some(2));
    assert_eq!(backup.str(Opt::LogPath), Some("/g"));
    assert_eq!(backup.source(Opt::ProcessMax), Source::ConfigFile);
    assert!(backup.warnings().is_empty(), "{:?}", backup.warnings());

    let push = ok(&[&config, "--stanza=main", "archive-push", "/w"], &[]);
    assert_eq!(push.int(Opt::ProcessMax), Some(3));
    assert_eq!(push.int(Opt::CompressLevel), Some(1));
    let info = ok(&[&config, "info"], &[]);
    assert_eq!(info.str(Opt::PgPath), None);
    assert_eq!(info.str(Opt::LogPath), Some("/g"));
}

#[test]
fn include_files_are_read_after_the_main_file_in_name_order() {
    let dir = Dir::new();
    let config = dir.config("[global]\nrepo1-path=/main\n");
    dir.write(
        "conf.d/20-b.conf",
        "[main]\npg1-path=/b\n[global]\nprocess-max=2\n",
    );
    dir.write("conf.d/10-a.conf", "[main]\nrecovery-option=a=1\n");
    dir.write("conf.d/30-c.conf", "[main]\nrecovery-option=c=3\n");
    dir.write("conf.d/notes.txt", "not ini at all");
    let include = format!("--config-include-path={}", dir.path("conf.d"));
    let restore = ok(&[&config, &include, "--stanza=main", "restore"], &[]);
    assert_eq!(restore.str(Opt::RepoPath), Some("/main"));
    assert_eq!(restore.str(Opt::PgPath), Some("/b"));
    assert_eq!(restore.int(Opt::ProcessMax), Some(2));
    let pairs: Vec<&str> = restore
        .hash(Opt::RecoveryOption)
        .iter()
        .map(|(k, _)| k.as_str())
        .collect();
    assert_eq!(pairs, ["a", "c"]);
    assert_eq!(
        restore.config_file().map(|p| p.display().to_string()),
        Some(dir.path("pgkeep.conf"))
    );

    // --no-config skips the main file but not an include path given on purpose.
    let restore = ok(&["--no-config", &include, "--stanza=main", "restore"], &[]);
    assert_eq!(restore.str(Opt::RepoPath), Some("/var/lib/pgkeep"));
    assert_eq!(restore.str(Opt::PgPath), Some("/b"));
    assert_eq!(restore.config_file(), None);
}

#[test]
fn config_path_moves_both_default_locations() {
    let dir = Dir::new();
    dir.write("pgkeep.conf", "[global]\nrepo1-path=/main\n");
    dir.write("conf.d/x.conf", "[global]\nprocess-max=7\n");
    // A trailing slash (dir.path("") has one) is dropped like on any path.
    let config_path = format!("--config-path={}", dir.path(""));
    let config = ok(&[&config_path, "archive-get", "--stanza=s"], &[]);
    assert_eq!(config.str(Opt::RepoPath), Some("/main"));
    assert_eq!(config.int(Opt::ProcessMax), Some(7));
    assert_eq!(
        config.str(Opt::Config),
        Some(dir.path("pgkeep.conf").as_str())
    );
    assert_eq!(config.source(Opt::Config), Source::Default);

    // The derived defaults may be missing, like the built-in ones.
    let empty = Dir::new();
    let config_path = format!("--config-path={}", empty.path(""));
    let config = ok(&[&config_path, "archive-get", "--stanza=s"], &[]);
    assert_eq!(config.config_file(), None);
    let env = [("PGKEEP_CONFIG_PATH", dir.path(""))];
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let config = ok(&["archive-get", "--stanza=s"], &env);
    assert_eq!(config.int(Opt::ProcessMax), Some(7));
}

#[test]
fn explicit_files_must_exist() {
    let dir = Dir::new();
    let missing = dir.path("missing.conf");
    let err = fail(&[&format!("--config={missing}"), "info"], &[]);
    // pgBackRest's codes: 55 for a missing file, 73 for a missing directory.
    assert_eq!(err.kind(), ErrorKind::FileMissing);
    assert_eq!(
        err.message(),
        format!("unable to open missing file '{missing}' for read")
    );
    assert!(err.hint().is_some_and(|h| h.contains("--config")));

    let missing = dir.path("nodir");
    let err = fail(
        &[
            "--no-config",
            &format!("--config-include-path={missing}"),
            "info",
        ],
        &[],
    );
    assert_eq!(err.kind(), ErrorKind::PathMissing);
    assert_eq!(
        err.message(),
        format!("unable to list missing path '{missing}'")
    );

    let err = fail(&["--config=relative.conf", "info"], &[]);
    assert_eq!(err.kind(), ErrorKind::OptionInvalidValue);
    assert_eq!(
        err.message(),
        "'relative.conf' must begin with / for 'config' option"
    );
}

#[test]
fn malformed_files_are_config_errors_with_file_and_line() {
    let dir = Dir::new();
    #[rustfmt::skip]
    let cases = [
        ("process-max=2\n", "key/value 'process-max=2' found outside of a section at line 1"),
        ("[global]\n# ok\nstart-fast\n", "missing '=' in key/value 'start-fast' at line 3"),
    ];
    for (text, message) in cases {
        let config = dir.config(text);
        let err = fail(&[&config, "info"], &[]);
        assert_eq!(err.kind(), ErrorKind::Config);
        let path = dir.path("pgkeep.conf");
        assert_eq!(err.message(), format!("{message} of '{path}'"));
    }
}

#[test]
fn repeated_and_doubly_spelled_keys_are_refused() {
    let dir = Dir::new();
    let path = dir.path("pgkeep.conf");
    #[rustfmt::skip]
    let cases = [
        ("[global]\nprocess-max=1\nprocess-max=2\n", ErrorKind::OptionInvalid, format!("option 'process-max' cannot be set multiple times at line 3 of '{path}'")),
        ("[main]\ndb-path=/a\npg1-path=/b\n", ErrorKind::OptionInvalid, "configuration file contains duplicate options ('db-path', 'pg1-path') in section '[main]'".to_string()),
        ("[global]\nstart-fast=yes\n", ErrorKind::OptionInvalidValue, format!("boolean option 'start-fast' must be 'y' or 'n' at line 2 of '{path}'")),
        ("[global]\nlog-path=\n", ErrorKind::OptionInvalidValue, format!("option 'log-path' must have a value at line 2 of '{path}'")),
    ];
    for (text, kind, message) in cases {
        let config = dir.config(text);
        let err = fail(&[&config, "--stanza=main", "--pg1-path=/pg", "backup"], &[]);
        assert_eq!(
            (err.kind(), err.message()),
            (kind, message.as_str()),
            "{text}"
        );
    }
}

#[test]
fn suspicious_settings_are_warned_about_and_ignored() {
    let dir = Dir::new();
    let config = dir.config(
        "[global]\nnot-an-option=1\npg1-path=/global\nstanza=main\nno-start-fast=y\n\
         reset-delta=y\ndelta=y\n\
         [global:backup]\npg1-port=5433\ndelta=y\n\
         [global:restore]\nnot-either=1\n\
         [main]\npg1-path=/pg\n",
    );
    let backup = ok(
        &[&config, "--stanza=main", "backup"],
        &[("PGKEEP_BOGUS", "1")],
    );
    assert_eq!(
        backup.warnings(),
        [
            "environment contains invalid option 'bogus'",
            "configuration file contains stanza-only option 'pg1-port' in global section \
             'global:backup'",
            "configuration file contains option 'delta' invalid for section 'global:backup'",
            "configuration file contains invalid option 'not-an-option'",
            "configuration file contains stanza-only option 'pg1-path' in global section 'global'",
            "configuration file contains command-line only option 'stanza'",
            "configuration file contains negate option 'no-start-fast'",
            "configuration file contains reset option 'reset-delta'",
        ]
    );
    assert_eq!(backup.str(Opt::PgPath), Some("/pg"));
    assert_eq!(backup.int(Opt::PgPort), Some(5432));
    assert!(!backup.bool(Opt::StartFast));

    // `delta` in [global] is for restore: backup ignores it silently (no warning above), and
    // restore uses it.
    let restore = ok(&[&config, "--stanza=main", "restore"], &[]);
    assert!(restore.bool(Opt::Delta));
}

#[test]
fn a_huge_line_is_quoted_shortened_in_errors_and_warnings() {
    let dir = Dir::new();
    let huge = "k".repeat(5 << 20);
    let config = dir.config(&format!("[global]\n{huge}\n"));
    let err = fail(&[&config, "--stanza=main", "info"], &[]);
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.message().len() < 400, "{} bytes", err.message().len());
    assert!(
        err.message()
            .starts_with(&format!("missing '=' in key/value '{}...'", &huge[..200]))
    );

    let config = dir.config(&format!("[global]\n{huge}=1\n"));
    let info = ok(&[&config, "info"], &[]);
    let warning = format!(
        "configuration file contains invalid option '{}...'",
        &huge[..200]
    );
    assert_eq!(info.warnings(), [warning]);
}
