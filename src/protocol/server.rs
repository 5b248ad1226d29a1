//! The far side's half of the conversation: greet, then read requests until the local side
//! closes the connection.
//!
//! The far side never starts anything: it answers. What a request does is up to the handler
//! the caller passes (`command::remote` dispatches storage and SQL requests); this file only
//! keeps the order of frames right and turns a handler's error into an error response, so a
//! failed request never ends the conversation.

use crate::error::Result;
use crate::protocol::frame::Frame;
use crate::protocol::{Conn, Greeting, Request, Response};

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

/// Reads requests and hands each to `handle` until the local side closes the connection.
/// A handler's `Err` is a broken conversation (the connection failed mid-stream) and ends the
/// loop with that error; errors of the request itself travel in `Handled::Reply`.
pub fn serve(
    conn: &mut Conn,
    mut handle: impl FnMut(&mut Conn, Request) -> Result<Handled>,
) -> Result<()> {
    loop {
        let request: Request = match conn.recv_or_eof()? {
            None => return Ok(()),
            Some(Frame::Message(bytes)) => conn.decode(&bytes)?,
            Some(other) => return Err(conn.unexpected(&other, "a request")),
        };
        match handle(conn, request)? {
            Handled::Reply(result) => conn.send(&Response::from_result(&result))?,
            Handled::Done => {}
        }
    }
}
