//! The remote protocol: how a pgkeep on one host drives a pgkeep on another.
//!
//! The local side starts `ssh` running `pgkeep <command>:remote` on the far host and talks
//! over ssh's stdin and stdout. Bytes are cut into frames (`frame`): JSON messages and raw data
//! chunks. The far side speaks first with a [`Greeting`] (name, protocol version, program
//! version); the local side checks it, answers with its own, and the far side accepts or
//! refuses it, so two incompatible binaries never exchange a request. Then the local side sends
//! requests, one at a time, and reads a [`Response`] for each; a request that moves a file
//! is followed (read) or preceded (write) by data frames and an end frame.
//!
//! A request is a variant of a serde enum shared by both sides, tagged on the wire as
//! `{"op":"<area>.<name>","args":{...}}`; each variant wraps a struct that implements [`Call`],
//! which names the type of its reply. The local side sends the struct and reads its `Reply`,
//! the far side matches the enum exhaustively and answers each variant with a `Reply`
//! ([`server::answer`]), so a request that one side knows and the other does not, or a reply
//! read as another type than the one sent, fails to compile rather than on the wire.
//!
//! This module owns the wire only: `client` spawns ssh and keeps a pool of channels,
//! `server` runs the far side's half of the greeting and its request loop, [`Conn`] reads and
//! writes messages. The requests themselves are declared above it: storage requests in
//! `storage::remote::request`, SQL requests and the set a far side answers in
//! `pg::remote::request`, dispatch in `command::remote`.

pub mod client;
pub mod frame;
mod pipe;
pub mod server;

use std::io::{Read, Write};

use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use frame::{Frame, FrameType};

pub use client::{Channel, Pool, SshSettings};

/// Identifies pgkeep on the wire.
pub const NAME: &str = "pgkeep";

/// The protocol version. Two sides talk only when theirs are equal: bump it whenever a message
/// changes shape or meaning. Version 2: requests are typed enums (arguments are checked
/// against each request's own struct, and a request without arguments carries `null`).
pub const PROTOCOL_VERSION: u32 = 2;

/// What each side says first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Greeting {
    pub name: String,
    pub protocol: u32,
    /// The program version, shown when versions differ.
    pub version: String,
}

impl Greeting {
    /// This binary's greeting.
    pub fn ours() -> Greeting {
        Greeting {
            name: NAME.to_string(),
            protocol: PROTOCOL_VERSION,
            version: env!("CARGO_PKG_VERSION").to_string(),
        }
    }

    /// Refuses a greeting from `peer` that is not pgkeep or speaks another protocol version.
    pub fn check(&self, peer: &str) -> Result<()> {
        if self.name != NAME {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("{peer} is not pgkeep: it greeted as '{}'", self.name),
            ));
        }
        if self.protocol != PROTOCOL_VERSION {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "remote pgkeep protocol version {} does not match local version {PROTOCOL_VERSION}",
                    self.protocol
                ),
            )
            .with_hint(format!(
                "install the same pgkeep version on both hosts ({peer} runs {}, this host runs {})",
                self.version,
                env!("CARGO_PKG_VERSION")
            )));
        }
        Ok(())
    }
}

/// One request whose reply has a known type: the struct a variant of a request enum wraps.
///
/// The local side sends a `Call` (as its `Request` enum) and reads a `Reply`; the far side
/// answers it with [`server::answer`], which takes only a `Reply`. Declared with [`calls!`].
pub trait Call: Sized {
    /// The enum this request travels in (its variant names the request on the wire).
    type Request: Serialize + From<Self>;
    /// What the far side answers.
    type Reply: Serialize + DeserializeOwned;
}

/// Declares the requests of a request enum: for each variant (named after the struct it wraps)
/// the `From` that wraps the struct and the [`Call`] that names its reply type.
///
/// ```text
/// calls!(StorageRequest {
///     Info => Option<FileInfo>,
///     Remove => (),
/// });
/// ```
macro_rules! calls {
    ($request:ident { $($call:ident => $reply:ty),* $(,)? }) => {
        $(
            impl From<$call> for $request {
                fn from(call: $call) -> $request {
                    $request::$call(call)
                }
            }

            impl $crate::protocol::Call for $call {
                type Request = $request;
                type Reply = $reply;
            }
        )*
    };
}
pub(crate) use calls;

/// The wire name of a request (`storage.info`), for messages: the tag its enum is serialized
/// with, so no name is written twice.
pub fn name_of<T: Serialize>(request: &T) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|value| {
            value
                .get("op")
                .and_then(|op| op.as_str().map(str::to_string))
        })
        .unwrap_or_else(|| "(unnamed)".to_string())
}

/// An error as it crosses the wire: the kind's code, the message and the hint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireError {
    pub code: i32,
    pub message: String,
    pub hint: Option<String>,
}

impl WireError {
    pub fn from_error(err: &Error) -> WireError {
        WireError {
            code: err.kind().exit_code(),
            message: err.message().to_string(),
            hint: err.hint().map(str::to_string),
        }
    }

    /// The error again, with its kind, said to have been raised on `peer`.
    pub fn into_error(self, peer: &str) -> Error {
        let kind = ErrorKind::from_code(self.code).unwrap_or(ErrorKind::Protocol);
        let err = Error::new(
            kind,
            format!("raised from remote on {peer}: {}", self.message),
        );
        match self.hint {
            Some(hint) => err.with_hint(hint),
            None => err,
        }
    }
}

