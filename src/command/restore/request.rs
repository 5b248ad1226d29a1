//! What a restore was asked to do, read from the configuration and checked before anything
//! else happens: the recovery settings to write, the target that chooses the backup set, the
//! timeline, delta and force, remapping and the databases to leave out.

use crate::config::{Command, Config, Opt, Source};
use crate::error::{Error, ErrorKind, Result};
use crate::log_info;

use super::open;
use super::plan::Remap;
use super::recovery::{RecoveryRequest, RecoveryType};
use super::target::{self, Target};
use super::timeline::{self, TimelineTarget};

/// A restore's options, typed.
#[derive(Debug)]
pub struct Request {
    pub recovery: RecoveryRequest,
    /// The target that chooses the backup set (time and lsn), and the text the user gave.
    pub target: Option<(Target, String)>,
    /// `target-timeline`, when given.
    pub timeline: Option<TimelineTarget>,
    pub set: Option<String>,
    pub delta: bool,
    pub force: bool,
    /// `archive-check`: refuse when the archive lacks the WAL the backup set needs.
    pub archive_check: bool,
    pub remap: Remap,
    pub db_include: Vec<String>,
    pub db_exclude: Vec<String>,
}

pub fn from_config(cfg: &Config) -> Result<Request> {
    let type_name = cfg.str(Opt::Type).unwrap_or("default");
    let recovery_type = RecoveryType::parse(type_name).ok_or_else(|| {
        Error::new(
            ErrorKind::OptionInvalidValue,
            format!("'{type_name}' is not valid for 'type' option"),
        )
    })?;
    let given = cfg.str(Opt::Target).map(str::to_string);
    if recovery_type.needs_target() && given.is_none() {
        let example = match recovery_type {
            RecoveryType::Xid => "--target=1234",
            RecoveryType::Name => "--target=before_upgrade",
            RecoveryType::Lsn => "--target=0/3000028",
            _ => "--target=\"2026-11-24 21:00:00+00\"",
        };
        return Err(Error::new(
            ErrorKind::OptionRequired,
            format!("restore --type={type_name} requires option: target"),
        )
        .with_hint(format!("for example {example}")));
    }
    check_dependents(cfg, recovery_type, given.is_some())?;
    let parsed = match (recovery_type, &given) {
        (RecoveryType::Time, Some(text)) => Some(target::parse_time(text)?),
        (RecoveryType::Lsn, Some(text)) => Some(target::parse_lsn(text)?),
        _ => None,
    };
    // The setting PostgreSQL gets: a time target as the same instant in UTC, so that the
    // server's timezone setting cannot change which instant it is.
    let setting = match &parsed {
        Some(Target::Time { setting, .. }) => {
            if given.as_deref().map(str::trim) != Some(setting.as_str()) {
                log_info!(
                    "recovery target time '{}' is written for PostgreSQL as '{setting}'",
                    given.as_deref().unwrap_or_default()
                );
            }
            Some(setting.clone())
        }
        Some(Target::Lsn(lsn)) => Some(lsn.to_string()),
        None => given.clone().map(|t| t.trim().to_string()),
    };
    let timeline = cfg
        .str(Opt::TargetTimeline)
        .map(timeline::parse)
        .transpose()?;
    let recovery = RecoveryRequest {
        recovery_type,
        restore_command: restore_command(cfg)?,
        target: setting,
        target_action: cfg.str(Opt::TargetAction).map(str::to_string),
        target_exclusive: cfg.bool(Opt::TargetExclusive),
        target_timeline: cfg.str(Opt::TargetTimeline).map(str::to_string),
        options: cfg
            .hash(Opt::RecoveryOption)
            .iter()
            .map(|(k, v)| (k.replace('-', "_"), v.clone()))
            .collect(),
        archive_mode_off: cfg.str(Opt::ArchiveMode) == Some("off"),
    };
    Ok(Request {
        recovery,
        target: parsed.zip(given),
        timeline,
        set: cfg.str(Opt::Set).map(str::to_string),
        delta: cfg.bool(Opt::Delta),
        force: cfg.bool(Opt::Force),
        archive_check: cfg.bool(Opt::ArchiveCheck),
        remap: Remap {
            tablespaces: cfg.hash(Opt::TablespaceMap).to_vec(),
            tablespace_all: cfg.str(Opt::TablespaceMapAll).map(str::to_string),
            links: cfg.hash(Opt::LinkMap).to_vec(),
            link_all: cfg.bool(Opt::LinkAll),
        },
        db_include: cfg.list(Opt::DbInclude).to_vec(),
        db_exclude: cfg.list(Opt::DbExclude).to_vec(),
    })
}

/// Refuses target options the recovery type would ignore: a `--target` given without
/// `--type=time` (say) would otherwise restore to the end of the archive, silently missing it.
fn check_dependents(cfg: &Config, recovery_type: RecoveryType, has_target: bool) -> Result<()> {
    let targeted = recovery_type.needs_target();
    let immediate = recovery_type == RecoveryType::Immediate;
    let refused = if has_target && !targeted {
        Some(("target", "('lsn', 'name', 'time', 'xid')"))
    } else if cfg.bool(Opt::TargetExclusive) && !targeted {
        Some(("target-exclusive", "('lsn', 'name', 'time', 'xid')"))
    } else if cfg.source(Opt::TargetAction) != Source::Default && !targeted && !immediate {
        Some((
            "target-action",
            "('immediate', 'lsn', 'name', 'time', 'xid')",
        ))
    } else {
        None
    };
    match refused {
        Some((option, types)) => Err(Error::new(
            ErrorKind::OptionInvalid,
            format!("option '{option}' not valid without option 'type' in {types}"),
        )
        .with_hint("give the recovery type, e.g. --type=time, or leave the option out")),
        None => Ok(()),
    }
}

