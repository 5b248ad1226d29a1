//! The local side: start ssh, greet the far side, and keep channels in a pool.
//!
//! A [`Channel`] is one ssh process running `pgkeep <command>:remote` on the far host. It is
//! used by one thread at a time: a worker copying a file holds its channel for the whole
//! stream, so each `process-max` worker ends up with its own. A [`Pool`] hands channels out
//! and takes back the ones that are still in step with the far side; a channel that saw a
//! transport error, or was dropped in the middle of a stream, is killed instead, since nobody
//! knows where in the conversation it stands.
//!
//! ssh's stderr is collected in the background so that a failure to connect, a refused key or
//! a missing remote binary is reported with ssh's own words, naming the host.

use std::io::{BufReader, BufWriter, Read};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use serde::Serialize;

use crate::error::{Error, ErrorKind, Result};
use crate::log_debug;
use crate::protocol::pipe::{TimedReader, TimedWriter};
use crate::protocol::{Call, Conn, Greeting, Response};

/// How to reach the far side.
#[derive(Debug, Clone)]
pub struct SshSettings {
    /// The ssh program (`cmd-ssh`).
    pub ssh: String,
    pub host: String,
    pub user: String,
    pub port: Option<u16>,
    /// The far side's command line: program and arguments, quoted for its shell here.
    pub command: Vec<String>,
    /// The longest wait for any response (`protocol-timeout`).
    pub timeout: Duration,
    /// The longest wait for ssh to connect (`io-timeout`).
    pub connect_timeout: Duration,
}

impl SshSettings {
    /// The far side as messages name it: `'postgres@db1'`, with `:port` when one is set.
    pub fn peer(&self) -> String {
        match self.port {
            Some(port) => format!("'{}@{}:{port}'", self.user, self.host),
            None => format!("'{}@{}'", self.user, self.host),
        }
    }

