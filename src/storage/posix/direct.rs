//! Writes that bypass the page cache (O_DIRECT), for the large files of a restore.
//!
//! A buffered write copies every byte into a freshly allocated page-cache page, and the final
//! sync writes those pages back: on the machines measured (docs/restore.md) that costs more CPU
//! than decompressing the data, and 1.5 GB written buffered and synced took 2.2–3.4 s where the
//! same bytes written direct took 1.4 s at a tenth of the system time. A direct write moves
//! the caller's buffer to the device itself, so it needs the buffer's address, the length and
//! the file offset to be multiples of the device's logical block size ([`ALIGN`] covers every
//! common one). Aligned input (see [`AlignedBuf`]) is written as it comes; anything else is
//! gathered in an aligned staging buffer first. The tail that is not a whole multiple is written
//! after O_DIRECT is switched off again, and so is everything when the file system refuses
//! O_DIRECT (EINVAL at open or at a write): the bytes always land, only the path differs.
//! Direct writes are not durable by themselves either: a restore's final syncfs flushes them.

use std::fs::File;
use std::io::Write;
use std::os::fd::AsFd;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

/// Alignment of buffers, lengths and offsets of direct writes: the largest logical block size
/// of common devices (4Kn disks); 512-byte devices accept it too.
pub const ALIGN: usize = 4096;

/// What the staging buffer holds before it is written: large enough that a direct write costs
/// one device command per MiB, not per block.
const STAGING: usize = 1 << 20;

/// A growable buffer whose content starts at an [`ALIGN`] boundary, so that a direct write can
/// take it without staging. Allocated once with room for its capacity; content appended past
/// it moves the buffer and is then staged like any other input (slower, never wrong).
pub struct AlignedBuf {
    bytes: Vec<u8>,
    /// Bytes at the front of `bytes` before the aligned content.
    pad: usize,
}

impl AlignedBuf {
    pub fn with_capacity(capacity: usize) -> AlignedBuf {
        let mut bytes = Vec::<u8>::with_capacity(capacity + ALIGN);
        let pad = bytes.as_ptr().align_offset(ALIGN).min(ALIGN);
        bytes.resize(pad, 0);
        AlignedBuf { bytes, pad }
    }

    /// The content.
    pub fn content(&self) -> &[u8] {
        &self.bytes[self.pad..]
    }

    /// The content's length.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.pad
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Empties the content, keeping the allocation.
    pub fn clear(&mut self) {
        self.bytes.truncate(self.pad);
    }

    /// Removes the first `n` bytes of the content; the rest moves to the aligned start.
    fn consume(&mut self, n: usize) {
        self.bytes.drain(self.pad..self.pad + n);
    }

    /// The underlying vector, for appending content: what is in it before [`Self::content`]
    /// must stay.
    pub fn appender(&mut self) -> &mut Vec<u8> {
        &mut self.bytes
    }
}

/// The direct-write state of one open file.
pub(super) struct DirectWrite {
    /// O_DIRECT is still set on the file (cleared for the tail, or when refused).
    enabled: bool,
    /// Input that came unaligned, gathered until a whole `STAGING` is there.
    staging: Option<AlignedBuf>,
}

impl DirectWrite {
    /// The state of a file opened with O_DIRECT (`enabled`) or without it (refused at open).
    pub(super) fn new(enabled: bool) -> DirectWrite {
        DirectWrite {
            enabled,
            staging: None,
        }
    }

    /// Writes part of `buf`, as `Write::write` does.
    pub(super) fn write(&mut self, file: &mut File, buf: &[u8]) -> std::io::Result<usize> {
        let staged = self.staging.as_ref().map_or(0, AlignedBuf::len);
        if !self.enabled {
            // Whatever was staged goes first, so the bytes stay in order.
            self.flush_staging(file, true)?;
            return file.write(buf);
        }
        if staged == 0 && buf.as_ptr().align_offset(ALIGN) == 0 && buf.len() >= ALIGN {
            return self.write_aligned(file, &buf[..buf.len() - buf.len() % ALIGN]);
        }
        let staging = self
            .staging
            .get_or_insert_with(|| AlignedBuf::with_capacity(STAGING));
        let taken = buf.len().min(STAGING - staging.len());
        staging.appender().extend_from_slice(&buf[..taken]);
        if staging.len() == STAGING {
            self.flush_staging(file, false)?;
        }
        Ok(taken)
    }

