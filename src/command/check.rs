//! check: confirm that a stanza works end to end, before a backup depends on it.
//!
//! In order: stop files → the cluster (pg1-path is the server's data_directory, the system
//! identifier is pg_control's) → its archiving settings (archive_mode on, archive_command set)
//! → the repository (the stanza exists and records this cluster, as stanza-create checks) →
//! a WAL switch, then a wait of up to `archive-timeout` for the switched segment to reach the
//! archive. Each misconfiguration fails with its own message and hint. The command writes
//! nothing to the repository itself: the segment arrives through PostgreSQL's archive_command,
//! which is the point of the check. On a standby the archive part is skipped, since only the
//! primary can switch WAL.

use std::time::{Duration, Instant};

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::lock;
use crate::log_info;
use crate::repo::archive::{self, ArchivedWal};
use crate::repo::{ArchiveInfo, BackupInfo, stanza};
use crate::storage::Storage;

use super::{cluster, open};

/// The restore point created before the switch, named as pgBackRest names its own.
pub const RESTORE_POINT: &str = "pgkeep Archive Check";

pub fn run(cfg: &Config) -> Result<i32> {
    let stanza = open::stanza(cfg)?;
    lock::check_stop(&open::lock_path(cfg), Some(stanza))?;
    cluster::warn_queue_status(&open::spool_path(cfg, stanza));
    let pg_path = open::pg_path(cfg)?;
    let pg = open::pg_storage(cfg)?;
    // pgBackRest's check accepts a primary or a standby, and when no pg1-path holds a cluster it
    // ends with a ConfigError ('no database found'); the commands that need the primary end with
    // the DbConnectError open::pg_control gives.
    // A cluster that does not answer is the same case for pgBackRest's check: 'no database
    // found'.
    let control = open::pg_control(&pg).map_err(no_database_found)?;
    let mut session = open::db_session(cfg).map_err(no_database_found)?;
    cluster::check_cluster(session.as_mut(), &pg_path, &control)?;
    let standby = session.in_recovery()?;
    let archive_command = if standby {
        None
    } else {
        Some(cluster::check_archiving(session.as_mut(), stanza)?)
    };

    let role = if standby { "standby" } else { "primary" };
    log_info!("check repo1 configuration ({role})");
    let repo = open::repo(cfg)?;
    let archive_info = ArchiveInfo::load_required(&repo, stanza)?;
    let backup_info = BackupInfo::load_required(&repo, stanza)?;
    stanza::check_matches(stanza, "archive.info", archive_info.current()?, &control)?;
    stanza::check_matches(stanza, "backup.info", backup_info.current()?, &control)?;

    let Some(archive_command) = archive_command else {
        log_info!("the cluster is a standby: the WAL archive check needs the primary, skipped");
        drop(session);
        return Ok(0);
    };
    log_info!("check repo1 archive for WAL ({role})");
    // A restore point is WAL activity: without it an idle cluster would not switch at all.
    session.create_restore_point(RESTORE_POINT)?;
    let switched = session.switch_wal()?;
    let segment = session.walfile_name(switched)?.name();
    drop(session);
    let timeout = Duration::from_millis(cfg.time_ms(Opt::ArchiveTimeout).unwrap_or(60_000));
    let archive_id = archive_info.current()?.archive_id();
    let wal = wait_for_segment(&repo, stanza, &archive_id, &segment, timeout).map_err(|err| {
        if err.kind() != ErrorKind::ArchiveTimeout {
            return err;
        }
        let push = crate::error::command_hint(&format!("--stanza={stanza} archive-push %p"));
        let start = crate::error::command_hint(&format!("--stanza={stanza} start"));
        err.with_hint(format!(
            "check that archive_command '{archive_command}' runs '{push}' and succeeds (see the PostgreSQL log); run '{start}' if the stanza was stopped; raise archive-timeout if the archive is slow"
        ))
    })?;
    log_info!(
        "WAL segment {segment} successfully archived to '{}' on repo1",
        repo.describe(&wal.path)
    );
    Ok(0)
}

/// A DbConnectError becomes the ConfigError pgBackRest's check ends with when it finds no
/// cluster, with pgkeep's message and hint (which say what was tried).
fn no_database_found(err: Error) -> Error {
    if err.kind() != ErrorKind::DbConnect {
        return err;
    }
    let config = Error::new(ErrorKind::Config, err.message());
    match err.hint() {
        Some(hint) => config.with_hint(hint),
        None => config,
    }
}

/// Waits until `segment` is in the archive; the stored file once it is.
pub fn wait_for_segment(
    repo: &dyn Storage,
    stanza: &str,
    archive_id: &str,
    segment: &str,
    timeout: Duration,
) -> Result<ArchivedWal> {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(wal) = archive::find_wal(repo, stanza, archive_id, segment)?
            .into_iter()
            .next()
        {
            return Ok(wal);
        }
        if Instant::now() >= deadline {
            return Err(Error::new(
                ErrorKind::ArchiveTimeout,
                format!(
                    "WAL segment {segment} was not archived before the {}ms timeout",
                    timeout.as_millis()
                ),
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}
