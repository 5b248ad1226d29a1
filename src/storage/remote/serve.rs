//! The far side of the remote storage driver: storage requests run against a local storage.
//!
//! Each request (`StorageRequest`, matched exhaustively) names a `Storage` method; its
//! arguments and result cross as JSON, typed by the request's struct and its reply. A read
//! answers `true` (found) and then streams the filter chain's output as data frames, an end
//! frame and the chain's results; a read error on the way stops the stream with an error
//! response instead. A write answers once the file is open, then takes data frames until the
//! end frame (commit: the file appears with the storage's own atomic, durable write) or a
//! `WriteAbort` request (discard). If the connection is lost mid-write, the writer is
//! dropped uncommitted, so the file never appears.

use std::io::{Read, Write};

use crate::error::{Error, ErrorKind, Result};
use crate::io::FilterSpec;
use crate::io::stream::from_io_error;
use crate::protocol::frame::Frame;
use crate::protocol::server::{self, Handled, answer};
use crate::protocol::{self, Conn, Response, to_value};
use crate::storage::Storage;

use super::request::{
    CreateDir, Info, List, ReadFile, ReadRange, ReadResults, Remove, RemoveDir, Rename,
    StorageRequest, Symlink, SyncDir, WriteAbort, WriteFile,
};

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

/// Runs one storage request against `storage`.
pub fn serve(storage: &dyn Storage, conn: &mut Conn, request: StorageRequest) -> Result<Handled> {
    let reply = match request {
        StorageRequest::Info(call) => answer(call, |Info { path }| storage.info(&path)),
        StorageRequest::List(call) => answer(call, |List { path }| storage.list(&path)),
        StorageRequest::Remove(call) => answer(call, |Remove { path }| storage.remove(&path)),
        StorageRequest::RemoveDir(call) => {
            answer(call, |RemoveDir { path }| storage.remove_dir(&path))
        }
        StorageRequest::SyncDir(call) => answer(call, |SyncDir { path }| storage.sync_dir(&path)),
        StorageRequest::CreateDir(call) => answer(call, |CreateDir { path, mode }| {
            storage.create_dir(&path, mode & MODE_BITS)
        }),
        StorageRequest::Rename(call) => {
            answer(call, |Rename { from, to }| storage.rename(&from, &to))
        }
        StorageRequest::Symlink(call) => answer(call, |Symlink { target, path }| {
            storage.symlink(&target, &path)
        }),
        StorageRequest::ReadRange(call) => answer(call, |ReadRange { path, offset, len }| {
            let len = range_len(len)?;
            let bytes = storage.read_range(&path, offset, len)?;
            Ok(bytes.map(|bytes| to_hex(&bytes)))
        }),
        StorageRequest::ReadFile(call) => match check_specs(&call.specs) {
            Ok(()) => return read(storage, conn, call),
            Err(err) => Err(err),
        },
        StorageRequest::WriteFile(mut call) => {
            call.options.mode &= MODE_BITS;
            return write(storage, conn, call);
        }
        // An abort with no write open (the open failed): nothing to discard.
        StorageRequest::WriteAbort(call) => answer(call, |WriteAbort| Ok(())),
    };
    Ok(Handled::Reply(reply))
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

/// Streams a file through its filters to the local side.
fn read(storage: &dyn Storage, conn: &mut Conn, call: ReadFile) -> Result<Handled> {
    let mut reader = match storage.open_read_filtered(&call.path, &call.specs) {
        Ok(Some(reader)) => reader,
        Ok(None) => return Ok(Handled::Reply(answer(call, |_| Ok(false)))),
        Err(err) => return Ok(Handled::Reply(Err(err))),
    };
    server::send_reply::<ReadFile>(conn, &true)?;
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
                    &format!("read '{}'", storage.describe(&call.path)),
                );
                conn.send(&Response::from_result(&Err(err)))?;
                return Ok(Handled::Done);
            }
        };
        conn.send_data(&buffer[..read])?;
    }
    conn.send_end()?;
    let results: Result<ReadResults> = reader.results();
    conn.send(&Response::from_result(
        &results.and_then(|results| to_value(&results)),
    ))?;
    Ok(Handled::Done)
}

/// Receives a file from the local side and commits it at the end frame.
fn write(storage: &dyn Storage, conn: &mut Conn, call: WriteFile) -> Result<Handled> {
    let WriteFile { path, options } = call;
    let mut writer = match storage.open_write(&path, &options) {
        Ok(writer) => writer,
        Err(err) => return Ok(Handled::Reply(Err(err))),
    };
    server::send_reply::<WriteFile>(conn, &())?;
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
                        &format!("write '{}'", storage.describe(&path)),
                    ));
                }
            }
            Frame::End => {
                let result = match failed {
                    Some(err) => Err(err),
                    None => writer.commit().and_then(|()| to_value(&())),
                };
                return Ok(Handled::Reply(result));
            }
            Frame::Message(bytes) => match conn.decode::<StorageRequest>(&bytes)? {
                StorageRequest::WriteAbort(abort) => {
                    drop(writer);
                    return Ok(Handled::Reply(answer(abort, |WriteAbort| Ok(()))));
                }
                other => {
                    return Err(Error::new(
                        ErrorKind::Protocol,
                        format!(
                            "unexpected request '{}' from {} while writing '{path}'",
                            protocol::name_of(&other),
                            conn.peer()
                        ),
                    ));
                }
            },
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