    /// Writes out what is staged, the unaligned tail with O_DIRECT switched off: the end of
    /// the file.
    pub(super) fn finish(&mut self, file: &mut File) -> std::io::Result<()> {
        self.flush_staging(file, true)
    }

    /// Writes the staged bytes: all of them when `all`, else the aligned part (the rest stays
    /// staged, at the front).
    fn flush_staging(&mut self, file: &mut File, all: bool) -> std::io::Result<()> {
        let Some(mut staging) = self.staging.take() else {
            return Ok(());
        };
        let written = self.write_staged(file, &staging, all);
        if let Ok(done) = written {
            staging.consume(done);
        }
        self.staging = Some(staging);
        written.map(|_| ())
    }

    /// `flush_staging`'s writes; returns how many staged bytes went out.
    fn write_staged(
        &mut self,
        file: &mut File,
        staging: &AlignedBuf,
        all: bool,
    ) -> std::io::Result<usize> {
        let aligned = staging.len() - staging.len() % ALIGN;
        let mut done = 0;
        while done < aligned {
            done += self.write_aligned(file, &staging.content()[done..aligned])?;
        }
        if all && done < staging.len() {
            self.disable(file)?;
            file.write_all(&staging.content()[done..])?;
            done = staging.len();
        }
        Ok(done)
    }

    /// One write of aligned bytes: direct while the file system takes it, buffered from the
    /// first refusal on.
    fn write_aligned(&mut self, file: &mut File, data: &[u8]) -> std::io::Result<usize> {
        if self.enabled {
            match file.write(data) {
                Err(err) if err.raw_os_error() == Some(nix::libc::EINVAL) => self.disable(file)?,
                other => return other,
            }
        }
        file.write(data)
    }

    /// Switches O_DIRECT off for the rest of the file.
    fn disable(&mut self, file: &File) -> std::io::Result<()> {
        if !self.enabled {
            return Ok(());
        }
        let flags = fcntl(file.as_fd(), FcntlArg::F_GETFL).map_err(std::io::Error::from)?;
        let flags = OFlag::from_bits_truncate(flags) & !OFlag::O_DIRECT;
        fcntl(file.as_fd(), FcntlArg::F_SETFL(flags)).map_err(std::io::Error::from)?;
        self.enabled = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::OpenOptionsExt;

    use super::*;

    /// Whether O_DIRECT is set on `file`, as the kernel reports it.
    fn is_direct(file: &File) -> bool {
        let flags = fcntl(file.as_fd(), FcntlArg::F_GETFL).unwrap();
        OFlag::from_bits_truncate(flags).contains(OFlag::O_DIRECT)
    }

    #[test]
    fn aligned_input_is_written_direct_and_only_the_tail_buffered() {
        // /var/tmp: a disk file system (tmpfs refused O_DIRECT before Linux 6.6).
        let dir = tempfile::tempdir_in("/var/tmp").unwrap();
        let path = dir.path().join("file");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .custom_flags(nix::libc::O_DIRECT)
            .open(&path)
            .unwrap();
        let mut direct = DirectWrite::new(true);
        let mut buf = AlignedBuf::with_capacity(3 * ALIGN);
        assert_eq!(buf.content().as_ptr().align_offset(ALIGN), 0);
        buf.appender().extend_from_slice(&[0xA5; 2 * ALIGN + 10]);
        let written = direct.write(&mut file, buf.content()).unwrap();
        assert_eq!(written, 2 * ALIGN, "the aligned part goes first, as it is");
        assert!(is_direct(&file));
        assert_eq!(
            direct.write(&mut file, &buf.content()[written..]).unwrap(),
            10
        );
        assert!(direct.staging.as_ref().is_some_and(|s| s.len() == 10));
        direct.finish(&mut file).unwrap();
        assert!(
            !is_direct(&file),
            "the unaligned tail is written without O_DIRECT"
        );
        drop(file);
        assert_eq!(std::fs::read(&path).unwrap(), buf.content());
    }

    #[test]
    fn an_aligned_buffer_stays_aligned_when_cleared() {
        let mut buf = AlignedBuf::with_capacity(ALIGN);
        buf.appender().extend_from_slice(&[1; 100]);
        assert_eq!(buf.len(), 100);
        buf.clear();
        assert!(buf.is_empty());
        buf.appender().extend_from_slice(&[2; ALIGN]);
        assert_eq!(buf.content().as_ptr().align_offset(ALIGN), 0);
        assert_eq!(buf.content(), &[2; ALIGN][..]);
    }
}
