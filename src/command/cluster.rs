//! The checks of a cluster that `backup` and `check` share: the server pgkeep connects to is the
//! cluster at pg1-path, and it archives; and what archive-push recorded about its queue in the
//! spool (`archive-push.status`), which `check` reports on the database host.

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::log_warn;
use crate::pg::control::ControlData;
use crate::pg::remote::Db;

/// The server pgkeep connected to must be the cluster at pg1-path.
pub fn check_cluster(session: &mut dyn Db, pg_path: &Path, control: &ControlData) -> Result<()> {
    let data_directory = session.data_directory()?;
    // Compare real paths: a symlinked pg1-path names the same directory.
    let canonical = |p: &Path| std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
    if canonical(Path::new(&data_directory)) != canonical(pg_path) {
        return Err(Error::new(
            ErrorKind::DbMismatch,
            format!(
                "pg1-path '{}' does not match the server's data_directory '{data_directory}'",
                pg_path.display()
            ),
        )
        .with_hint("set pg1-path to the data directory of the cluster pgkeep connects to"));
    }
    let system_id = session.system_id()?;
    if system_id != control.system_id {
        return Err(Error::new(
            ErrorKind::DbMismatch,
            format!(
                "server system id {system_id} does not match pg_control system id {}",
                control.system_id
            ),
        )
        .with_hint("pg1-port or pg1-socket-path leads to another cluster than pg1-path"));
    }
    Ok(())
}

/// archive_mode must be on and archive_command set; returns archive_command. A command that
/// does not look like pgkeep's archive-push only warns: it may be a wrapper script, and the
/// WAL switch below shows whether segments really arrive.
pub fn check_archiving(session: &mut dyn Db, stanza: &str) -> Result<String> {
    let mode = session.setting("archive_mode")?.unwrap_or_default();
    if mode == "off" {
        return Err(
            Error::new(ErrorKind::ArchiveDisabled, "archive_mode must be enabled")
                .with_hint("set archive_mode = on in postgresql.conf and restart the cluster"),
        );
    }
    let command = session.setting("archive_command")?.unwrap_or_default();
    let suggested = format!("archive_command = 'pgkeep --stanza={stanza} archive-push %p'");
    if command.trim().is_empty() || command == "(disabled)" {
        return Err(Error::new(
            ErrorKind::ArchiveCommandInvalid,
            "archive_command is not set",
        )
        .with_hint(format!("set {suggested} and reload the cluster")));
    }
    if !command.contains("archive-push") {
        log_warn!(
            "archive_command '{command}' does not run archive-push: WAL may not reach the repository\n            HINT: {suggested}"
        );
    } else if !command.contains("pgkeep") {
        log_warn!("archive_command '{command}' does not mention pgkeep");
    }
    Ok(command)
}

/// The status file's name in `<spool-path>/archive/<stanza>`.
pub const STATUS_FILE: &str = "archive-push.status";

/// The counters of the status file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueStatus {
    /// Times archive-push refused a segment because the queue was full.
    pub queue_full: u64,
    /// Segments dropped with archive-push-queue-drop.
    pub dropped: u64,
    /// The last segment dropped.
    pub last_dropped: Option<String>,
}

impl QueueStatus {
    pub fn parse(text: &str) -> QueueStatus {
        let mut status = QueueStatus::default();
        for line in text.lines() {
            match line.split_once('=') {
                Some(("queue-full", n)) => status.queue_full = n.trim().parse().unwrap_or(0),
                Some(("dropped", n)) => status.dropped = n.trim().parse().unwrap_or(0),
                Some(("last-dropped", name)) => status.last_dropped = Some(name.to_string()),
                _ => {}
            }
        }
        status
    }

    pub fn render(&self) -> String {
        let mut text = format!("queue-full={}\ndropped={}\n", self.queue_full, self.dropped);
        if let Some(name) = &self.last_dropped {
            text.push_str(&format!("last-dropped={name}\n"));
        }
        text
    }
}

/// The status file in the stanza's spool directory (`spool`), when there is one.
pub fn read_queue_status(spool: &Path) -> Option<QueueStatus> {
    std::fs::read_to_string(spool.join(STATUS_FILE))
        .ok()
        .map(|text| QueueStatus::parse(&text))
}

/// Logs, at warn level, what the status file counts: `check` shows it on the database host.
pub fn warn_queue_status(spool: &Path) {
    let Some(status) = read_queue_status(spool) else {
        return;
    };
    if status.queue_full > 0 {
        log_warn!(
            "archive-push refused WAL {} time(s) because the archive queue exceeded \
             archive-push-queue-max",
            status.queue_full
        );
    }
    if status.dropped > 0 {
        log_warn!(
            "archive-push dropped {} WAL file(s), the last '{}', because the archive queue \
             exceeded archive-push-queue-max: point-in-time recovery cannot cross them",
            status.dropped,
            status.last_dropped.as_deref().unwrap_or("unknown")
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_file_round_trips() {
        let status = QueueStatus {
            queue_full: 3,
            dropped: 2,
            last_dropped: Some("000000010000000000000005".to_string()),
        };
        assert_eq!(QueueStatus::parse(&status.render()), status);
        assert_eq!(QueueStatus::parse(""), QueueStatus::default());
    }
}
