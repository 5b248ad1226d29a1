//! The far side of the remote storage driver: storage requests run against a local storage.
//!
//! Each request names a `Storage` method; its arguments and result cross as JSON. A read
//! answers `true` (found) and then streams the filter chain's output as data frames, an end
//! frame and the chain's results; a read error on the way stops the stream with an error
//! response instead. A write answers once the file is open, then takes data frames until the
//! end frame (commit: the file appears with the storage's own atomic, durable write) or a
//! `storage.write_abort` request (discard). If the connection is lost mid-write, the writer is
//! dropped uncommitted, so the file never appears.

use std::io::{Read, Write};

use serde::Deserialize;
use serde_json::{Value, json};

use crate::error::{Error, ErrorKind, Result};
use crate::io::FilterSpec;
use crate::io::stream::from_io_error;
use crate::protocol::frame::Frame;
use crate::protocol::server::Handled;
use crate::protocol::{self, Conn, Request, Response};
use crate::storage::{Storage, WriteOptions};

/// Bytes per data frame of a read.
const READ_CHUNK: usize = 256 * 1024;

/// The most bytes one `storage.read_range` answers. The local side asks for a page (8 KiB) to
/// recheck or a bundled file, and splits anything larger into requests of this size
/// (`RemoteStorage::read_range`); as hex, 16 MiB is a 32 MiB response, inside
/// `frame::MAX_FRAME`.
pub const MAX_RANGE: usize = 16 * 1024 * 1024;

/// The largest block a block-incremental read filter may hold: pgkeep uses the page size.
pub const MAX_BLOCK: u32 = 16 * 1024 * 1024;

/// The most filters in one read's chain (pgkeep builds at most five).
const MAX_SPECS: usize = 16;

/// File and directory modes a client may ask for: permission bits only. A set-user-ID file
/// made by a client in the repository would run as the repository's owner for whoever can
/// execute it.
const MODE_BITS: u32 = 0o777;

#[derive(Deserialize)]
struct PathArgs {
    path: String,
}

#[derive(Deserialize)]
struct ReadArgs {
    path: String,
    #[serde(default)]
    specs: Vec<FilterSpec>,
}

#[derive(Deserialize)]
struct RangeArgs {
    path: String,
    offset: u64,
    len: u64,
}

#[derive(Deserialize)]
struct WriteArgs {
    path: String,
    options: WriteOptions,
}

#[derive(Deserialize)]
struct DirArgs {
    path: String,
    mode: u32,
}

#[derive(Deserialize)]
struct RenameArgs {
    from: String,
    to: String,
}

#[derive(Deserialize)]
struct LinkArgs {
    target: String,
    path: String,
}

/// Runs one storage request (`storage.*`) against `storage`.
pub fn serve(storage: &dyn Storage, conn: &mut Conn, request: Request) -> Result<Handled> {
    let args = request.args;
    let reply = |result: Result<Value>| Ok(Handled::Reply(result));
    match request.op.as_str() {
        "storage.info" => reply(with(args, |a: PathArgs| to_json(&storage.info(&a.path)?))),
        "storage.list" => reply(with(args, |a: PathArgs| to_json(&storage.list(&a.path)?))),
        "storage.remove" => reply(with(args, |a: PathArgs| unit(storage.remove(&a.path)))),
        "storage.remove_dir" => reply(with(args, |a: PathArgs| unit(storage.remove_dir(&a.path)))),
        "storage.sync_dir" => reply(with(args, |a: PathArgs| unit(storage.sync_dir(&a.path)))),
        "storage.create_dir" => reply(with(args, |a: DirArgs| {
            unit(storage.create_dir(&a.path, a.mode & MODE_BITS))
        })),
        "storage.rename" => reply(with(args, |a: RenameArgs| {
            unit(storage.rename(&a.from, &a.to))
        })),
        "storage.symlink" => reply(with(args, |a: LinkArgs| {
            unit(storage.symlink(&a.target, &a.path))
        })),
        "storage.read_range" => reply(with(args, |a: RangeArgs| {
            let len = range_len(a.len)?;
            let bytes = storage.read_range(&a.path, a.offset, len)?;
            to_json(&bytes.map(|bytes| to_hex(&bytes)))
        })),
        "storage.read" => {
            let args = protocol::from_value::<ReadArgs>(args, "read arguments")
                .and_then(|a| check_specs(&a.specs).map(|()| a));
            match args {
                Ok(a) => read(storage, conn, &a.path, &a.specs),
                Err(err) => reply(Err(err)),
            }
        }
        "storage.write" => match protocol::from_value::<WriteArgs>(args, "write arguments") {
            Ok(mut a) => {
                a.options.mode &= MODE_BITS;
                write(storage, conn, &a.path, &a.options)
            }
            Err(err) => reply(Err(err)),
        },
        // An abort with no write open (the open failed): nothing to discard.
        "storage.write_abort" => reply(Ok(Value::Null)),
        other => reply(Err(Error::new(
            ErrorKind::Protocol,
            format!("unknown storage request '{other}'"),
        ))),
    }
}

