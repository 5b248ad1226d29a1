//! A held SQL session with a PostgreSQL server.
//!
//! A backup needs one session from start to stop: a non-exclusive backup belongs to the
//! session that started it and is aborted if that session ends. [`DbSession`] wraps a
//! synchronous `postgres::Client` (no TLS; Unix socket, or TCP when a host is given) and
//! offers the few queries pgkeep needs, typed. The SQL text and its version differences are in
//! `pg::sql`. The `postgres` crate runs a private Tokio runtime per client, so a session must
//! not be used from inside another Tokio runtime; pgkeep has none.

use std::path::PathBuf;

use postgres::types::ToSql;
use postgres::{Client, NoTls, Row};

use crate::error::{Error, ErrorKind, Result, io_cause};
use crate::pg::pgpass::{self, PgpassKey};
use crate::pg::sql;
use crate::pg::version::PgVersion;
use crate::pg::wal::{Lsn, WalSegment};

/// The socket directory used when neither a socket nor a host is given (Debian's libpq
/// default).
pub const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Where and as whom to connect.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// The directory holding the server's Unix socket; preferred over `host`.
    pub socket_path: Option<PathBuf>,
    /// A host name or address for TCP, used when `socket_path` is `None`.
    pub host: Option<String>,
    pub port: u16,
    /// The role; `None` means the operating system user name, as libpq does.
    pub user: Option<String>,
    pub database: String,
    /// Shown in `pg_stat_activity`.
    pub application_name: String,
    /// `statement_timeout` for every query of the session (`db-timeout`), and the connect
    /// timeout; `None` leaves the server's setting.
    pub statement_timeout_ms: Option<u64>,
    /// The `.pgpass` file to take a password from (the command layer finds it as libpq does,
    /// in `command/open.rs`); `None` means no password file.
    pub pgpass_file: Option<PathBuf>,
}

impl Default for ConnectOptions {
    fn default() -> ConnectOptions {
        ConnectOptions {
            socket_path: None,
            host: None,
            port: 5432,
            user: None,
            database: "postgres".to_string(),
            application_name: "pgkeep".to_string(),
            statement_timeout_ms: None,
            pgpass_file: None,
        }
    }
}

/// What `backup_start` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStart {
    /// The backup's start LSN (the redo point of its checkpoint).
    pub lsn: Lsn,
    /// The WAL segment holding the start LSN, on the server's current timeline.
    pub wal_segment: WalSegment,
    /// The server's clock when the start returned, in Unix seconds.
    pub time: i64,
}

/// What `backup_stop` returns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupStop {
    /// The backup's stop LSN: WAL up to here is needed to make the backup consistent.
    pub lsn: Lsn,
    /// The WAL segment holding the last byte before the stop LSN.
    pub wal_segment: WalSegment,
    /// The content to store as `backup_label`.
    pub backup_label: String,
    /// The content to store as `tablespace_map`; `None` when there are no tablespaces.
    pub tablespace_map: Option<String>,
}

/// A connected session.
pub struct DbSession {
    client: Client,
    version: PgVersion,
}

/// The cause of a failure in the message grammar: "ERROR: <message>" for server errors, else
/// the client's description followed by its causes ("error connecting to server: [111]
/// Connection refused").
fn cause(err: &postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        return format!("{}: {}", db.severity(), db.message());
    }
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(inner) = source {
        let shown = match inner.downcast_ref::<std::io::Error>() {
            Some(io) => io_cause(io),
            None => inner.to_string(),
        };
        // The client's own text sometimes already includes its cause.
        if !text.contains(&shown) {
            text = format!("{text}: {shown}");
        }
        source = inner.source();
    }
    text
}

/// The error for a failed connection. A socket that is not there or refuses is a server that
/// is not running (or listens elsewhere): name the socket file tried, as libpq does, and hint at
/// that, the commonest case by far (a stopped cluster, a wrong pg1-port or pg1-socket-path).
fn connect_error(target: &str, host: &str, port: u16, err: &postgres::Error) -> Error {
    let io_kind = std::error::Error::source(err)
        .and_then(|inner| inner.downcast_ref::<std::io::Error>())
        .map(std::io::Error::kind);
    let not_there = matches!(
        io_kind,
        Some(std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused)
    );
    if host.starts_with('/') && not_there {
        let reason = match io_kind {
            Some(std::io::ErrorKind::NotFound) => "No such file or directory",
            _ => "Connection refused",
        };
        return Error::new(
            ErrorKind::DbConnect,
            format!(
                "unable to connect to '{target}': connection to server on socket \"{host}/.s.PGSQL.{port}\" failed: {reason}"
            ),
        )
        .with_hint(
            "is the server running locally and accepting connections on that socket? (check pg1-port and pg1-socket-path)",
        );
    }
    if not_there {
        return Error::new(
            ErrorKind::DbConnect,
            format!(
                "unable to connect to '{target}': connection to server at \"{host}\", port {port} failed: {}",
                cause(err)
            ),
        )
        .with_hint("is the server running on that host and accepting TCP/IP connections?");
    }
    Error::new(
        ErrorKind::DbConnect,
        format!("unable to connect to '{target}': {}", cause(err)),
    )
}