/// The command PostgreSQL runs to fetch WAL: this binary with the options of this restore
/// that archive-get accepts (given on the command line, or locating the config and repository
/// through the environment, which PostgreSQL will not have).
fn restore_command(cfg: &Config) -> Result<String> {
    let exe = std::env::current_exe()
        .map_err(|e| Error::io(ErrorKind::FileOpen, "find", "the pgkeep executable", &e))?;
    // Console levels are left out: archive-get's output lands in the PostgreSQL log.
    let mut args: Vec<String> = cfg
        .command_line_args(Command::ArchiveGet)
        .into_iter()
        .filter(|a| !a.starts_with("--log-level-console") && !a.starts_with("--log-level-stderr"))
        .collect();
    for (opt, name) in [
        (Opt::Config, "config"),
        (Opt::ConfigPath, "config-path"),
        (Opt::ConfigIncludePath, "config-include-path"),
        (Opt::RepoPath, "repo1-path"),
    ] {
        if cfg.source(opt) == Source::Env
            && let Some(value) = cfg.str(opt)
        {
            args.push(format!("--{name}={value}"));
        }
    }
    if !args.iter().any(|a| a.starts_with("--stanza=")) {
        args.push(format!("--stanza={}", open::stanza(cfg)?));
    }
    let mut parts = vec![percent_escape(&shell_quote(&exe.display().to_string()))];
    parts.extend(args.iter().map(|a| percent_escape(&shell_quote(a))));
    // The only placeholders PostgreSQL is meant to fill in.
    parts.push("archive-get %f \"%p\"".to_string());
    Ok(parts.join(" "))
}

/// Doubles every `%` of a word pgkeep inserts: PostgreSQL replaces `%f`, `%p` and `%r` in
/// restore_command wherever they appear, so a path such as `/etc/a%for/pgkeep.conf` would reach
/// archive-get with a WAL file name inside it; `%%` is PostgreSQL's escape for a plain `%`.
fn percent_escape(word: &str) -> String {
    word.replace('%', "%%")
}

/// Quotes a word for the shell PostgreSQL runs restore_command with, when it needs it.
fn shell_quote(word: &str) -> String {
    let plain = word
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b"-_=./:,@%+".contains(&b));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', "'\\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(args: &[&str]) -> Result<Request> {
        let mut all = vec!["--no-config", "--stanza=demo", "--pg1-path=/pg"];
        all.extend_from_slice(args);
        all.push("restore");
        let args: Vec<String> = all.iter().map(|a| a.to_string()).collect();
        from_config(&crate::config::parse(&args, &[])?)
    }

    #[test]
    fn target_options_without_a_target_type_are_refused() {
        let err = request(&["--target=2026-11-24 21:00:00+00"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OptionInvalid);
        assert_eq!(
            err.message(),
            "option 'target' not valid without option 'type' in ('lsn', 'name', 'time', 'xid')"
        );
        let err = request(&["--type=immediate", "--target-exclusive"]).unwrap_err();
        assert!(
            err.message()
                .starts_with("option 'target-exclusive' not valid")
        );
        let err = request(&["--target-action=promote"]).unwrap_err();
        assert!(
            err.message()
                .starts_with("option 'target-action' not valid")
        );
        request(&["--type=immediate", "--target-action=promote"]).unwrap();
        let err = request(&["--type=xid"]).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::OptionRequired);
        assert_eq!(err.hint(), Some("for example --target=1234"));
    }

    #[test]
    fn time_targets_reach_postgresql_in_utc_and_keys_use_underscores() {
        let r = request(&[
            "--type=time",
            "--target=2026-11-24 22:00:00+01",
            "--recovery-option=primary-conninfo=host=db1",
        ])
        .unwrap();
        assert_eq!(r.recovery.target.as_deref(), Some("2026-11-24 21:00:00+00"));
        assert_eq!(r.target.unwrap().1, "2026-11-24 22:00:00+01");
        assert_eq!(
            r.recovery.options,
            [("primary_conninfo".to_string(), "host=db1".to_string())]
        );
        let r = request(&["--type=name", "--target=before_upgrade"]).unwrap();
        assert_eq!(r.recovery.target.as_deref(), Some("before_upgrade"));
        assert!(r.target.is_none());
    }

    #[test]
    fn words_are_quoted_only_when_the_shell_needs_it() {
        assert_eq!(shell_quote("--stanza=demo"), "--stanza=demo");
        assert_eq!(shell_quote("/a b/pgkeep"), "'/a b/pgkeep'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
    }

    #[test]
    fn percent_signs_pgkeep_inserts_are_escaped_and_the_placeholders_kept() {
        let r = request(&["--repo1-path=/r%p", "--lock-path=/a%f b"]).unwrap();
        let command = r.recovery.restore_command;
        assert!(command.contains(" '--lock-path=/a%%f b' "), "{command}");
        assert!(command.contains(" --repo1-path=/r%%p "), "{command}");
        assert!(command.ends_with(" archive-get %f \"%p\""), "{command}");
        assert_eq!(percent_escape("100%"), "100%%");
    }
}
