//! Pushing a segment: what archive-push and its background process (`push_async`) both do to
//! store one WAL file in the archive, durably, checked against the stanza's cluster.

use std::fs::File;
use std::io::{Read, Write};
use std::path::Path;

use crate::config::Config;
use crate::error::{Error, ErrorKind, Result};
use crate::io::parallel_compress::{self, FrameBuffers, Framed};
use crate::io::{CompressType, FilterChain, FilterResult, FilterSpec, stream};
use crate::pg::wal::{WalFileKind, WalHeader};
use crate::repo::{ArchiveInfo, DbHistory, archive, layout, stanza};
use crate::storage::{FileInfo, Storage, StorageWrite, WriteOptions};
use crate::{log_info, log_warn};

use super::open;

/// Files up to this size (every WAL segment of a default cluster) are read once into memory:
/// one read and one hash instead of a checksum pass and a copy pass.
const IN_MEMORY_MAX: u64 = 64 << 20;

/// A temporary file of the same WAL file untouched this long was left by a push that was
/// killed: a live push writes its file without pause and finishes in seconds. Age, not the
/// process id, decides, because the repository may be shared by pushes from other hosts,
/// whose process ids mean nothing here. A push that merely stalled this long and then goes on
/// fails at its rename, and PostgreSQL, which still has the segment, pushes it again.
const STALE_TEMP_SECONDS: i64 = 10 * 60;

/// How a push writes its temp file: in place under the temp name, fsynced at commit; the rename
/// to the final name syncs the directory.
fn temp_options() -> WriteOptions {
    WriteOptions {
        atomic: false,
        sync_path: false,
        start_writeback: true,
        ..WriteOptions::default()
    }
}

/// What pushing a file needs, loaded once: the async process's workers share one.
pub struct Pusher<'a> {
    repo: &'a dyn Storage,
    stanza: &'a str,
    db: &'a DbHistory,
    compress: CompressType,
    level: i32,
    buffer_size: usize,
    /// Compress a segment as one frame per core (a lone push), or as one frame (the async
    /// process, whose workers already keep the cores busy).
    split_frames: bool,
}

/// How a push ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Stored now, durably.
    Stored,
    /// Already in the archive with the same checksum (a retry after a crash).
    AlreadyArchived,
}