    /// The ssh command line: batch mode (never a password prompt), host keys checked as the
    /// user's ssh configuration says, quiet unless there is an error.
    pub fn ssh_args(&self) -> Vec<String> {
        let mut args: Vec<String> = [
            "-o",
            "BatchMode=yes",
            "-o",
            "LogLevel=error",
            "-o",
            "Compression=no",
            "-o",
            "PasswordAuthentication=no",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        args.push("-o".to_string());
        args.push(format!(
            "ConnectTimeout={}",
            self.connect_timeout.as_secs().max(1)
        ));
        if let Some(port) = self.port {
            args.push("-p".to_string());
            args.push(port.to_string());
        }
        args.push(format!("{}@{}", self.user, self.host));
        args.push(
            self.command
                .iter()
                .map(|arg| shell_quote(arg))
                .collect::<Vec<_>>()
                .join(" "),
        );
        args
    }
}

/// Quotes `arg` for a POSIX shell: the far side's login shell runs the command ssh sends.
pub fn shell_quote(arg: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "-_./=:@,+%".contains(c);
    if !arg.is_empty() && arg.chars().all(safe) {
        return arg.to_string();
    }
    format!("'{}'", arg.replace('\'', "'\\''"))
}

/// One ssh process and the conversation over it.
pub struct Channel {
    conn: Conn,
    /// The ssh process; `None` for a channel over an in-process connection (tests).
    child: Option<Child>,
    stderr: Option<JoinHandle<String>>,
    /// What the far side said about itself after the greeting (e.g. its storage root).
    welcome: serde_json::Value,
    /// Set after a transport failure: the channel must not be reused.
    broken: bool,
}

impl Channel {
    /// Starts ssh and runs the greeting.
    pub fn connect(settings: &SshSettings) -> Result<Channel> {
        let peer = settings.peer();
        let args = settings.ssh_args();
        log_debug!("connect to {peer}: {} {}", settings.ssh, args.join(" "));
        let mut child = Command::new(&settings.ssh)
            .args(&args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|err| {
                Error::io(ErrorKind::HostConnect, "execute", &settings.ssh, &err)
                    .with_hint("set cmd-ssh to the path of the ssh client")
            })?;
        let (Some(stdin), Some(stdout), Some(mut stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            return Err(Error::new(ErrorKind::Assert, "ssh started without pipes"));
        };
        let collector = std::thread::spawn(move || {
            let mut text = Vec::new();
            // Only the start matters for messages; the rest is read so ssh never blocks.
            let mut buffer = [0u8; 4096];
            while let Ok(n) = stderr.read(&mut buffer) {
                if n == 0 {
                    break;
                }
                if text.len() < 16384 {
                    text.extend_from_slice(&buffer[..n]);
                }
            }
            String::from_utf8_lossy(&text).trim().to_string()
        });
        let writer = TimedWriter::new(stdin, settings.timeout)
            .map_err(|err| Error::io(ErrorKind::HostConnect, "set up pipe to", &peer, &err))?;
        let reader = TimedReader::new(stdout, settings.timeout);
        let conn = Conn::new(
            Box::new(BufReader::with_capacity(256 * 1024, reader)),
            Box::new(BufWriter::with_capacity(256 * 1024, writer)),
            peer.clone(),
        );
        let mut channel = Channel {
            conn,
            child: Some(child),
            stderr: Some(collector),
            welcome: serde_json::Value::Null,
            broken: false,
        };
        match greet(&mut channel.conn) {
            Ok(welcome) => {
                channel.welcome = welcome;
                Ok(channel)
            }
            Err(err) if err.kind() == ErrorKind::Protocol && channel.ended() => {
                // ssh ended before the far side greeted: it never got there. Say what ssh said.
                let said = channel.stderr_text();
                Err(Error::new(
                    ErrorKind::HostConnect,
                    format!(
                        "unable to connect to {peer}: {}",
                        if said.is_empty() {
                            "ssh ended without a message".to_string()
                        } else {
                            said.replace('\n', "; ")
                        }
                    ),
                )
                .with_hint("check pg1-host/repo1-host, the ssh key of this user, and that pgkeep is installed on the remote host (*-host-cmd)"))
            }
            Err(err) => Err(channel.explain(err)),
        }
    }

    /// A channel over a connection that is already open (a socket to a far side running in
    /// this process, in tests): runs the greeting.
    pub fn over(mut conn: Conn) -> Result<Channel> {
        let welcome = greet(&mut conn)?;
        Ok(Channel {
            conn,
            child: None,
            stderr: None,
            welcome,
            broken: false,
        })
    }

    /// What the far side sent with its acceptance of our greeting.
    pub fn welcome(&self) -> &serde_json::Value {
        &self.welcome
    }

    pub fn peer(&self) -> &str {
        self.conn.peer()
    }

    /// The connection, for streams. Any error while using it must be passed to
    /// [`Channel::fail`] so the channel is not reused.
    pub fn conn(&mut self) -> &mut Conn {
        &mut self.conn
    }

    /// Marks the channel broken and adds what ssh said, if it has ended, to `err`.
    pub fn fail(&mut self, err: Error) -> Error {
        self.broken = true;
        self.explain(err)
    }

    pub fn is_broken(&self) -> bool {
        self.broken
    }

    /// A request and its reply. A remote error, or a reply that is not of the request's reply
    /// type, leaves the channel usable (the whole response was read); a transport error breaks
    /// it.
    pub fn call<C: Call>(&mut self, call: C) -> Result<C::Reply> {
        let value = self.request(&C::Request::from(call))?;
        serde_json::from_value(value).map_err(|err| {
            Error::new(
                ErrorKind::Protocol,
                format!("invalid reply from {}: {err}", self.peer()),
            )
        })
    }

    /// Sends `request` and reads its response.
    fn request(&mut self, request: &impl Serialize) -> Result<serde_json::Value> {
        if self.broken {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("connection to {} is no longer usable", self.peer()),
            ));
        }
        let sent = self.conn.send(request);
        let response = sent.and_then(|()| self.conn.recv_message::<Response>());
        match response {
            Ok(Response::Ok(value)) => Ok(value),
            Ok(Response::Error(err)) => Err(err.into_error(self.conn.peer())),
            Err(err) => Err(self.fail(err)),
        }
    }

