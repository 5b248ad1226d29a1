//! The remote storage driver: a directory on another host, reached over the protocol.
//!
//! [`RemoteStorage`] turns each `Storage` call into a request to a `pgkeep <command>:remote`
//! on the far host, which runs it against its own posix storage (`serve`). Reads and writes
//! stream: the far side sends a file as data frames (after running the filter chain the caller
//! asked for, next to the data), or receives one and commits it with its own atomic, durable
//! write. A stream holds one channel from the pool for its whole length, so parallel workers
//! each use their own ssh connection. A write dropped without commit is aborted on the far
//! side; a channel lost mid-write leaves the far side's write uncommitted, which removes it.
//!
//! The requests are [`StorageRequest`]s (`request`), the same enum the far side matches.
//! Paths in messages are the far side's (`describe` gives the far root joined with the path),
//! and errors raised there come back with their kind, saying which host raised them.

pub mod request;
mod serve;
#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::io::{Read, Write};
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::error::{Error, ErrorKind, Result};
use crate::io::stream::to_io_error;
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec};
use crate::protocol::frame::Frame;
use crate::protocol::{self, Channel, Pool, Response};
use crate::storage::{FileInfo, FilteredRead, Storage, StorageWrite, WriteOptions};

pub use request::StorageRequest;
use request::{
    CreateDir, Info, List, ReadFile, ReadRange, ReadResults, Remove, RemoveDir, Rename, Symlink,
    SyncDir, WriteAbort, WriteFile,
};
pub use serve::serve;

/// Data frames sent by a writer hold up to this many bytes.
const WRITE_CHUNK: usize = 256 * 1024;

/// What the far side says about its storage when a channel opens.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Welcome {
    /// The absolute path of the far side's storage root.
    pub root: String,
}

/// A directory on another host.
pub struct RemoteStorage {
    pool: Arc<Pool>,
    root: String,
    /// Compression for streams that are not compressed already (`compress-level-network`):
    /// the far side compresses, this side decompresses. `None` sends them as they are.
    network: Option<(CompressType, i32)>,
}

impl RemoteStorage {
    /// Storage over `pool`, whose far side serves storage requests.
    pub fn new(pool: Arc<Pool>, network: Option<(CompressType, i32)>) -> Result<RemoteStorage> {
        let welcome: Welcome = protocol::from_value(pool.welcome().clone(), "welcome")?;
        Ok(RemoteStorage {
            pool,
            root: welcome.root,
            network,
        })
    }

    /// The far side, quoted, for messages.
    pub fn peer(&self) -> &str {
        self.pool.peer()
    }
}

impl Storage for RemoteStorage {
    fn info(&self, path: &str) -> Result<Option<FileInfo>> {
        self.pool.call(Info {
            path: path.to_string(),
        })
    }

    fn list(&self, path: &str) -> Result<Option<Vec<FileInfo>>> {
        self.pool.call(List {
            path: path.to_string(),
        })
    }

    fn open_read(&self, path: &str) -> Result<Option<Box<dyn Read + Send>>> {
        Ok(self
            .open_read_filtered(path, &[])?
            .map(|reader| reader as Box<dyn Read + Send>))
    }

    fn open_read_filtered(
        &self,
        path: &str,
        specs: &[FilterSpec],
    ) -> Result<Option<Box<dyn FilteredRead>>> {
        let compressed = specs
            .iter()
            .any(|spec| matches!(spec, FilterSpec::Compress { .. }));
        let network = self.network.filter(|_| !compressed && !specs.is_empty());
        let mut far_specs = specs.to_vec();
        if let Some((kind, level)) = network {
            far_specs.push(FilterSpec::Compress { kind, level });
        }
        let mut channel = self.pool.take()?;
        let found = channel.call(ReadFile {
            path: path.to_string(),
            specs: far_specs,
        });
        let found = match found {
            Ok(found) => found,
            Err(err) => {
                self.pool.give_back(channel);
                return Err(err);
            }
        };
        if !found {
            self.pool.give_back(channel);
            return Ok(None);
        }
        let decompress = match network {
            Some((kind, _)) => Some(FilterChain::from_specs(&[FilterSpec::Decompress { kind }])?),
            None => None,
        };
        Ok(Some(Box::new(RemoteRead {
            pool: self.pool.clone(),
            channel: Some(channel),
            decompress,
            out: VecDeque::new(),
            results: None,
        })))
    }