/// The answer to a request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Response {
    Ok(serde_json::Value),
    Error(WireError),
}

impl Response {
    pub fn from_result(result: &Result<serde_json::Value>) -> Response {
        match result {
            Ok(value) => Response::Ok(value.clone()),
            Err(err) => Response::Error(WireError::from_error(err)),
        }
    }
}

/// Turns a value into JSON for a response, or a request's arguments.
pub fn to_value<T: Serialize>(value: &T) -> Result<serde_json::Value> {
    serde_json::to_value(value).map_err(|err| {
        Error::new(
            ErrorKind::Assert,
            format!("unable to encode a protocol message: {err}"),
        )
    })
}

/// Reads a value out of a response or a request's arguments.
pub fn from_value<T: DeserializeOwned>(value: serde_json::Value, what: &str) -> Result<T> {
    serde_json::from_value(value).map_err(|err| {
        Error::new(
            ErrorKind::Protocol,
            format!("invalid {what} in protocol message: {err}"),
        )
    })
}

/// One end of a conversation: frames in, frames out, and the name of the other side for
/// messages.
pub struct Conn {
    reader: Box<dyn Read + Send>,
    writer: Box<dyn Write + Send>,
    peer: String,
}

impl Conn {
    pub fn new(
        reader: Box<dyn Read + Send>,
        writer: Box<dyn Write + Send>,
        peer: impl Into<String>,
    ) -> Conn {
        Conn {
            reader,
            writer,
            peer: peer.into(),
        }
    }

    /// The other side, quoted, for messages: `'postgres@db1'`.
    pub fn peer(&self) -> &str {
        &self.peer
    }

    /// Sends one JSON message and flushes it.
    pub fn send<T: Serialize>(&mut self, message: &T) -> Result<()> {
        let bytes = serde_json::to_vec(message).map_err(|err| {
            Error::new(
                ErrorKind::Assert,
                format!("unable to encode a protocol message: {err}"),
            )
        })?;
        self.write(FrameType::Message, &bytes)?;
        self.flush()
    }

    /// Sends a chunk of a data stream (not flushed: the end frame or the next message is).
    pub fn send_data(&mut self, bytes: &[u8]) -> Result<()> {
        self.write(FrameType::Data, bytes)
    }

    /// Ends a data stream and flushes.
    pub fn send_end(&mut self) -> Result<()> {
        self.write(FrameType::End, &[])?;
        self.flush()
    }

    fn write(&mut self, kind: FrameType, payload: &[u8]) -> Result<()> {
        frame::write_frame(&mut self.writer, kind, payload).map_err(|err| self.write_error(err))
    }

    fn flush(&mut self) -> Result<()> {
        self.writer.flush().map_err(|err| self.write_error(err))
    }

    fn write_error(&self, err: std::io::Error) -> Error {
        crate::io::stream::from_io_error(
            err,
            ErrorKind::Protocol,
            &format!("write to {}", self.peer),
        )
    }

    /// The next frame; an error when the other side has closed the connection.
    pub fn recv(&mut self) -> Result<Frame> {
        frame::read_frame(&mut self.reader, &self.peer)?.ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("connection to {} closed unexpectedly", self.peer),
            )
        })
    }

    /// The next frame, `None` when the other side closed the connection cleanly between
    /// messages (how a far side learns that the local side is done).
    pub fn recv_or_eof(&mut self) -> Result<Option<Frame>> {
        frame::read_frame(&mut self.reader, &self.peer)
    }

    /// The next frame, which must be a message, decoded.
    pub fn recv_message<T: DeserializeOwned>(&mut self) -> Result<T> {
        match self.recv()? {
            Frame::Message(bytes) => self.decode(&bytes),
            other => Err(self.unexpected(&other, "a message")),
        }
    }

    /// Decodes a message frame's payload.
    pub fn decode<T: DeserializeOwned>(&self, bytes: &[u8]) -> Result<T> {
        serde_json::from_slice(bytes).map_err(|err| {
            Error::new(
                ErrorKind::Protocol,
                format!("invalid message from {}: {err}", self.peer),
            )
        })
    }

    /// The error for a frame that is not the one the conversation expects.
    pub fn unexpected(&self, frame: &Frame, expected: &str) -> Error {
        let got = match frame {
            Frame::Message(_) => "a message",
            Frame::Data(_) => "data",
            Frame::End => "an end of data",
        };
        Error::new(
            ErrorKind::Protocol,
            format!("expected {expected} from {} but got {got}", self.peer),
        )
    }

    /// Sends a hand-made request, `{"op": op, "args": args}`, and waits for its response; a
    /// remote error comes back as an `Error`. pgkeep itself sends typed requests
    /// ([`Channel::call`]); this is for tests that must send what no typed request can (a
    /// negative length, an unknown name).
    pub fn call(&mut self, op: &str, args: serde_json::Value) -> Result<serde_json::Value> {
        self.send(&serde_json::json!({ "op": op, "args": args }))?;
        self.response()
    }

    /// Reads a response; a remote error comes back as an `Error`.
    pub fn response(&mut self) -> Result<serde_json::Value> {
        match self.recv_message::<Response>()? {
            Response::Ok(value) => Ok(value),
            Response::Error(err) => Err(err.into_error(&self.peer)),
        }
    }
}

#[cfg(test)]
mod tests;