fn query_error(query: &str, err: &postgres::Error) -> Error {
    let error = Error::new(
        ErrorKind::DbQuery,
        format!("unable to execute query '{query}': {}", cause(err)),
    );
    match err.as_db_error().and_then(|db| db.hint()) {
        Some(hint) => error.with_hint(hint),
        None => error,
    }
}

/// Parses a text column holding an LSN or a WAL segment name, as a DbQuery error if it fails.
fn parse_column<T>(query: &str, text: &str, parse: impl Fn(&str) -> Result<T>) -> Result<T> {
    parse(text).map_err(|err| {
        Error::new(
            ErrorKind::DbQuery,
            format!("unexpected result of query '{query}': {}", err.message()),
        )
    })
}

impl DbSession {
    /// Connects and reads the server's version. The password, if any, comes
    /// from the `.pgpass` file libpq would read.
    pub fn connect(options: &ConnectOptions) -> Result<DbSession> {
        let user = match &options.user {
            Some(user) => user.clone(),
            None => os_user_name()?,
        };
        let mut config = postgres::Config::new();
        config
            .port(options.port)
            .user(&user)
            .dbname(&options.database)
            .application_name(&options.application_name);
        if let Some(ms) = options.statement_timeout_ms {
            config.connect_timeout(std::time::Duration::from_millis(ms));
        }
        let host = match (&options.socket_path, &options.host) {
            (Some(socket), _) => {
                config.host_path(socket);
                socket.display().to_string()
            }
            (None, Some(host)) => {
                config.host(host);
                host.clone()
            }
            (None, None) => {
                config.host_path(DEFAULT_SOCKET_DIR);
                DEFAULT_SOCKET_DIR.to_string()
            }
        };
        let key = PgpassKey {
            host: &host,
            port: options.port,
            database: &options.database,
            user: &user,
        };
        if let Some(password) = options
            .pgpass_file
            .as_deref()
            .and_then(|path| pgpass::lookup(path, &key))
        {
            config.password(password);
        }
        // Quoted as libpq (and so pgBackRest) shows a connection string.
        let target = format!(
            "dbname='{}' port={} host='{host}'",
            options.database, options.port
        );
        let mut client = config
            .connect(NoTls)
            .map_err(|err| connect_error(&target, &host, options.port, &err))?;
        client
            .batch_execute(sql::SESSION_SETUP)
            .map_err(|err| query_error(sql::SESSION_SETUP, &err))?;
        if let Some(ms) = options.statement_timeout_ms {
            let set = format!("set statement_timeout = {ms}");
            client
                .batch_execute(&set)
                .map_err(|err| query_error(&set, &err))?;
        }
        let row = client
            .query_one(sql::IDENTIFY, &[])
            .map_err(|err| query_error(sql::IDENTIFY, &err))?;
        let num: i32 = get(&row, 0, sql::IDENTIFY)?;
        Ok(DbSession {
            client,
            version: PgVersion::from_server_version_num(num.unsigned_abs()),
        })
    }

    /// The server's major version.
    pub fn version(&self) -> PgVersion {
        self.version
    }

    /// The server's `data_directory` setting.
    pub fn data_directory(&mut self) -> Result<String> {
        let row = self.query_one(sql::DATA_DIRECTORY, &[])?;
        get(&row, 0, sql::DATA_DIRECTORY)
    }

    fn query_one(&mut self, query: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        self.client
            .query_one(query, params)
            .map_err(|err| query_error(query, &err))
    }

    /// The cluster's system identifier.
    pub fn system_id(&mut self) -> Result<u64> {
        let row = self.query_one(sql::SYSTEM_ID, &[])?;
        let id: i64 = get(&row, 0, sql::SYSTEM_ID)?;
        // PostgreSQL shows the unsigned identifier through a signed bigint: same bits.
        Ok(id as u64)
    }

    /// Whether the server is in recovery (a standby).
    pub fn in_recovery(&mut self) -> Result<bool> {
        let row = self.query_one(sql::IN_RECOVERY, &[])?;
        get(&row, 0, sql::IN_RECOVERY)
    }

    /// A setting's current value; `None` when the server has no such setting.
    pub fn setting(&mut self, name: &str) -> Result<Option<String>> {
        let row = self.query_one(sql::SETTING, &[&name])?;
        get(&row, 0, sql::SETTING)
    }

    /// Starts a non-exclusive backup labelled `label`; `fast` asks for an immediate
    /// checkpoint instead of a spread one.
    pub fn backup_start(&mut self, label: &str, fast: bool) -> Result<BackupStart> {
        let query = sql::backup_start(self.version);
        let row = self.query_one(&query, &[&label, &fast])?;
        let lsn: String = get(&row, 0, &query)?;
        let segment: String = get(&row, 1, &query)?;
        Ok(BackupStart {
            lsn: parse_column(&query, &lsn, str::parse)?,
            wal_segment: parse_column(&query, &segment, WalSegment::parse)?,
            time: get(&row, 2, &query)?,
        })
    }