    /// In requests of at most `serve::MAX_RANGE` bytes, the far side's limit; the result grows
    /// with what arrives, not with `len`.
    fn read_range(&self, path: &str, offset: u64, len: usize) -> Result<Option<Vec<u8>>> {
        let mut content = Vec::new();
        let mut next = offset;
        loop {
            let wanted = (len - content.len()).min(serve::MAX_RANGE);
            let hex = self.pool.call(ReadRange {
                path: path.to_string(),
                offset: next,
                len: wanted as u64,
            })?;
            let Some(hex) = hex else {
                return Ok(None);
            };
            let mut bytes = serve::from_hex(&hex)?;
            // A far side that answers more than asked is cut to what was asked.
            bytes.truncate(wanted);
            let got = bytes.len();
            content.extend_from_slice(&bytes);
            next = next.saturating_add(got as u64);
            if got < wanted || content.len() >= len {
                return Ok(Some(content));
            }
        }
    }

    fn open_write(&self, path: &str, options: &WriteOptions) -> Result<Box<dyn StorageWrite>> {
        let mut channel = self.pool.take()?;
        let opened = channel.call(WriteFile {
            path: path.to_string(),
            options: options.clone(),
        });
        if let Err(err) = opened {
            self.pool.give_back(channel);
            return Err(err);
        }
        Ok(Box::new(RemoteWrite {
            pool: self.pool.clone(),
            channel: Some(channel),
            pending: Vec::with_capacity(WRITE_CHUNK),
        }))
    }

    fn remove(&self, path: &str) -> Result<()> {
        self.pool.call(Remove {
            path: path.to_string(),
        })
    }

    fn remove_dir(&self, path: &str) -> Result<()> {
        self.pool.call(RemoveDir {
            path: path.to_string(),
        })
    }

    fn create_dir(&self, path: &str, mode: u32) -> Result<()> {
        self.pool.call(CreateDir {
            path: path.to_string(),
            mode,
        })
    }

    fn sync_dir(&self, path: &str) -> Result<()> {
        self.pool.call(SyncDir {
            path: path.to_string(),
        })
    }

    fn rename(&self, from: &str, to: &str) -> Result<()> {
        self.pool.call(Rename {
            from: from.to_string(),
            to: to.to_string(),
        })
    }

    fn symlink(&self, target: &str, path: &str) -> Result<()> {
        self.pool.call(Symlink {
            target: target.to_string(),
            path: path.to_string(),
        })
    }

    fn describe(&self, path: &str) -> String {
        match (self.root.as_str(), path) {
            (root, "") => root.to_string(),
            ("/", path) => format!("/{path}"),
            (root, path) => format!("{root}/{path}"),
        }
    }
}

/// A file streaming from the far side. Holds its channel until the end of the stream.
struct RemoteRead {
    pool: Arc<Pool>,
    channel: Option<Channel>,
    /// Undoes the network compression, when the far side applied it.
    decompress: Option<FilterChain>,
    /// Received bytes not yet read.
    out: VecDeque<u8>,
    results: Option<Vec<FilterResult>>,
}

