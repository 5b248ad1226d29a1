//! The SQL requests, shared by [`RemoteDb`](super::RemoteDb) (which sends them) and the far
//! side (`serve`, which answers them with an exhaustive `match`), and [`Request`], every
//! request a `pgkeep <command>:remote` answers.
//!
//! Each variant of [`DbRequest`] wraps a struct of the same name holding the `Db` method's
//! arguments; the table at the end ([`calls!`]) says what each one answers. LSNs and WAL
//! segments cross as text in PostgreSQL's spelling and are parsed on arrival.

use serde::{Deserialize, Deserializer, Serialize};

use crate::protocol::calls;
use crate::storage::remote::StorageRequest;

/// Every request a far side answers: storage requests (any remote) and SQL requests (a pg
/// remote only). It lives here, the lowest layer that knows both kinds.
#[derive(Debug, Clone)]
pub enum Request {
    Storage(StorageRequest),
    Sql(DbRequest),
}

/// Decoded by the area its name starts with, so that a request that does not decode is
/// refused with the reason its own enum gives (an unknown name, a missing argument).
impl<'de> Deserialize<'de> for Request {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Request, D::Error> {
        let message = serde_json::Value::deserialize(deserializer)?;
        let op = message
            .get("op")
            .and_then(serde_json::Value::as_str)
            .unwrap_or_default();
        let decoded = if op.starts_with(DbRequest::AREA) {
            DbRequest::deserialize(message).map(Request::Sql)
        } else {
            StorageRequest::deserialize(message).map(Request::Storage)
        };
        decoded.map_err(serde::de::Error::custom)
    }
}

/// A SQL request, tagged on the wire as `{"op":"sql.<name>","args":{...}}`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "op", content = "args")]
pub enum DbRequest {
    #[serde(rename = "sql.connect")]
    Connect(Connect),
    #[serde(rename = "sql.data_directory")]
    DataDirectory(DataDirectory),
    #[serde(rename = "sql.system_id")]
    SystemId(SystemId),
    #[serde(rename = "sql.in_recovery")]
    InRecovery(InRecovery),
    #[serde(rename = "sql.setting")]
    Setting(Setting),
    #[serde(rename = "sql.backup_start")]
    BackupStart(BackupStart),
    #[serde(rename = "sql.backup_stop")]
    BackupStop(BackupStop),
    #[serde(rename = "sql.switch_wal")]
    SwitchWal(SwitchWal),
    #[serde(rename = "sql.current_wal_segment")]
    CurrentWalSegment(CurrentWalSegment),
    #[serde(rename = "sql.walfile_name")]
    WalfileName(WalfileName),
    #[serde(rename = "sql.databases")]
    Databases(Databases),
    #[serde(rename = "sql.tablespaces")]
    Tablespaces(Tablespaces),
    #[serde(rename = "sql.checkpoint")]
    Checkpoint(Checkpoint),
    #[serde(rename = "sql.create_restore_point")]
    CreateRestorePoint(CreateRestorePoint),
}

impl DbRequest {
    /// What every SQL request's wire name starts with (checked by a test against each one).
    pub const AREA: &'static str = "sql.";
}

/// Opens the far side's session with its own `pg1-*` options; answers the server's major
/// version. Every other SQL request is refused before it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Connect;

/// `Db::data_directory`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataDirectory;

/// `Db::system_id`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SystemId;

/// `Db::in_recovery`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InRecovery;

/// `Db::setting`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
}

/// `Db::backup_start`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupStart {
    pub label: String,
    pub fast: bool,
}

/// `session::BackupStart` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupStarted {
    pub lsn: String,
    pub wal_segment: String,
    pub time: i64,
}

/// `Db::backup_stop`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupStop;

/// `session::BackupStop` on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct BackupStopped {
    pub lsn: String,
    pub wal_segment: String,
    pub backup_label: String,
    pub tablespace_map: Option<String>,
}

/// `Db::switch_wal`: answers the LSN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SwitchWal;

/// `Db::current_wal_segment`: answers the segment's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CurrentWalSegment;

