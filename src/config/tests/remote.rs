//! `<command>:remote`, `remote-type`, and the host options with their historic names.

use super::*;
use crate::config::{Command, Opt};
use crate::error::ErrorKind;

#[test]
fn a_remote_command_parses_as_its_command() {
    let cfg = ok(
        &[
            "--no-config",
            "--stanza=demo",
            "--remote-type=pg",
            "--pg1-path=/data",
            "backup:remote",
        ],
        &[],
    );
    assert_eq!(cfg.command(), Command::Backup);
    assert!(cfg.is_remote());
    assert_eq!(cfg.str(Opt::RemoteType), Some("pg"));
    let cfg = ok(&["--no-config", "--stanza=demo", "info"], &[]);
    assert!(!cfg.is_remote());
}

#[test]
fn remote_is_refused_where_it_makes_no_sense() {
    let err = fail(&["--no-config", "start:remote"], &[]);
    assert_eq!(err.kind(), ErrorKind::CommandInvalid);
    assert_eq!(err.message(), "invalid command 'start:remote'");
    let err = fail(
        &["--no-config", "--stanza=demo", "--remote-type=repo", "info"],
        &[],
    );
    assert_eq!(err.kind(), ErrorKind::OptionInvalid);
    assert_eq!(
        err.message(),
        "option 'remote-type' is only valid for 'info:remote'"
    );
    let err = fail(&["--no-config", "backups:remote"], &[]);
    assert_eq!(err.message(), "invalid command 'backups:remote'");
}

#[test]
fn host_options_have_their_defaults_and_historic_names() {
    let dir = Dir::new();
    let config = dir.config(
        "[global]\nbackup-host=backup1\nbackup-user=pgkeep\nbackup-ssh-port=2222\n\
         backup-config=/etc/pgkeep/remote.conf\n\n[demo]\ndb-host=db1\ndb-user=dba\n\
         db-cmd=/opt/pgkeep\npg1-path=/data\n",
    );
    let cfg = ok(&[&config, "--stanza=demo", "info"], &[]);
    assert_eq!(cfg.str(Opt::RepoHost), Some("backup1"));
    assert_eq!(cfg.str(Opt::RepoHostUser), Some("pgkeep"));
    assert_eq!(cfg.int(Opt::RepoHostPort), Some(2222));
    assert_eq!(
        cfg.str(Opt::RepoHostConfig),
        Some("/etc/pgkeep/remote.conf")
    );
    assert_eq!(cfg.str(Opt::PgHost), Some("db1"));
    assert_eq!(cfg.str(Opt::PgHostUser), Some("dba"));
    assert_eq!(cfg.str(Opt::PgHostCmd), Some("/opt/pgkeep"));

    let cfg = ok(&["--no-config", "--stanza=demo", "info"], &[]);
    assert_eq!(cfg.str(Opt::PgHost), None);
    assert_eq!(cfg.str(Opt::PgHostUser), Some("postgres"));
    assert_eq!(cfg.str(Opt::RepoHostUser), Some("postgres"));
    assert_eq!(cfg.str(Opt::CmdSsh), Some("ssh"));
    assert_eq!(cfg.time_ms(Opt::ProtocolTimeout), Some(1_830_000));
    assert_eq!(cfg.time_ms(Opt::DbTimeout), Some(1_800_000));
    assert_eq!(cfg.time_ms(Opt::IoTimeout), Some(60_000));
    assert_eq!(cfg.int(Opt::CompressLevelNetwork), Some(3));
}

#[test]
fn a_remote_logs_to_its_own_file() {
    let dir = Dir::new();
    let args = [
        "--no-config".to_string(),
        "--stanza=demo".to_string(),
        format!("--log-path={}", dir.path("log")),
        "--remote-type=repo".to_string(),
        "archive-get:remote".to_string(),
    ];
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let cfg = ok(&args, &[]);
    let file = cfg.log_settings().file_path.unwrap();
    assert!(
        file.ends_with("demo-archive-get-remote.log"),
        "{}",
        file.display()
    );
}