impl RemoteRead {
    /// Receives the next chunk, or the end of the stream with its results.
    fn next(&mut self) -> Result<()> {
        let Some(channel) = self.channel.as_mut() else {
            return Ok(());
        };
        let out = &mut self.out;
        let mut sink = |bytes: &[u8]| {
            out.extend(bytes);
            Ok(())
        };
        match channel.conn().recv() {
            Ok(Frame::Data(bytes)) => match self.decompress.as_mut() {
                Some(chain) => chain.process_into(&bytes, &mut sink),
                None => sink(&bytes),
            },
            Ok(Frame::End) => {
                if let Some(chain) = self.decompress.as_mut() {
                    chain.finish_into(&mut sink)?;
                }
                let response = channel.conn().recv_message::<Response>();
                let results = match response {
                    Ok(Response::Ok(value)) => {
                        protocol::from_value::<ReadResults>(value, "read results")
                    }
                    Ok(Response::Error(err)) => Err(err.into_error(channel.peer())),
                    Err(err) => return Err(channel.fail(err)),
                };
                self.finish_stream();
                self.results = Some(results?);
                Ok(())
            }
            // The far side stopped the stream with an error response (a read error there).
            Ok(Frame::Message(bytes)) => {
                let response = channel.conn().decode::<Response>(&bytes);
                let err = match response {
                    Ok(Response::Error(err)) => err.into_error(channel.peer()),
                    Ok(Response::Ok(_)) => channel.fail(Error::new(
                        ErrorKind::Protocol,
                        format!("unexpected response from {} inside a file", channel.peer()),
                    )),
                    Err(err) => channel.fail(err),
                };
                self.finish_stream();
                Err(err)
            }
            Err(err) => Err(channel.fail(err)),
        }
    }

    /// Gives the channel back: the conversation is in step again.
    fn finish_stream(&mut self) {
        if let Some(channel) = self.channel.take() {
            self.pool.give_back(channel);
        }
    }
}

impl Read for RemoteRead {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.out.is_empty() {
            if self.channel.is_none() {
                return Ok(0);
            }
            self.next().map_err(to_io_error)?;
        }
        let (front, _) = self.out.as_slices();
        let n = front.len().min(buf.len());
        buf[..n].copy_from_slice(&front[..n]);
        self.out.drain(..n);
        Ok(n)
    }
}

impl FilteredRead for RemoteRead {
    fn results(&mut self) -> Result<Vec<FilterResult>> {
        if self.out.is_empty() && self.channel.is_some() {
            self.next()?;
        }
        let early = || {
            Error::new(
                ErrorKind::Assert,
                "filter results asked for before the end of the stream",
            )
        };
        if !self.out.is_empty() {
            return Err(early());
        }
        // Handed over, not copied: a block-incremental result is megabytes.
        self.results.take().ok_or_else(early)
    }
}

impl Drop for RemoteRead {
    fn drop(&mut self) {
        // Dropped mid-stream: the far side is still sending, so the channel is out of step and
        // is closed rather than reused.
        if let Some(mut channel) = self.channel.take() {
            let _ = channel.fail(Error::new(ErrorKind::Protocol, "read abandoned"));
        }
    }
}

/// A file streaming to the far side, committed there on `commit`.
struct RemoteWrite {
    pool: Arc<Pool>,
    channel: Option<Channel>,
    pending: Vec<u8>,
}

impl RemoteWrite {
    fn send_pending(&mut self) -> Result<()> {
        let Some(channel) = self.channel.as_mut() else {
            return Err(Error::new(
                ErrorKind::Protocol,
                "write to a remote file that is closed",
            ));
        };
        if !self.pending.is_empty() {
            let sent = channel.conn().send_data(&self.pending);
            self.pending.clear();
            sent.map_err(|err| channel.fail(err))?;
        }
        Ok(())
    }
}

impl Write for RemoteWrite {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pending.extend_from_slice(buf);
        if self.pending.len() >= WRITE_CHUNK {
            self.send_pending().map_err(to_io_error)?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl StorageWrite for RemoteWrite {
    fn commit(mut self: Box<Self>) -> Result<()> {
        self.send_pending()?;
        let Some(mut channel) = self.channel.take() else {
            return Err(Error::new(ErrorKind::Assert, "remote file committed twice"));
        };
        let result = channel
            .conn()
            .send_end()
            .and_then(|()| channel.conn().recv_message::<Response>());
        let result = match result {
            Ok(Response::Ok(_)) => Ok(()),
            Ok(Response::Error(err)) => Err(err.into_error(channel.peer())),
            Err(err) => Err(channel.fail(err)),
        };
        self.pool.give_back(channel);
        result
    }
}

impl Drop for RemoteWrite {
    fn drop(&mut self) {
        // Not committed: ask the far side to discard the file, and keep the channel if it
        // answers.
        if let Some(mut channel) = self.channel.take() {
            if !channel.is_broken() {
                let _ = channel.call(WriteAbort);
            }
            self.pool.give_back(channel);
        }
    }
}