/// `Db::walfile_name`: answers the segment's name.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WalfileName {
    pub lsn: String,
}

/// `Db::databases`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Databases;

/// `Db::tablespaces`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Tablespaces;

/// `Db::checkpoint`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Checkpoint;

/// `Db::create_restore_point`: answers its LSN.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CreateRestorePoint {
    pub name: String,
}

calls!(DbRequest {
    Connect => String,
    DataDirectory => String,
    SystemId => u64,
    InRecovery => bool,
    Setting => Option<String>,
    BackupStart => BackupStarted,
    BackupStop => BackupStopped,
    SwitchWal => String,
    CurrentWalSegment => String,
    WalfileName => String,
    Databases => Vec<(u32, String)>,
    Tablespaces => Vec<(u32, String, String)>,
    Checkpoint => (),
    CreateRestorePoint => String,
});

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::protocol::name_of;

    #[test]
    fn sql_requests_keep_their_wire_names() {
        let requests: Vec<DbRequest> = vec![
            Connect.into(),
            DataDirectory.into(),
            SystemId.into(),
            InRecovery.into(),
            Setting { name: "x".into() }.into(),
            BackupStart {
                label: "x".into(),
                fast: true,
            }
            .into(),
            BackupStop.into(),
            SwitchWal.into(),
            CurrentWalSegment.into(),
            WalfileName { lsn: "0/0".into() }.into(),
            Databases.into(),
            Tablespaces.into(),
            Checkpoint.into(),
            CreateRestorePoint { name: "x".into() }.into(),
        ];
        let names: Vec<String> = requests.iter().map(name_of).collect();
        assert_eq!(
            names,
            [
                "sql.connect",
                "sql.data_directory",
                "sql.system_id",
                "sql.in_recovery",
                "sql.setting",
                "sql.backup_start",
                "sql.backup_stop",
                "sql.switch_wal",
                "sql.current_wal_segment",
                "sql.walfile_name",
                "sql.databases",
                "sql.tablespaces",
                "sql.checkpoint",
                "sql.create_restore_point",
            ]
        );
        for (request, name) in requests.iter().zip(&names) {
            assert!(name.starts_with(DbRequest::AREA), "{name}");
            let again: Request =
                serde_json::from_value(serde_json::to_value(request).unwrap()).unwrap();
            assert!(matches!(again, Request::Sql(_)), "{name}");
        }
    }

    #[test]
    fn requests_are_decoded_by_their_area() {
        let storage: Request =
            serde_json::from_value(json!({ "op": "storage.info", "args": { "path": "x" } }))
                .unwrap();
        assert!(matches!(storage, Request::Storage(StorageRequest::Info(_))));
        let sql: Request =
            serde_json::from_value(json!({ "op": "sql.setting", "args": { "name": "port" } }))
                .unwrap();
        assert!(matches!(sql, Request::Sql(DbRequest::Setting(_))));
    }

    #[test]
    fn unknown_and_malformed_requests_say_why_they_are_refused() {
        let refused = |message: serde_json::Value| {
            serde_json::from_value::<Request>(message)
                .unwrap_err()
                .to_string()
        };
        let unknown = refused(json!({ "op": "sql.drop_database", "args": null }));
        assert!(
            unknown.contains("unknown variant `sql.drop_database`")
                && unknown.contains("sql.connect"),
            "{unknown}"
        );
        let unknown = refused(json!({ "op": "shell.run", "args": null }));
        assert!(
            unknown.contains("unknown variant `shell.run`") && unknown.contains("storage.info"),
            "{unknown}"
        );
        let missing = refused(json!({ "op": "sql.setting", "args": {} }));
        assert!(missing.contains("missing field `name`"), "{missing}");
        let wrong = refused(json!({ "op": "storage.read_range",
            "args": { "path": "x", "offset": -1, "len": 4 } }));
        assert!(wrong.contains("invalid value: integer `-1`"), "{wrong}");
        let arguments = refused(json!({ "op": "sql.checkpoint", "args": { "now": true } }));
        assert!(arguments.contains("expected unit struct"), "{arguments}");
    }
}