    /// Stops the backup this session started, without waiting for WAL to be archived.
    pub fn backup_stop(&mut self) -> Result<BackupStop> {
        let query = sql::backup_stop(self.version);
        let row = self.query_one(&query, &[])?;
        let lsn: String = get(&row, 0, &query)?;
        let segment: String = get(&row, 1, &query)?;
        let map: Option<String> = get(&row, 3, &query)?;
        Ok(BackupStop {
            lsn: parse_column(&query, &lsn, str::parse)?,
            wal_segment: parse_column(&query, &segment, WalSegment::parse)?,
            backup_label: get(&row, 2, &query)?,
            tablespace_map: map.filter(|map| !map.is_empty()),
        })
    }

    /// Forces a switch to a new WAL segment, so the current one can be archived. Returns the
    /// end of the switch record; nothing is switched when no WAL was written since the last
    /// switch.
    pub fn switch_wal(&mut self) -> Result<Lsn> {
        let query = sql::switch_wal(self.version);
        let row = self.query_one(&query, &[])?;
        let lsn: String = get(&row, 0, &query)?;
        parse_column(&query, &lsn, str::parse)
    }

    /// Writes a named restore point into WAL and returns its LSN. Besides marking a recovery
    /// target, it guarantees WAL activity, so a following `switch_wal` does switch.
    pub fn create_restore_point(&mut self, name: &str) -> Result<Lsn> {
        let row = self.query_one(sql::CREATE_RESTORE_POINT, &[&name])?;
        let lsn: String = get(&row, 0, sql::CREATE_RESTORE_POINT)?;
        parse_column(sql::CREATE_RESTORE_POINT, &lsn, str::parse)
    }

    /// The segment WAL is being inserted into now.
    pub fn current_wal_segment(&mut self) -> Result<WalSegment> {
        let query = sql::current_wal_segment(self.version);
        let row = self.query_one(&query, &[])?;
        let name: String = get(&row, 0, &query)?;
        parse_column(&query, &name, WalSegment::parse)
    }

    /// The segment holding the byte before `lsn` on the current timeline, as PostgreSQL's
    /// `pg_walfile_name` names it: for the LSN `switch_wal` returns, the segment just closed.
    pub fn walfile_name(&mut self, lsn: Lsn) -> Result<WalSegment> {
        let query = sql::walfile_name(self.version);
        let row = self.query_one(&query, &[&lsn.to_string()])?;
        let name: String = get(&row, 0, &query)?;
        parse_column(&query, &name, WalSegment::parse)
    }

    /// Every database: (oid, name).
    pub fn databases(&mut self) -> Result<Vec<(u32, String)>> {
        let rows = self
            .client
            .query(sql::DATABASES, &[])
            .map_err(|err| query_error(sql::DATABASES, &err))?;
        rows.iter()
            .map(|row| Ok((get(row, 0, sql::DATABASES)?, get(row, 1, sql::DATABASES)?)))
            .collect()
    }

    /// Every tablespace but pg_default and pg_global: (oid, name, location).
    pub fn tablespaces(&mut self) -> Result<Vec<(u32, String, String)>> {
        let rows = self
            .client
            .query(sql::TABLESPACES, &[])
            .map_err(|err| query_error(sql::TABLESPACES, &err))?;
        rows.iter()
            .map(|row| {
                Ok((
                    get(row, 0, sql::TABLESPACES)?,
                    get(row, 1, sql::TABLESPACES)?,
                    get(row, 2, sql::TABLESPACES)?,
                ))
            })
            .collect()
    }

    /// Runs a checkpoint.
    pub fn checkpoint(&mut self) -> Result<()> {
        self.client
            .batch_execute(sql::CHECKPOINT)
            .map_err(|err| query_error(sql::CHECKPOINT, &err))
    }

    /// Ends the session, reporting a failure to close cleanly.
    pub fn close(self) -> Result<()> {
        self.client.close().map_err(|err| {
            Error::new(
                ErrorKind::DbConnect,
                format!("unable to close the connection: {}", cause(&err)),
            )
        })
    }
}

/// A typed column, as a DbQuery error naming the query when the type is not the expected one.
fn get<'a, T: postgres::types::FromSql<'a>>(row: &'a Row, index: usize, query: &str) -> Result<T> {
    row.try_get(index).map_err(|err| query_error(query, &err))
}

/// The name of the effective operating system user, libpq's default role.
fn os_user_name() -> Result<String> {
    let uid = nix::unistd::Uid::effective();
    match nix::unistd::User::from_uid(uid) {
        Ok(Some(user)) => Ok(user.name),
        _ => Err(Error::new(
            ErrorKind::DbConnect,
            format!("unable to find the name of user id {uid}"),
        )
        .with_hint("set the user to connect as")),
    }
}