/// A range read's length, refused over [`MAX_RANGE`] before anything is allocated.
fn range_len(len: u64) -> Result<usize> {
    usize::try_from(len)
        .ok()
        .filter(|len| *len <= MAX_RANGE)
        .ok_or_else(|| {
            Error::new(
                ErrorKind::Protocol,
                format!("read_range length {len} is over the limit of {MAX_RANGE} bytes"),
            )
        })
}

/// Refuses a filter chain whose numbers would size buffers on this side beyond the limits.
fn check_specs(specs: &[FilterSpec]) -> Result<()> {
    if specs.len() > MAX_SPECS {
        return Err(Error::new(
            ErrorKind::Protocol,
            format!(
                "read with {} filters is over the limit of {MAX_SPECS}",
                specs.len()
            ),
        ));
    }
    for spec in specs {
        if let FilterSpec::BlockIncr { block_size, .. } = spec
            && !(1..=MAX_BLOCK).contains(block_size)
        {
            return Err(Error::new(
                ErrorKind::Protocol,
                format!("block size {block_size} is outside 1 to {MAX_BLOCK} bytes"),
            ));
        }
    }
    Ok(())
}

fn with<T: serde::de::DeserializeOwned>(
    args: Value,
    run: impl FnOnce(T) -> Result<Value>,
) -> Result<Value> {
    run(protocol::from_value(args, "arguments")?)
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<Value> {
    protocol::to_value(value)
}

fn unit(result: Result<()>) -> Result<Value> {
    result.map(|()| Value::Null)
}

/// Streams a file through `specs` to the local side.
fn read(
    storage: &dyn Storage,
    conn: &mut Conn,
    path: &str,
    specs: &[FilterSpec],
) -> Result<Handled> {
    let mut reader = match storage.open_read_filtered(path, specs) {
        Ok(Some(reader)) => reader,
        Ok(None) => return Ok(Handled::Reply(Ok(json!(false)))),
        Err(err) => return Ok(Handled::Reply(Err(err))),
    };
    conn.send(&Response::Ok(json!(true)))?;
    let mut buffer = vec![0u8; READ_CHUNK];
    loop {
        let read = match reader.read(&mut buffer) {
            Ok(0) => break,
            Ok(read) => read,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(err) => {
                let err = from_io_error(
                    err,
                    ErrorKind::FileRead,
                    &format!("read '{}'", storage.describe(path)),
                );
                conn.send(&Response::from_result(&Err(err)))?;
                return Ok(Handled::Done);
            }
        };
        conn.send_data(&buffer[..read])?;
    }
    conn.send_end()?;
    let results = reader.results().and_then(|results| to_json(&results));
    conn.send(&Response::from_result(&results))?;
    Ok(Handled::Done)
}

/// Receives a file from the local side and commits it at the end frame.
fn write(
    storage: &dyn Storage,
    conn: &mut Conn,
    path: &str,
    options: &WriteOptions,
) -> Result<Handled> {
    let mut writer = match storage.open_write(path, options) {
        Ok(writer) => writer,
        Err(err) => return Ok(Handled::Reply(Err(err))),
    };
    conn.send(&Response::Ok(Value::Null))?;
    // The first failure is kept and reported at the end: the local side is still sending and
    // the conversation must stay in step until it stops.
    let mut failed: Option<Error> = None;
    loop {
        match conn.recv()? {
            Frame::Data(bytes) => {
                if failed.is_none()
                    && let Err(err) = writer.write_all(&bytes)
                {
                    failed = Some(from_io_error(
                        err,
                        ErrorKind::FileWrite,
                        &format!("write '{}'", storage.describe(path)),
                    ));
                }
            }
            Frame::End => {
                let result = match failed {
                    Some(err) => Err(err),
                    None => writer.commit().map(|()| Value::Null),
                };
                return Ok(Handled::Reply(result));
            }
            Frame::Message(bytes) => {
                let request: Request = conn.decode(&bytes)?;
                if request.op != "storage.write_abort" {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "unexpected request '{}' from {} while writing '{path}'",
                            request.op,
                            conn.peer()
                        ),
                    ));
                }
                drop(writer);
                return Ok(Handled::Reply(Ok(Value::Null)));
            }
        }
    }
}

/// Bytes as lowercase hex, for the few pages `read_range` returns.
pub fn to_hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    let mut text = String::with_capacity(bytes.len() * 2);
    for byte in bytes {
        let _ = write!(text, "{byte:02x}");
    }
    text
}

/// The bytes of [`to_hex`]'s text.
pub fn from_hex(text: &str) -> Result<Vec<u8>> {
    let invalid = || Error::new(ErrorKind::Protocol, "invalid hex data in protocol message");
    if !text.len().is_multiple_of(2) {
        return Err(invalid());
    }
    (0..text.len())
        .step_by(2)
        .map(|i| {
            text.get(i..i + 2)
                .and_then(|pair| u8::from_str_radix(pair, 16).ok())
                .ok_or_else(invalid)
        })
        .collect()
}