impl<'a> Pusher<'a> {
    pub fn new(
        cfg: &Config,
        repo: &'a dyn Storage,
        stanza: &'a str,
        db: &'a DbHistory,
    ) -> Result<Pusher<'a>> {
        let (compress, level) = open::compression(cfg)?;
        Ok(Pusher {
            repo,
            stanza,
            db,
            compress,
            level,
            buffer_size: open::buffer_size(cfg),
            split_frames: true,
        })
    }

    /// Compresses each segment as one frame, on the calling thread's core alone.
    pub fn single_frame(mut self) -> Pusher<'a> {
        self.split_frames = false;
        self
    }

    /// Stores `source` (named `name`) in the archive; returns only once it is durable.
    pub fn push(&self, source: &Path, name: &str, kind: WalFileKind) -> Result<Pushed> {
        self.push_with(source, name, kind, &mut FrameBuffers::default())
    }

    /// `push`, with `buffers` kept from the last push: a worker that pushes many segments
    /// reuses its memory instead of faulting in fresh pages for each. Once the file is in the
    /// archive, the temporary files killed pushes of it left are removed.
    pub fn push_with(
        &self,
        source: &Path,
        name: &str,
        kind: WalFileKind,
        buffers: &mut FrameBuffers,
    ) -> Result<Pushed> {
        self.store(source, name, kind, buffers)
    }

    /// Removes the temporary files of `name` among `entries` (the listing of its WAL directory
    /// `dir`) older than [`STALE_TEMP_SECONDS`]. A failure is only a warning: the push goes
    /// on, and expire removes what is left.
    fn remove_stale_temps(&self, entries: &[FileInfo], dir: &str, name: &str) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        let before = i64::try_from(now).unwrap_or(i64::MAX) - STALE_TEMP_SECONDS;
        let removed = archive::stale_in(entries, dir, Some(name), before)
            .iter()
            .try_for_each(|temp| {
                self.repo.remove(temp)?;
                log_info!(
                    "removed temporary file '{}' left by an interrupted push",
                    self.repo.describe(temp)
                );
                Ok::<(), Error>(())
            });
        if let Err(err) = removed {
            log_warn!("unable to remove stale temporary files of WAL file '{name}': {err}");
        }
    }

    fn store(
        &self,
        source: &Path,
        name: &str,
        kind: WalFileKind,
        buffers: &mut FrameBuffers,
    ) -> Result<Pushed> {
        let (repo, stanza, db) = (self.repo, self.stanza, self.db);
        let archive_id = db.archive_id();
        if kind == WalFileKind::History {
            let checksum = checksum_and_check(source, name, kind, db)?;
            return push_history(repo, stanza, &archive_id, source, name, &checksum);
        }
        let size = std::fs::metadata(source)
            .map_err(|e| Error::io(ErrorKind::FileOpen, "open WAL file", source.display(), &e))?
            .len();
        let compress = FilterSpec::Compress {
            kind: self.compress,
            level: self.level,
        };
        if size <= IN_MEMORY_MAX {
            // Read once: hashed in order while its pieces are compressed on every core (a lone
            // push: PostgreSQL waits for it) or on this worker's alone (the async process). The
            // compressed frames are thrown away when the segment turns out to be archived.
            let threads = if self.split_frames {
                std::thread::available_parallelism()
                    .map(usize::from)
                    .unwrap_or(1)
                    .clamp(1, 4)
            } else {
                1
            };
            // Each frame is written as soon as it and the ones before it are done, to a name
            // of this process's (the checksum in the final name is known only at the end), and
            // its writeback starts at once: the device writes while later pieces are compressed.
            let temp = self.temp(&archive_id, name);
            let mut writer: Option<Box<dyn StorageWrite>> = None;
            let framed = parallel_compress::hash_and_compress(
                &mut open_source(source)?,
                &source.display().to_string(),
                &compress,
                threads,
                buffers,
                &mut |first| {
                    if matches!(kind, WalFileKind::Segment | WalFileKind::Partial) {
                        check_header(first, name, db)?;
                    }
                    Ok(())
                },
                &mut |frame| {
                    let out = match writer.as_mut() {
                        Some(out) => out,
                        None => writer.insert(repo.open_write(&temp, &temp_options())?),
                    };
                    out.write_all(frame).map_err(|e| {
                        stream::from_io_error(
                            e,
                            ErrorKind::FileWrite,
                            &format!("write '{}'", repo.describe(&temp)),
                        )
                    })
                },
            )?;
            return self.store_frames(&archive_id, name, &framed, writer, &temp);
        }

        let checksum = checksum_and_check(source, name, kind, db)?;
        if let Some(pushed) = self.existing(&archive_id, name, &checksum)? {
            return Ok(pushed);
        }
        let target = self.target(&archive_id, name, &checksum);
        let mut writer = repo.open_write(&target, &WriteOptions::default())?;
        let results = stream::copy_through(
            &mut open_source(source)?,
            &mut FilterChain::from_specs(&[FilterSpec::Hash, compress])?,
            &mut writer,
            self.buffer_size,
        )
        .map_err(|e| e.context(format!("unable to push WAL file '{name}'")))?;
        // The file may not change between the checksum pass and the copy pass: PostgreSQL only
        // archives completed files, so a difference means something else is writing to it.
        if results.first() != Some(&FilterResult::Hash(checksum.clone())) {
            return Err(Error::new(
                ErrorKind::Checksum,
                format!(
                    "WAL file '{}' changed while it was being archived",
                    source.display()
                ),
            ));
        }
        writer.commit()?;
        log_info!("pushed WAL file '{name}' to the archive");
        Ok(Pushed::Stored)
    }

    /// Makes the frames written to `temp` the archived file, durably, unless the file is
    /// archived already (then `temp` goes: dropping its writer removes it).
    fn store_frames(
        &self,
        archive_id: &str,
        name: &str,
        framed: &Framed,
        writer: Option<Box<dyn StorageWrite>>,
        temp: &str,
    ) -> Result<Pushed> {
        if let Some(pushed) = self.existing(archive_id, name, &framed.checksum)? {
            return Ok(pushed);
        }
        let writer = writer
            .ok_or_else(|| Error::new(ErrorKind::Assert, "no frame was written for a WAL file"))?;
        writer.commit()?;
        fail::fail_point!("archive-push-before-rename");
        let target = self.target(archive_id, name, &framed.checksum);
        if let Err(err) = self.repo.rename(temp, &target) {
            let _ = self.repo.remove(temp);
            return Err(err);
        }
        log_info!("pushed WAL file '{name}' to the archive");
        Ok(Pushed::Stored)
    }

    /// Where a push writes its frames before their checksum names the file: beside it, named
    /// for this process and moment, so two pushes of the same segment into one repository
    /// (from two hosts, say) never write into one file. A killed push leaves it behind; its
    /// suffix marks it as no archived file.
    fn temp(&self, archive_id: &str, name: &str) -> String {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_nanos());
        format!(
            "{}/{name}.{}-{nanos}.pgkeep.tmp",
            layout::wal_dir(self.stanza, archive_id, name),
            std::process::id()
        )
    }

    /// The outcome when `name` is archived already: accepted with the same checksum (a retry
    /// after a crash), refused with another. The one listing of the WAL directory a push makes
    /// also finds the temporary files killed pushes of `name` left, which go.
    fn existing(&self, archive_id: &str, name: &str, checksum: &str) -> Result<Option<Pushed>> {
        let dir = layout::wal_dir(self.stanza, archive_id, name);
        let entries = self.repo.list(&dir)?.unwrap_or_default();
        self.remove_stale_temps(&entries, &dir, name);
        let existing = archive::archived_in(&entries, &dir, name);
        let Some(found) = existing.first() else {
            return Ok(None);
        };
        if found.checksum == checksum {
            log_warn!("WAL file '{name}' already exists in the archive with the same checksum");
            log_info!(
                "HINT: this is valid in some recovery scenarios but may also indicate a problem"
            );
            return Ok(Some(Pushed::AlreadyArchived));
        }
        Err(Error::new(
            ErrorKind::ArchiveDuplicate,
            format!("WAL file '{name}' already exists in the archive with a different checksum"),
        )
        .with_hint(
            "is another cluster archiving to this stanza? the archived file was left as it is",
        ))
    }

    fn target(&self, archive_id: &str, name: &str, checksum: &str) -> String {
        format!(
            "{}/{}",
            layout::wal_dir(self.stanza, archive_id, name),
            layout::wal_file_name(name, checksum, self.compress.extension())
        )
    }
}

