//! `<command>:remote`: the far side of an ssh connection from another pgkeep.
//!
//! Started by ssh with `--remote-type=pg` (on a database host, for a backup host: serves the
//! data directory `pg1-path` and SQL on the local cluster) or `--remote-type=repo` (on a backup
//! host, for a database host: serves the repository `repo1-path`). It greets, then answers
//! requests on stdin/stdout until the local side closes the connection, and exits. stdout
//! carries only the protocol; logging goes to the log file (`<stanza>-<command>-remote.log`)
//! and errors to stderr, which the local side shows when the connection fails.
//!
//! Whoever can start this command (an ssh key, even one whose `authorized_keys` entry forces
//! this very command) is a client it must not trust: it serves its one root and nothing else.
//! A repo remote serves the repository with every path kept beneath `repo1-path`
//! (`PosixStorage::repository`); a pg remote serves the data directory read-only, following
//! only the data directory's own links (`PosixStorage::data_dir`), plus SQL as its database
//! user. The limits on each request are in `storage::remote::serve` (docs/remote.md,
//! "Security").

use std::fs::File;
use std::io::{BufReader, BufWriter};
use std::os::fd::AsFd;

use serde_json::json;

use crate::config::{Config, Opt};
use crate::error::{Error, ErrorKind, Result};
use crate::log_debug;
use crate::pg::DbSession;
use crate::pg::remote::Request;
use crate::protocol::server::{self, Handled};
use crate::protocol::{self, Conn};
use crate::storage::{PosixStorage, Storage};

use super::open::{self, RemoteKind};

pub fn run(cfg: &Config) -> Result<i32> {
    let kind = match cfg.str(Opt::RemoteType) {
        Some("pg") => RemoteKind::Pg,
        Some("repo") => RemoteKind::Repo,
        _ => {
            return Err(Error::new(
                ErrorKind::OptionRequired,
                format!(
                    "{}:remote command requires option: remote-type",
                    cfg.command()
                ),
            ));
        }
    };
    let storage = match kind {
        RemoteKind::Pg => PosixStorage::data_dir(open::pg_path(cfg)?),
        RemoteKind::Repo => PosixStorage::repository(open::local_repo(cfg)?.root().to_path_buf()),
    };
    let mut conn = stdio_conn()?;
    server::greet(&mut conn, json!({ "root": storage.describe("") }))?;
    log_debug!("remote {} serving '{}'", kind.name(), storage.describe(""));

    let mut session: Option<DbSession> = None;
    let connect = || open::local_db_session(cfg);
    server::serve(&mut conn, |conn, request: Request| match request {
        Request::Storage(request) => crate::storage::remote::serve(&storage, conn, request),
        Request::Sql(request) if kind == RemoteKind::Pg => Ok(Handled::Reply(
            crate::pg::remote::serve(&mut session, &connect, request),
        )),
        Request::Sql(request) => Ok(Handled::Reply(Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "request '{}' is not served by a {} remote",
                protocol::name_of(&request),
                kind.name()
            ),
        )))),
    })?;
    if let Some(session) = session {
        session.close()?;
    }
    Ok(0)
}

/// The protocol over this process's stdin and stdout, as plain files: std's stdout flushes at
/// every newline, which binary data is full of.
fn stdio_conn() -> Result<Conn> {
    let dup = |fd: std::os::fd::BorrowedFd<'_>, name: &str| {
        fd.try_clone_to_owned()
            .map(File::from)
            .map_err(|err| Error::io(ErrorKind::FileOpen, "open", name, &err))
    };
    let input = dup(std::io::stdin().as_fd(), "stdin")?;
    let output = dup(std::io::stdout().as_fd(), "stdout")?;
    Ok(Conn::new(
        Box::new(BufReader::with_capacity(256 * 1024, input)),
        Box::new(BufWriter::with_capacity(256 * 1024, output)),
        "'the local pgkeep'",
    ))
}
