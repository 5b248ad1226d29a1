//! The far side's half of the conversation: greet, then read requests until the local side
//! closes the connection.
//!
//! The far side never starts anything: it answers. What a request does is up to the handler
//! the caller passes (`command::remote` dispatches storage and SQL requests); this file only
//! keeps the order of frames right, decodes each request into the caller's request enum, and
//! turns a handler's error into an error response, so a failed request never ends the
//! conversation. A request this side cannot read (an unknown name, arguments of the wrong
//! shape) is answered with an error too; only a message that is no request at all (no `op`)
//! ends it, since nothing then says where the conversation stands.

use serde::Deserialize;
use serde::de::DeserializeOwned;

use crate::error::{Error, ErrorKind, Result};
use crate::protocol::frame::Frame;
use crate::protocol::{Call, Conn, Greeting, Response, to_value};

/// The far side's greeting: send ours, check theirs, then accept with `welcome` (or refuse,
/// telling the local side why, and fail).
pub fn greet(conn: &mut Conn, welcome: serde_json::Value) -> Result<()> {
    conn.send(&Greeting::ours())?;
    let theirs: Greeting = conn.recv_message()?;
    if let Err(err) = theirs.check(conn.peer()) {
        conn.send(&Response::from_result(&Err(err.clone())))?;
        return Err(err);
    }
    conn.send(&Response::Ok(welcome))
}

/// What a handler did with a request.
pub enum Handled {
    /// A plain answer, to be sent as the response.
    Reply(Result<serde_json::Value>),
    /// The handler already sent everything (a stream and its closing response).
    Done,
}

/// The answer to `call`: what `run` makes of it, as the reply type the local side reads.
pub fn answer<C: Call>(
    call: C,
    run: impl FnOnce(C) -> Result<C::Reply>,
) -> Result<serde_json::Value> {
    run(call).and_then(|reply| to_value(&reply))
}

/// Sends the response that opens a stream (a read's `found`, a write's `opened`), typed as
/// `C`'s reply.
pub fn send_reply<C: Call>(conn: &mut Conn, reply: &C::Reply) -> Result<()> {
    conn.send(&Response::Ok(to_value(reply)?))
}

/// What every request is on the wire, whatever its enum: a name and arguments. Read first so
/// that a request this side does not know can still be answered, by name.
#[derive(Deserialize)]
struct Envelope {
    op: String,
}

/// Reads requests, decodes each as an `R`, and hands it to `handle` until the local side
/// closes the connection. A handler's `Err` is a broken conversation (the connection failed
/// mid-stream) and ends the loop with that error; errors of the request itself travel in
/// `Handled::Reply`.
pub fn serve<R: DeserializeOwned>(
    conn: &mut Conn,
    mut handle: impl FnMut(&mut Conn, R) -> Result<Handled>,
) -> Result<()> {
    loop {
        let bytes = match conn.recv_or_eof()? {
            None => return Ok(()),
            Some(Frame::Message(bytes)) => bytes,
            Some(other) => return Err(conn.unexpected(&other, "a request")),
        };
        let envelope: Envelope = conn.decode(&bytes)?;
        let handled = match serde_json::from_slice::<R>(&bytes) {
            Ok(request) => handle(conn, request)?,
            Err(err) => Handled::Reply(Err(Error::new(
                ErrorKind::Protocol,
                format!(
                    "invalid request '{}' from {}: {err}",
                    envelope.op,
                    conn.peer()
                ),
            ))),
        };
        match handled {
            Handled::Reply(result) => conn.send(&Response::from_result(&result))?,
            Handled::Done => {}
        }
    }
}
