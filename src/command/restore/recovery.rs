//! Recovery settings written by restore, per PostgreSQL major version.
//!
//! From 12 on, settings go to postgresql.auto.conf (any recovery settings left there by a
//! previous restore are commented out) with recovery.signal or standby.signal; before 12 they
//! go to recovery.conf, with `standby_mode = 'on'` for a standby. Pure text functions: the
//! caller reads and writes the files.

use crate::pg::PgVersion;

/// The kind of recovery asked for (`--type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecoveryType {
    /// Replay to the end of the archived WAL.
    Default,
    /// Stop as soon as the backup is consistent.
    Immediate,
    Time,
    Xid,
    Name,
    Lsn,
    /// Leave recovery settings as they are.
    Preserve,
    /// A standby that follows the archive (and the primary, with primary_conninfo).
    Standby,
    /// No recovery settings: the DBA writes them.
    None,
}

impl RecoveryType {
    pub fn parse(text: &str) -> Option<RecoveryType> {
        Some(match text {
            "default" => RecoveryType::Default,
            "immediate" => RecoveryType::Immediate,
            "time" => RecoveryType::Time,
            "xid" => RecoveryType::Xid,
            "name" => RecoveryType::Name,
            "lsn" => RecoveryType::Lsn,
            "preserve" => RecoveryType::Preserve,
            "standby" => RecoveryType::Standby,
            "none" => RecoveryType::None,
            _ => return None,
        })
    }

    /// The PostgreSQL setting naming the target, for targeted types.
    fn target_setting(self) -> Option<&'static str> {
        match self {
            RecoveryType::Time => Some("recovery_target_time"),
            RecoveryType::Xid => Some("recovery_target_xid"),
            RecoveryType::Name => Some("recovery_target_name"),
            RecoveryType::Lsn => Some("recovery_target_lsn"),
            _ => None,
        }
    }

    pub fn needs_target(self) -> bool {
        self.target_setting().is_some()
    }
}

/// What restore was asked for.
#[derive(Debug, Clone)]
pub struct RecoveryRequest {
    pub recovery_type: RecoveryType,
    pub restore_command: String,
    pub target: Option<String>,
    pub target_action: Option<String>,
    pub target_exclusive: bool,
    pub target_timeline: Option<String>,
    /// `recovery-option` pairs, keys already with `_`.
    pub options: Vec<(String, String)>,
    /// `archive-mode=off`.
    pub archive_mode_off: bool,
}

/// The settings, in the order written.
pub fn settings(request: &RecoveryRequest, version: PgVersion) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    let mut set = |key: &str, value: &str| {
        out.retain(|(k, _)| k != key);
        out.push((key.to_string(), value.to_string()));
    };
    set("restore_command", &request.restore_command);
    match request.recovery_type {
        RecoveryType::Immediate => set("recovery_target", "immediate"),
        kind => {
            if let (Some(setting), Some(target)) = (kind.target_setting(), &request.target) {
                set(setting, target);
            }
        }
    }
    if request.target_exclusive && request.recovery_type.needs_target() {
        set("recovery_target_inclusive", "false");
    }
    if let Some(action) = &request.target_action
        && action != "pause"
        && (request.recovery_type.needs_target()
            || request.recovery_type == RecoveryType::Immediate)
    {
        set("recovery_target_action", action);
    }
    if let Some(timeline) = &request.target_timeline {
        set("recovery_target_timeline", timeline);
    }
    if request.recovery_type == RecoveryType::Standby && !version.uses_signal_files() {
        set("standby_mode", "on");
    }
    if request.archive_mode_off {
        set("archive_mode", "off");
    }
    for (key, value) in &request.options {
        // standby_mode is the historic spelling of a standby restore; from 12 on it is a signal
        // file, not a setting PostgreSQL accepts.
        if key == "standby_mode" && version.uses_signal_files() {
            continue;
        }
        set(key, value);
    }
    out
}

/// True when the request asks for a standby, by type or by the historic option.
pub fn is_standby(request: &RecoveryRequest) -> bool {
    request.recovery_type == RecoveryType::Standby
        || request
            .options
            .iter()
            .any(|(k, v)| k == "standby_mode" && v == "on")
}

