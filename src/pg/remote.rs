//! A SQL session with a cluster on another host, and the seam commands use for either kind.
//!
//! [`Db`] is what the backup asks of a session (identify the cluster, start and stop the
//! backup, switch WAL); [`DbSession`] implements it locally and [`RemoteDb`] over the remote
//! protocol, where the far side (`pgkeep backup:remote` on the database host) holds the real
//! `DbSession` and connects with its own `pg1-*` options. A remote session has a channel of its
//! own, never shared with storage streams: a non-exclusive backup lives as long as the
//! session that started it, so the far process must live from start to stop.
//!
//! Values cross as text in PostgreSQL's own spelling (LSNs `0/1A000028`, segment names), and
//! are parsed again here.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::pg::session::{BackupStart, BackupStop, DbSession};
use crate::pg::version::PgVersion;
use crate::pg::wal::{Lsn, WalSegment};
use crate::protocol::{self, Channel};

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

/// `BackupStart` on the wire.
#[derive(Serialize, Deserialize)]
struct WireStart {
    lsn: String,
    wal_segment: String,
    time: i64,
}

/// `BackupStop` on the wire.
#[derive(Serialize, Deserialize)]
struct WireStop {
    lsn: String,
    wal_segment: String,
    backup_label: String,
    tablespace_map: Option<String>,
}

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
        let version: String =
            protocol::from_value(channel.call("sql.connect", Value::Null)?, "version")?;
        let version = PgVersion::parse(&version).ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("invalid version '{version}' from {}", channel.peer()),
            )
        })?;
        Ok(RemoteDb { channel, version })
    }

    fn call<T: serde::de::DeserializeOwned>(&mut self, op: &str, args: Value) -> Result<T> {
        let value = self.channel.call(op, args)?;
        protocol::from_value(value, op)
    }
}

impl Db for RemoteDb {
    fn version(&self) -> PgVersion {
        self.version
    }
    fn data_directory(&mut self) -> Result<String> {
        self.call("sql.data_directory", Value::Null)
    }
    fn system_id(&mut self) -> Result<u64> {
        self.call("sql.system_id", Value::Null)
    }
    fn in_recovery(&mut self) -> Result<bool> {
        self.call("sql.in_recovery", Value::Null)
    }
    fn setting(&mut self, name: &str) -> Result<Option<String>> {
        self.call("sql.setting", json!({ "name": name }))
    }
    fn backup_start(&mut self, label: &str, fast: bool) -> Result<BackupStart> {
        let start: WireStart =
            self.call("sql.backup_start", json!({ "label": label, "fast": fast }))?;
        Ok(BackupStart {
            lsn: lsn(&start.lsn)?,
            wal_segment: WalSegment::parse(&start.wal_segment)?,
            time: start.time,
        })
    }
    fn backup_stop(&mut self) -> Result<BackupStop> {
        let stop: WireStop = self.call("sql.backup_stop", Value::Null)?;
        Ok(BackupStop {
            lsn: lsn(&stop.lsn)?,
            wal_segment: WalSegment::parse(&stop.wal_segment)?,
            backup_label: stop.backup_label,
            tablespace_map: stop.tablespace_map,
        })
    }
    fn switch_wal(&mut self) -> Result<Lsn> {
        let text: String = self.call("sql.switch_wal", Value::Null)?;
        lsn(&text)
    }
    fn current_wal_segment(&mut self) -> Result<WalSegment> {
        let name: String = self.call("sql.current_wal_segment", Value::Null)?;
        WalSegment::parse(&name)
    }
    fn walfile_name(&mut self, at: Lsn) -> Result<WalSegment> {
        let name: String = self.call("sql.walfile_name", json!({ "lsn": at.to_string() }))?;
        WalSegment::parse(&name)
    }
    fn databases(&mut self) -> Result<Vec<(u32, String)>> {
        self.call("sql.databases", Value::Null)
    }
    fn tablespaces(&mut self) -> Result<Vec<(u32, String, String)>> {
        self.call("sql.tablespaces", Value::Null)
    }
    fn checkpoint(&mut self) -> Result<()> {
        self.call("sql.checkpoint", Value::Null)
    }
    fn create_restore_point(&mut self, name: &str) -> Result<Lsn> {
        let text: String = self.call("sql.create_restore_point", json!({ "name": name }))?;
        lsn(&text)
    }
}

#[derive(Deserialize)]
struct NameArg {
    name: String,
}

#[derive(Deserialize)]
struct StartArgs {
    label: String,
    fast: bool,
}

#[derive(Deserialize)]
struct LsnArg {
    lsn: String,
}

/// Runs one SQL request (`sql.*`) on the far side. `session` is the far side's session,
/// opened by `sql.connect` with `connect`.
pub fn serve(
    session: &mut Option<DbSession>,
    connect: &dyn Fn() -> Result<DbSession>,
    op: &str,
    args: Value,
) -> Result<Value> {
    if op == "sql.connect" {
        let db = connect()?;
        let version = db.version().to_string();
        *session = Some(db);
        return Ok(json!(version));
    }
    let Some(db) = session.as_mut() else {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!("sql request '{op}' before sql.connect"),
        ));
    };
    match op {
        "sql.data_directory" => to(&db.data_directory()?),
        "sql.system_id" => to(&db.system_id()?),
        "sql.in_recovery" => to(&db.in_recovery()?),
        "sql.setting" => {
            let arg: NameArg = protocol::from_value(args, "arguments")?;
            to(&db.setting(&arg.name)?)
        }
        "sql.backup_start" => {
            let arg: StartArgs = protocol::from_value(args, "arguments")?;
            let start = db.backup_start(&arg.label, arg.fast)?;
            to(&WireStart {
                lsn: start.lsn.to_string(),
                wal_segment: start.wal_segment.name(),
                time: start.time,
            })
        }
        "sql.backup_stop" => {
            let stop = db.backup_stop()?;
            to(&WireStop {
                lsn: stop.lsn.to_string(),
                wal_segment: stop.wal_segment.name(),
                backup_label: stop.backup_label,
                tablespace_map: stop.tablespace_map,
            })
        }
        "sql.switch_wal" => to(&db.switch_wal()?.to_string()),
        "sql.current_wal_segment" => to(&db.current_wal_segment()?.name()),
        "sql.walfile_name" => {
            let arg: LsnArg = protocol::from_value(args, "arguments")?;
            to(&db.walfile_name(lsn(&arg.lsn)?)?.name())
        }
        "sql.databases" => to(&db.databases()?),
        "sql.tablespaces" => to(&db.tablespaces()?),
        "sql.checkpoint" => to(&db.checkpoint()?),
        "sql.create_restore_point" => {
            let arg: NameArg = protocol::from_value(args, "arguments")?;
            to(&db.create_restore_point(&arg.name)?.to_string())
        }
        other => Err(Error::new(
            ErrorKind::Protocol,
            format!("unknown sql request '{other}'"),
        )),
    }
}

fn to<T: Serialize>(value: &T) -> Result<Value> {
    protocol::to_value(value)
}
