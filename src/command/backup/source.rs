//! Where a backup's consistency comes from: a running cluster (non-exclusive backup over one
//! held session) or a stopped one (`--no-online`, consistent as it lies on disk).

use std::path::Path;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::control::ControlData;
use crate::pg::remote::Db;
use crate::pg::session::BackupStop;
use crate::pg::wal::{Lsn, WalSegment};
use crate::repo::manifest::DatabaseEntry;
use crate::storage::Storage;
use crate::{log_info, log_warn};

use crate::command::cluster;

/// Where the backup starts.
#[derive(Debug, Clone, Copy)]
pub struct Start {
    pub lsn: Lsn,
    pub wal_segment: WalSegment,
    /// Unix seconds.
    pub time: i64,
}

pub enum Source {
    Online(Box<dyn Db>),
    Offline,
}

impl Source {
    /// A running cluster: checks that the server is the one at `pg_path` and, with
    /// `archive_check`, that it archives WAL (the same checks as the check command).
    pub fn online(
        mut session: Box<dyn Db>,
        pg_path: &Path,
        control: &ControlData,
        archive_check: Option<&str>,
    ) -> Result<Source> {
        cluster::check_cluster(session.as_mut(), pg_path, control)?;
        if let Some(stanza) = archive_check {
            cluster::check_archiving(session.as_mut(), stanza)?;
        }
        Ok(Source::Online(session))
    }

    /// A stopped cluster: refused while postmaster.pid exists, unless forced.
    pub fn offline(pg: &dyn Storage, force: bool) -> Result<Source> {
        let pid_file = pg.describe("postmaster.pid");
        if pg.exists("postmaster.pid")? {
            if !force {
                return Err(Error::new(
                    ErrorKind::PgRunning,
                    format!("--no-online backup refused: '{}' exists, so PostgreSQL looks to be running", pid_file),
                )
                .with_hint("stop the cluster for an offline backup (remove postmaster.pid if it is stale), or use --force"));
            }
            log_warn!(
                "'{}' exists: backing up offline anyway (--force); the backup may be inconsistent",
                pid_file
            );
        }
        Ok(Source::Offline)
    }

    /// Starts the backup: `pg_backup_start`, or the last checkpoint of a stopped cluster.
    pub fn start(&mut self, label: &str, start_fast: bool, control: &ControlData) -> Result<Start> {
        match self {
            Source::Online(session) => {
                if start_fast {
                    log_info!(
                        "execute non-exclusive backup start: backup begins after the requested immediate checkpoint completes"
                    );
                } else {
                    log_info!(
                        "execute non-exclusive backup start: backup begins after the next regular checkpoint completes"
                    );
                }
                let start = session.backup_start(label, start_fast)?;
                log_info!(
                    "backup start archive = {}, lsn = {}",
                    start.wal_segment.name(),
                    start.lsn
                );
                Ok(Start {
                    lsn: start.lsn,
                    wal_segment: start.wal_segment,
                    time: start.time,
                })
            }
            Source::Offline => {
                let segment = WalSegment::from_lsn(
                    control.timeline,
                    control.checkpoint_lsn,
                    control.wal_segment_size,
                );
                log_info!(
                    "offline backup of a stopped cluster: checkpoint lsn = {}",
                    control.checkpoint_lsn
                );
                Ok(Start {
                    lsn: control.checkpoint_lsn,
                    wal_segment: segment,
                    time: jiff::Timestamp::now().as_second(),
                })
            }
        }
    }

    pub fn databases(&mut self) -> Result<Vec<DatabaseEntry>> {
        match self {
            Source::Online(session) => Ok(session
                .databases()?
                .into_iter()
                .map(|(oid, name)| DatabaseEntry { name, oid })
                .collect()),
            Source::Offline => Ok(Vec::new()),
        }
    }

    /// Ends the backup; `None` for an offline backup, which has nothing to stop.
    pub fn stop(&mut self, _control: &ControlData) -> Result<Option<BackupStop>> {
        match self {
            Source::Online(session) => {
                log_info!(
                    "execute non-exclusive backup stop and wait for all WAL segments to archive"
                );
                let stop = session.backup_stop()?;
                log_info!(
                    "backup stop archive = {}, lsn = {}",
                    stop.wal_segment.name(),
                    stop.lsn
                );
                Ok(Some(stop))
            }
            Source::Offline => Ok(None),
        }
    }
}