/// Quotes a value for a PostgreSQL configuration file.
pub fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

/// postgresql.auto.conf with earlier recovery settings commented out and `settings` appended.
pub fn auto_conf(existing: &str, settings: &[(String, String)], header: &str) -> String {
    let managed = |line: &str| {
        let key = line.split('=').next().unwrap_or("").trim();
        is_recovery_setting(key) || settings.iter().any(|(k, _)| k == key)
    };
    let mut out = String::new();
    for line in existing.lines() {
        let trimmed = line.trim_start();
        if !trimmed.starts_with('#') && !trimmed.is_empty() && managed(trimmed) {
            out.push_str("# Removed by pgkeep restore # ");
        }
        out.push_str(line);
        out.push('\n');
    }
    out.push_str(&recovery_block(settings, header));
    out
}

/// recovery.conf (before PostgreSQL 12).
pub fn recovery_conf(settings: &[(String, String)], header: &str) -> String {
    recovery_block(settings, header)
}

fn recovery_block(settings: &[(String, String)], header: &str) -> String {
    let mut out = format!("\n# {header}\n");
    for (key, value) in settings {
        out.push_str(&format!("{key} = {}\n", quote(value)));
    }
    out
}

/// Settings a previous restore may have left in postgresql.auto.conf.
fn is_recovery_setting(key: &str) -> bool {
    key == "restore_command"
        || key.starts_with("recovery_target")
        || key == "recovery_end_command"
        || key == "archive_cleanup_command"
        || key == "standby_mode"
        || key == "primary_conninfo"
        || key == "primary_slot_name"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(kind: RecoveryType) -> RecoveryRequest {
        RecoveryRequest {
            recovery_type: kind,
            restore_command: "pgkeep --stanza=demo archive-get %f \"%p\"".into(),
            target: None,
            target_action: None,
            target_exclusive: false,
            target_timeline: None,
            options: vec![],
            archive_mode_off: false,
        }
    }

    #[test]
    fn default_recovery_only_sets_the_restore_command() {
        let s = settings(
            &request(RecoveryType::Default),
            PgVersion::parse("15").unwrap(),
        );
        assert_eq!(
            s,
            vec![(
                "restore_command".to_string(),
                "pgkeep --stanza=demo archive-get %f \"%p\"".to_string()
            )]
        );
    }

    #[test]
    fn time_target_with_action_and_exclusive() {
        let mut r = request(RecoveryType::Time);
        r.target = Some("2026-11-24 21:00:00+00".into());
        r.target_action = Some("promote".into());
        r.target_exclusive = true;
        let s = settings(&r, PgVersion::parse("15").unwrap());
        let keys: Vec<&str> = s.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            keys,
            [
                "restore_command",
                "recovery_target_time",
                "recovery_target_inclusive",
                "recovery_target_action"
            ]
        );
    }

    #[test]
    fn standby_before_12_uses_standby_mode() {
        let s = settings(
            &request(RecoveryType::Standby),
            PgVersion::parse("11").unwrap(),
        );
        assert!(s.contains(&("standby_mode".to_string(), "on".to_string())));
        let s = settings(
            &request(RecoveryType::Standby),
            PgVersion::parse("15").unwrap(),
        );
        assert!(!s.iter().any(|(k, _)| k == "standby_mode"));
    }

    #[test]
    fn earlier_recovery_settings_are_commented_out() {
        let existing = "# Do not edit\nwork_mem = '8MB'\nrestore_command = 'old'\nrecovery_target_time = 'x'\n";
        let s = vec![("restore_command".to_string(), "new 'q'".to_string())];
        let text = auto_conf(existing, &s, "recovery settings generated by pgkeep");
        assert!(text.contains("work_mem = '8MB'\n"));
        assert!(text.contains("# Removed by pgkeep restore # restore_command = 'old'"));
        assert!(text.contains("# Removed by pgkeep restore # recovery_target_time = 'x'"));
        assert!(text.ends_with("restore_command = 'new ''q'''\n"));
    }
}