    /// True when ssh has exited (waiting briefly for it, since a closed pipe comes just before
    /// the exit).
    fn ended(&mut self) -> bool {
        let Some(child) = self.child.as_mut() else {
            return false;
        };
        for _ in 0..50 {
            if let Ok(Some(_)) = child.try_wait() {
                return true;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        false
    }

    fn stderr_text(&mut self) -> String {
        self.stderr
            .take()
            .and_then(|handle| handle.join().ok())
            .unwrap_or_default()
    }

    /// Adds ssh's exit and stderr to an error when ssh has ended: a killed ssh or a crashed
    /// remote otherwise shows only as a closed pipe.
    fn explain(&mut self, err: Error) -> Error {
        if err.kind() != ErrorKind::Protocol || !self.ended() {
            return err;
        }
        let status = self
            .child
            .as_mut()
            .and_then(|child| child.try_wait().ok().flatten())
            .map(|status| {
                match (
                    status.code(),
                    std::os::unix::process::ExitStatusExt::signal(&status),
                ) {
                    (Some(code), _) => format!("exit code {code}"),
                    (None, Some(signal)) => format!("killed by signal {signal}"),
                    _ => status.to_string(),
                }
            })
            .unwrap_or_default();
        let said = self.stderr_text();
        let mut detail = format!("remote process on {} ended ({status})", self.peer());
        if !said.is_empty() {
            detail = format!("{detail}: {}", said.replace('\n', "; "));
        }
        Error::new(err.kind(), format!("{}: {detail}", err.message()))
    }
}

impl Drop for Channel {
    fn drop(&mut self) {
        // Closing stdin tells a healthy far side to exit; a broken one is killed.
        if self.broken
            && let Some(child) = self.child.as_mut()
        {
            let _ = child.kill();
        }
        let conn = std::mem::replace(
            &mut self.conn,
            Conn::new(Box::new(std::io::empty()), Box::new(std::io::sink()), ""),
        );
        drop(conn);
        let ended = self.ended();
        if let Some(child) = self.child.as_mut() {
            if !ended {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
        if let Some(handle) = self.stderr.take() {
            let _ = handle.join();
        }
    }
}

/// The local half of the greeting: read the far side's, check it, send ours, read the
/// acceptance (which carries the far side's welcome, e.g. its storage root).
pub fn greet(conn: &mut Conn) -> Result<serde_json::Value> {
    let theirs: Greeting = conn.recv_message()?;
    theirs.check(conn.peer())?;
    conn.send(&Greeting::ours())?;
    conn.response()
}

/// Opens a new channel to the pool's far side.
pub type Connector = Box<dyn Fn() -> Result<Channel> + Send + Sync>;

/// Channels to one far side, opened on demand and reused.
pub struct Pool {
    peer: String,
    connector: Connector,
    idle: Mutex<Vec<Channel>>,
    welcome: serde_json::Value,
}

impl Pool {
    /// A pool of ssh channels. Connects the first one, so a host that cannot be reached fails
    /// the command before it starts any work.
    pub fn ssh(settings: SshSettings) -> Result<Arc<Pool>> {
        let peer = settings.peer();
        Pool::new(peer, Box::new(move || Channel::connect(&settings)))
    }

    /// A pool whose channels come from `connector`; connects the first one.
    pub fn new(peer: String, connector: Connector) -> Result<Arc<Pool>> {
        let first = connector()?;
        let welcome = first.welcome().clone();
        Ok(Arc::new(Pool {
            peer,
            connector,
            idle: Mutex::new(vec![first]),
            welcome,
        }))
    }

    /// The far side, quoted, for messages.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// What the far side said when the first channel connected.
    pub fn welcome(&self) -> &serde_json::Value {
        &self.welcome
    }

    /// An idle channel, or a new one.
    pub fn take(&self) -> Result<Channel> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(channel) => Ok(channel),
            None => (self.connector)(),
        }
    }

    /// Takes a channel back; a broken one is dropped (and its ssh killed).
    pub fn give_back(&self, channel: Channel) {
        if channel.is_broken() {
            return;
        }
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(channel);
        }
    }

    /// One request on any channel.
    pub fn call<C: Call>(&self, call: C) -> Result<C::Reply> {
        let mut channel = self.take()?;
        let result = channel.call(call);
        self.give_back(channel);
        result
    }
}