/// archive.info, creating the stanza on first use when the data directory is known.
pub fn load_or_create(cfg: &Config, repo: &dyn Storage, stanza: &str) -> Result<ArchiveInfo> {
    if let Some(info) = ArchiveInfo::load(repo, stanza)? {
        return Ok(info);
    }
    if let Some(pg_path) = open::pg_path_opt(cfg) {
        let control = open::control(&pg_path)?;
        stanza::ensure(repo, stanza, &control)?;
        log_info!("stanza '{stanza}' created by its first archive-push");
    }
    ArchiveInfo::load_required(repo, stanza)
}

fn open_source(path: &Path) -> Result<File> {
    File::open(path)
        .map_err(|e| Error::io(ErrorKind::FileOpen, "open WAL file", path.display(), &e))
}

/// Reads the file once: checks a segment's header against the stanza and returns the SHA-256.
fn checksum_and_check(
    path: &Path,
    name: &str,
    kind: WalFileKind,
    db: &DbHistory,
) -> Result<String> {
    let mut file = open_source(path)?;
    let mut chain = FilterChain::from_specs(&[FilterSpec::Hash])?;
    let mut buffer = vec![0u8; 1 << 20];
    let mut first = true;
    loop {
        let read = file
            .read(&mut buffer)
            .map_err(|e| Error::io(ErrorKind::FileRead, "read WAL file", path.display(), &e))?;
        if read == 0 {
            break;
        }
        if first && matches!(kind, WalFileKind::Segment | WalFileKind::Partial) {
            check_header(&buffer[..read], name, db)?;
        }
        first = false;
        chain.process(&buffer[..read])?;
    }
    let (_, results) = chain.finish()?;
    match results.first() {
        Some(FilterResult::Hash(hash)) => Ok(hash.clone()),
        _ => Err(Error::new(
            ErrorKind::Assert,
            "hash filter returned no result",
        )),
    }
}

fn check_header(bytes: &[u8], name: &str, db: &DbHistory) -> Result<()> {
    let header = WalHeader::parse(bytes).map_err(|e| e.context(format!("WAL file '{name}'")))?;
    let version_matches = header.version.is_none_or(|v| v.to_string() == db.version);
    if header.system_id != db.system_id || !version_matches {
        let version = header
            .version
            .map(|v| v.to_string())
            .unwrap_or_else(|| "unknown".to_string());
        return Err(Error::new(
            ErrorKind::ArchiveMismatch,
            format!(
                "WAL file '{name}' version {version}, system id {} does not match stanza version {}, system id {}",
                header.system_id, db.version, db.system_id
            ),
        )
        .with_hint("are you archiving to the correct stanza?"));
    }
    Ok(())
}

/// Timeline history files are small, stored uncompressed at the top of the archive id.
fn push_history(
    repo: &dyn Storage,
    stanza: &str,
    archive_id: &str,
    source: &Path,
    name: &str,
    checksum: &str,
) -> Result<Pushed> {
    let target = layout::history_file(stanza, archive_id, name);
    let content = std::fs::read(source)
        .map_err(|e| Error::io(ErrorKind::FileRead, "read", source.display(), &e))?;
    if let Some(mut existing) = repo.open_read(&target)? {
        let mut stored = Vec::new();
        existing.read_to_end(&mut stored).map_err(|e| {
            stream::from_io_error(
                e,
                ErrorKind::FileRead,
                &format!("read '{}'", repo.describe(&target)),
            )
        })?;
        if stored == content {
            log_warn!("WAL file '{name}' already exists in the archive with the same checksum");
            return Ok(Pushed::AlreadyArchived);
        }
        return Err(Error::new(
            ErrorKind::ArchiveDuplicate,
            format!("WAL file '{name}' already exists in the archive with a different checksum"),
        ));
    }
    let mut writer = repo.open_write(&target, &WriteOptions::default())?;
    std::io::Write::write_all(&mut writer, &content).map_err(|e| {
        stream::from_io_error(
            e,
            ErrorKind::FileWrite,
            &format!("write '{}'", repo.describe(&target)),
        )
    })?;
    writer.commit()?;
    log_info!("pushed WAL file '{name}' to the archive (checksum {checksum})");
    Ok(Pushed::Stored)
}
