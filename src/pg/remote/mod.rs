//! A SQL session with a cluster on another host, and the seam commands use for either kind.
//!
//! [`Db`] is what the backup asks of a session (identify the cluster, start and stop the
//! backup, switch WAL); [`DbSession`] implements it locally and [`RemoteDb`] over the remote
//! protocol, where the far side (`pgkeep backup:remote` on the database host) holds the real
//! `DbSession` and connects with its own `pg1-*` options. A remote session has a channel of its
//! own, never shared with storage streams: a non-exclusive backup lives as long as the
//! session that started it, so the far process must live from start to stop.
//!
//! The requests are [`DbRequest`]s (`request`), the same enum the far side matches (`serve`).
//! Values cross as text in PostgreSQL's own spelling (LSNs `0/1A000028`, segment names), and
//! are parsed again here.

pub mod request;
mod serve;

use crate::error::{Error, ErrorKind, Result};
use crate::pg::session::{BackupStart, BackupStop, DbSession};
use crate::pg::version::PgVersion;
use crate::pg::wal::{Lsn, WalSegment};
use crate::protocol::Channel;

use request::{
    Checkpoint, Connect, CreateRestorePoint, CurrentWalSegment, DataDirectory, Databases,
    InRecovery, Setting, SwitchWal, SystemId, Tablespaces, WalfileName,
};
pub use request::{DbRequest, Request};
pub use serve::serve;

/// A session with a cluster, wherever the cluster runs.
pub trait Db: Send {
    /// The server's major version.
    fn version(&self) -> PgVersion;
    fn data_directory(&mut self) -> Result<String>;
    fn system_id(&mut self) -> Result<u64>;
    fn in_recovery(&mut self) -> Result<bool>;
    fn setting(&mut self, name: &str) -> Result<Option<String>>;
    fn backup_start(&mut self, label: &str, fast: bool) -> Result<BackupStart>;
    fn backup_stop(&mut self) -> Result<BackupStop>;
    fn switch_wal(&mut self) -> Result<Lsn>;
    fn current_wal_segment(&mut self) -> Result<WalSegment>;
    fn walfile_name(&mut self, lsn: Lsn) -> Result<WalSegment>;
    fn databases(&mut self) -> Result<Vec<(u32, String)>>;
    fn tablespaces(&mut self) -> Result<Vec<(u32, String, String)>>;
    fn checkpoint(&mut self) -> Result<()>;
    /// `pg_create_restore_point(name)`; returns its LSN.
    fn create_restore_point(&mut self, name: &str) -> Result<Lsn>;
}

impl Db for DbSession {
    fn version(&self) -> PgVersion {
        DbSession::version(self)
    }
    fn data_directory(&mut self) -> Result<String> {
        DbSession::data_directory(self)
    }
    fn system_id(&mut self) -> Result<u64> {
        DbSession::system_id(self)
    }
    fn in_recovery(&mut self) -> Result<bool> {
        DbSession::in_recovery(self)
    }
    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        DbSession::setting(self, name)
    }
    fn backup_start(&mut self, label: &str, fast: bool) -> Result<BackupStart> {
        DbSession::backup_start(self, label, fast)
    }
    fn backup_stop(&mut self) -> Result<BackupStop> {
        DbSession::backup_stop(self)
    }
    fn switch_wal(&mut self) -> Result<Lsn> {
        DbSession::switch_wal(self)
    }
    fn current_wal_segment(&mut self) -> Result<WalSegment> {
        DbSession::current_wal_segment(self)
    }
    fn walfile_name(&mut self, lsn: Lsn) -> Result<WalSegment> {
        DbSession::walfile_name(self, lsn)
    }
    fn databases(&mut self) -> Result<Vec<(u32, String)>> {
        DbSession::databases(self)
    }
    fn tablespaces(&mut self) -> Result<Vec<(u32, String, String)>> {
        DbSession::tablespaces(self)
    }
    fn checkpoint(&mut self) -> Result<()> {
        DbSession::checkpoint(self)
    }
    fn create_restore_point(&mut self, name: &str) -> Result<Lsn> {
        DbSession::create_restore_point(self, name)
    }
}

/// An LSN as it crosses the wire.
fn lsn(text: &str) -> Result<Lsn> {
    text.parse()
}

/// A session held by the far side of a channel.
pub struct RemoteDb {
    channel: Channel,
    version: PgVersion,
}

impl RemoteDb {
    /// Asks the far side to connect to its cluster (with its own `pg1-*` options).
    pub fn connect(mut channel: Channel) -> Result<RemoteDb> {
        let version = channel.call(Connect)?;
        let version = PgVersion::parse(&version).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("invalid version '{version}' from {}", channel.peer()),
            )
        })?;
        Ok(RemoteDb { channel, version })
    }
}

impl Db for RemoteDb {
    fn version(&self) -> PgVersion {
        self.version
    }
    fn data_directory(&mut self) -> Result<String> {
        self.channel.call(DataDirectory)
    }
    fn system_id(&mut self) -> Result<u64> {
        self.channel.call(SystemId)
    }
    fn in_recovery(&mut self) -> Result<bool> {
        self.channel.call(InRecovery)
    }
    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        self.channel.call(Setting {
            name: name.to_string(),
        })
    }
    fn backup_start(&mut self, label: &str, fast: bool) -> Result<BackupStart> {
        let start = self.channel.call(request::BackupStart {
            label: label.to_string(),
            fast,
        })?;
        Ok(BackupStart {
            lsn: lsn(&start.lsn)?,
            wal_segment: WalSegment::parse(&start.wal_segment)?,
            time: start.time,
        })
    }
    fn backup_stop(&mut self) -> Result<BackupStop> {
        let stop = self.channel.call(request::BackupStop)?;
        Ok(BackupStop {
            lsn: lsn(&stop.lsn)?,
            wal_segment: WalSegment::parse(&stop.wal_segment)?,
            backup_label: stop.backup_label,
            tablespace_map: stop.tablespace_map,
        })
    }
    fn switch_wal(&mut self) -> Result<Lsn> {
        let text = self.channel.call(SwitchWal)?;
        lsn(&text)
    }
    fn current_wal_segment(&mut self) -> Result<WalSegment> {
        let name = self.channel.call(CurrentWalSegment)?;
        WalSegment::parse(&name)
    }
    fn walfile_name(&mut self, at: Lsn) -> Result<WalSegment> {
        let name = self.channel.call(WalfileName {
            lsn: at.to_string(),
        })?;
        WalSegment::parse(&name)
    }
    fn databases(&mut self) -> Result<Vec<(u32, String)>> {
        self.channel.call(Databases)
    }
    fn tablespaces(&mut self) -> Result<Vec<(u32, String, String)>> {
        self.channel.call(Tablespaces)
    }
    fn checkpoint(&mut self) -> Result<()> {
        self.channel.call(Checkpoint)
    }
    fn create_restore_point(&mut self, name: &str) -> Result<Lsn> {
        let text = self.channel.call(CreateRestorePoint {
            name: name.to_string(),
        })?;
        lsn(&text)
    }
}
