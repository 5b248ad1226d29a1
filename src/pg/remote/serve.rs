//! The far side of a remote SQL session: SQL requests run on the far side's own session.
//!
//! The session is opened by [`Connect`] with the far side's own `pg1-*` options, never with
//! anything the client sends; every other request is refused until then.

use crate::error::{Error, ErrorKind, Result};
use crate::pg::session::DbSession;
use crate::protocol::server::answer;
use crate::protocol::{self, Call, to_value};

use super::lsn;
use super::request::{
    BackupStart, BackupStarted, BackupStop, BackupStopped, Checkpoint, Connect, CreateRestorePoint,
    CurrentWalSegment, DataDirectory, Databases, DbRequest, InRecovery, Setting, SwitchWal,
    SystemId, Tablespaces, WalfileName,
};

/// Runs one SQL request on the far side. `session` is the far side's session, opened by
/// [`Connect`] with `connect`.
pub fn serve(
    session: &mut Option<DbSession>,
    connect: &dyn Fn() -> Result<DbSession>,
    request: DbRequest,
) -> Result<serde_json::Value> {
    match request {
        DbRequest::Connect(call) => answer(call, |Connect| {
            let db = connect()?;
            let version = db.version().to_string();
            *session = Some(db);
            Ok(version)
        }),
        DbRequest::DataDirectory(call) => {
            on_session(session, call, |db, DataDirectory| db.data_directory())
        }
        DbRequest::SystemId(call) => on_session(session, call, |db, SystemId| db.system_id()),
        DbRequest::InRecovery(call) => on_session(session, call, |db, InRecovery| db.in_recovery()),
        DbRequest::Setting(call) => {
            on_session(session, call, |db, Setting { name }| db.setting(&name))
        }
        DbRequest::BackupStart(call) => {
            on_session(session, call, |db, BackupStart { label, fast }| {
                let start = db.backup_start(&label, fast)?;
                Ok(BackupStarted {
                    lsn: start.lsn.to_string(),
                    wal_segment: start.wal_segment.name(),
                    time: start.time,
                })
            })
        }
        DbRequest::BackupStop(call) => on_session(session, call, |db, BackupStop| {
            let stop = db.backup_stop()?;
            Ok(BackupStopped {
                lsn: stop.lsn.to_string(),
                wal_segment: stop.wal_segment.name(),
                backup_label: stop.backup_label,
                tablespace_map: stop.tablespace_map,
            })
        }),
        DbRequest::SwitchWal(call) => on_session(session, call, |db, SwitchWal| {
            Ok(db.switch_wal()?.to_string())
        }),
        DbRequest::CurrentWalSegment(call) => on_session(session, call, |db, CurrentWalSegment| {
            Ok(db.current_wal_segment()?.name())
        }),
        DbRequest::WalfileName(call) => on_session(session, call, |db, WalfileName { lsn: at }| {
            Ok(db.walfile_name(lsn(&at)?)?.name())
        }),
        DbRequest::Databases(call) => on_session(session, call, |db, Databases| db.databases()),
        DbRequest::Tablespaces(call) => {
            on_session(session, call, |db, Tablespaces| db.tablespaces())
        }
        DbRequest::Checkpoint(call) => on_session(session, call, |db, Checkpoint| db.checkpoint()),
        DbRequest::CreateRestorePoint(call) => {
            on_session(session, call, |db, CreateRestorePoint { name }| {
                Ok(db.create_restore_point(&name)?.to_string())
            })
        }
    }
}

/// Answers `call` with `run` on the open session; refused before [`Connect`].
fn on_session<C: Call>(
    session: &mut Option<DbSession>,
    call: C,
    run: impl FnOnce(&mut DbSession, C) -> Result<C::Reply>,
) -> Result<serde_json::Value> {
    let Some(db) = session.as_mut() else {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "sql request '{}' before {}",
                protocol::name_of(&C::Request::from(call)),
                protocol::name_of(&DbRequest::from(Connect))
            ),
        ));
    };
    to_value(&run(db, call)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sql_requests_before_connect_are_refused() {
        let mut session = None;
        let connect = || -> Result<DbSession> { panic!("not asked to connect") };
        let err = serve(&mut session, &connect, DataDirectory.into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::Protocol);
        assert_eq!(
            err.message(),
            "sql request 'sql.data_directory' before sql.connect"
        );
    }

    #[test]
    fn a_failed_connect_leaves_no_session() {
        let mut session = None;
        let connect =
            || -> Result<DbSession> { Err(Error::new(ErrorKind::DbConnect, "unable to connect")) };
        let err = serve(&mut session, &connect, Connect.into()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::DbConnect);
        assert!(session.is_none());
    }
}
